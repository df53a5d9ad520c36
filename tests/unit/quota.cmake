tg_unit_test(test_tz SOURCES test_tz.c LIBS tg_quota_math)
tg_unit_test(test_quota_math SOURCES test_quota_math.c LIBS tg_quota_math)
