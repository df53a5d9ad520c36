/* Unit tests for meter/body_scan.c: captures at every split, big bodies, malformed input. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "meter/body_scan.h"
#include "meter/usage.h"

/* Everything a caller can observe after feeding a body. */
struct result {
    bool usage_ok;
    struct tg_usage usage;
    bool error_ok;
    char *error; /* copy of the raw error value, or NULL */
    size_t error_len;
    bool usage_seen, usage_truncated, error_seen, error_truncated;
    char id[128], model[256];
    bool complete;
};

static void scan(enum tg_route route, const char *in, size_t len, const size_t *cuts, size_t ncuts,
                 struct result *r)
{
    struct tg_body_scan s;
    tg_body_scan_init(&s);
    size_t start = 0;
    for (size_t c = 0; c <= ncuts; c++) {
        size_t end = c < ncuts ? cuts[c] : len;
        tg_body_scan_feed(&s, in + start, end - start);
        start = end;
    }
    memset(r, 0, sizeof(*r));
    r->usage_ok = tg_body_scan_usage(&s, route, &r->usage);
    const char *e;
    size_t elen;
    r->error_ok = tg_body_scan_error(&s, &e, &elen);
    if (r->error_ok) {
        r->error = malloc(elen + 1);
        assert_non_null(r->error);
        memcpy(r->error, e, elen);
        r->error[elen] = '\0';
        r->error_len = elen;
    } else {
        assert_null(e);
        assert_int_equal(elen, 0);
    }
    r->usage_seen = s.usage.seen;
    r->usage_truncated = s.usage.truncated;
    r->error_seen = s.error.seen;
    r->error_truncated = s.error.truncated;
    assert_true(s.usage.raw.len <= TG_BODY_SCAN_MAX_VALUE_BYTES);
    assert_true(s.error.raw.len <= TG_BODY_SCAN_MAX_VALUE_BYTES);
    memcpy(r->id, s.id, sizeof(r->id));
    memcpy(r->model, s.model, sizeof(r->model));
    assert_non_null(memchr(r->id, '\0', sizeof(r->id)));
    assert_non_null(memchr(r->model, '\0', sizeof(r->model)));
    r->complete = tg_body_scan_is_complete(&s);
    tg_body_scan_cleanup(&s);
    assert_null(s.usage.raw.data);
}

static void assert_same(const struct result *a, const struct result *b, size_t k)
{
    if (a->usage_ok != b->usage_ok || memcmp(&a->usage, &b->usage, sizeof(a->usage)) != 0 ||
        a->error_ok != b->error_ok || a->error_len != b->error_len ||
        (a->error && memcmp(a->error, b->error, a->error_len) != 0) ||
        a->usage_seen != b->usage_seen || a->usage_truncated != b->usage_truncated ||
        a->error_seen != b->error_seen || a->error_truncated != b->error_truncated ||
        strcmp(a->id, b->id) != 0 || strcmp(a->model, b->model) != 0 || a->complete != b->complete)
        fail_msg("chunking %zu gives a different result", k);
}

static uint64_t rng_next(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

static size_t random_cuts(size_t len, size_t maxchunk, uint64_t *seed, size_t *cuts)
{
    size_t n = 0, pos = 0;
    for (;;) {
        pos += 1 + (size_t)(rng_next(seed) % maxchunk);
        if (pos >= len)
            return n;
        cuts[n++] = pos;
    }
}

/* Whole, every split point (short bodies), byte by byte and random chunkings. */
static void scan_all_splits(enum tg_route route, const char *in, size_t len, struct result *whole)
{
    scan(route, in, len, NULL, 0, whole);
    struct result r;
    size_t *cuts = malloc((len + 1) * sizeof(size_t));
    assert_non_null(cuts);
    for (size_t k = 1; k < len && len <= 8192; k++) {
        cuts[0] = k;
        scan(route, in, len, cuts, 1, &r);
        assert_same(whole, &r, k);
        free(r.error);
    }
    size_t n = 0;
    for (size_t k = 1; k < len && len <= (1u << 20); k++)
        cuts[n++] = k;
    scan(route, in, len, cuts, n, &r);
    assert_same(whole, &r, 0);
    free(r.error);
    static const size_t maxchunks[] = {3, 64, 1000, 65536};
    for (uint64_t seed = 1; seed <= 12; seed++) {
        uint64_t s = seed * 0x9E3779B97F4A7C15ull;
        n = random_cuts(len, maxchunks[seed % TG_ARRAY_LEN(maxchunks)], &s, cuts);
        scan(route, in, len, cuts, n, &r);
        assert_same(whole, &r, 1000 + (size_t)seed);
        free(r.error);
    }
    free(cuts);
}

static const struct {
    int line;
    enum tg_route route;
    const char *body;
    bool usage_ok;
    int64_t prompt, completion, cached;
    const char *error; /* expected raw error value, NULL: none */
    const char *id, *model;
    bool complete;
} rows[] = {
    {__LINE__, TG_ROUTE_CHAT,
     "{\"id\":\"chatcmpl-1\",\"object\":\"chat.completion\",\"created\":1,\"model\":"
     "\"gpt-4o-mini\",\"choices\":[{\"index\":0,\"message\":{\"role\":\"assistant\","
     "\"content\":\"Hi {\\\"usage\\\": 1} ]}\"},\"finish_reason\":\"stop\"}],\"usage\":"
     "{\"prompt_tokens\":19,\"completion_tokens\":10,\"total_tokens\":29,"
     "\"prompt_tokens_details\":{\"cached_tokens\":4}}}",
     true, 19, 10, 4, NULL, "chatcmpl-1", "gpt-4o-mini", true},
    {__LINE__, TG_ROUTE_CHAT,
     "\n {\n  \"usage\" :\t{ \"prompt_tokens\" : 3 , \"completion_tokens\" : 2 } ,\n"
     "  \"model\" : \"m\" ,\n  \"id\" : \"x\"\n }\n",
     true, 3, 2, 0, NULL, "x", "m", true},
    {__LINE__, TG_ROUTE_RESPONSES,
     "{\"id\":\"resp_1\",\"object\":\"response\",\"created_at\":1,\"status\":\"completed\","
     "\"model\":\"o4-mini\",\"output\":[{\"type\":\"message\",\"content\":[{\"type\":"
     "\"output_text\",\"text\":\"x\"}]}],\"usage\":{\"input_tokens\":120,"
     "\"input_tokens_details\":{\"cached_tokens\":100},\"output_tokens\":50,"
     "\"output_tokens_details\":{\"reasoning_tokens\":20},\"total_tokens\":170}}",
     true, 120, 50, 100, NULL, "resp_1", "o4-mini", true},
    {__LINE__, TG_ROUTE_MESSAGES,
     "{\"id\":\"msg_1\",\"type\":\"message\",\"role\":\"assistant\",\"model\":\"claude\","
     "\"content\":[{\"type\":\"text\",\"text\":\"Hello\"}],\"stop_reason\":\"end_turn\","
     "\"usage\":{\"input_tokens\":10,\"cache_creation_input_tokens\":2,"
     "\"cache_read_input_tokens\":3,\"output_tokens\":4}}",
     true, 15, 4, 3, NULL, "msg_1", "claude", true},
    {__LINE__, TG_ROUTE_EMBEDDINGS,
     "{\"object\":\"list\",\"data\":[{\"object\":\"embedding\",\"index\":0,\"embedding\":"
     "[0.1,-2e-3,3]}],\"model\":\"text-embedding-3-small\",\"usage\":{\"prompt_tokens\":8,"
     "\"total_tokens\":8}}",
     true, 8, 0, 0, NULL, "", "text-embedding-3-small", true},
    {__LINE__, TG_ROUTE_CHAT,
     "{\"error\":{\"message\":\"bad \\\"x\\\" }\",\"type\":\"invalid_request_error\","
     "\"param\":null,\"code\":\"400\"}}",
     false, 0, 0, 0,
     "{\"message\":\"bad \\\"x\\\" }\",\"type\":\"invalid_request_error\",\"param\":null,"
     "\"code\":\"400\"}",
     "", "", true},
    {__LINE__, TG_ROUTE_CHAT, "{\"error\":null,\"usage\":{\"prompt_tokens\":1}}", true, 1, 0, 0,
     "null", "", "", true},
    {__LINE__, TG_ROUTE_CHAT, "{\"error\" : \"boom\" }", false, 0, 0, 0, "\"boom\"", "", "", true},
    {__LINE__, TG_ROUTE_CHAT, "{\"error\":-12.5e3}", false, 0, 0, 0, "-12.5e3", "", "", true},
    /* only top-level keys count; the last occurrence wins */
    {__LINE__, TG_ROUTE_CHAT,
     "{\"data\":{\"usage\":{\"prompt_tokens\":5},\"id\":\"inner\",\"error\":1},"
     "\"list\":[{\"usage\":{\"prompt_tokens\":6}}]}",
     false, 0, 0, 0, NULL, "", "", true},
    {__LINE__, TG_ROUTE_CHAT,
     "{\"usage\":{\"prompt_tokens\":1},\"id\":\"a\",\"usage\":{\"prompt_tokens\":2},"
     "\"id\":\"b\"}",
     true, 2, 0, 0, NULL, "b", "", true},
    {__LINE__, TG_ROUTE_CHAT, "{\"usage\":{\"prompt_tokens\":1},\"usage\":null}", false, 0, 0, 0,
     NULL, "", "", true},
    {__LINE__, TG_ROUTE_CHAT, "{\"id\":\"a\",\"id\":7}", false, 0, 0, 0, NULL, "", "", true},
    /* escaped keys and strings */
    {__LINE__, TG_ROUTE_CHAT,
     "{\"a\\\"b\":\"usage\",\"us\\u0061ge\":{\"prompt_tokens\":7},\"\\u0069d\":"
     "\"q\\\"\\u00e9\\/\"}",
     true, 7, 0, 0, NULL, "q\"\xc3\xa9/", "", true},
    {__LINE__, TG_ROUTE_CHAT,
     "{\"a_very_long_key_name_that_is_longer_than_the_key_buffer\":1,\"model\":\"m\"}", false, 0, 0,
     0, NULL, "", "m", true},
    {__LINE__, TG_ROUTE_CHAT,
     "{\"n\":12,\"t\":true,\"f\":false,\"z\":null,\"usage\":{\"prompt_tokens\":1,\"x\":"
     "\"}}]]\\\"{\"}}",
     true, 1, 0, 0, NULL, "", "", true},
    {__LINE__, TG_ROUTE_CHAT, "{\"id\":123,\"model\":null}", false, 0, 0, 0, NULL, "", "", true},
    {__LINE__, TG_ROUTE_CHAT, "{\"id\":\"bad \\u12g4\"}", false, 0, 0, 0, NULL, "", "", true},
    {__LINE__, TG_ROUTE_CHAT,
     /* 128 decoded bytes: one more than id[] holds */
     "{\"id\":\"0123456789012345678901234567890123456789012345678901234567890123456789012345"
     "6789012345678901234567890123456789012345678901234567\"}",
     false, 0, 0, 0, NULL, "", "", true},
    {__LINE__, TG_ROUTE_CHAT,
     "{\"id\":\"0123456789012345678901234567890123456789012345678901234567890123456789012345"
     "678901234567890123456789012345678901234567890123456\"}",
     false, 0, 0, 0, NULL,
     "0123456789012345678901234567890123456789012345678901234567890123456789012345"
     "678901234567890123456789012345678901234567890123456",
     "", true},
    {__LINE__, TG_ROUTE_CHAT, "{}", false, 0, 0, 0, NULL, "", "", true},
    {__LINE__, TG_ROUTE_CHAT, "{\"usage\":{\"prompt_tokens\":1}} trailing {\"usage\":2}", true, 1,
     0, 0, NULL, "", "", true},
    /* not an object, cut short, malformed */
    {__LINE__, TG_ROUTE_CHAT, "[{\"usage\":{\"prompt_tokens\":1}}]", false, 0, 0, 0, NULL, "", "",
     false},
    {__LINE__, TG_ROUTE_CHAT, "\"usage\"", false, 0, 0, 0, NULL, "", "", false},
    {__LINE__, TG_ROUTE_CHAT, "", false, 0, 0, 0, NULL, "", "", false},
    {__LINE__, TG_ROUTE_CHAT, "{\"id\":\"x\",\"usage\":{\"prompt_tokens\":1", false, 0, 0, 0, NULL,
     "x", "", false},
    {__LINE__, TG_ROUTE_CHAT, "{\"usage\" {\"prompt_tokens\":1}}", false, 0, 0, 0, NULL, "", "",
     false},
    {__LINE__, TG_ROUTE_CHAT, "{\"usage\":}", false, 0, 0, 0, NULL, "", "", false},
    {__LINE__, TG_ROUTE_CHAT, "{\"id\":\"x\" \"model\":\"m\"}", false, 0, 0, 0, NULL, "x", "",
     false},
    {__LINE__, TG_ROUTE_CHAT, "{1:2}", false, 0, 0, 0, NULL, "", "", false},
    {__LINE__, TG_ROUTE_CHAT, "{\"usage\":{\"prompt_tokens\":1}]", true, 1, 0, 0, NULL, "", "",
     false},
    {__LINE__, TG_ROUTE_CHAT, "{\"usage\":{\"prompt_tokens\":1]}", false, 0, 0, 0, NULL, "", "",
     true},
};

static void test_rows(void **state)
{
    (void)state;
    for (size_t i = 0; i < TG_ARRAY_LEN(rows); i++) {
        struct result r;
        scan_all_splits(rows[i].route, rows[i].body, strlen(rows[i].body), &r);
        bool ok = r.usage_ok == rows[i].usage_ok && r.complete == rows[i].complete &&
                  strcmp(r.id, rows[i].id) == 0 && strcmp(r.model, rows[i].model) == 0;
        if (rows[i].usage_ok)
            ok = ok && r.usage.prompt_tokens == rows[i].prompt &&
                 r.usage.completion_tokens == rows[i].completion &&
                 r.usage.cached_tokens == rows[i].cached &&
                 r.usage.total_tokens == rows[i].prompt + rows[i].completion;
        if (rows[i].error)
            ok = ok && r.error_ok && strcmp(r.error, rows[i].error) == 0;
        else
            ok = ok && !r.error_ok;
        if (!ok)
            fail_msg("line %d: usage_ok=%d p=%lld c=%lld complete=%d id='%s' model='%s' "
                     "error='%s'",
                     rows[i].line, r.usage_ok, (long long)r.usage.prompt_tokens,
                     (long long)r.usage.completion_tokens, r.complete, r.id, r.model,
                     r.error ? r.error : "(none)");
        free(r.error);
    }
}

/* A multi-MB embeddings reply: usage after the data, found for any chunking, with the
 * captures staying small. */
static void test_big_embeddings(void **state)
{
    (void)state;
    size_t cap = 6u << 20, len = 0;
    char *in = malloc(cap);
    assert_non_null(in);
    len += (size_t)snprintf(in, cap, "{\"object\":\"list\",\"data\":[");
    for (int i = 0; len < cap - 100000; i++) {
        len += (size_t)snprintf(in + len, cap - len,
                                "%s{\"object\":\"embedding\",\"index\":%d,"
                                "\"embedding\":[",
                                i ? "," : "", i);
        for (int k = 0; k < 256; k++)
            len += (size_t)snprintf(in + len, cap - len, "%s-0.0%d%d", k ? "," : "", k, i % 97);
        len += (size_t)snprintf(in + len, cap - len, "]}");
    }
    len += (size_t)snprintf(in + len, cap - len,
                            "],\"model\":\"text-embedding-3-large\",\"usage\":{\"prompt_tokens\":"
                            "4096,\"total_tokens\":4096}}");
    struct result whole;
    scan_all_splits(TG_ROUTE_EMBEDDINGS, in, len, &whole);
    assert_true(whole.usage_ok);
    assert_int_equal(whole.usage.prompt_tokens, 4096);
    assert_int_equal(whole.usage.completion_tokens, 0);
    assert_int_equal(whole.usage.total_tokens, 4096);
    assert_string_equal(whole.model, "text-embedding-3-large");
    assert_true(whole.complete);
    free(in);
}

/* usage/error values beyond the cap are marked truncated and not used. */
static void test_truncated_capture(void **state)
{
    (void)state;
    size_t pad = TG_BODY_SCAN_MAX_VALUE_BYTES;
    size_t cap = pad + 256, len = 0;
    char *in = malloc(cap);
    assert_non_null(in);
    len += (size_t)snprintf(in, cap, "{\"error\":{\"message\":\"");
    memset(in + len, 'x', pad);
    len += pad;
    len += (size_t)snprintf(in + len, cap - len,
                            "\"},\"usage\":{\"prompt_tokens\":5,\"pad\":\"%s\"}}", "y");
    struct result r;
    scan_all_splits(TG_ROUTE_CHAT, in, len, &r);
    assert_false(r.error_ok);
    assert_true(r.error_seen);
    assert_true(r.error_truncated);
    assert_true(r.usage_ok); /* a later usage is still captured */
    assert_int_equal(r.usage.prompt_tokens, 5);
    assert_true(r.complete);
    /* the same for usage */
    len = (size_t)snprintf(in, cap, "{\"usage\":{\"prompt_tokens\":5,\"pad\":\"");
    memset(in + len, 'x', pad);
    len += pad;
    len += (size_t)snprintf(in + len, cap - len, "\"}}");
    scan_all_splits(TG_ROUTE_CHAT, in, len, &r);
    assert_false(r.usage_ok);
    assert_true(r.usage_seen);
    assert_true(r.usage_truncated);
    free(in);
}

/* Random JSON-ish bytes: never crashes, and every chunking agrees with the whole feed. */
static void test_random_garbage(void **state)
{
    (void)state;
    static const char alphabet[] = "{}[]\":,\\ u0a1.e-tn\n\x80"
                                   "usageidmodelerror";
    char buf[300];
    for (uint64_t seed = 1; seed <= 400; seed++) {
        uint64_t s = seed * 0xD1B54A32D192ED03ull;
        size_t len = 1 + (size_t)(rng_next(&s) % sizeof(buf));
        for (size_t i = 0; i < len; i++)
            buf[i] = alphabet[rng_next(&s) % (sizeof(alphabet) - 1)];
        if (seed % 2 == 0) {
            /* a plausible prefix so the root-object paths get exercised */
            static const char pre[] = "{\"usage\":";
            memcpy(buf, pre, TG_MIN(len, sizeof(pre) - 1));
        }
        struct result whole, r;
        scan(TG_ROUTE_CHAT, buf, len, NULL, 0, &whole);
        size_t cuts[sizeof(buf)];
        size_t n = random_cuts(len, 1 + seed % 17, &s, cuts);
        scan(TG_ROUTE_CHAT, buf, len, cuts, n, &r);
        assert_same(&whole, &r, (size_t)seed);
        free(whole.error);
        free(r.error);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rows),
        cmocka_unit_test(test_big_embeddings),
        cmocka_unit_test(test_truncated_capture),
        cmocka_unit_test(test_random_garbage),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
