/* test_bench_http.c: the benchmark clients' response parser (whole, at every split point, in
 * random pieces) and latency histogram. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "bench_http.h"

struct collect {
    char body[4096];
    size_t len;
};

static void on_body(void *arg, const char *p, size_t n)
{
    struct collect *c = arg;
    assert_true(c->len + n < sizeof(c->body));
    memcpy(c->body + c->len, p, n);
    c->len += n;
}

/* Feeds `in` in pieces of the given sizes (0-terminated list; the rest in one piece), then EOF
 * when `eof`. Writes a summary: one "STATUS[c]:BODY|" per response ('c' when it asked to
 * close), then "need" (in the middle of a response), "idle" (between responses), "error" or,
 * after EOF, "eof-done" / "eof-error". */
static void run_parser(const char *in, size_t len, const size_t *pieces, bool eof, char *out,
                       size_t cap)
{
    static struct tg_bench_resp r;
    struct collect col = {0};
    memset(&r, 0, sizeof(r));
    r.on_body = on_body;
    r.body_arg = &col;
    tg_bench_resp_init(&r);
    size_t off = 0, pi = 0, used_out = 0;
    bool started = false, failed = false;
    out[0] = '\0';
    while (off < len && !failed) {
        size_t n = len - off;
        if (pieces != NULL && pieces[pi] != 0) {
            n = pieces[pi] < n ? pieces[pi] : n;
            pi++;
        }
        const char *p = in + off;
        size_t left = n;
        while (left > 0) {
            size_t used = 0;
            int rc = tg_bench_resp_feed(&r, p, left, &used);
            assert_true(used <= left);
            started = true;
            if (rc == TG_BENCH_RESP_ERROR) {
                failed = true;
                break;
            }
            if (rc == TG_BENCH_RESP_NEED_MORE) {
                assert_int_equal(used, left);
            } else {
                used_out += (size_t)snprintf(out + used_out, cap - used_out, "%d%s:%.*s|", r.status,
                                             r.should_close ? "c" : "", (int)col.len, col.body);
                col.len = 0;
                tg_bench_resp_init(&r);
                started = false;
            }
            p += used;
            left -= used;
        }
        off += n;
    }
    if (failed) {
        snprintf(out + used_out, cap - used_out, "error");
        return;
    }
    if (eof) {
        int rc = tg_bench_resp_eof(&r);
        if (rc == TG_BENCH_RESP_DONE)
            snprintf(out + used_out, cap - used_out, "%d%s:%.*s|eof-done", r.status,
                     r.should_close ? "c" : "", (int)col.len, col.body);
        else
            snprintf(out + used_out, cap - used_out, "eof-error");
        return;
    }
    bool mid = started && (r.status != 0 || r.line_len > 0);
    snprintf(out + used_out, cap - used_out, "%s", mid ? "need" : "idle");
}

struct resp_case {
    int line;
    const char *in;
    bool eof;
    const char *want;
};

static const struct resp_case resp_cases[] = {
    {__LINE__, "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello", false, "200:hello|idle"},
    {__LINE__, "HTTP/1.1 200 OK\r\ncontent-length:5\r\nServer: x\r\n\r\nhello", false,
     "200:hello|idle"},
    {__LINE__, "HTTP/1.1 200 OK\nContent-Length: 2\n\nhi", false, "200:hi|idle"},
    {__LINE__,
     "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6;ext=1\r\n world\r\n"
     "0\r\n\r\n",
     false, "200:hello world|idle"},
    {__LINE__,
     "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, Chunked\r\n\r\nA\r\n0123456789\r\n0\r\n"
     "X-Trailer: 1\r\n\r\n",
     false, "200:0123456789|idle"},
    {__LINE__,
     "HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\naHTTP/1.1 404 Not Found\r\nContent-Length: "
     "2\r\n\r\nno",
     false, "200:a|404:no|idle"},
    {__LINE__, "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 201 Created\r\nContent-Length: 2\r\n\r\nok",
     false, "201:ok|idle"},
    {__LINE__, "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 1\r\n\r\nx", false,
     "200c:x|idle"},
    {__LINE__, "HTTP/1.0 200 OK\r\nContent-Length: 1\r\n\r\nx", false, "200c:x|idle"},
    {__LINE__, "HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 1\r\n\r\nx", false,
     "200:x|idle"},
    {__LINE__, "HTTP/1.1 200 OK\r\n\r\nuntil close", true, "200c:until close|eof-done"},
    {__LINE__, "HTTP/1.1 204 No Content\r\n\r\n", false, "204:|idle"},
    {__LINE__, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", false, "200:|idle"},
    {__LINE__, "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nhalf", false, "need"},
    {__LINE__, "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nhalf", true, "eof-error"},
    {__LINE__, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhel", true, "eof-error"},
    {__LINE__, "HTTP/1.1 200 OK\r\nContent-Le", false, "need"},
    {__LINE__, "", true, "eof-error"},
    {__LINE__, "HTTX/1.1 200 OK\r\n\r\n", false, "error"},
    {__LINE__, "HTTP/1.1 2x0 OK\r\n\r\n", false, "error"},
    {__LINE__, "HTTP/1.1 200OK\r\n\r\n", false, "error"},
    {__LINE__, "HTTP/1.1 200 OK\r\nNoColon\r\n\r\n", false, "error"},
    {__LINE__, "HTTP/1.1 200 OK\r\nContent-Length: 1x\r\n\r\n", false, "error"},
    {__LINE__, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", false, "error"},
    {__LINE__, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nab\r\n", false, "error"},
};

static void test_resp_cases(void **state)
{
    (void)state;
    char whole[8192], got[8192];
    srand(12345);
    for (size_t i = 0; i < TG_ARRAY_LEN(resp_cases); i++) {
        const struct resp_case *c = &resp_cases[i];
        size_t len = strlen(c->in);
        run_parser(c->in, len, NULL, c->eof, whole, sizeof(whole));
        if (strcmp(whole, c->want) != 0)
            fail_msg("line %d: whole input: got [%s], want [%s]", c->line, whole, c->want);
        /* every split point */
        for (size_t k = 1; k < len; k++) {
            size_t pieces[] = {k, 0};
            run_parser(c->in, len, pieces, c->eof, got, sizeof(got));
            if (strcmp(got, c->want) != 0)
                fail_msg("line %d: split at %zu: got [%s], want [%s]", c->line, k, got, c->want);
        }
        /* byte by byte and random pieces */
        for (int round = 0; round < 50; round++) {
            size_t pieces[9000];
            size_t np = 0, sum = 0;
            while (sum < len && np + 1 < TG_ARRAY_LEN(pieces)) {
                size_t p = round == 0 ? 1 : 1 + (size_t)rand() % 7;
                pieces[np++] = p;
                sum += p;
            }
            pieces[np] = 0;
            run_parser(c->in, len, pieces, c->eof, got, sizeof(got));
            if (strcmp(got, c->want) != 0)
                fail_msg("line %d: round %d: got [%s], want [%s]", c->line, round, got, c->want);
        }
    }
}

static void test_resp_long_line(void **state)
{
    (void)state;
    static char in[TG_BENCH_RESP_LINE_MAX + 64];
    int n = snprintf(in, sizeof(in), "HTTP/1.1 200 OK\r\nX-Long: ");
    memset(in + n, 'a', TG_BENCH_RESP_LINE_MAX);
    n += TG_BENCH_RESP_LINE_MAX;
    memcpy(in + n, "\r\n\r\n", 4);
    n += 4;
    char got[64];
    run_parser(in, (size_t)n, NULL, false, got, sizeof(got));
    assert_string_equal(got, "error");
}

struct hist_case {
    int line;
    uint64_t value;
    size_t index;
    uint64_t top;
};

static const struct hist_case hist_cases[] = {
    {__LINE__, 0, 0, 0},
    {__LINE__, 1, 1, 1},
    {__LINE__, 2047, 2047, 2047},
    {__LINE__, 2048, 2048, 2049},
    {__LINE__, 2049, 2048, 2049},
    {__LINE__, 2050, 2049, 2051},
    {__LINE__, 4095, 3071, 4095},
    {__LINE__, 4096, 3072, 4099},
    {__LINE__, 1000000, 2048 + 8 * 1024 + (1000000 >> 9) - 1024, ((1000000 >> 9) << 9) + 511},
};

static void test_hist_index(void **state)
{
    (void)state;
    for (size_t i = 0; i < TG_ARRAY_LEN(hist_cases); i++) {
        const struct hist_case *c = &hist_cases[i];
        if (tg_bench_hist_index(c->value) != c->index)
            fail_msg("line %d: index of %llu: got %zu, want %zu", c->line,
                     (unsigned long long)c->value, tg_bench_hist_index(c->value), c->index);
        if (tg_bench_hist_bucket_top(c->index) != c->top)
            fail_msg("line %d: top of %zu: got %llu, want %llu", c->line, c->index,
                     (unsigned long long)tg_bench_hist_bucket_top(c->index),
                     (unsigned long long)c->top);
    }
    /* every value falls in a bucket whose range holds it, with < 0.1 % error */
    size_t prev = 0;
    for (uint64_t v = 0; v < ((uint64_t)1 << 26); v += 1 + v / 3000) {
        size_t idx = tg_bench_hist_index(v);
        assert_true(idx >= prev);
        prev = idx;
        uint64_t top = tg_bench_hist_bucket_top(idx);
        assert_true(top >= v);
        assert_true(idx == 0 || tg_bench_hist_bucket_top(idx - 1) < v);
        assert_true((double)(top - v) <= (double)v * 0.001 + 1e-9);
    }
    /* huge values land in the last bucket */
    assert_int_equal(tg_bench_hist_index(UINT64_MAX), TG_BENCH_HIST_BUCKETS - 1);
}

struct pct_case {
    int line;
    double pct;
    uint64_t want;
};

static void test_hist_percentiles(void **state)
{
    (void)state;
    static struct tg_bench_hist h, h2, merged;
    assert_int_equal(tg_bench_hist_percentile(&h, 50), 0);
    for (uint64_t v = 1; v <= 1000; v++)
        tg_bench_hist_record(&h, v);
    static const struct pct_case cases[] = {
        {__LINE__, 50, 500},   {__LINE__, 90, 900}, {__LINE__, 99, 990},   {__LINE__, 99.9, 999},
        {__LINE__, 100, 1000}, {__LINE__, 0.01, 1}, {__LINE__, 150, 1000},
    };
    for (size_t i = 0; i < TG_ARRAY_LEN(cases); i++) {
        uint64_t got = tg_bench_hist_percentile(&h, cases[i].pct);
        if (got != cases[i].want)
            fail_msg("line %d: p%g: got %llu, want %llu", cases[i].line, cases[i].pct,
                     (unsigned long long)got, (unsigned long long)cases[i].want);
    }
    assert_int_equal(h.count, 1000);
    assert_int_equal(h.min_us, 1);
    assert_int_equal(h.max_us, 1000);
    assert_int_equal(h.sum_us, 500500);
    /* above the exact range: within 0.1 %, and the maximum exactly */
    tg_bench_hist_record(&h2, 123456);
    tg_bench_hist_record(&h2, 7654321);
    uint64_t p50 = tg_bench_hist_percentile(&h2, 50);
    assert_true(p50 >= 123456 && p50 <= 123456 + 123);
    assert_int_equal(tg_bench_hist_percentile(&h2, 100), 7654321);
    tg_bench_hist_merge(&merged, &h);
    tg_bench_hist_merge(&merged, &h2);
    assert_int_equal(merged.count, 1002);
    assert_int_equal(merged.min_us, 1);
    assert_int_equal(merged.max_us, 7654321);
    assert_int_equal(tg_bench_hist_percentile(&merged, 50), 501);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_resp_cases),
        cmocka_unit_test(test_resp_long_line),
        cmocka_unit_test(test_hist_index),
        cmocka_unit_test(test_hist_percentiles),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
