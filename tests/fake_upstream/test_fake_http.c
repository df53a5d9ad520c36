/* test_fake_http.c: the fake upstream's request-head parser and chunked decoder, on whole
 * inputs, at every split point and with random chunkings. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "fake_http.h"

/* ---- request heads ----------------------------------------------------------------------- */

struct head_case {
    int line;
    const char *input;  /* a head, possibly followed by body bytes */
    int want;           /* head length, TG_FAKE_NEED_MORE or TG_FAKE_ERROR */
    const char *method; /* expected when want > 0 */
    const char *target;
    int minor;
    size_t num_headers;
    const char *header; /* a header name to look up ... */
    const char *value;  /* ... and its expected value */
};

#define HEAD_OK(in, len, m, t, minor, n, h, v)                                                     \
    {                                                                                              \
        __LINE__, in, len, m, t, minor, n, h, v                                                    \
    }
#define HEAD_BAD(in, rc)                                                                           \
    {                                                                                              \
        __LINE__, in, rc, NULL, NULL, 0, 0, NULL, NULL                                             \
    }

static const struct head_case head_cases[] = {
    HEAD_OK("GET /v1/models HTTP/1.1\r\nHost: a\r\n\r\n", 36, "GET", "/v1/models", 1, 1, "host",
            "a"),
    HEAD_OK("POST /v1/chat/completions?x=1 HTTP/1.0\r\nContent-Length: 2\r\n"
            "X-Fake-Chunks:   7  \r\n\r\n{}",
            83, "POST", "/v1/chat/completions?x=1", 0, 2, "x-fake-chunks", "7"),
    HEAD_OK("GET / HTTP/1.1\n\n", 16, "GET", "/", 1, 0, NULL, NULL),
    HEAD_OK("\r\n\nGET / HTTP/1.1\r\nA:\r\nB: c d\r\n\r\n", 33, "GET", "/", 1, 2, "b", "c d"),
    HEAD_OK("DELETE /_fake/requests HTTP/1.1\r\nTab:\tv\t\r\n\r\n", 44, "DELETE", "/_fake/requests",
            1, 1, "TAB", "v"),
    HEAD_BAD("GET / HTTP/1.1\r\nHost: a\r\n", TG_FAKE_NEED_MORE),
    HEAD_BAD("GET / HTTP/1.1", TG_FAKE_NEED_MORE),
    HEAD_BAD("", TG_FAKE_NEED_MORE),
    HEAD_BAD("\r", TG_FAKE_NEED_MORE),
    HEAD_BAD("GET / HTTP/2.0\r\n\r\n", TG_FAKE_ERROR),
    HEAD_BAD("GET  / HTTP/1.1\r\n\r\n", TG_FAKE_ERROR),
    HEAD_BAD("GET / HTTP/1.1 \r\n\r\n", TG_FAKE_ERROR),
    HEAD_BAD("GET /\r\n\r\n", TG_FAKE_ERROR),
    HEAD_BAD("G(T / HTTP/1.1\r\n\r\n", TG_FAKE_ERROR),
    HEAD_BAD("GET / HTTP/1.1\r\nNo colon\r\n\r\n", TG_FAKE_ERROR),
    HEAD_BAD("GET / HTTP/1.1\r\nBad name: v\r\n\r\n", TG_FAKE_ERROR),
    HEAD_BAD("GET / HTTP/1.1\r\nA: b\r\n folded\r\n\r\n", TG_FAKE_ERROR),
    HEAD_BAD("GET / HTTP/1.1\r\nA: b\x01\r\n\r\n", TG_FAKE_ERROR),
    HEAD_BAD("\rX", TG_FAKE_ERROR),
};

static void check_head(const struct head_case *c, const char *buf, size_t len)
{
    struct tg_fake_head head;
    int rc = tg_fake_http_parse_head(buf, len, &head);
    if (rc != c->want)
        fail_msg("line %d: rc %d, want %d", c->line, rc, c->want);
    if (rc <= 0)
        return;
    assert_int_equal(head.method_len, strlen(c->method));
    assert_memory_equal(head.method, c->method, head.method_len);
    assert_int_equal(head.target_len, strlen(c->target));
    assert_memory_equal(head.target, c->target, head.target_len);
    assert_int_equal(head.minor_version, c->minor);
    assert_int_equal(head.num_headers, c->num_headers);
    if (c->header != NULL) {
        const struct tg_fake_header *h = tg_fake_http_find(&head, c->header);
        if (h == NULL)
            fail_msg("line %d: header %s missing", c->line, c->header);
        assert_int_equal(h->value_len, strlen(c->value));
        assert_memory_equal(h->value, c->value, h->value_len);
    }
}

static void test_head_whole(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(head_cases) / sizeof(head_cases[0]); i++)
        check_head(&head_cases[i], head_cases[i].input, strlen(head_cases[i].input));
}

/* Every prefix of a complete head needs more (or is already an error for bad heads); the
 * whole input then gives the same answer as in one piece. */
static void test_head_every_prefix(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(head_cases) / sizeof(head_cases[0]); i++) {
        const struct head_case *c = &head_cases[i];
        size_t len = strlen(c->input);
        size_t head_len = c->want > 0 ? (size_t)c->want : len;
        for (size_t k = 0; k < head_len; k++) {
            char *copy = malloc(k + 1);
            memcpy(copy, c->input, k);
            struct tg_fake_head head;
            int rc = tg_fake_http_parse_head(copy, k, &head);
            if (c->want > 0 && rc != TG_FAKE_NEED_MORE)
                fail_msg("line %d: prefix %zu gave %d", c->line, k, rc);
            if (c->want < 0 && rc != TG_FAKE_NEED_MORE && rc != TG_FAKE_ERROR)
                fail_msg("line %d: prefix %zu gave %d", c->line, k, rc);
            free(copy);
        }
        check_head(c, c->input, len);
    }
}

static void test_head_too_many_headers(void **state)
{
    (void)state;
    char buf[8192];
    size_t n = (size_t)snprintf(buf, sizeof(buf), "GET / HTTP/1.1\r\n");
    for (int i = 0; i <= TG_FAKE_MAX_HEADERS; i++)
        n += (size_t)snprintf(buf + n, sizeof(buf) - n, "H%d: v\r\n", i);
    n += (size_t)snprintf(buf + n, sizeof(buf) - n, "\r\n");
    struct tg_fake_head head;
    assert_int_equal(tg_fake_http_parse_head(buf, n, &head), TG_FAKE_ERROR);
}

static void test_has_token(void **state)
{
    (void)state;
    static const struct {
        int line;
        const char *value;
        const char *token;
        bool want;
    } rows[] = {
        {__LINE__, "close", "close", true},
        {__LINE__, "Keep-Alive, Upgrade", "keep-alive", true},
        {__LINE__, " upgrade ,  close ", "close", true},
        {__LINE__, "closed", "close", false},
        {__LINE__, "", "close", false},
        {__LINE__, "gzip, chunked", "chunked", true},
    };
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        if (tg_fake_http_has_token(rows[i].value, strlen(rows[i].value), rows[i].token) !=
            rows[i].want)
            fail_msg("line %d", rows[i].line);
    }
}

/* ---- chunked bodies ---------------------------------------------------------------------- */

struct chunk_case {
    int line;
    const char *input;
    long want;        /* bytes consumed by the body, TG_FAKE_NEED_MORE or TG_FAKE_ERROR */
    const char *body; /* decoded body when want >= 0 */
};

static const struct chunk_case chunk_cases[] = {
    {__LINE__, "0\r\n\r\n", 5, ""},
    {__LINE__, "5\r\nhello\r\n0\r\n\r\nNEXT", 15, "hello"},
    {__LINE__, "3;ext=1\r\nabc\r\nA\r\n0123456789\r\n0\r\nTrailer: x\r\n\r\n", 46, "abc0123456789"},
    {__LINE__, "2\nab\n0\n\n", 8, "ab"},
    {__LINE__, "1 \r\nz\r\n0\r\n\r\n", 12, "z"},
    {__LINE__, "5\r\nhel", TG_FAKE_NEED_MORE, NULL},
    {__LINE__, "5\r\nhello\r\n0\r\n", TG_FAKE_NEED_MORE, NULL},
    {__LINE__, "x\r\n", TG_FAKE_ERROR, NULL},
    {__LINE__, "\r\n", TG_FAKE_ERROR, NULL},
    {__LINE__, ";x\r\n", TG_FAKE_ERROR, NULL},
    {__LINE__, "2\r\nabX\r\n", TG_FAKE_ERROR, NULL},
    {__LINE__, "2\r\nab\rX", TG_FAKE_ERROR, NULL},
    {__LINE__, "1000000000000000\r\n", TG_FAKE_ERROR, NULL},
    {__LINE__, "0\r\n\rX", TG_FAKE_ERROR, NULL},
    {__LINE__, "2\rX", TG_FAKE_ERROR, NULL},
};

struct sink {
    char data[256];
    size_t len;
};

static int on_data(void *arg, const char *data, size_t len)
{
    struct sink *s = arg;
    if (s->len + len > sizeof(s->data))
        return -1;
    memcpy(s->data + s->len, data, len);
    s->len += len;
    return 0;
}

/* Feeds the input in pieces ending at the offsets in cuts[] (and at the end); returns the
 * total consumed when the body ends, else the last status. */
static long feed_pieces(const char *in, size_t len, const size_t *cuts, size_t ncuts,
                        struct sink *sink)
{
    struct tg_fake_chunked d;
    memset(&d, 0, sizeof(d));
    memset(sink, 0, sizeof(*sink));
    size_t pos = 0;
    for (size_t i = 0; i <= ncuts; i++) {
        size_t end = i < ncuts ? cuts[i] : len;
        if (end < pos)
            continue;
        long rc = tg_fake_chunked_feed(&d, in + pos, end - pos, on_data, sink);
        if (rc >= 0)
            return (long)pos + rc;
        if (rc == TG_FAKE_ERROR)
            return rc;
        pos = end;
    }
    return TG_FAKE_NEED_MORE;
}

static void check_chunk(const struct chunk_case *c, long rc, const struct sink *sink,
                        const char *how)
{
    if (rc != c->want)
        fail_msg("line %d (%s): rc %ld, want %ld", c->line, how, rc, c->want);
    if (rc >= 0) {
        assert_int_equal(sink->len, strlen(c->body));
        assert_memory_equal(sink->data, c->body, sink->len);
    }
}

static void test_chunked_whole(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(chunk_cases) / sizeof(chunk_cases[0]); i++) {
        struct sink sink;
        const struct chunk_case *c = &chunk_cases[i];
        check_chunk(c, feed_pieces(c->input, strlen(c->input), NULL, 0, &sink), &sink, "whole");
    }
}

static void test_chunked_every_split(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(chunk_cases) / sizeof(chunk_cases[0]); i++) {
        const struct chunk_case *c = &chunk_cases[i];
        size_t len = strlen(c->input);
        for (size_t k = 0; k <= len; k++) {
            struct sink sink;
            size_t cuts[1] = {k};
            check_chunk(c, feed_pieces(c->input, len, cuts, 1, &sink), &sink, "split");
        }
        /* one byte at a time */
        size_t *cuts = malloc(len * sizeof(*cuts) + 1);
        for (size_t k = 0; k < len; k++)
            cuts[k] = k + 1;
        struct sink sink;
        check_chunk(c, feed_pieces(c->input, len, cuts, len, &sink), &sink, "bytewise");
        free(cuts);
    }
}

static void test_chunked_random(void **state)
{
    (void)state;
    srand(12345);
    for (int round = 0; round < 200; round++) {
        for (size_t i = 0; i < sizeof(chunk_cases) / sizeof(chunk_cases[0]); i++) {
            const struct chunk_case *c = &chunk_cases[i];
            size_t len = strlen(c->input);
            size_t cuts[8];
            size_t pos = 0;
            size_t n = 0;
            while (n < 8 && pos < len) {
                pos += 1 + (size_t)rand() % 6;
                cuts[n++] = pos < len ? pos : len;
            }
            struct sink sink;
            check_chunk(c, feed_pieces(c->input, len, cuts, n, &sink), &sink, "random");
        }
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_head_whole),
        cmocka_unit_test(test_head_every_prefix),
        cmocka_unit_test(test_head_too_many_headers),
        cmocka_unit_test(test_has_token),
        cmocka_unit_test(test_chunked_whole),
        cmocka_unit_test(test_chunked_every_split),
        cmocka_unit_test(test_chunked_random),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
