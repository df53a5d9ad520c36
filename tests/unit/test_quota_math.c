/* Unit tests for quota/quota_math.c: periods across DST and month/year ends, states, headers,
 * messages. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "quota/quota_math.h"

static int64_t utc(const char *s)
{
    struct tm tm;
    memset(&tm, 0, sizeof(tm));
    int y, mo, d, h, mi, se;
    if (sscanf(s, "%d-%d-%dT%d:%d:%dZ", &y, &mo, &d, &h, &mi, &se) != 6)
        fail_msg("bad time %s", s);
    tm.tm_year = y - 1900;
    tm.tm_mon = mo - 1;
    tm.tm_mday = d;
    tm.tm_hour = h;
    tm.tm_min = mi;
    tm.tm_sec = se;
    return (int64_t)timegm(&tm);
}

static struct tg_tz *load(const char *name)
{
    char err[256];
    struct tg_tz *z = tg_tz_load(name, err, sizeof(err));
    if (z == NULL)
        fail_msg("%s: %s", name, err);
    return z;
}

static void test_period_names(void **state)
{
    (void)state;
    static const struct {
        int line;
        const char *s;
        int ok;
        enum tg_period p;
        const char *adj;
    } rows[] = {
        {__LINE__, "month", 1, TG_PERIOD_MONTH, "monthly"},
        {__LINE__, "week", 1, TG_PERIOD_WEEK, "weekly"},
        {__LINE__, "day", 1, TG_PERIOD_DAY, "daily"},
        {__LINE__, "none", 1, TG_PERIOD_NONE, ""},
        {__LINE__, "Month", 0, TG_PERIOD_NONE, NULL},
        {__LINE__, "", 0, TG_PERIOD_NONE, NULL},
        {__LINE__, "monthly", 0, TG_PERIOD_NONE, NULL},
        {__LINE__, "year", 0, TG_PERIOD_NONE, NULL},
    };
    for (size_t i = 0; i < TG_ARRAY_LEN(rows); i++) {
        enum tg_period p = (enum tg_period)99;
        int rc = tg_period_parse(rows[i].s, &p);
        if ((rc == 0) != rows[i].ok)
            fail_msg("line %d", rows[i].line);
        if (rows[i].ok && (p != rows[i].p || strcmp(tg_period_name(p), rows[i].s) != 0 ||
                           strcmp(tg_period_adjective(p), rows[i].adj) != 0))
            fail_msg("line %d", rows[i].line);
        if (!rows[i].ok && p != (enum tg_period)99)
            fail_msg("line %d: out written on error", rows[i].line);
    }
    enum tg_period p;
    assert_int_equal(tg_period_parse(NULL, &p), -1);
}

static void test_period_bounds(void **state)
{
    (void)state;
    static const struct {
        int line;
        const char *zone;
        const char *now;
        enum tg_period p;
        const char *key, *start, *reset;
        int ry, rm, rd;
    } rows[] = {
        /* UTC: middle, edges, year end, leap February */
        {__LINE__, "UTC", "2026-11-22T10:00:00Z", TG_PERIOD_MONTH, "m2026-11",
         "2026-11-01T00:00:00Z", "2026-12-01T00:00:00Z", 2026, 12, 1},
        {__LINE__, "UTC", "2026-12-01T00:00:00Z", TG_PERIOD_MONTH, "m2026-12",
         "2026-12-01T00:00:00Z", "2027-01-01T00:00:00Z", 2027, 1, 1},
        {__LINE__, "UTC", "2026-11-30T23:59:59Z", TG_PERIOD_MONTH, "m2026-11",
         "2026-11-01T00:00:00Z", "2026-12-01T00:00:00Z", 2026, 12, 1},
        {__LINE__, "UTC", "2026-12-31T23:59:59Z", TG_PERIOD_MONTH, "m2026-12",
         "2026-12-01T00:00:00Z", "2027-01-01T00:00:00Z", 2027, 1, 1},
        {__LINE__, "UTC", "2027-01-01T00:00:00Z", TG_PERIOD_MONTH, "m2027-01",
         "2027-01-01T00:00:00Z", "2027-02-01T00:00:00Z", 2027, 2, 1},
        {__LINE__, "UTC", "2028-02-29T12:00:00Z", TG_PERIOD_MONTH, "m2028-02",
         "2028-02-01T00:00:00Z", "2028-03-01T00:00:00Z", 2028, 3, 1},
        {__LINE__, "UTC", "2026-02-28T12:00:00Z", TG_PERIOD_MONTH, "m2026-02",
         "2026-02-01T00:00:00Z", "2026-03-01T00:00:00Z", 2026, 3, 1},
        {__LINE__, "UTC", "2026-04-30T23:59:59Z", TG_PERIOD_MONTH, "m2026-04",
         "2026-04-01T00:00:00Z", "2026-05-01T00:00:00Z", 2026, 5, 1},
        {__LINE__, "UTC", "2028-02-29T12:00:00Z", TG_PERIOD_DAY, "d2028-02-29",
         "2028-02-29T00:00:00Z", "2028-03-01T00:00:00Z", 2028, 3, 1},
        {__LINE__, "UTC", "2026-12-31T23:59:59Z", TG_PERIOD_DAY, "d2026-12-31",
         "2026-12-31T00:00:00Z", "2027-01-01T00:00:00Z", 2027, 1, 1},
        /* weeks start on Monday */
        {__LINE__, "UTC", "2026-11-22T23:00:00Z", TG_PERIOD_WEEK, "w2026-11-16",
         "2026-11-16T00:00:00Z", "2026-11-23T00:00:00Z", 2026, 11, 23},
        {__LINE__, "UTC", "2026-11-23T00:00:00Z", TG_PERIOD_WEEK, "w2026-11-23",
         "2026-11-23T00:00:00Z", "2026-11-30T00:00:00Z", 2026, 11, 30},
        {__LINE__, "UTC", "2026-11-16T00:00:00Z", TG_PERIOD_WEEK, "w2026-11-16",
         "2026-11-16T00:00:00Z", "2026-11-23T00:00:00Z", 2026, 11, 23},
        {__LINE__, "UTC", "2026-12-31T12:00:00Z", TG_PERIOD_WEEK, "w2026-12-28",
         "2026-12-28T00:00:00Z", "2027-01-04T00:00:00Z", 2027, 1, 4},
        {__LINE__, "UTC", "2027-01-03T23:59:59Z", TG_PERIOD_WEEK, "w2026-12-28",
         "2026-12-28T00:00:00Z", "2027-01-04T00:00:00Z", 2027, 1, 4},
        {__LINE__, "UTC", "2028-02-27T12:00:00Z", TG_PERIOD_WEEK, "w2028-02-21",
         "2028-02-21T00:00:00Z", "2028-02-28T00:00:00Z", 2028, 2, 28},
        {__LINE__, "UTC", "2028-03-01T12:00:00Z", TG_PERIOD_WEEK, "w2028-02-28",
         "2028-02-28T00:00:00Z", "2028-03-06T00:00:00Z", 2028, 3, 6},
        /* Europe/Lisbon: WET/WEST */
        {__LINE__, "Europe/Lisbon", "2026-10-25T12:00:00Z", TG_PERIOD_DAY, "d2026-10-25",
         "2026-10-24T23:00:00Z", "2026-10-26T00:00:00Z", 2026, 10, 26},
        {__LINE__, "Europe/Lisbon", "2026-03-29T12:00:00Z", TG_PERIOD_DAY, "d2026-03-29",
         "2026-03-29T00:00:00Z", "2026-03-29T23:00:00Z", 2026, 3, 30},
        {__LINE__, "Europe/Lisbon", "2026-10-31T23:30:00Z", TG_PERIOD_MONTH, "m2026-10",
         "2026-09-30T23:00:00Z", "2026-11-01T00:00:00Z", 2026, 11, 1},
        {__LINE__, "Europe/Lisbon", "2026-09-30T23:30:00Z", TG_PERIOD_MONTH, "m2026-10",
         "2026-09-30T23:00:00Z", "2026-11-01T00:00:00Z", 2026, 11, 1},
        {__LINE__, "Europe/Lisbon", "2026-09-30T22:59:59Z", TG_PERIOD_MONTH, "m2026-09",
         "2026-08-31T23:00:00Z", "2026-09-30T23:00:00Z", 2026, 10, 1},
        {__LINE__, "Europe/Lisbon", "2026-03-15T12:00:00Z", TG_PERIOD_MONTH, "m2026-03",
         "2026-03-01T00:00:00Z", "2026-03-31T23:00:00Z", 2026, 4, 1},
        {__LINE__, "Europe/Lisbon", "2026-10-25T00:30:00Z", TG_PERIOD_WEEK, "w2026-10-19",
         "2026-10-18T23:00:00Z", "2026-10-26T00:00:00Z", 2026, 10, 26},
        /* America/New_York */
        {__LINE__, "America/New_York", "2026-11-15T12:00:00Z", TG_PERIOD_MONTH, "m2026-11",
         "2026-11-01T04:00:00Z", "2026-12-01T05:00:00Z", 2026, 12, 1},
        {__LINE__, "America/New_York", "2026-11-01T03:59:59Z", TG_PERIOD_MONTH, "m2026-10",
         "2026-10-01T04:00:00Z", "2026-11-01T04:00:00Z", 2026, 11, 1},
        {__LINE__, "America/New_York", "2026-03-08T12:00:00Z", TG_PERIOD_DAY, "d2026-03-08",
         "2026-03-08T05:00:00Z", "2026-03-09T04:00:00Z", 2026, 3, 9},
        {__LINE__, "America/New_York", "2026-11-01T05:30:00Z", TG_PERIOD_DAY, "d2026-11-01",
         "2026-11-01T04:00:00Z", "2026-11-02T05:00:00Z", 2026, 11, 2},
        {__LINE__, "America/New_York", "2027-01-01T04:59:59Z", TG_PERIOD_MONTH, "m2026-12",
         "2026-12-01T05:00:00Z", "2027-01-01T05:00:00Z", 2027, 1, 1},
        /* America/Sao_Paulo 2018: midnight skipped on 4 November */
        {__LINE__, "America/Sao_Paulo", "2018-11-04T12:00:00Z", TG_PERIOD_DAY, "d2018-11-04",
         "2018-11-04T03:00:00Z", "2018-11-05T02:00:00Z", 2018, 11, 5},
        {__LINE__, "America/Sao_Paulo", "2018-11-04T03:00:00Z", TG_PERIOD_DAY, "d2018-11-04",
         "2018-11-04T03:00:00Z", "2018-11-05T02:00:00Z", 2018, 11, 5},
        {__LINE__, "America/Sao_Paulo", "2018-11-04T02:59:59Z", TG_PERIOD_DAY, "d2018-11-03",
         "2018-11-03T03:00:00Z", "2018-11-04T03:00:00Z", 2018, 11, 4},
        {__LINE__, "America/Sao_Paulo", "2018-11-04T12:00:00Z", TG_PERIOD_WEEK, "w2018-10-29",
         "2018-10-29T03:00:00Z", "2018-11-05T02:00:00Z", 2018, 11, 5},
        {__LINE__, "America/Sao_Paulo", "2018-11-04T12:00:00Z", TG_PERIOD_MONTH, "m2018-11",
         "2018-11-01T03:00:00Z", "2018-12-01T02:00:00Z", 2018, 12, 1},
        /* Sao Paulo 2019-02-17: 23:00-24:00 of the 16th repeated */
        {__LINE__, "America/Sao_Paulo", "2019-02-17T02:30:00Z", TG_PERIOD_DAY, "d2019-02-16",
         "2019-02-16T02:00:00Z", "2019-02-17T03:00:00Z", 2019, 2, 17},
        /* America/Santiago: DST ends at Saturday 24:00 -03: Saturday lasts 25 hours */
        {__LINE__, "America/Santiago", "2026-04-05T03:30:00Z", TG_PERIOD_DAY, "d2026-04-04",
         "2026-04-04T03:00:00Z", "2026-04-05T04:00:00Z", 2026, 4, 5},
        {__LINE__, "America/Santiago", "2026-04-05T04:00:00Z", TG_PERIOD_DAY, "d2026-04-05",
         "2026-04-05T04:00:00Z", "2026-04-06T04:00:00Z", 2026, 4, 6},
        {__LINE__, "America/Santiago", "2026-04-05T03:30:00Z", TG_PERIOD_WEEK, "w2026-03-30",
         "2026-03-30T03:00:00Z", "2026-04-06T04:00:00Z", 2026, 4, 6},
        /* Australia/Lord_Howe: 30-minute DST */
        {__LINE__, "Australia/Lord_Howe", "2026-10-04T00:00:00Z", TG_PERIOD_DAY, "d2026-10-04",
         "2026-10-03T13:30:00Z", "2026-10-04T13:00:00Z", 2026, 10, 5},
        {__LINE__, "Australia/Lord_Howe", "2026-04-15T00:00:00Z", TG_PERIOD_MONTH, "m2026-04",
         "2026-03-31T13:00:00Z", "2026-04-30T13:30:00Z", 2026, 5, 1},
        {__LINE__, "Australia/Lord_Howe", "2026-12-31T13:00:00Z", TG_PERIOD_MONTH, "m2027-01",
         "2026-12-31T13:00:00Z", "2027-01-31T13:00:00Z", 2027, 2, 1},
        /* Asia/Kolkata: +05:30, no DST */
        {__LINE__, "Asia/Kolkata", "2025-12-31T18:30:00Z", TG_PERIOD_MONTH, "m2026-01",
         "2025-12-31T18:30:00Z", "2026-01-31T18:30:00Z", 2026, 2, 1},
        {__LINE__, "Asia/Kolkata", "2025-12-31T18:29:59Z", TG_PERIOD_MONTH, "m2025-12",
         "2025-11-30T18:30:00Z", "2025-12-31T18:30:00Z", 2026, 1, 1},
        {__LINE__, "Asia/Kolkata", "2025-12-31T18:29:59Z", TG_PERIOD_WEEK, "w2025-12-29",
         "2025-12-28T18:30:00Z", "2026-01-04T18:30:00Z", 2026, 1, 5},
    };
    for (size_t i = 0; i < TG_ARRAY_LEN(rows); i++) {
        struct tg_tz *z = load(rows[i].zone);
        struct tg_period_bounds b;
        if (tg_quota_period_bounds(utc(rows[i].now), rows[i].p, z, &b) != 0)
            fail_msg("line %d: failed", rows[i].line);
        if (strcmp(b.key, rows[i].key) != 0 || b.start_s != utc(rows[i].start) ||
            b.reset_s != utc(rows[i].reset) || b.reset_year != rows[i].ry ||
            b.reset_month != rows[i].rm || b.reset_day != rows[i].rd)
            fail_msg("line %d: %s start %lld (want %lld) reset %lld (want %lld) %d-%d-%d",
                     rows[i].line, b.key, (long long)b.start_s, (long long)utc(rows[i].start),
                     (long long)b.reset_s, (long long)utc(rows[i].reset), b.reset_year,
                     b.reset_month, b.reset_day);
        tg_tz_destroy(z);
    }
}

/* Every instant lies in [start, reset); consecutive periods tile time without gaps; the key
 * changes exactly at reset; the start's local date is the key's date. */
static void test_period_tiling(void **state)
{
    (void)state;
    static const char *const zs[] = {"UTC",
                                     "Europe/Lisbon",
                                     "America/New_York",
                                     "America/Sao_Paulo",
                                     "Australia/Lord_Howe",
                                     "Asia/Kolkata",
                                     "America/Santiago",
                                     "Pacific/Chatham"};
    static const enum tg_period ps[] = {TG_PERIOD_MONTH, TG_PERIOD_WEEK, TG_PERIOD_DAY};
    for (size_t zi = 0; zi < TG_ARRAY_LEN(zs); zi++) {
        struct tg_tz *z = load(zs[zi]);
        for (size_t pi = 0; pi < TG_ARRAY_LEN(ps); pi++) {
            struct tg_period_bounds b, n, last;
            int64_t t = utc("2017-12-20T00:00:00Z");
            assert_int_equal(tg_quota_period_bounds(t, ps[pi], z, &b), 0);
            int64_t end = utc("2021-01-10T00:00:00Z");
            while (b.reset_s < end) {
                if (tg_quota_period_bounds(b.reset_s, ps[pi], z, &n) != 0 ||
                    tg_quota_period_bounds(b.reset_s - 1, ps[pi], z, &last) != 0)
                    fail_msg("%s: failed", zs[zi]);
                if (n.start_s != b.reset_s || strcmp(last.key, b.key) != 0 ||
                    strcmp(n.key, b.key) <= 0 || last.start_s != b.start_s)
                    fail_msg("%s %s: %s -> %s", zs[zi], tg_period_name(ps[pi]), b.key, n.key);
                int64_t len = n.reset_s - n.start_s;
                int64_t nominal = ps[pi] == TG_PERIOD_DAY    ? 86400
                                  : ps[pi] == TG_PERIOD_WEEK ? 7 * 86400
                                                             : 28 * 86400;
                if (len < nominal - 3 * 3600 ||
                    len > (ps[pi] == TG_PERIOD_MONTH ? 31 * 86400 : nominal) + 3 * 3600)
                    fail_msg("%s %s: length %lld", zs[zi], n.key, (long long)len);
                struct tg_tz_civil c;
                tg_tz_to_civil(z, n.start_s, &c);
                char want[24];
                if (ps[pi] == TG_PERIOD_MONTH)
                    snprintf(want, sizeof(want), "m%04lld-%02d", (long long)c.year, c.month);
                else
                    snprintf(want, sizeof(want), "%c%04lld-%02d-%02d",
                             ps[pi] == TG_PERIOD_WEEK ? 'w' : 'd', (long long)c.year, c.month,
                             c.day);
                if (strcmp(want, n.key) != 0 && c.hour == 0)
                    fail_msg("%s: start of %s is local %s", zs[zi], n.key, want);
                if (ps[pi] == TG_PERIOD_WEEK && c.weekday != 1 && c.hour == 0)
                    fail_msg("%s: week %s starts on day %d", zs[zi], n.key, c.weekday);
                b = n;
            }
            /* and every 47 minutes in between */
            for (t = utc("2018-01-01T00:00:00Z"); t < utc("2020-12-31T00:00:00Z"); t += 47 * 60) {
                assert_int_equal(tg_quota_period_bounds(t, ps[pi], z, &b), 0);
                if (t < b.start_s || t >= b.reset_s)
                    fail_msg("%s %s at %lld", zs[zi], b.key, (long long)t);
            }
        }
        tg_tz_destroy(z);
    }
}

/* A zone whose DST ends at 00:30, so the clock goes back to 23:30 of the day before: the
 * repeated half hour already belongs to the new day (it started at the first midnight). */
static void test_period_backward_midnight(void **state)
{
    (void)state;
    char err[128];
    struct tg_tz *z = tg_tz_from_posix("<-03>3<-02>,M10.1.0/0,M2.3.0/0:30", err, sizeof(err));
    assert_non_null(z);
    struct tg_period_bounds b;
    assert_int_equal(tg_quota_period_bounds(utc("2027-02-21T02:45:00Z"), TG_PERIOD_DAY, z, &b), 0);
    assert_string_equal(b.key, "d2027-02-21");
    assert_int_equal(b.start_s, utc("2027-02-21T02:00:00Z"));
    assert_int_equal(b.reset_s, utc("2027-02-22T03:00:00Z"));
    assert_int_equal(b.reset_day, 22);
    assert_int_equal(tg_quota_period_bounds(utc("2027-02-21T01:59:59Z"), TG_PERIOD_DAY, z, &b), 0);
    assert_string_equal(b.key, "d2027-02-20");
    assert_int_equal(b.reset_s, utc("2027-02-21T02:00:00Z"));
    for (int64_t t = utc("2027-01-01T00:00:00Z"); t < utc("2028-01-01T00:00:00Z"); t += 600) {
        assert_int_equal(tg_quota_period_bounds(t, TG_PERIOD_DAY, z, &b), 0);
        if (t < b.start_s || t >= b.reset_s)
            fail_msg("%s at %lld", b.key, (long long)t);
    }
    tg_tz_destroy(z);
}

static void test_period_none_and_errors(void **state)
{
    (void)state;
    struct tg_tz *z = load("UTC");
    struct tg_period_bounds b;
    assert_int_equal(tg_quota_period_bounds(utc("2026-11-22T10:00:00Z"), TG_PERIOD_NONE, z, &b), 0);
    assert_string_equal(b.key, "all");
    assert_int_equal(b.start_s, 0);
    assert_true(b.reset_s == INT64_MAX);
    assert_int_equal(b.reset_year, 0);
    assert_int_equal(tg_quota_key_expire_ms(&b), 0);
    assert_int_equal(tg_quota_period_bounds(0, (enum tg_period)7, z, &b), -1);
    assert_int_equal(tg_quota_period_bounds(INT64_MAX / 2, TG_PERIOD_MONTH, z, &b), -1);
    assert_int_equal(tg_quota_period_bounds(-70000000000LL, TG_PERIOD_DAY, z, &b), -1);
    assert_int_equal(tg_quota_period_bounds(utc("9999-12-31T00:00:00Z"), TG_PERIOD_DAY, z, &b),
                     -1); /* its reset would be year 10000 */
    assert_int_equal(tg_quota_period_bounds(utc("2026-11-22T10:00:00Z"), TG_PERIOD_MONTH, z, &b),
                     0);
    assert_int_equal(b.start_year, 2026);
    assert_int_equal(b.start_month, 11);
    assert_int_equal(b.start_day, 1);
    assert_int_equal(tg_quota_key_expire_ms(&b),
                     (utc("2026-12-01T00:00:00Z") + 7 * 86400) * (int64_t)1000);
    tg_tz_destroy(z);
}

static void test_reservation(void **state)
{
    (void)state;
    static const struct {
        int line;
        int64_t prompt, max_tokens, def, cap, want;
    } rows[] = {
        {__LINE__, 100, 500, 1000, 0, 600},
        {__LINE__, 100, -1, 1000, 0, 1100},
        {__LINE__, 100, 0, 1000, 0, 100},
        {__LINE__, 100, 500, 1000, 300, 300},
        {__LINE__, 100, 500, 1000, 600, 600},
        {__LINE__, 100, -1, 1000, 32000, 1100},
        {__LINE__, -5, 10, 1000, 0, 10},
        {__LINE__, 0, -1, -7, 0, 0},
        {__LINE__, INT64_MAX, INT64_MAX, 0, 0, INT64_MAX},
        {__LINE__, INT64_MAX, INT64_MAX, 0, 128000, 128000},
        {__LINE__, 5, INT64_MAX - 2, 0, -1, INT64_MAX},
    };
    for (size_t i = 0; i < TG_ARRAY_LEN(rows); i++) {
        int64_t got =
            tg_quota_reservation(rows[i].prompt, rows[i].max_tokens, rows[i].def, rows[i].cap);
        if (got != rows[i].want)
            fail_msg("line %d: %lld", rows[i].line, (long long)got);
    }
}

static void test_states_and_percent(void **state)
{
    (void)state;
    static const struct {
        int line;
        int64_t used, limit;
        int warn;
        enum tg_quota_state st;
        int pct;
        int64_t warn_at;
    } rows[] = {
        {__LINE__, 0, 1000, 80, TG_QUOTA_OK, 0, 800},
        {__LINE__, 799, 1000, 80, TG_QUOTA_OK, 79, 800},
        {__LINE__, 800, 1000, 80, TG_QUOTA_WARNING, 80, 800},
        {__LINE__, 999, 1000, 80, TG_QUOTA_WARNING, 99, 800},
        {__LINE__, 1000, 1000, 80, TG_QUOTA_EXHAUSTED, 100, 800},
        {__LINE__, 1050, 1000, 80, TG_QUOTA_EXHAUSTED, 105, 800},
        {__LINE__, 0, 0, 80, TG_QUOTA_EXHAUSTED, 100, 0},
        {__LINE__, 5, 0, 80, TG_QUOTA_EXHAUSTED, 100, 0},
        {__LINE__, 123456789, -1, 80, TG_QUOTA_OK, 0, -1},
        {__LINE__, 7, 10, 75, TG_QUOTA_OK, 70, 8}, /* ceil(7.5) */
        {__LINE__, 8, 10, 75, TG_QUOTA_WARNING, 80, 8},
        {__LINE__, 1, 3, 34, TG_QUOTA_OK, 33, 2},
        {__LINE__, 0, 1000, 0, TG_QUOTA_WARNING, 0, 0},
        {__LINE__, 999, 1000, 100, TG_QUOTA_OK, 99, 1000},
        {__LINE__, 999, 1000, 250, TG_QUOTA_OK, 99, 1000},
        {__LINE__, INT64_MAX - 1, INT64_MAX, 80, TG_QUOTA_WARNING, 99, 7378697629483820646LL},
        {__LINE__, INT64_MAX, INT64_MAX, 80, TG_QUOTA_EXHAUSTED, 100, 7378697629483820646LL},
        {__LINE__, INT64_MAX, 1, 80, TG_QUOTA_EXHAUSTED, INT_MAX, 1},
        {__LINE__, -10, 1000, 80, TG_QUOTA_OK, 0, 800},
    };
    for (size_t i = 0; i < TG_ARRAY_LEN(rows); i++) {
        if (tg_quota_state_of(rows[i].used, rows[i].limit, rows[i].warn) != rows[i].st)
            fail_msg("line %d: state", rows[i].line);
        if (tg_quota_percent(rows[i].used, rows[i].limit) != rows[i].pct)
            fail_msg("line %d: percent %d", rows[i].line,
                     tg_quota_percent(rows[i].used, rows[i].limit));
        if (tg_quota_warn_tokens(rows[i].limit, rows[i].warn) != rows[i].warn_at)
            fail_msg("line %d: warn_at %lld", rows[i].line,
                     (long long)tg_quota_warn_tokens(rows[i].limit, rows[i].warn));
    }
    assert_string_equal(tg_quota_state_name(TG_QUOTA_OK), "ok");
    assert_string_equal(tg_quota_state_name(TG_QUOTA_WARNING), "warning");
    assert_string_equal(tg_quota_state_name(TG_QUOTA_EXHAUSTED), "exhausted");
}

static void test_rfc3339(void **state)
{
    (void)state;
    static const struct {
        int line;
        const char *zone, *at, *want;
    } rows[] = {
        {__LINE__, "UTC", "2026-12-01T00:00:00Z", "2026-12-01T00:00:00Z"},
        {__LINE__, "Europe/Berlin", "2026-11-30T23:00:00Z", "2026-12-01T00:00:00+01:00"},
        {__LINE__, "Europe/Berlin", "2026-07-01T12:34:56Z", "2026-07-01T14:34:56+02:00"},
        {__LINE__, "Europe/Lisbon", "2026-12-01T00:00:00Z", "2026-12-01T00:00:00Z"},
        {__LINE__, "America/New_York", "2026-12-01T05:00:00Z", "2026-12-01T00:00:00-05:00"},
        {__LINE__, "Asia/Kolkata", "2025-12-31T18:30:00Z", "2026-01-01T00:00:00+05:30"},
        {__LINE__, "Australia/Lord_Howe", "2026-04-30T13:30:00Z", "2026-05-01T00:00:00+10:30"},
        {__LINE__, "America/St_Johns", "2026-12-01T03:30:00Z", "2026-12-01T00:00:00-03:30"},
        /* LMT -0:36:45: whole minutes toward zero, wall time shifted to name the same instant */
        {__LINE__, "Europe/Lisbon", "1900-01-01T00:00:00Z", "1899-12-31T23:24:00-00:36"},
        {__LINE__, "UTC", "1969-12-31T23:59:59Z", "1969-12-31T23:59:59Z"},
    };
    for (size_t i = 0; i < TG_ARRAY_LEN(rows); i++) {
        struct tg_tz *z = load(rows[i].zone);
        char buf[40];
        int n = tg_quota_format_rfc3339(utc(rows[i].at), z, buf, sizeof(buf));
        if (n != (int)strlen(rows[i].want) || strcmp(buf, rows[i].want) != 0)
            fail_msg("line %d: %s", rows[i].line, buf);
        /* too small a buffer: -1 */
        if (tg_quota_format_rfc3339(utc(rows[i].at), z, buf, (size_t)n) != -1)
            fail_msg("line %d: short buffer accepted", rows[i].line);
        tg_tz_destroy(z);
    }
    struct tg_tz *z = load("UTC");
    char buf[40];
    assert_int_equal(tg_quota_format_rfc3339(INT64_MAX / 4, z, buf, sizeof(buf)), -1);
    assert_int_equal(tg_quota_format_rfc3339(-70000000000LL, z, buf, sizeof(buf)), -1);
    tg_tz_destroy(z);
}

static void test_format_tokens(void **state)
{
    (void)state;
    static const struct {
        int line;
        int64_t n;
        const char *want;
    } rows[] = {
        {__LINE__, 0, "0"},
        {__LINE__, 999, "999"},
        {__LINE__, 1000, "1,000"},
        {__LINE__, 1000000, "1,000,000"},
        {__LINE__, 1234567, "1,234,567"},
        {__LINE__, 12345, "12,345"},
        {__LINE__, -1234, "-1,234"},
        {__LINE__, INT64_MAX, "9,223,372,036,854,775,807"},
        {__LINE__, INT64_MIN, "-9,223,372,036,854,775,808"},
    };
    for (size_t i = 0; i < TG_ARRAY_LEN(rows); i++) {
        char buf[40];
        int n = tg_quota_format_tokens(buf, sizeof(buf), rows[i].n);
        if (n != (int)strlen(rows[i].want) || strcmp(buf, rows[i].want) != 0)
            fail_msg("line %d: %s", rows[i].line, buf);
        if (tg_quota_format_tokens(buf, (size_t)n, rows[i].n) != -1)
            fail_msg("line %d: short buffer accepted", rows[i].line);
        if (tg_quota_format_tokens(buf, (size_t)n + 1, rows[i].n) != n)
            fail_msg("line %d: exact buffer refused", rows[i].line);
    }
}

/* Phrases LibreChat's agents library takes for a context overflow (PROTOCOL.md §2.2). */
static const char *const overflow_words[] = {"prompt is too long",
                                             "maximum context length",
                                             "context_length_exceeded",
                                             "too large",
                                             "input tokens exceeded",
                                             "requested",
                                             "exceeded",
                                             "context"};

static void test_block_message(void **state)
{
    (void)state;
    static const struct {
        int line;
        const char *zone, *now;
        enum tg_period p;
        int64_t used, limit;
        const char *want;
    } rows[] = {
        {__LINE__, "Europe/Berlin", "2026-11-22T10:00:00Z", TG_PERIOD_MONTH, 1000000, 1000000,
         "You have used 100 % of your monthly AI quota (1,000,000 tokens). It resets on 1 "
         "December."},
        {__LINE__, "Europe/Berlin", "2026-12-22T10:00:00Z", TG_PERIOD_MONTH, 2100000, 2000000,
         "You have used 105 % of your monthly AI quota (2,000,000 tokens). It resets on 1 "
         "January 2027."},
        {__LINE__, "UTC", "2026-11-22T10:00:00Z", TG_PERIOD_WEEK, 5000, 5000,
         "You have used 100 % of your weekly AI quota (5,000 tokens). It resets on 23 "
         "November."},
        {__LINE__, "UTC", "2026-12-31T10:00:00Z", TG_PERIOD_DAY, 999, 999,
         "You have used 100 % of your daily AI quota (999 tokens). It resets on 1 January "
         "2027."},
        {__LINE__, "UTC", "2026-11-22T10:00:00Z", TG_PERIOD_NONE, 250000, 250000,
         "You have used 100 % of your AI quota (250,000 tokens). It does not reset; ask your "
         "administrator for more."},
        {__LINE__, "UTC", "2026-11-22T10:00:00Z", TG_PERIOD_MONTH, 0, 0,
         "Your AI quota is 0 tokens, so AI requests are blocked. Ask your administrator for a "
         "quota."},
        {__LINE__, "UTC", "2026-11-22T10:00:00Z", TG_PERIOD_MONTH, 10, -1,
         "Your AI quota is unlimited."},
        /* local date decides: 1 Dec 00:30 in Kolkata is still 30 Nov in UTC */
        {__LINE__, "Asia/Kolkata", "2026-11-30T19:00:00Z", TG_PERIOD_MONTH, 1000, 1000,
         "You have used 100 % of your monthly AI quota (1,000 tokens). It resets on 1 January "
         "2027."},
    };
    for (size_t i = 0; i < TG_ARRAY_LEN(rows); i++) {
        struct tg_tz *z = load(rows[i].zone);
        struct tg_period_bounds b;
        int64_t now = utc(rows[i].now);
        assert_int_equal(tg_quota_period_bounds(now, rows[i].p, z, &b), 0);
        char buf[300];
        int n = tg_quota_block_message(buf, sizeof(buf), rows[i].used, rows[i].limit, rows[i].p, &b,
                                       now);
        if (n != (int)strlen(rows[i].want) || strcmp(buf, rows[i].want) != 0)
            fail_msg("line %d: %s", rows[i].line, buf);
        if (tg_quota_block_message(buf, (size_t)n, rows[i].used, rows[i].limit, rows[i].p, &b,
                                   now) != -1)
            fail_msg("line %d: short buffer accepted", rows[i].line);
        assert_int_equal(tg_quota_block_message(buf, sizeof(buf), rows[i].used, rows[i].limit,
                                                rows[i].p, &b, now),
                         n);
        for (size_t w = 0; w < TG_ARRAY_LEN(overflow_words); w++)
            if (strcasestr(buf, overflow_words[w]))
                fail_msg("line %d: contains \"%s\"", rows[i].line, overflow_words[w]);
        if (strpbrk(buf, "{}[]\"\n"))
            fail_msg("line %d: not plain text", rows[i].line);
        tg_tz_destroy(z);
    }
}

static void test_reset_date(void **state)
{
    (void)state;
    struct tg_tz *z = load("UTC");
    struct tg_period_bounds b;
    char buf[40];
    assert_int_equal(tg_quota_period_bounds(utc("2026-02-10T00:00:00Z"), TG_PERIOD_MONTH, z, &b),
                     0);
    assert_int_equal(tg_quota_format_reset_date(buf, sizeof(buf), &b, utc("2026-02-10T00:00:00Z")),
                     7);
    assert_string_equal(buf, "1 March");
    assert_int_equal(tg_quota_format_reset_date(buf, 7, &b, utc("2026-02-10T00:00:00Z")), -1);
    assert_int_equal(tg_quota_period_bounds(0, TG_PERIOD_NONE, z, &b), 0);
    assert_int_equal(tg_quota_format_reset_date(buf, sizeof(buf), &b, 0), -1);
    tg_tz_destroy(z);
}

static void test_headers(void **state)
{
    (void)state;
    static const struct {
        int line;
        const char *zone;
        enum tg_period p;
        int64_t used, limit;
        const char *l, *u, *rem, *reset, *st;
    } rows[] = {
        {__LINE__, "Europe/Berlin", TG_PERIOD_MONTH, 100, 1000, "1000", "100", "900",
         "2026-12-01T00:00:00+01:00", "ok"},
        {__LINE__, "Europe/Berlin", TG_PERIOD_MONTH, 820, 1000, "1000", "820", "180",
         "2026-12-01T00:00:00+01:00", "warning"},
        {__LINE__, "Europe/Berlin", TG_PERIOD_MONTH, 1200, 1000, "1000", "1200", "0",
         "2026-12-01T00:00:00+01:00", "exhausted"},
        {__LINE__, "UTC", TG_PERIOD_DAY, 5, -1, "-1", "5", "-1", "2026-11-23T00:00:00Z", "ok"},
        {__LINE__, "UTC", TG_PERIOD_NONE, 5, 10, "10", "5", "5", "", "ok"},
        {__LINE__, "UTC", TG_PERIOD_DAY, 0, 0, "0", "0", "0", "2026-11-23T00:00:00Z", "exhausted"},
        {__LINE__, "UTC", TG_PERIOD_DAY, -5, INT64_MAX, "9223372036854775807", "-5",
         "9223372036854775807", "2026-11-23T00:00:00Z", "ok"},
        {__LINE__, "UTC", TG_PERIOD_DAY, INT64_MIN, 10, "10", "-9223372036854775808",
         "9223372036854775807", "2026-11-23T00:00:00Z", "ok"},
    };
    for (size_t i = 0; i < TG_ARRAY_LEN(rows); i++) {
        struct tg_tz *z = load(rows[i].zone);
        struct tg_period_bounds b;
        assert_int_equal(tg_quota_period_bounds(utc("2026-11-22T10:00:00Z"), rows[i].p, z, &b), 0);
        struct tg_quota_headers h;
        tg_quota_headers_fill(&h, rows[i].used, rows[i].limit, &b, z, 80);
        if (strcmp(h.limit, rows[i].l) || strcmp(h.used, rows[i].u) ||
            strcmp(h.remaining, rows[i].rem) || strcmp(h.reset, rows[i].reset) ||
            strcmp(h.state, rows[i].st))
            fail_msg("line %d: %s %s %s %s %s", rows[i].line, h.limit, h.used, h.remaining, h.reset,
                     h.state);
        tg_tz_destroy(z);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_period_names),
        cmocka_unit_test(test_period_bounds),
        cmocka_unit_test(test_period_tiling),
        cmocka_unit_test(test_period_backward_midnight),
        cmocka_unit_test(test_period_none_and_errors),
        cmocka_unit_test(test_reservation),
        cmocka_unit_test(test_states_and_percent),
        cmocka_unit_test(test_rfc3339),
        cmocka_unit_test(test_format_tokens),
        cmocka_unit_test(test_block_message),
        cmocka_unit_test(test_reset_date),
        cmocka_unit_test(test_headers),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
