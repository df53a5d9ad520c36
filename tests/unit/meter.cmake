tg_unit_test(test_sse SOURCES test_sse.c LIBS tg_meter)
tg_unit_test(test_usage SOURCES test_usage.c LIBS tg_meter)
tg_unit_test(test_body_scan SOURCES test_body_scan.c LIBS tg_meter)
tg_unit_test(test_reply_text SOURCES test_reply_text.c LIBS tg_meter)
