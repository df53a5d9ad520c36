/* Unit tests for core/timefmt.c */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "core/timefmt.h"

static void test_parse(void **state)
{
    (void)state;
    static const struct {
        int line;
        const char *in;
        int rc;
        int64_t ms;
    } rows[] = {
        {__LINE__, "1970-01-01", 0, 0},
        {__LINE__, "1970-01-01T00:00:00Z", 0, 0},
        {__LINE__, "2026-11-22T04:00:11.336Z", 0, 1795320011336LL},
        {__LINE__, "2026-11-22T05:00:11.336+01:00", 0, 1795320011336LL},
        {__LINE__, "2026-11-21T23:00:11.336-05:00", 0, 1795320011336LL},
        {__LINE__, "2024-02-29", 0, 1709164800000LL},
        {__LINE__, "2023-02-29", -1, 0},
        {__LINE__, "2026-13-01", -1, 0},
        {__LINE__, "2026-11-22T25:00:00Z", -1, 0},
        {__LINE__, "2026-11-22T04:00:00", -1, 0},
        {__LINE__, "2026-11-22T04:00:00Zx", -1, 0},
        {__LINE__, "yesterday", -1, 0},
        {__LINE__, "", -1, 0},
        {__LINE__, "1969-12-31T23:59:59.5Z", 0, -500},
    };
    for (size_t i = 0; i < TG_ARRAY_LEN(rows); i++) {
        int64_t ms = 0;
        int rc = tg_time_parse_rfc3339(rows[i].in, strlen(rows[i].in), &ms);
        if (rc != rows[i].rc || (rc == 0 && ms != rows[i].ms))
            fail_msg("line %d: rc=%d ms=%lld", rows[i].line, rc, (long long)ms);
    }
}

static void test_format_roundtrip(void **state)
{
    (void)state;
    char buf[40];
    assert_int_equal(tg_time_format_rfc3339(1795320011336LL, buf, sizeof(buf)), 24);
    assert_string_equal(buf, "2026-11-22T04:00:11.336Z");
    for (int64_t ms = -86400000LL * 400; ms < 86400000LL * 366 * 60; ms += 86400000LL * 7 + 12345) {
        assert_true(tg_time_format_rfc3339(ms, buf, sizeof(buf)) > 0);
        int64_t back;
        assert_int_equal(tg_time_parse_rfc3339(buf, strlen(buf), &back), 0);
        assert_true(back == ms);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse),
        cmocka_unit_test(test_format_roundtrip),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
