tg_unit_test(test_http_parse SOURCES test_http_parse.c LIBS tg_http_parse)
tg_unit_test(test_config SOURCES test_config.c LIBS tg_base)
tg_unit_test(test_uuid7 SOURCES test_uuid7.c LIBS tg_base)
