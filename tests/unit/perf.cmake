# Performance work on the request path, pinned by tests:
#   test_log          the log line formatter (core/log.c, in tg_base): hand-written JSON/text
#                     formatting against reference formatting (tg_json_escape, %lld, gmtime_r)
#   test_redis_format quota/redis_async.c: RESP formatting byte for byte as hiredis'
tg_unit_test(test_log SOURCES test_log.c LIBS tg_base Threads::Threads)
tg_unit_test(test_redis_format SOURCES test_redis_format.c LIBS tg_quota)
