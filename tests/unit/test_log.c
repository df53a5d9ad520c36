/* test_log.c: the log line formatter (core/log.c) against reference formatting: JSON string
 * escaping (tg_json_escape), integers ("%lld"), the timestamp (gmtime_r + snprintf), the text
 * format, level filtering and the buffered mode of event-loop threads. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/json_scan.h"
#include "core/log.h"

/* ---- capture: lines go to a temporary file, read back from where the last read stopped ---- */

static FILE *cap_file;
static long cap_pos;

static int setup(void **state)
{
    (void)state;
    cap_file = tmpfile();
    assert_non_null(cap_file);
    cap_pos = 0;
    tg_log_setup(TG_LOG_INFO, TG_LOGF_JSON, fileno(cap_file));
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    tg_log_setup(TG_LOG_INFO, TG_LOGF_JSON, 2);
    fclose(cap_file);
    cap_file = NULL;
    return 0;
}

/* Everything written since the last call (malloc'd, NUL-terminated). */
static char *captured(void)
{
    int fd = fileno(cap_file);
    off_t end = lseek(fd, 0, SEEK_END);
    assert_true(end >= cap_pos);
    size_t n = (size_t)(end - cap_pos);
    char *out = malloc(n + 1);
    assert_non_null(out);
    assert_int_equal(pread(fd, out, n, cap_pos), (ssize_t)n);
    out[n] = '\0';
    cap_pos = end;
    return out;
}

/* The reference JSON string of s. */
static char *ref_json(const char *s, size_t n)
{
    struct tg_buf b = {0};
    assert_int_equal(tg_json_escape(&b, s, n), 0);
    return b.data;
}

/* Checks a JSON line's fixed head ({"ts":"<24>","level":"<level>","msg":<msg json>) and
 * returns a pointer just after it. */
static const char *check_head(const char *line, const char *level, const char *msg)
{
    assert_memory_equal(line, "{\"ts\":\"", 7);
    const char *ts = line + 7;
    /* 2026-11-22T06:57:33.123Z */
    for (int i = 0; i < 24; i++) {
        char c = ts[i];
        if (i == 4 || i == 7)
            assert_int_equal(c, '-');
        else if (i == 10)
            assert_int_equal(c, 'T');
        else if (i == 13 || i == 16)
            assert_int_equal(c, ':');
        else if (i == 19)
            assert_int_equal(c, '.');
        else if (i == 23)
            assert_int_equal(c, 'Z');
        else
            assert_true(c >= '0' && c <= '9');
    }
    char want[256];
    char *m = ref_json(msg, strlen(msg));
    snprintf(want, sizeof(want), "\",\"level\":\"%s\",\"msg\":%s", level, m);
    free(m);
    assert_memory_equal(ts + 24, want, strlen(want));
    return ts + 24 + strlen(want);
}

/* ---- values ------------------------------------------------------------------------------ */

enum kind { K_STR, K_STRN, K_NULL, K_INT, K_BOOL, K_RAW };

struct value_case {
    int line;
    enum kind kind;
    const char *s;
    size_t n; /* K_STRN, K_RAW */
    int64_t i;
    const char *want; /* the value as it must appear after "k": */
};

static const struct value_case value_cases[] = {
    {__LINE__, K_STR, "plain", 0, 0, "\"plain\""},
    {__LINE__, K_STR, "", 0, 0, "\"\""},
    {__LINE__, K_STR, "019a8a4e-7b1c-7000-8000-0123456789ab", 0, 0,
     "\"019a8a4e-7b1c-7000-8000-0123456789ab\""},
    {__LINE__, K_STR, "/v1/chat/completions", 0, 0, "\"/v1/chat/completions\""},
    {__LINE__, K_STR, "say \"hi\"", 0, 0, "\"say \\\"hi\\\"\""},
    {__LINE__, K_STR, "back\\slash", 0, 0, "\"back\\\\slash\""},
    {__LINE__, K_STR, "a\nb\rc\td", 0, 0, "\"a\\nb\\rc\\td\""},
    {__LINE__, K_STR, "\x01\x1f", 0, 0, "\"\\u0001\\u001f\""},
    {__LINE__, K_STR, "del\x7f", 0, 0, "\"del\\u007f\""},
    {__LINE__, K_STR, "~ !#$%&'()*+,-./0123456789:;<=>?@[]^_`{|}", 0, 0,
     "\"~ !#$%&'()*+,-./0123456789:;<=>?@[]^_`{|}\""},
    {__LINE__, K_STR, "caf\xc3\xa9", 0, 0, "\"caf\xc3\xa9\""},
    {__LINE__, K_STR, "bad\xff", 0, 0, "\"bad\xef\xbf\xbd\""},
    {__LINE__, K_STRN, "abcdef", 3, 0, "\"abc\""},
    {__LINE__, K_STRN, "a\0b", 3, 0, "\"a\\u0000b\""},
    {__LINE__, K_STRN, "", 0, 0, "\"\""},
    {__LINE__, K_NULL, NULL, 0, 0, "null"},
    {__LINE__, K_INT, NULL, 0, 0, "0"},
    {__LINE__, K_INT, NULL, 0, 1, "1"},
    {__LINE__, K_INT, NULL, 0, -1, "-1"},
    {__LINE__, K_INT, NULL, 0, 9, "9"},
    {__LINE__, K_INT, NULL, 0, 10, "10"},
    {__LINE__, K_INT, NULL, 0, 1000000, "1000000"},
    {__LINE__, K_INT, NULL, 0, -1234567890123LL, "-1234567890123"},
    {__LINE__, K_INT, NULL, 0, INT64_MAX, "9223372036854775807"},
    {__LINE__, K_INT, NULL, 0, INT64_MIN, "-9223372036854775808"},
    {__LINE__, K_BOOL, NULL, 0, 1, "true"},
    {__LINE__, K_BOOL, NULL, 0, 0, "false"},
    {__LINE__, K_RAW, "{\"a\":[1,2]}", 11, 0, "{\"a\":[1,2]}"},
    {__LINE__, K_RAW, "", 0, 0, ""},
};

static void add_value(struct tg_logline *l, const struct value_case *c)
{
    switch (c->kind) {
    case K_STR:
        tg_logline_str(l, "k", c->s);
        break;
    case K_STRN:
        tg_logline_strn(l, "k", c->s, c->n);
        break;
    case K_NULL:
        tg_logline_str(l, "k", NULL);
        break;
    case K_INT:
        tg_logline_int(l, "k", c->i);
        break;
    case K_BOOL:
        tg_logline_bool(l, "k", c->i != 0);
        break;
    case K_RAW:
        tg_logline_raw(l, "k", c->s, c->n);
        break;
    }
}

static void test_json_values(void **state)
{
    (void)state;
    for (size_t i = 0; i < TG_ARRAY_LEN(value_cases); i++) {
        const struct value_case *c = &value_cases[i];
        print_message("row at line %d\n", c->line);
        struct tg_logline l;
        tg_logline_begin(&l, TG_LOG_INFO, "request");
        add_value(&l, c);
        tg_logline_int(&l, "after", 7);
        tg_logline_end(&l);
        char *line = captured();
        const char *rest = check_head(line, "info", "request");
        char want[512];
        snprintf(want, sizeof(want), ",\"k\":%s,\"after\":7}\n", c->want);
        assert_string_equal(rest, want);
        free(line);
    }
}

/* A whole request-like line is valid JSON with the values in place. */
static void test_json_line_parses(void **state)
{
    (void)state;
    struct tg_logline l;
    tg_logline_begin(&l, TG_LOG_WARN, "re\"quest");
    tg_logline_str(&l, "user", "u\\1");
    tg_logline_int(&l, "status", 502);
    tg_logline_bool(&l, "stream", true);
    tg_logline_str(&l, "team", NULL);
    tg_logline_end(&l);
    char *line = captured();
    size_t n = strlen(line);
    assert_true(n > 0 && line[n - 1] == '\n');
    struct tg_jv root;
    size_t err_off = 0;
    assert_int_equal(tg_json_parse(line, n - 1, &root, &err_off), 0);
    int64_t status = 0;
    struct tg_jv v;
    assert_true(tg_json_get(&root, "status", &v));
    assert_int_equal(tg_json_int64(&v, &status), 0);
    assert_int_equal(status, 502);
    assert_true(tg_json_get(&root, "user", &v));
    assert_true(tg_json_string_eq(&v, "u\\1", 3));
    assert_true(tg_json_get(&root, "msg", &v));
    assert_true(tg_json_string_eq(&v, "re\"quest", 8));
    assert_true(tg_json_get(&root, "level", &v));
    assert_true(tg_json_string_eq(&v, "warn", 4));
    free(line);
}

static uint64_t rng_state = 0x9E3779B97F4A7C15ULL;
static uint64_t rng(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}

/* Every byte value inside a string, and random strings, are escaped as tg_json_escape does. */
static void test_strings_match_reference(void **state)
{
    (void)state;
    for (int round = 0; round < 256 + 2000; round++) {
        char s[48];
        size_t n;
        if (round < 256) {
            s[0] = 'a';
            s[1] = (char)round;
            s[2] = 'z';
            n = 3;
        } else {
            n = (size_t)(rng() % sizeof(s));
            /* half of them printable ASCII only (the fast path), half any byte */
            bool ascii = round % 2 == 0;
            for (size_t i = 0; i < n; i++)
                s[i] = ascii ? (char)(0x20 + rng() % 0x5F) : (char)(rng() & 0xFF);
        }
        struct tg_logline l;
        tg_logline_begin(&l, TG_LOG_INFO, "m");
        tg_logline_strn(&l, "k", s, n);
        tg_logline_end(&l);
        char *line = captured();
        const char *rest = check_head(line, "info", "m");
        char *ref = ref_json(s, n);
        size_t rn = strlen(ref);
        assert_memory_equal(rest, ",\"k\":", 5);
        assert_memory_equal(rest + 5, ref, rn);
        assert_string_equal(rest + 5 + rn, "}\n");
        free(ref);
        free(line);
    }
}

static void test_ints_match_reference(void **state)
{
    (void)state;
    for (int round = 0; round < 5000; round++) {
        int64_t v = (int64_t)rng();
        if (round % 3 == 1)
            v >>= rng() % 63; /* all magnitudes */
        struct tg_logline l;
        tg_logline_begin(&l, TG_LOG_INFO, "m");
        tg_logline_int(&l, "k", v);
        tg_logline_end(&l);
        char *line = captured();
        const char *rest = check_head(line, "info", "m");
        char want[64];
        snprintf(want, sizeof(want), ",\"k\":%lld}\n", (long long)v);
        assert_string_equal(rest, want);
        free(line);
    }
}

/* ---- timestamp ---------------------------------------------------------------------------- */

static void ref_ts(const struct timespec *ts, char out[80])
{
    struct tm tm;
    gmtime_r(&ts->tv_sec, &tm);
    snprintf(out, 80, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1,
             tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (int)(ts->tv_nsec / 1000000) % 1000);
}

/* For ~1.2 s (so across at least one change of second), every line's timestamp lies between
 * the wall-clock times read just before and after it was written. */
static void test_timestamp_follows_clock(void **state)
{
    (void)state;
    struct timespec start, before, after;
    clock_gettime(CLOCK_REALTIME, &start);
    int seconds_seen = 0;
    time_t last_sec = 0;
    do {
        clock_gettime(CLOCK_REALTIME, &before);
        tg_log(TG_LOG_INFO, "tick");
        clock_gettime(CLOCK_REALTIME, &after);
        char *line = captured();
        check_head(line, "info", "tick");
        char lo[80], hi[80];
        ref_ts(&before, lo);
        ref_ts(&after, hi);
        char got[25];
        memcpy(got, line + 7, 24);
        got[24] = '\0';
        if (strcmp(got, lo) < 0 || strcmp(got, hi) > 0)
            fail_msg("timestamp %s not within [%s, %s]", got, lo, hi);
        if (before.tv_sec != last_sec) {
            seconds_seen++;
            last_sec = before.tv_sec;
        }
        free(line);
        struct timespec nap = {0, 2000000};
        nanosleep(&nap, NULL);
    } while ((after.tv_sec - start.tv_sec) * 1000 + (after.tv_nsec - start.tv_nsec) / 1000000 <
             1200);
    assert_true(seconds_seen >= 2);
}

/* ---- text format, levels, free-form messages -------------------------------------------- */

struct text_case {
    int line;
    enum tg_log_level level;
    const char *value;
    const char *want; /* after the timestamp */
};

static const struct text_case text_cases[] = {
    {__LINE__, TG_LOG_INFO, "plain", " info  request k=plain n=-42 b=true\n"},
    {__LINE__, TG_LOG_WARN, "two words", " warn  request k=\"two words\" n=-42 b=true\n"},
    {__LINE__, TG_LOG_ERROR, "a=b", " error request k=\"a=b\" n=-42 b=true\n"},
    {__LINE__, TG_LOG_DEBUG, "q\"", " debug request k=\"q\\\"\" n=-42 b=true\n"},
    {__LINE__, TG_LOG_INFO, "", " info  request k=\"\" n=-42 b=true\n"},
};

static void test_text_format(void **state)
{
    (void)state;
    tg_log_setup(TG_LOG_DEBUG, TG_LOGF_TEXT, fileno(cap_file));
    for (size_t i = 0; i < TG_ARRAY_LEN(text_cases); i++) {
        const struct text_case *c = &text_cases[i];
        print_message("row at line %d\n", c->line);
        struct tg_logline l;
        tg_logline_begin(&l, c->level, "request");
        tg_logline_str(&l, "k", c->value);
        tg_logline_int(&l, "n", -42);
        tg_logline_bool(&l, "b", true);
        tg_logline_end(&l);
        char *line = captured();
        assert_true(strlen(line) > 24);
        assert_int_equal(line[23], 'Z');
        assert_string_equal(line + 24, c->want);
        free(line);
    }
}

static void test_levels_and_messages(void **state)
{
    (void)state;
    tg_log_setup(TG_LOG_WARN, TG_LOGF_JSON, fileno(cap_file));
    assert_false(tg_log_enabled(TG_LOG_INFO));
    assert_true(tg_log_enabled(TG_LOG_ERROR));
    struct tg_logline l;
    tg_logline_begin(&l, TG_LOG_INFO, "filtered");
    tg_logline_str(&l, "k", "v");
    tg_logline_int(&l, "n", 1);
    tg_logline_end(&l);
    tg_log(TG_LOG_DEBUG, "filtered too %d", 1);
    char *none = captured();
    assert_string_equal(none, "");
    free(none);
    tg_log(TG_LOG_ERROR, "disk %s at %d%%", "full", 99);
    char *line = captured();
    const char *rest = check_head(line, "error", "disk full at 99%");
    assert_string_equal(rest, "}\n");
    free(line);
}

/* ---- threads: buffered lines, per-thread state --------------------------------------------- */

static int arms;
static void on_arm(void *arg)
{
    assert_ptr_equal(arg, &arms);
    arms++;
}

static void *buffered_thread(void *arg)
{
    (void)arg;
    tg_log_set_thread_buffered(on_arm, &arms);
    tg_log(TG_LOG_INFO, "one");
    tg_log(TG_LOG_INFO, "two");
    assert_int_equal(arms, 1); /* armed when the buffer went from empty to non-empty only */
    char *nothing = captured();
    assert_string_equal(nothing, ""); /* held until the flush */
    free(nothing);
    tg_log_flush_thread();
    char *both = captured();
    const char *rest = check_head(both, "info", "one");
    assert_memory_equal(rest, "}\n", 2);
    rest = check_head(rest + 2, "info", "two");
    assert_string_equal(rest, "}\n");
    free(both);
    tg_log(TG_LOG_INFO, "three"); /* written at thread exit */
    assert_int_equal(arms, 2);
    return NULL;
}

static void *plain_thread(void *arg)
{
    tg_log(TG_LOG_INFO, "from %s", (const char *)arg);
    return NULL;
}

static void test_threads(void **state)
{
    (void)state;
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, buffered_thread, NULL), 0);
    assert_int_equal(pthread_join(t, NULL), 0);
    char *line = captured();
    assert_string_equal(check_head(line, "info", "three"), "}\n");
    free(line);
    /* threads come and go (their state is freed at exit); each line stays whole */
    for (int i = 0; i < 20; i++) {
        assert_int_equal(pthread_create(&t, NULL, plain_thread, "a thread"), 0);
        assert_int_equal(pthread_join(t, NULL), 0);
        line = captured();
        assert_string_equal(check_head(line, "info", "from a thread"), "}\n");
        free(line);
        tg_log(TG_LOG_INFO, "main %d", i);
        line = captured();
        char want[32];
        snprintf(want, sizeof(want), "main %d", i);
        assert_string_equal(check_head(line, "info", want), "}\n");
        free(line);
    }
}

/* A line logged by another thread-exit destructor after the log's own state was freed (glibc
 * runs destructors in key order; the log's key is older) is still written whole, from fresh
 * state, not from the freed one (the sanitizer build catches a use after free). */
static pthread_key_t late_key;
static void late_destructor(void *arg)
{
    tg_log(TG_LOG_INFO, "late %s", (const char *)arg);
}

static void *late_thread(void *arg)
{
    tg_log(TG_LOG_INFO, "early");
    assert_int_equal(pthread_setspecific(late_key, arg), 0);
    return NULL;
}

static void test_log_from_late_destructor(void **state)
{
    (void)state;
    tg_log(TG_LOG_INFO, "main"); /* the log's key exists before late_key */
    assert_int_equal(pthread_key_create(&late_key, late_destructor), 0);
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, late_thread, "bye"), 0);
    assert_int_equal(pthread_join(t, NULL), 0);
    char *lines = captured();
    const char *rest = check_head(lines, "info", "main");
    assert_memory_equal(rest, "}\n", 2);
    rest = check_head(rest + 2, "info", "early");
    assert_memory_equal(rest, "}\n", 2);
    rest = check_head(rest + 2, "info", "late bye");
    assert_string_equal(rest, "}\n");
    free(lines);
    pthread_key_delete(late_key);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_json_values, setup, teardown),
        cmocka_unit_test_setup_teardown(test_json_line_parses, setup, teardown),
        cmocka_unit_test_setup_teardown(test_strings_match_reference, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ints_match_reference, setup, teardown),
        cmocka_unit_test_setup_teardown(test_timestamp_follows_clock, setup, teardown),
        cmocka_unit_test_setup_teardown(test_text_format, setup, teardown),
        cmocka_unit_test_setup_teardown(test_levels_and_messages, setup, teardown),
        cmocka_unit_test_setup_teardown(test_threads, setup, teardown),
        cmocka_unit_test_setup_teardown(test_log_from_late_destructor, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
