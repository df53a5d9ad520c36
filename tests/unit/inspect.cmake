# Request inspection/rewriting and the quota notice (proxy/src/meter/inspect.c, notice.c).
tg_unit_test(test_inspect SOURCES test_inspect.c LIBS tg_inspect)
tg_unit_test(test_notice SOURCES test_notice.c LIBS tg_inspect)
