tg_unit_test(test_json_scan SOURCES test_json_scan.c LIBS tg_base)
tg_unit_test(test_timefmt SOURCES test_timefmt.c LIBS tg_base)
