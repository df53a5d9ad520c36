/* Unit tests for core/json_scan.c */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "core/json_scan.h"

static void test_valid_and_invalid(void **state)
{
    (void)state;
    static const struct {
        int line;
        const char *in;
        int ok;
    } rows[] = {
        {__LINE__, "{}", 1},
        {__LINE__, " [1, 2.5, -3e10, \"x\", true, false, null, {\"a\":[]}] ", 1},
        {__LINE__, "\"\\u00e9\\ud83d\\ude00\"", 1},
        {__LINE__, "0", 1},
        {__LINE__, "-0.0e-0", 1},
        {__LINE__, "", 0},
        {__LINE__, "{", 0},
        {__LINE__, "{\"a\"}", 0},
        {__LINE__, "{\"a\":1,}", 0},
        {__LINE__, "[1,]", 0},
        {__LINE__, "01", 0},
        {__LINE__, "1.", 0},
        {__LINE__, "-", 0},
        {__LINE__, "\"\\x\"", 0},
        {__LINE__, "\"a\nb\"", 0},
        {__LINE__, "\"\\u12g4\"", 0},
        {__LINE__, "tru", 0},
        {__LINE__, "{} {}", 0},
        {__LINE__, "nul", 0},
        {__LINE__, "{'a':1}", 0},
    };
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        struct tg_jv root;
        size_t off = 0;
        int rc = tg_json_parse(rows[i].in, strlen(rows[i].in), &root, &off);
        if ((rc == 0) != rows[i].ok)
            fail_msg("line %d: %s: rc=%d", rows[i].line, rows[i].in, rc);
    }
}

static void test_depth_limit(void **state)
{
    (void)state;
    char deep[TG_JSON_MAX_DEPTH * 2 + 4];
    size_t n = 0;
    for (int i = 0; i < TG_JSON_MAX_DEPTH + 1; i++)
        deep[n++] = '[';
    for (int i = 0; i < TG_JSON_MAX_DEPTH + 1; i++)
        deep[n++] = ']';
    struct tg_jv root;
    assert_int_equal(tg_json_parse(deep, n, &root, NULL), -1);
    assert_int_equal(tg_json_parse(deep + 1, n - 2, &root, NULL), 0);
}

static void test_lookup(void **state)
{
    (void)state;
    const char *doc = "{\"id\":\"x\",\"usage\":{\"prompt_tokens\":19,\"prompt_tokens_details\":"
                      "{\"cached_tokens\":7}},\"choices\":[{\"delta\":{\"content\":\"h\\u00e9\"}},"
                      "{\"x\":2}],\"dup\":1,\"d\\u0075p\":2,\"big\":9223372036854775808}";
    struct tg_jv root, v;
    assert_int_equal(tg_json_parse(doc, strlen(doc), &root, NULL), 0);
    assert_true(tg_json_path(&root, "usage.prompt_tokens_details.cached_tokens", &v));
    int64_t x;
    assert_int_equal(tg_json_int64(&v, &x), 0);
    assert_int_equal(x, 7);
    assert_true(tg_json_path(&root, "choices.0.delta.content", &v));
    char buf[16];
    ssize_t n = tg_json_string_copy(&v, buf, sizeof(buf));
    assert_int_equal(n, 3);
    assert_memory_equal(buf, "h\xc3\xa9", 3);
    assert_true(tg_json_path(&root, "choices.1.x", &v));
    assert_false(tg_json_path(&root, "choices.2", &v));
    assert_true(tg_json_get(&root, "dup", &v)); /* last occurrence, escaped key */
    assert_int_equal(tg_json_int64(&v, &x), 0);
    assert_int_equal(x, 2);
    assert_true(tg_json_get(&root, "big", &v));
    assert_int_equal(tg_json_int64(&v, &x), -1);
    assert_false(tg_json_get(&root, "nope", &v));
    assert_int_equal(v.type, TG_JSON_NONE);
}

static void test_escape_roundtrip(void **state)
{
    (void)state;
    struct tg_buf b = {0};
    const char in[] = "a\"b\\c\n\x01\xe2\x9a\xa0\xef\xb8\x8f\xff";
    assert_int_equal(tg_json_escape(&b, in, sizeof(in) - 1), 0);
    assert_string_equal(b.data, "\"a\\\"b\\\\c\\n\\u0001\xe2\x9a\xa0\xef\xb8\x8f\xef\xbf\xbd\"");
    struct tg_jv v;
    assert_int_equal(tg_json_parse(b.data, b.len, &v, NULL), 0);
    assert_int_equal(tg_json_string_len(&v), sizeof(in) - 1 - 1 + 3);
    tg_buf_cleanup(&b);
}

static void test_int64(void **state)
{
    (void)state;
    static const struct {
        const char *in;
        int rc;
        int64_t v;
    } rows[] = {
        {"0", 0, 0},
        {"12", 0, 12},
        {"-5", 0, -5},
        {"12.0", 0, 12},
        {"12.5", -1, 0},
        {"1e3", -1, 0},
        {"-9223372036854775808", 0, INT64_MIN},
        {"9223372036854775807", 0, INT64_MAX},
    };
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        struct tg_jv v;
        assert_int_equal(tg_json_parse(rows[i].in, strlen(rows[i].in), &v, NULL), 0);
        int64_t x = 0;
        assert_int_equal(tg_json_int64(&v, &x), rows[i].rc);
        if (rows[i].rc == 0)
            assert_true(x == rows[i].v);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_valid_and_invalid),
        cmocka_unit_test(test_depth_limit),
        cmocka_unit_test(test_lookup),
        cmocka_unit_test(test_escape_roundtrip),
        cmocka_unit_test(test_int64),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
