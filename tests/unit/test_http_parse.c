/* Unit tests for http/http_parse.c: heads and chunked bodies at every split point. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http/http_parse.h"

static void test_request_heads(void **state)
{
    (void)state;
    static const struct {
        int line;
        const char *in;
        ssize_t rc; /* >0: expect complete with that length; else the code */
        int status;
    } rows[] = {
        {__LINE__, "GET / HTTP/1.1\r\nHost: a\r\n\r\n", 27, 0},
        {__LINE__, "\r\nGET / HTTP/1.0\n\n", 18, 0},
        {__LINE__, "POST /v1/chat/completions HTTP/1.1\r\nContent-Length: 2\r\n\r\n{}", 57, 0},
        {__LINE__, "GET / HTTP/1.1\r\nHost: a\r\n", TG_HTTP_NEED_MORE, 0},
        {__LINE__, "GET / HTTP/1.1\r\n", TG_HTTP_NEED_MORE, 0},
        {__LINE__, "GET / HTTP/2.0\r\n\r\n", TG_HTTP_ERROR, 505},
        {__LINE__, "GET  / HTTP/1.1\r\n\r\n", TG_HTTP_ERROR, 400},
        {__LINE__, "G(T / HTTP/1.1\r\n\r\n", TG_HTTP_ERROR, 400},
        {__LINE__, "GET / HTTP/1.1\r\nBad Header: x\r\n\r\n", TG_HTTP_ERROR, 400},
        {__LINE__, "GET / HTTP/1.1\r\nA: b\r\n folded\r\n\r\n", TG_HTTP_ERROR, 400},
        {__LINE__, "GET / HTTP/1.1\r\nA: b\x01\r\n\r\n", TG_HTTP_ERROR, 400},
        {__LINE__, "GET / HTTP/1.1\r\n: novalue\r\n\r\n", TG_HTTP_ERROR, 400},
        {__LINE__, "GET /a b HTTP/1.1\r\n\r\n", TG_HTTP_ERROR, 400},
    };
    for (size_t i = 0; i < TG_ARRAY_LEN(rows); i++) {
        struct tg_http_request_head h;
        int st = 0;
        ssize_t rc = tg_http_parse_request(rows[i].in, strlen(rows[i].in), &h, &st);
        if (rc != rows[i].rc || (rc == TG_HTTP_ERROR && st != rows[i].status))
            fail_msg("line %d: rc=%zd status=%d", rows[i].line, rc, st);
    }
}

static void test_request_fields_and_splits(void **state)
{
    (void)state;
    const char *in = "POST /v1/chat/completions?x=1 HTTP/1.1\r\nHost: tollgate\r\n"
                     "Authorization:   Bearer abc  \r\nX-Empty:\r\nContent-Length: 17\r\n\r\n";
    size_t len = strlen(in);
    for (size_t cut = 0; cut <= len; cut++) {
        struct tg_http_request_head h;
        int st;
        ssize_t rc = tg_http_parse_request(in, cut, &h, &st);
        if (cut < len)
            assert_int_equal(rc, TG_HTTP_NEED_MORE);
        else
            assert_int_equal(rc, (ssize_t)len);
    }
    struct tg_http_request_head h;
    int st;
    assert_int_equal(tg_http_parse_request(in, len, &h, &st), (ssize_t)len);
    assert_int_equal(h.minor_version, 1);
    assert_memory_equal(h.method, "POST", 4);
    assert_int_equal(h.target_len, strlen("/v1/chat/completions?x=1"));
    assert_int_equal(h.num_headers, 4);
    const struct tg_http_header *a = tg_http_find_header(h.headers, h.num_headers, "authorization");
    assert_non_null(a);
    assert_int_equal(a->value_len, 10);
    assert_memory_equal(a->value, "Bearer abc", 10);
    const struct tg_http_header *e = tg_http_find_header(h.headers, h.num_headers, "x-empty");
    assert_non_null(e);
    assert_int_equal(e->value_len, 0);
}

static void test_too_many_headers(void **state)
{
    (void)state;
    char *buf = malloc(16 * 1024);
    size_t n = (size_t)sprintf(buf, "GET / HTTP/1.1\r\n");
    for (int i = 0; i < TG_HTTP_MAX_HEADERS + 1; i++)
        n += (size_t)sprintf(buf + n, "H%d: v\r\n", i);
    n += (size_t)sprintf(buf + n, "\r\n");
    struct tg_http_request_head h;
    int st = 0;
    assert_int_equal(tg_http_parse_request(buf, n, &h, &st), TG_HTTP_ERROR);
    assert_int_equal(st, 431);
    free(buf);
}

static void test_response_heads(void **state)
{
    (void)state;
    const char *in = "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
                     "Transfer-Encoding: chunked\r\n\r\n";
    struct tg_http_response_head h;
    size_t len = strlen(in);
    for (size_t cut = 0; cut < len; cut++)
        assert_int_equal(tg_http_parse_response(in, cut, &h), TG_HTTP_NEED_MORE);
    assert_int_equal(tg_http_parse_response(in, len, &h), (ssize_t)len);
    assert_int_equal(h.status, 200);
    assert_int_equal(h.num_headers, 2);
    const struct tg_http_header *te =
        tg_http_find_header(h.headers, h.num_headers, "TRANSFER-ENCODING");
    assert_non_null(te);
    assert_true(tg_http_has_token(te->value, te->value_len, "chunked"));
    assert_int_equal(tg_http_parse_response("HTTP/1.1 204\r\n\r\n", 16, &h), 16);
    assert_int_equal(h.status, 204);
    assert_int_equal(tg_http_parse_response("HTTP/1.1 20x OK\r\n\r\n", 19, &h), TG_HTTP_ERROR);
    assert_int_equal(tg_http_parse_response("HTTP/3 200 OK\r\n\r\n", 17, &h), TG_HTTP_ERROR);
}

static void test_tokens_and_hop(void **state)
{
    (void)state;
    assert_true(tg_http_has_token("keep-alive, Upgrade", 19, "upgrade"));
    assert_false(tg_http_has_token("keep-alive, Upgraded", 20, "upgrade"));
    assert_true(tg_http_has_token(" close ", 7, "close"));
    assert_true(tg_http_is_hop_by_hop("Transfer-Encoding", 17));
    assert_true(tg_http_is_hop_by_hop("keep-alive", 10));
    assert_false(tg_http_is_hop_by_hop("Content-Type", 12));
    int64_t v;
    assert_int_equal(tg_http_parse_content_length("123", 3, &v), 0);
    assert_int_equal(v, 123);
    assert_int_equal(tg_http_parse_content_length("-1", 2, &v), -1);
    assert_int_equal(tg_http_parse_content_length("1 2", 3, &v), -1);
    assert_int_equal(tg_http_parse_content_length("", 0, &v), -1);
}

/* Decodes `in` fed in pieces of the given sizes (cycled); returns payload or NULL on error. */
static char *decode_pieces(const char *in, size_t len, const size_t *sizes, size_t nsizes,
                           bool *done, size_t *consumed)
{
    struct tg_chunked c;
    memset(&c, 0, sizeof(c));
    char *out = malloc(len + 1);
    size_t olen = 0, off = 0, avail = 0, k = 0;
    *done = false;
    while (off < len) {
        avail += sizes[k++ % nsizes];
        if (avail > len)
            avail = len;
        for (;;) {
            size_t skip, dat;
            enum tg_chunk_rc rc = tg_chunked_next(&c, in + off, avail - off, &skip, &dat);
            if (rc == TG_CHUNK_ERROR) {
                free(out);
                return NULL;
            }
            off += skip;
            if (rc == TG_CHUNK_DATA) {
                memcpy(out + olen, in + off, dat);
                olen += dat;
                off += dat;
                continue;
            }
            if (rc == TG_CHUNK_DONE) {
                *done = true;
                *consumed = off;
                out[olen] = '\0';
                return out;
            }
            break; /* need more */
        }
    }
    *consumed = off;
    out[olen] = '\0';
    return out;
}

static void test_chunked_every_split(void **state)
{
    (void)state;
    static const struct {
        int line;
        const char *in;
        const char *payload; /* NULL = error */
        bool done;
    } rows[] = {
        {__LINE__, "5\r\nhello\r\n0\r\n\r\n", "hello", true},
        {__LINE__, "5\nhello\n0\n\n", "hello", true},
        {__LINE__, "5;name=v\r\nhello\r\n6\r\n world\r\n0\r\n\r\n", "hello world", true},
        {__LINE__, "A\r\n0123456789\r\n0\r\nX-T: 1\r\nY: 2\r\n\r\n", "0123456789", true},
        {__LINE__, "3\r\nabc\r\n", "abc", false},
        {__LINE__, "3 \r\nabc\r\n0\r\n\r\n", "abc", true},
        {__LINE__, "g\r\n", NULL, false},
        {__LINE__, "3\r\nabcX\r\n", NULL, false},
        {__LINE__, "\r\n", NULL, false},
        {__LINE__, "1000000000000000\r\n", NULL, false},
    };
    for (size_t i = 0; i < TG_ARRAY_LEN(rows); i++) {
        size_t len = strlen(rows[i].in);
        /* whole, every split point (two pieces), and byte by byte */
        for (size_t cut = 0; cut <= len + 1; cut++) {
            size_t sizes[2] = {cut == 0 ? 1 : cut, len};
            size_t nsizes = 2;
            if (cut == len + 1) {
                sizes[0] = 1;
                nsizes = 1;
            }
            bool done;
            size_t consumed;
            char *out = decode_pieces(rows[i].in, len, sizes, nsizes, &done, &consumed);
            if (rows[i].payload == NULL) {
                if (out != NULL)
                    fail_msg("line %d cut %zu: expected error", rows[i].line, cut);
                continue;
            }
            if (out == NULL || strcmp(out, rows[i].payload) != 0 || done != rows[i].done)
                fail_msg("line %d cut %zu: got %s done=%d", rows[i].line, cut,
                         out ? out : "(error)", done);
            if (done)
                assert_int_equal(consumed, len);
            free(out);
        }
    }
}

static void test_chunked_random(void **state)
{
    (void)state;
    srand(42);
    for (int iter = 0; iter < 200; iter++) {
        char *in = malloc(300000), *expect = malloc(200000);
        size_t n = 0, e = 0;
        int chunks = rand() % 20;
        for (int k = 0; k < chunks; k++) {
            size_t sz = (size_t)(rand() % 5000) + 1;
            n += (size_t)sprintf(in + n, "%zx\r\n", sz);
            for (size_t j = 0; j < sz; j++) {
                char ch = (char)('a' + rand() % 26);
                in[n++] = ch;
                expect[e++] = ch;
            }
            in[n++] = '\r';
            in[n++] = '\n';
        }
        n += (size_t)sprintf(in + n, "0\r\n\r\n");
        expect[e] = '\0';
        size_t sizes[3] = {(size_t)(rand() % 7) + 1, (size_t)(rand() % 65536) + 1,
                           (size_t)(rand() % 100) + 1};
        bool done;
        size_t consumed;
        char *out = decode_pieces(in, n, sizes, 3, &done, &consumed);
        assert_non_null(out);
        assert_true(done);
        assert_int_equal(consumed, n);
        assert_string_equal(out, expect);
        free(out);
        free(in);
        free(expect);
    }
}

static void test_unfinished_credential(void **state)
{
    (void)state;
#define UC(s) tg_http_unfinished_credential(s, sizeof(s) - 1)
    assert_int_equal(
        UC("POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer abc"),
        strlen(" Bearer abc"));
    assert_int_equal(UC("GET / HTTP/1.1\r\nauthorization:tok"), 3);
    assert_int_equal(UC("GET / HTTP/1.1\r\nX-API-KEY: tg-1234"), strlen(" tg-1234"));
    assert_int_equal(UC("GET / HTTP/1.1\r\napi-key: k"), 2);
    /* the credential line is finished: the overflow is elsewhere */
    assert_int_equal(UC("GET / HTTP/1.1\r\nAuthorization: Bearer abc\r\nX-Pad: aaaa"), 0);
    /* other headers, names that only start alike, no colon yet, the request line */
    assert_int_equal(UC("GET / HTTP/1.1\r\nX-Authorization: Bearer abc"), 0);
    assert_int_equal(UC("GET / HTTP/1.1\r\nAuthorizations: Bearer abc"), 0);
    assert_int_equal(UC("GET / HTTP/1.1\r\nAuthorization"), 0);
    assert_int_equal(UC("GET /aaaaaaaaaaaaaaaaaaaaaaaaaaaa"), 0);
    assert_int_equal(tg_http_unfinished_credential("", 0), 0);
#undef UC
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_request_heads),    cmocka_unit_test(test_request_fields_and_splits),
        cmocka_unit_test(test_too_many_headers), cmocka_unit_test(test_response_heads),
        cmocka_unit_test(test_tokens_and_hop),   cmocka_unit_test(test_chunked_every_split),
        cmocka_unit_test(test_chunked_random),   cmocka_unit_test(test_unfinished_credential),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
