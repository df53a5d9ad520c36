tg_fuzz_target(tz SOURCES fuzz_tz.c LIBS tg_quota_math)
