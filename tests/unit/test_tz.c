/* Unit tests for quota/tz.c: civil dates, TZif + POSIX rules, checked against tzdata via glibc. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "quota/tz.h"

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

/* glibc's offset for the same zone (it reads the same tzdata). Tests are single-threaded. */
static long glibc_offset(const char *zone, int64_t t)
{
    static char current[128];
    if (strcmp(current, zone) != 0) {
        setenv("TZ", zone, 1);
        tzset();
        snprintf(current, sizeof(current), "%s", zone);
    }
    time_t tt = (time_t)t;
    struct tm tm;
    if (localtime_r(&tt, &tm) == NULL)
        fail_msg("localtime_r failed");
    return tm.tm_gmtoff;
}

static void test_civil_roundtrip(void **state)
{
    (void)state;
    for (int64_t days = -1000000; days <= 1000000; days++) {
        int64_t y;
        int m, d;
        tg_tz_civil_from_days(days, &y, &m, &d);
        if (tg_tz_days_from_civil(y, m, d) != days || m < 1 || m > 12 || d < 1 ||
            d > tg_tz_days_in_month(y, m))
            fail_msg("day %lld -> %lld-%d-%d", (long long)days, (long long)y, m, d);
    }
    /* against timegm for every day of 1900..2200 */
    for (int64_t t = utc("1900-01-01T00:00:00Z"); t < utc("2200-01-01T00:00:00Z"); t += 86400) {
        time_t tt = (time_t)t;
        struct tm tm;
        gmtime_r(&tt, &tm);
        int64_t days = tg_tz_days_from_civil(tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday);
        assert_int_equal(days * 86400, t);
        assert_int_equal(tg_tz_weekday(days), tm.tm_wday);
    }
}

static void test_civil_normalises(void **state)
{
    (void)state;
    static const struct {
        int line;
        int y, m, d;
        const char *want; /* 00:00 UTC of the normalised date */
    } rows[] = {
        {__LINE__, 2026, 13, 1, "2027-01-01T00:00:00Z"},
        {__LINE__, 2026, 0, 1, "2025-12-01T00:00:00Z"},
        {__LINE__, 2026, -11, 1, "2025-01-01T00:00:00Z"},
        {__LINE__, 2026, 25, 1, "2028-01-01T00:00:00Z"},
        {__LINE__, 2026, 1, 32, "2026-02-01T00:00:00Z"},
        {__LINE__, 2028, 2, 30, "2028-03-01T00:00:00Z"},
        {__LINE__, 2026, 3, 0, "2026-02-28T00:00:00Z"},
        {__LINE__, 2026, 12, 32, "2027-01-01T00:00:00Z"},
    };
    for (size_t i = 0; i < TG_ARRAY_LEN(rows); i++) {
        int64_t got = tg_tz_days_from_civil(rows[i].y, rows[i].m, rows[i].d) * 86400;
        if (got != utc(rows[i].want))
            fail_msg("line %d", rows[i].line);
    }
    static const struct {
        int line;
        int64_t y;
        int m, dim;
        bool leap;
    } months[] = {
        {__LINE__, 2026, 2, 28, false}, {__LINE__, 2028, 2, 29, true},
        {__LINE__, 1900, 2, 28, false}, {__LINE__, 2000, 2, 29, true},
        {__LINE__, 2026, 4, 30, false}, {__LINE__, 2026, 12, 31, false},
        {__LINE__, 2026, 13, 0, false},
    };
    for (size_t i = 0; i < TG_ARRAY_LEN(months); i++) {
        if (tg_tz_days_in_month(months[i].y, months[i].m) != months[i].dim ||
            tg_tz_is_leap_year(months[i].y) != months[i].leap)
            fail_msg("line %d", months[i].line);
    }
    assert_int_equal(tg_tz_floor_div(-1, 86400), -1);
    assert_int_equal(tg_tz_floor_div(-86400, 86400), -1);
    assert_int_equal(tg_tz_floor_div(-86401, 86400), -2);
    assert_int_equal(tg_tz_floor_div(86399, 86400), 0);
}

static const char *const zones[] = {
    "Europe/Lisbon",       "America/New_York",   "America/Sao_Paulo",
    "Australia/Lord_Howe", "Asia/Kolkata",       "UTC",
    "Europe/Berlin",       "America/Santiago",   "Pacific/Auckland",
    "Europe/Dublin",       "America/Nuuk",       "Pacific/Chatham",
    "Asia/Kathmandu",      "Africa/Casablanca",  "Pacific/Kiritimati",
    "America/St_Johns",    "Australia/Adelaide", "Antarctica/Troll",
};

/* Offsets agree with glibc over 1880..2100 (every 5h 7m, every transition +-1 s). */
static void test_offsets_match_tzdata(void **state)
{
    (void)state;
    for (size_t zi = 0; zi < TG_ARRAY_LEN(zones); zi++) {
        struct tg_tz *z = load(zones[zi]);
        assert_string_equal(tg_tz_name(z), zones[zi]);
        int64_t prev_off = tg_tz_offset(z, utc("1880-01-01T00:00:00Z"));
        for (int64_t t = utc("1880-01-01T00:00:00Z"); t < utc("2100-01-01T00:00:00Z");
             t += 5 * 3600 + 7 * 60) {
            int64_t off = tg_tz_offset(z, t);
            long want = glibc_offset(zones[zi], t);
            if (off != want)
                fail_msg("%s at %lld: %lld, glibc %ld", zones[zi], (long long)t, (long long)off,
                         want);
            if (off != prev_off) {
                /* find the transition by bisection and check both sides against glibc */
                int64_t lo = t - 5 * 3600 - 7 * 60, hi = t;
                while (hi - lo > 1) {
                    int64_t mid = lo + (hi - lo) / 2;
                    if (tg_tz_offset(z, mid) == off)
                        hi = mid;
                    else
                        lo = mid;
                }
                if (tg_tz_offset(z, hi) != glibc_offset(zones[zi], hi) ||
                    tg_tz_offset(z, hi - 1) != glibc_offset(zones[zi], hi - 1))
                    fail_msg("%s: transition at %lld differs from glibc", zones[zi], (long long)hi);
            }
            prev_off = off;
        }
        tg_tz_destroy(z);
    }
}

/* The footer rule alone reproduces the table wherever the rule held (rule-only zones). */
static void test_posix_rule_matches_table(void **state)
{
    (void)state;
    static const struct {
        int line;
        const char *zone, *posix, *from, *to;
    } rows[] = {
        {__LINE__, "America/New_York", "EST5EDT,M3.2.0,M11.1.0", "2007-06-01T00:00:00Z",
         "2037-12-31T00:00:00Z"},
        {__LINE__, "Europe/Lisbon", "WET0WEST,M3.5.0/1,M10.5.0", "1996-06-01T00:00:00Z",
         "2037-12-31T00:00:00Z"},
        {__LINE__, "Australia/Lord_Howe", "<+1030>-10:30<+11>-11,M10.1.0,M4.1.0",
         "2008-06-01T00:00:00Z", "2037-12-31T00:00:00Z"},
        {__LINE__, "Pacific/Auckland", "NZST-12NZDT,M9.5.0,M4.1.0/3", "2008-06-01T00:00:00Z",
         "2037-12-31T00:00:00Z"},
        {__LINE__, "Europe/Dublin", "IST-1GMT0,M10.5.0,M3.5.0/1", "1997-01-01T00:00:00Z",
         "2037-12-31T00:00:00Z"},
        {__LINE__, "America/Santiago", "<-04>4<-03>,M9.1.6/24,M4.1.6/24", "2023-01-01T00:00:00Z",
         "2037-12-31T00:00:00Z"},
        {__LINE__, "Asia/Kolkata", "IST-5:30", "1946-01-01T00:00:00Z", "2037-12-31T00:00:00Z"},
        {__LINE__, "America/Sao_Paulo", "<-03>3", "2019-03-01T00:00:00Z", "2037-12-31T00:00:00Z"},
    };
    for (size_t i = 0; i < TG_ARRAY_LEN(rows); i++) {
        char err[128];
        struct tg_tz *table = load(rows[i].zone);
        struct tg_tz *rule = tg_tz_from_posix(rows[i].posix, err, sizeof(err));
        if (rule == NULL)
            fail_msg("line %d: %s", rows[i].line, err);
        for (int64_t t = utc(rows[i].from); t < utc(rows[i].to); t += 1800) {
            if (tg_tz_offset(table, t) != tg_tz_offset(rule, t))
                fail_msg("line %d: %s at %lld: table %lld, rule %lld", rows[i].line, rows[i].zone,
                         (long long)t, (long long)tg_tz_offset(table, t),
                         (long long)tg_tz_offset(rule, t));
        }
        tg_tz_destroy(table);
        tg_tz_destroy(rule);
    }
}

static void test_posix_strings(void **state)
{
    (void)state;
    static const struct {
        int line;
        const char *s;
        bool ok;
        const char *at; /* an instant (may be NULL) */
        int64_t off;    /* expected offset there */
    } rows[] = {
        {__LINE__, "UTC0", true, "2026-07-01T00:00:00Z", 0},
        {__LINE__, "EST5EDT", true, "2026-07-01T00:00:00Z", -4 * 3600},
        {__LINE__, "EST5EDT", true, "2026-01-01T00:00:00Z", -5 * 3600},
        {__LINE__, "<+0330>-3:30", true, "2026-07-01T00:00:00Z", 3 * 3600 + 1800},
        {__LINE__, "<-0130>+1:30", true, "2026-07-01T00:00:00Z", -(3600 + 1800)},
        {__LINE__, "IST-1GMT0,M10.5.0,M3.5.0/1", true, "2026-07-01T00:00:00Z", 3600},
        {__LINE__, "IST-1GMT0,M10.5.0,M3.5.0/1", true, "2026-12-01T00:00:00Z", 0},
        {__LINE__, "<-02>2<-01>,M3.5.0/-1,M10.5.0/0", true, "2026-07-01T00:00:00Z", -3600},
        {__LINE__, "EST5EDT,0/0,J365/25", true, "2026-07-01T00:00:00Z", -4 * 3600},
        {__LINE__, "EST5EDT,0/0,J365/25", true, "2026-01-01T12:00:00Z", -4 * 3600},
        {__LINE__, "XXX3YYY,J60,J300", true, "2028-03-01T12:00:00Z", -2 * 3600},
        {__LINE__, "XXX3YYY,J60,J300", true, "2028-02-29T12:00:00Z", -3 * 3600},
        {__LINE__, "XXX3YYY,59,300", true, "2028-02-28T12:00:00Z", -3 * 3600},
        {__LINE__, "XXX3YYY,59,300", true, "2028-02-29T12:00:00Z", -2 * 3600},
        {__LINE__, "XXX3YYY,59,300", true, "2028-03-01T12:00:00Z", -2 * 3600},
        {__LINE__, "CET-1CEST-2:00:00,M3.5.0,M10.5.0/3", true, "2026-07-01T00:00:00Z", 7200},
        {__LINE__, "", false, NULL, 0},
        {__LINE__, "E5", false, NULL, 0},
        {__LINE__, "EST", false, NULL, 0},
        {__LINE__, "EST25", false, NULL, 0},
        {__LINE__, "EST5EDT,M13.1.0,M11.1.0", false, NULL, 0},
        {__LINE__, "EST5EDT,M3.6.0,M11.1.0", false, NULL, 0},
        {__LINE__, "EST5EDT,M3.2.7,M11.1.0", false, NULL, 0},
        {__LINE__, "EST5EDT,M3.2.0", false, NULL, 0},
        {__LINE__, "EST5EDT,M3.2.0/168,M11.1.0", false, NULL, 0},
        {__LINE__, "EST5EDT,J0,J100", false, NULL, 0},
        {__LINE__, "EST5EDT,366,100", false, NULL, 0},
        {__LINE__, "EST5:60", false, NULL, 0},
        {__LINE__, "<>5", false, NULL, 0},
        {__LINE__, "<EST5", false, NULL, 0},
        {__LINE__, "EST5EDT,M3.2.0,M11.1.0x", false, NULL, 0},
    };
    for (size_t i = 0; i < TG_ARRAY_LEN(rows); i++) {
        char err[128] = "";
        struct tg_tz *z = tg_tz_from_posix(rows[i].s, err, sizeof(err));
        if ((z != NULL) != rows[i].ok)
            fail_msg("line %d: \"%s\" %s", rows[i].line, rows[i].s, z ? "accepted" : err);
        if (z && rows[i].at && tg_tz_offset(z, utc(rows[i].at)) != rows[i].off)
            fail_msg("line %d: offset %lld", rows[i].line,
                     (long long)tg_tz_offset(z, utc(rows[i].at)));
        if (!z && err[0] == '\0')
            fail_msg("line %d: no error text", rows[i].line);
        tg_tz_destroy(z);
    }
}

static void test_local_to_utc(void **state)
{
    (void)state;
    static const struct {
        int line;
        const char *zone;
        int y, m, d, h, mi;
        const char *want;
    } rows[] = {
        /* a midnight skipped by DST starts at the jump (01:00 local) */
        {__LINE__, "America/Sao_Paulo", 2018, 11, 4, 0, 0, "2018-11-04T03:00:00Z"},
        {__LINE__, "America/Sao_Paulo", 2018, 11, 4, 0, 30, "2018-11-04T03:00:00Z"},
        {__LINE__, "America/Sao_Paulo", 2018, 11, 4, 1, 0, "2018-11-04T03:00:00Z"},
        {__LINE__, "America/Sao_Paulo", 2018, 11, 3, 23, 59, "2018-11-04T02:59:00Z"},
        /* a repeated midnight: first occurrence (DST end 2019-02-17 00:00 -02 -> 23:00 -03) */
        {__LINE__, "America/Sao_Paulo", 2019, 2, 16, 23, 30, "2019-02-17T01:30:00Z"},
        {__LINE__, "America/Sao_Paulo", 2019, 2, 17, 0, 0, "2019-02-17T03:00:00Z"},
        {__LINE__, "America/New_York", 2026, 3, 8, 2, 30, "2026-03-08T07:00:00Z"},
        {__LINE__, "America/New_York", 2026, 3, 8, 0, 0, "2026-03-08T05:00:00Z"},
        {__LINE__, "America/New_York", 2026, 11, 1, 1, 30, "2026-11-01T05:30:00Z"},
        {__LINE__, "America/New_York", 2026, 11, 1, 0, 0, "2026-11-01T04:00:00Z"},
        {__LINE__, "America/New_York", 2026, 12, 1, 0, 0, "2026-12-01T05:00:00Z"},
        {__LINE__, "Europe/Lisbon", 2026, 3, 29, 1, 30, "2026-03-29T01:00:00Z"},
        {__LINE__, "Europe/Lisbon", 2026, 10, 25, 1, 30, "2026-10-25T00:30:00Z"},
        {__LINE__, "Europe/Lisbon", 2026, 10, 1, 0, 0, "2026-09-30T23:00:00Z"},
        {__LINE__, "Europe/Lisbon", 2026, 11, 1, 0, 0, "2026-11-01T00:00:00Z"},
        /* 30-minute DST */
        {__LINE__, "Australia/Lord_Howe", 2026, 10, 4, 2, 15, "2026-10-03T15:30:00Z"},
        {__LINE__, "Australia/Lord_Howe", 2026, 10, 4, 0, 0, "2026-10-03T13:30:00Z"},
        {__LINE__, "Australia/Lord_Howe", 2026, 4, 5, 1, 45, "2026-04-04T14:45:00Z"},
        {__LINE__, "Australia/Lord_Howe", 2026, 4, 6, 0, 0, "2026-04-05T13:30:00Z"},
        {__LINE__, "Asia/Kolkata", 2026, 1, 1, 0, 0, "2025-12-31T18:30:00Z"},
        {__LINE__, "UTC", 2026, 1, 1, 0, 0, "2026-01-01T00:00:00Z"},
        /* DST ends at 24:00 (Saturday 24:00 -03 -> Saturday 23:00 -04): Sunday starts at
         * 00:00 -04, Saturday's last hour is repeated */
        {__LINE__, "America/Santiago", 2026, 4, 5, 0, 0, "2026-04-05T04:00:00Z"},
        {__LINE__, "America/Santiago", 2026, 4, 4, 23, 30, "2026-04-05T02:30:00Z"},
        /* rule part (after the table's last transition, 2037) */
        {__LINE__, "America/New_York", 2040, 3, 11, 2, 30, "2040-03-11T07:00:00Z"},
        {__LINE__, "America/New_York", 2040, 11, 4, 1, 30, "2040-11-04T05:30:00Z"},
        {__LINE__, "Australia/Lord_Howe", 2045, 10, 1, 2, 10, "2045-09-30T15:30:00Z"},
    };
    for (size_t i = 0; i < TG_ARRAY_LEN(rows); i++) {
        struct tg_tz *z = load(rows[i].zone);
        int64_t got = tg_tz_local_to_utc(z, rows[i].y, rows[i].m, rows[i].d, rows[i].h, rows[i].mi);
        if (got != utc(rows[i].want))
            fail_msg("line %d: %s got %lld want %lld", rows[i].line, rows[i].zone, (long long)got,
                     (long long)utc(rows[i].want));
        tg_tz_destroy(z);
    }
}

/* For every local midnight of 1990..2060: the answer u is the least instant whose local time
 * reaches the wall time (checked at u - 1 and hourly over the day before). */
static void test_local_to_utc_is_first_instant(void **state)
{
    (void)state;
    for (size_t zi = 0; zi < TG_ARRAY_LEN(zones); zi++) {
        struct tg_tz *z = load(zones[zi]);
        for (int64_t days = tg_tz_days_from_civil(1990, 1, 1);
             days < tg_tz_days_from_civil(2060, 1, 1); days++) {
            int64_t y;
            int m, d;
            tg_tz_civil_from_days(days, &y, &m, &d);
            int64_t local = days * 86400;
            int64_t u = tg_tz_local_to_utc(z, (int)y, m, d, 0, 0);
            if (u + tg_tz_offset(z, u) < local || (u - 1) + tg_tz_offset(z, u - 1) >= local)
                fail_msg("%s %lld-%d-%d: %lld", zones[zi], (long long)y, m, d, (long long)u);
            for (int64_t v = u - 27 * 3600; v < u; v += 3600)
                if (v + tg_tz_offset(z, v) >= local)
                    fail_msg("%s %lld-%d-%d: earlier %lld", zones[zi], (long long)y, m, d,
                             (long long)v);
        }
        tg_tz_destroy(z);
    }
}

static void test_to_civil(void **state)
{
    (void)state;
    struct tg_tz *z = load("Australia/Lord_Howe");
    struct tg_tz_civil c;
    tg_tz_to_civil(z, utc("2026-10-03T15:30:00Z"), &c);
    assert_int_equal(c.year, 2026);
    assert_int_equal(c.month, 10);
    assert_int_equal(c.day, 4);
    assert_int_equal(c.hour, 2);
    assert_int_equal(c.minute, 30);
    assert_int_equal(c.second, 0);
    assert_int_equal(c.weekday, 0);
    assert_int_equal(c.offset_s, 11 * 3600);
    tg_tz_to_civil(z, utc("2026-10-03T15:29:59Z"), &c);
    assert_int_equal(c.hour, 1);
    assert_int_equal(c.minute, 59);
    assert_int_equal(c.second, 59);
    assert_int_equal(c.offset_s, 10 * 3600 + 1800);
    tg_tz_destroy(z);
    z = load("UTC");
    tg_tz_to_civil(z, -1, &c);
    assert_int_equal(c.year, 1969);
    assert_int_equal(c.month, 12);
    assert_int_equal(c.day, 31);
    assert_int_equal(c.hour, 23);
    assert_int_equal(c.local_days, -1);
    tg_tz_destroy(z);
}

static void test_load_errors(void **state)
{
    (void)state;
    static const struct {
        int line;
        const char *name;
        bool ok;
    } rows[] = {
        {__LINE__, "UTC", true},
        {__LINE__, "Etc/UTC", true},
        {__LINE__, "Europe/Lisbon", true},
        {__LINE__, "America/Argentina/Buenos_Aires", true},
        {__LINE__, "Etc/GMT+5", true},
        {__LINE__, "", false},
        {__LINE__, "/etc/passwd", false},
        {__LINE__, "../../etc/passwd", false},
        {__LINE__, "Europe/../Europe/Lisbon", false},
        {__LINE__, "Europe/.Lisbon", false},
        {__LINE__, "Nowhere/Town", false},
        {__LINE__, "Europe", false},
        {__LINE__, "Europe/Lis bon", false},
        {__LINE__, "zone.tab", false},
        {__LINE__, "right/UTC", false},
    };
    for (size_t i = 0; i < TG_ARRAY_LEN(rows); i++) {
        char err[256] = "";
        struct tg_tz *z = tg_tz_load(rows[i].name, err, sizeof(err));
        if ((z != NULL) != rows[i].ok)
            fail_msg("line %d: %s: %s", rows[i].line, rows[i].name, z ? "loaded" : err);
        if (z == NULL && err[0] == '\0')
            fail_msg("line %d: no error text", rows[i].line);
        tg_tz_destroy(z);
    }
    assert_null(tg_tz_load(NULL, NULL, 0));
    tg_tz_destroy(NULL);
}

static unsigned char *read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    unsigned char *buf = malloc(1 << 20);
    assert_non_null(buf);
    *len = fread(buf, 1, 1 << 20, f);
    fclose(f);
    return buf;
}

/* Every truncation fails cleanly, and random corruption never crashes (run under ASan). */
static void test_parse_damaged(void **state)
{
    (void)state;
    size_t len;
    unsigned char *data = read_file(TG_TZ_DIR "/America/New_York", &len);
    char err[256];
    struct tg_tz *z = tg_tz_parse("ny", data, len, err, sizeof(err));
    assert_non_null(z);
    tg_tz_destroy(z);
    for (size_t cut = 0; cut < len; cut++) {
        z = tg_tz_parse("ny", data, cut, err, sizeof(err));
        if (z != NULL)
            fail_msg("accepted a file cut at %zu of %zu", cut, len);
    }
    unsigned char *copy = malloc(len);
    assert_non_null(copy);
    srand(12345);
    for (int round = 0; round < 20000; round++) {
        memcpy(copy, data, len);
        int flips = 1 + rand() % 4;
        for (int f = 0; f < flips; f++)
            copy[(size_t)rand() % len] = (unsigned char)rand();
        z = tg_tz_parse("ny", copy, len, err, sizeof(err));
        if (z) {
            int64_t t = (int64_t)rand() * 1000 - 1000000000LL;
            int64_t off = tg_tz_offset(z, t);
            assert_true(off > -26 * 3600 && off < 26 * 3600);
            (void)tg_tz_local_to_utc(z, 2026, 1 + rand() % 12, 1, 0, 0);
            tg_tz_destroy(z);
        }
    }
    memcpy(copy, data, len);
    copy[4] = '1';
    assert_null(tg_tz_parse("v1", copy, len, err, sizeof(err)));
    free(copy);
    free(data);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_civil_roundtrip),
        cmocka_unit_test(test_civil_normalises),
        cmocka_unit_test(test_offsets_match_tzdata),
        cmocka_unit_test(test_posix_rule_matches_table),
        cmocka_unit_test(test_posix_strings),
        cmocka_unit_test(test_local_to_utc),
        cmocka_unit_test(test_local_to_utc_is_first_instant),
        cmocka_unit_test(test_to_civil),
        cmocka_unit_test(test_load_errors),
        cmocka_unit_test(test_parse_damaged),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
