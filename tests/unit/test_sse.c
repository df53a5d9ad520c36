/* Unit tests for meter/sse.c: framing rows at every split, fixtures, chunkings, limits. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "meter/sse.h"

/* ---- recording harness ------------------------------------------------------------------- */

struct rec_ev {
    char *name;
    size_t name_len;
    char *data;
    size_t data_len;
    uint64_t end; /* absolute offset just past the event's raw bytes */
};

struct rec {
    struct rec_ev *ev;
    size_t n, cap;
    uint64_t base;   /* absolute offset of the buffer being fed */
    size_t buf_len;  /* its length */
    uint64_t total;  /* bytes fed so far (for events dispatched by finish) */
    bool in_finish;  /* inside tg_sse_finish */
    int stop_every;  /* return 7 from every stop_every-th event (0: never) */
    size_t last_end; /* end_offset of the last event */
};

static char *dup_bytes(const char *p, size_t n)
{
    char *d = malloc(n + 1);
    assert_non_null(d);
    if (n > 0)
        memcpy(d, p, n);
    d[n] = '\0';
    return d;
}

static int on_event(const struct tg_sse_event *ev, void *arg)
{
    struct rec *r = arg;
    assert_non_null(ev->event);
    assert_non_null(ev->data);
    if (r->in_finish)
        assert_int_equal(ev->end_offset, 0);
    else
        assert_true(ev->end_offset <= r->buf_len);
    if (r->n == r->cap) {
        r->cap = r->cap ? r->cap * 2 : 16;
        r->ev = realloc(r->ev, r->cap * sizeof(*r->ev));
        assert_non_null(r->ev);
    }
    struct rec_ev *e = &r->ev[r->n++];
    e->name = dup_bytes(ev->event, ev->event_len);
    e->name_len = ev->event_len;
    e->data = dup_bytes(ev->data, ev->data_len);
    e->data_len = ev->data_len;
    e->end = r->in_finish ? r->total : r->base + ev->end_offset;
    r->last_end = ev->end_offset;
    if (r->stop_every > 0 && r->n % (size_t)r->stop_every == 0)
        return 7;
    return 0;
}

static void rec_free(struct rec *r)
{
    for (size_t i = 0; i < r->n; i++) {
        free(r->ev[i].name);
        free(r->ev[i].data);
    }
    free(r->ev);
    memset(r, 0, sizeof(*r));
}

/* Feeds in[0..len) cut at cuts[] (ascending), then finishes. Resumes after callback stops
 * from the stopping event's end_offset. Returns 0 or the parser's error. */
static int drive(const char *in, size_t len, const size_t *cuts, size_t ncuts, size_t max,
                 int stop_every, struct rec *r)
{
    struct tg_sse_parser p;
    memset(&p, 0, sizeof(p));
    p.max_event_bytes = max;
    memset(r, 0, sizeof(*r));
    r->stop_every = stop_every;
    size_t start = 0;
    int rc = 0;
    for (size_t c = 0; c <= ncuts && rc == 0; c++) {
        size_t end = c < ncuts ? cuts[c] : len;
        const char *buf = in + start;
        size_t blen = end - start;
        while (rc == 0) {
            r->base = (uint64_t)(buf - in);
            r->buf_len = blen;
            r->total = r->base + blen;
            rc = tg_sse_feed(&p, buf, blen, on_event, r);
            if (rc != 7)
                break;
            rc = 0;
            buf += r->last_end;
            blen -= r->last_end;
        }
        start = end;
    }
    if (rc == 0) {
        r->in_finish = true;
        r->total = len;
        for (;;) {
            rc = tg_sse_finish(&p, on_event, r);
            if (rc != 7)
                break;
            rc = 0;
        }
        r->in_finish = false;
    }
    tg_sse_cleanup(&p);
    return rc;
}

static void assert_same(const struct rec *a, const struct rec *b, const char *what, size_t k)
{
    if (a->n != b->n)
        fail_msg("%s (%zu): %zu events vs %zu", what, k, a->n, b->n);
    for (size_t i = 0; i < a->n; i++) {
        const struct rec_ev *x = &a->ev[i], *y = &b->ev[i];
        if (x->name_len != y->name_len || memcmp(x->name, y->name, x->name_len) != 0 ||
            x->data_len != y->data_len || memcmp(x->data, y->data, x->data_len) != 0 ||
            x->end != y->end)
            fail_msg("%s (%zu): event %zu differs: [%s|%s|%llu] vs [%s|%s|%llu]", what, k, i,
                     x->name, x->data, (unsigned long long)x->end, y->name, y->data,
                     (unsigned long long)y->end);
    }
}

static uint64_t rng_next(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

/* Random cut points with chunk sizes in [1, maxchunk]; returns the count. */
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

/* Runs in[] whole, at every split point, at every pair of split points (short inputs),
 * byte by byte, in random chunkings and with callback stops; all must match `whole`. */
static int check_all_splits(const char *in, size_t len, size_t max, struct rec *whole)
{
    int rc = drive(in, len, NULL, 0, max, 0, whole);
    struct rec r;
    size_t *cuts = malloc((len + 1) * sizeof(size_t));
    assert_non_null(cuts);
    for (size_t k = 1; k < len && len <= 16384; k++) {
        cuts[0] = k;
        assert_int_equal(drive(in, len, cuts, 1, max, 0, &r), rc);
        assert_same(whole, &r, "split", k);
        rec_free(&r);
    }
    for (size_t a = 1; a < len && len <= 96; a++) {
        for (size_t b = a + 1; b < len; b++) {
            cuts[0] = a;
            cuts[1] = b;
            assert_int_equal(drive(in, len, cuts, 2, max, 0, &r), rc);
            assert_same(whole, &r, "split2", a * 1000 + b);
            rec_free(&r);
        }
    }
    size_t n = 0;
    for (size_t k = 1; k < len; k++)
        cuts[n++] = k;
    assert_int_equal(drive(in, len, cuts, n, max, 0, &r), rc);
    assert_same(whole, &r, "bytewise", 0);
    rec_free(&r);
    static const size_t maxchunks[] = {1, 2, 3, 7, 16, 100, 1000, 4096, 65536};
    for (uint64_t seed = 1; seed <= 40; seed++) {
        uint64_t s = seed * 0x9E3779B97F4A7C15ull;
        size_t mc = maxchunks[seed % TG_ARRAY_LEN(maxchunks)];
        n = random_cuts(len, mc, &s, cuts);
        assert_int_equal(drive(in, len, cuts, n, max, 0, &r), rc);
        assert_same(whole, &r, "random", (size_t)seed);
        rec_free(&r);
        /* the same chunking, stopping in the callback at every event and resuming */
        int got = drive(in, len, cuts, n, max, 1, &r);
        assert_int_equal(got, rc);
        assert_same(whole, &r, "stop", (size_t)seed);
        rec_free(&r);
    }
    free(cuts);
    return rc;
}

/* ---- table of framing rows ----------------------------------------------------------------- */

struct exp_ev {
    const char *name;
    const char *data;
    size_t data_len; /* 0: strlen(data) */
    uint64_t end;
};

struct row {
    int line;
    const char *in;
    size_t len; /* 0: strlen(in) */
    size_t max; /* max_event_bytes (0: default) */
    int rc;
    struct exp_ev ev[4];
};

static const struct row rows[] = {
    {__LINE__, "data: a\n\n", 0, 0, 0, {{"", "a", 0, 9}}},
    {__LINE__, "data:a\n\n", 0, 0, 0, {{"", "a", 0, 8}}},
    {__LINE__, "data:  a \n\n", 0, 0, 0, {{"", " a ", 0, 11}}},
    {__LINE__, "data: a\r\n\r\n", 0, 0, 0, {{"", "a", 0, 11}}},
    {__LINE__, "data: a\r\r", 0, 0, 0, {{"", "a", 0, 9}}},
    {__LINE__, "data: a\r\rdata: b\r\r", 0, 0, 0, {{"", "a", 0, 9}, {"", "b", 0, 18}}},
    {__LINE__, "data: a\n\r\ndata: b\n\n", 0, 0, 0, {{"", "a", 0, 10}, {"", "b", 0, 19}}},
    {__LINE__, "data: a\n\rdata: b\n\n", 0, 0, 0, {{"", "a", 0, 9}, {"", "b", 0, 18}}},
    {__LINE__, "data: a\r\r\ndata: b\n\n", 0, 0, 0, {{"", "a", 0, 10}, {"", "b", 0, 19}}},
    {__LINE__, "data: a\r\n\ndata: b\n\n", 0, 0, 0, {{"", "a", 0, 10}, {"", "b", 0, 19}}},
    {__LINE__, "data: a\r\ndata: b\r\n\r\n", 0, 0, 0, {{"", "a\nb", 0, 20}}},
    {__LINE__, "data: a\rdata: b\r\r", 0, 0, 0, {{"", "a\nb", 0, 17}}},
    {__LINE__, "data: a\ndata: b\ndata:\ndata: c\n\n", 0, 0, 0, {{"", "a\nb\n\nc", 0, 31}}},
    /* BOM */
    {__LINE__,
     "\xEF\xBB\xBF"
     "data: x\n\n",
     0,
     0,
     0,
     {{"", "x", 0, 12}}},
    {__LINE__,
     "\xEF\xBB\xBF\xEF\xBB\xBF"
     "data: x\n\n",
     0,
     0,
     0,
     {{NULL, NULL, 0, 0}}},
    {__LINE__,
     "\xEF\xBB"
     "data: x\n\n",
     0,
     0,
     0,
     {{NULL, NULL, 0, 0}}},
    {__LINE__,
     "\xEF\xBB\xBF"
     "\n"
     "data: x\n\n",
     0,
     0,
     0,
     {{"", "x", 0, 13}}},
    {__LINE__,
     "data: x\n\n\xEF\xBB\xBF"
     "data: y\n\n",
     0,
     0,
     0,
     {{"", "x", 0, 9}}},
    {__LINE__, "\xEF\xBB\xBF", 0, 0, 0, {{NULL, NULL, 0, 0}}},
    {__LINE__, "\xEF", 0, 0, 0, {{NULL, NULL, 0, 0}}},
    /* comments, blank lines, ignored fields */
    {__LINE__, ": hi\n\n", 0, 0, 0, {{NULL, NULL, 0, 0}}},
    {__LINE__, ": hi\n: there\n\n\n", 0, 0, 0, {{NULL, NULL, 0, 0}}},
    {__LINE__, "\n\n\ndata: x\n\n", 0, 0, 0, {{"", "x", 0, 12}}},
    {__LINE__, ": c\ndata: x\n: in\ndata: y\n\n", 0, 0, 0, {{"", "x\ny", 0, 26}}},
    {__LINE__, "id: 5\n\n", 0, 0, 0, {{NULL, NULL, 0, 0}}},
    {__LINE__, "retry: 10\nid: 1\ndata: x\n\n", 0, 0, 0, {{"", "x", 0, 25}}},
    {__LINE__, "foo: bar\n\n", 0, 0, 0, {{NULL, NULL, 0, 0}}},
    {__LINE__, "dat: x\ndatas: x\nData: x\n data: x\nevents: e\n\n", 0, 0, 0, {{NULL}}},
    {__LINE__, "data: a:b: c\n\n", 0, 0, 0, {{"", "a:b: c", 0, 14}}},
    /* event names */
    {__LINE__, "event: foo\ndata: bar\n\n", 0, 0, 0, {{"foo", "bar", 0, 22}}},
    {__LINE__, "data: a\nevent: foo\ndata: b\n\n", 0, 0, 0, {{"foo", "a\nb", 0, 28}}},
    {__LINE__, "event: a\nevent: bbb\ndata: x\n\n", 0, 0, 0, {{"bbb", "x", 0, 29}}},
    {__LINE__, "event: long\ndata: xy\nevent: s\n\n", 0, 0, 0, {{"s", "xy", 0, 31}}},
    {__LINE__, "data: xy\nevent: long\nevent: s\n\n", 0, 0, 0, {{"s", "xy", 0, 31}}},
    {__LINE__, "event: ping\n\n", 0, 0, 0, {{"ping", "", 0, 13}}},
    {__LINE__, "event:\n\n", 0, 0, 0, {{NULL, NULL, 0, 0}}},
    {__LINE__, "event: \n\n", 0, 0, 0, {{NULL, NULL, 0, 0}}},
    {__LINE__, "event: x\nevent:\n\n", 0, 0, 0, {{NULL, NULL, 0, 0}}},
    {__LINE__, "event:a\n\nevent: b\n\n", 0, 0, 0, {{"a", "", 0, 9}, {"b", "", 0, 19}}},
    /* fields without colon, empty data */
    {__LINE__, "data\n\n", 0, 0, 0, {{"", "", 0, 6}}},
    {__LINE__, "data\ndata\n\n", 0, 0, 0, {{"", "\n", 0, 11}}},
    {__LINE__, "event\ndata: x\n\n", 0, 0, 0, {{"", "x", 0, 15}}},
    {__LINE__, "data:\n\n", 0, 0, 0, {{"", "", 0, 7}}},
    {__LINE__, "data: \n\n", 0, 0, 0, {{"", "", 0, 8}}},
    {__LINE__, "data: a\0b\n\n", 11, 0, 0, {{"", "a\0b", 3, 11}}},
    /* end of stream without a blank line */
    {__LINE__, "data: x\n", 0, 0, 0, {{"", "x", 0, 8}}},
    {__LINE__, "data: x", 0, 0, 0, {{"", "x", 0, 7}}},
    {__LINE__, "data: x\r", 0, 0, 0, {{"", "x", 0, 8}}},
    {__LINE__, "data: x\r\n", 0, 0, 0, {{"", "x", 0, 9}}},
    {__LINE__, "data: x\n\ndata: y", 0, 0, 0, {{"", "x", 0, 9}, {"", "y", 0, 16}}},
    {__LINE__, "event: e", 0, 0, 0, {{"e", "", 0, 8}}},
    {__LINE__, "data", 0, 0, 0, {{"", "", 0, 4}}},
    {__LINE__, "data:", 0, 0, 0, {{"", "", 0, 5}}},
    {__LINE__, ": c", 0, 0, 0, {{NULL, NULL, 0, 0}}},
    {__LINE__, "", 0, 0, 0, {{NULL, NULL, 0, 0}}},
    /* limits: the raw bytes of one event (and any single line) */
    {__LINE__, "data: 01234567\n\n", 0, 16, 0, {{"", "01234567", 0, 16}}},
    {__LINE__, "data: 012345678\n\n", 0, 16, TG_SSE_ERR_TOO_BIG, {{NULL, NULL, 0, 0}}},
    {__LINE__, "data: 0123\ndata: 4567\n\n", 0, 16, TG_SSE_ERR_TOO_BIG, {{NULL}}},
    {__LINE__, ": xx\ndata: 01234567\n\n", 0, 16, 0, {{"", "01234567", 0, 21}}},
    {__LINE__, ": 0123456789abc\n\n", 0, 16, 0, {{NULL, NULL, 0, 0}}},
    {__LINE__, ": 0123456789abcd\n\n", 0, 16, TG_SSE_ERR_TOO_BIG, {{NULL}}},
    {__LINE__, "id: 0123456789abc\n\n", 0, 16, TG_SSE_ERR_TOO_BIG, {{NULL}}},
    {__LINE__,
     "data: a\n\ndata: 0123456789abcdef\n\ndata: b\n\n",
     0,
     16,
     TG_SSE_ERR_TOO_BIG,
     {{"", "a", 0, 9}}},
    {__LINE__, "data: 01234567\r\n\r\n", 0, 16, TG_SSE_ERR_TOO_BIG, {{NULL}}},
    {__LINE__, "data: 0123456\r\r", 0, 16, 0, {{"", "0123456", 0, 15}}},
    {__LINE__, "data: 0123456\r\r\n", 0, 16, 0, {{"", "0123456", 0, 16}}},
    {__LINE__, "data: 01234567\r\r\n", 0, 16, TG_SSE_ERR_TOO_BIG, {{NULL}}},
    {__LINE__, "data: 0123456789abcdef", 0, 16, TG_SSE_ERR_TOO_BIG, {{NULL}}},
    {__LINE__, "event: 0123456789\n\n", 0, 16, TG_SSE_ERR_TOO_BIG, {{NULL}}},
    {__LINE__, "event: ab\ndata: cd\n\n", 0, 20, 0, {{"ab", "cd", 0, 20}}},
};

static void test_rows(void **state)
{
    (void)state;
    for (size_t i = 0; i < TG_ARRAY_LEN(rows); i++) {
        const struct row *w = &rows[i];
        size_t len = w->len ? w->len : strlen(w->in);
        struct rec whole;
        int rc = check_all_splits(w->in, len, w->max, &whole);
        if (rc != w->rc)
            fail_msg("line %d: rc %d, want %d", w->line, rc, w->rc);
        size_t want = 0;
        while (want < TG_ARRAY_LEN(w->ev) && w->ev[want].name != NULL)
            want++;
        if (whole.n != want)
            fail_msg("line %d: %zu events, want %zu", w->line, whole.n, want);
        for (size_t k = 0; k < want; k++) {
            const struct exp_ev *e = &w->ev[k];
            size_t dl = e->data_len ? e->data_len : strlen(e->data);
            const struct rec_ev *g = &whole.ev[k];
            if (g->name_len != strlen(e->name) || memcmp(g->name, e->name, g->name_len) != 0 ||
                g->data_len != dl || memcmp(g->data, e->data, dl) != 0 || g->end != e->end)
                fail_msg("line %d: event %zu = [%s|%s|%llu]", w->line, k, g->name, g->data,
                         (unsigned long long)g->end);
        }
        rec_free(&whole);
    }
}

/* ---- fixtures ------------------------------------------------------------------------------ */

static char *read_file(const char *name, size_t *len)
{
    char path[1024];
    snprintf(path, sizeof(path), "%s/streams/%s", TG_FIXTURES_DIR, name);
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        fail_msg("cannot open %s", path);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = malloc((size_t)n + 1);
    assert_non_null(buf);
    assert_int_equal(fread(buf, 1, (size_t)n, f), (size_t)n);
    fclose(f);
    *len = (size_t)n;
    return buf;
}

static const struct {
    int line;
    const char *file;
    size_t events;
} fixtures[] = {
    {__LINE__, "chat_usage.sse", 7},
    {__LINE__, "chat_no_usage.sse", 6},
    {__LINE__, "chat_tool_calls.sse", 8},
    {__LINE__, "chat_reasoning.sse", 8},
    {__LINE__, "chat_n2.sse", 9},
    {__LINE__, "completions.sse", 5},
    {__LINE__, "responses.sse", 9},
    {__LINE__, "responses_failed.sse", 4},
    {__LINE__, "responses_crlf.sse", 9},
    {__LINE__, "anthropic.sse", 17},
    {__LINE__, "anthropic_error.sse", 9},
    {__LINE__, "litellm_first_error.sse", 1},
    {__LINE__, "chat_midstream_error.sse", 3},
    {__LINE__, "chat_keepalive.sse", 5},
    {__LINE__, "chat_crlf.sse", 7},
    {__LINE__, "chat_cr.sse", 7},
    {__LINE__, "chat_bom_noterm.sse", 7},
};

/* Each event's raw range [previous end, end) parsed alone gives exactly that event. */
static void check_raw_ranges(const char *in, size_t len, const struct rec *whole, int line)
{
    uint64_t prev = 0;
    for (size_t i = 0; i < whole->n; i++) {
        const struct rec_ev *e = &whole->ev[i];
        assert_true(e->end > prev && e->end <= len);
        struct rec one;
        assert_int_equal(drive(in + prev, (size_t)(e->end - prev), NULL, 0, 0, 0, &one), 0);
        if (one.n != 1 || one.ev[0].end != e->end - prev || one.ev[0].data_len != e->data_len ||
            memcmp(one.ev[0].data, e->data, e->data_len) != 0 ||
            strcmp(one.ev[0].name, e->name) != 0)
            fail_msg("line %d: raw range of event %zu does not reparse to it", line, i);
        rec_free(&one);
        prev = e->end;
    }
    /* what follows the last event holds no further event */
    struct rec rest;
    assert_int_equal(drive(in + prev, len - (size_t)prev, NULL, 0, 0, 0, &rest), 0);
    assert_int_equal(rest.n, 0);
    rec_free(&rest);
}

static void test_fixtures(void **state)
{
    (void)state;
    for (size_t i = 0; i < TG_ARRAY_LEN(fixtures); i++) {
        size_t len;
        char *in = read_file(fixtures[i].file, &len);
        struct rec whole;
        assert_int_equal(check_all_splits(in, len, 0, &whole), 0);
        if (whole.n != fixtures[i].events)
            fail_msg("line %d: %s: %zu events", fixtures[i].line, fixtures[i].file, whole.n);
        check_raw_ranges(in, len, &whole, fixtures[i].line);
        rec_free(&whole);
        free(in);
    }
}

/* The same events whatever the line ending style. */
static void test_line_endings_agree(void **state)
{
    (void)state;
    static const char *const sets[][3] = {
        {"chat_usage.sse", "chat_crlf.sse", "chat_cr.sse"},
        {"responses.sse", "responses_crlf.sse", "responses.sse"},
    };
    for (size_t s = 0; s < TG_ARRAY_LEN(sets); s++) {
        struct rec r[3];
        for (int k = 0; k < 3; k++) {
            size_t len;
            char *in = read_file(sets[s][k], &len);
            assert_int_equal(drive(in, len, NULL, 0, 0, 0, &r[k]), 0);
            free(in);
        }
        for (int k = 1; k < 3; k++) {
            assert_int_equal(r[0].n, r[k].n);
            for (size_t e = 0; e < r[0].n; e++) {
                assert_string_equal(r[0].ev[e].name, r[k].ev[e].name);
                assert_int_equal(r[0].ev[e].data_len, r[k].ev[e].data_len);
                assert_memory_equal(r[0].ev[e].data, r[k].ev[e].data, r[0].ev[e].data_len);
            }
        }
        for (int k = 0; k < 3; k++)
            rec_free(&r[k]);
    }
}

/* A long stream (about 1.5 MB, mixed line endings and comments) in random chunkings up to
 * 64 KiB: same events as whole. */
static void test_long_stream_chunkings(void **state)
{
    (void)state;
    size_t cap = 2u << 20, len = 0;
    char *in = malloc(cap);
    assert_non_null(in);
    static const char *const eols[] = {"\n", "\r\n", "\r"};
    for (int i = 0; len < cap - 4096; i++) {
        const char *eol = eols[i % 7 == 0 ? (size_t)(i / 7) % 3 : 0];
        int n = snprintf(in + len, cap - len,
                         "data: {\"id\":\"c\",\"choices\":[{\"index\":0,\"delta\":{\"content\":"
                         "\"tok%d \"},\"finish_reason\":null}],\"usage\":null}%s%s%s",
                         i, eol, i % 13 == 0 ? ": keep-alive" : "", eol);
        len += (size_t)n;
        if (i % 13 == 0) {
            memcpy(in + len, eol, strlen(eol));
            len += strlen(eol);
        }
    }
    struct rec whole, r;
    assert_int_equal(drive(in, len, NULL, 0, 0, 0, &whole), 0);
    assert_true(whole.n > 10000);
    size_t *cuts = malloc(len * sizeof(size_t));
    assert_non_null(cuts);
    static const size_t maxchunks[] = {65536, 4096, 1500, 300, 17};
    for (uint64_t seed = 1; seed <= 10; seed++) {
        uint64_t s = seed * 0x2545F4914F6CDD1Dull;
        size_t n = random_cuts(len, maxchunks[seed % TG_ARRAY_LEN(maxchunks)], &s, cuts);
        assert_int_equal(drive(in, len, cuts, n, 0, 0, &r), 0);
        assert_same(&whole, &r, "long", (size_t)seed);
        rec_free(&r);
    }
    free(cuts);
    rec_free(&whole);
    free(in);
}

/* ---- the proxy's use of the raw-offset contract ------------------------------------------- */

/* A model of the proxy: it holds the bytes fed since the last event (or idle flush), and on
 * each event forwards them or, for usage-only chunks, drops them. */
struct relay {
    char *held, *out;
    size_t held_len, out_len;
    const char *buf; /* the buffer being fed */
    size_t pos;      /* bytes of buf already given to an event */
    bool drop_usage;
};

static void put(char *dst, size_t *len, const char *p, size_t n)
{
    memcpy(dst + *len, p, n);
    *len += n;
}

static int relay_event(const struct tg_sse_event *ev, void *arg)
{
    struct relay *r = arg;
    put(r->held, &r->held_len, r->buf + r->pos, ev->end_offset - r->pos);
    r->pos = ev->end_offset;
    bool drop = r->drop_usage && memmem(ev->data, ev->data_len, "\"choices\":[]", 12) != NULL;
    if (!drop)
        put(r->out, &r->out_len, r->held, r->held_len);
    r->held_len = 0;
    return 0;
}

static void relay_run(const char *in, size_t len, const size_t *cuts, size_t ncuts, bool drop,
                      struct relay *r)
{
    struct tg_sse_parser p;
    memset(&p, 0, sizeof(p));
    r->held_len = r->out_len = 0;
    r->drop_usage = drop;
    size_t start = 0;
    for (size_t c = 0; c <= ncuts; c++) {
        size_t end = c < ncuts ? cuts[c] : len;
        r->buf = in + start;
        r->pos = 0;
        assert_int_equal(tg_sse_feed(&p, r->buf, end - start, relay_event, r), 0);
        put(r->held, &r->held_len, r->buf + r->pos, end - start - r->pos);
        if (tg_sse_is_idle(&p)) {
            put(r->out, &r->out_len, r->held, r->held_len);
            r->held_len = 0;
        }
        start = end;
    }
    r->buf = "";
    r->pos = 0;
    assert_int_equal(tg_sse_finish(&p, relay_event, r), 0);
    put(r->out, &r->out_len, r->held, r->held_len);
    tg_sse_cleanup(&p);
}

/* Forwarding every event reproduces the input byte for byte; dropping the usage-only chunk
 * removes exactly its bytes, for every chunking. */
static void test_relay_model(void **state)
{
    (void)state;
    static const char *const files[] = {"chat_usage.sse", "chat_keepalive.sse", "chat_crlf.sse",
                                        "chat_cr.sse", "chat_bom_noterm.sse"};
    for (size_t f = 0; f < TG_ARRAY_LEN(files); f++) {
        size_t len;
        char *in = read_file(files[f], &len);
        struct relay r = {.held = malloc(len + 1), .out = malloc(len + 1)};
        size_t *cuts = malloc((len + 1) * sizeof(size_t));
        assert_true(r.held && r.out && cuts);
        relay_run(in, len, NULL, 0, true, &r);
        char *expect = malloc(r.out_len + 1);
        assert_non_null(expect);
        size_t expect_len = r.out_len;
        memcpy(expect, r.out, expect_len);
        /* the dropped range is exactly one usage event: the output reparses without it */
        struct rec all, kept;
        assert_int_equal(drive(in, len, NULL, 0, 0, 0, &all), 0);
        assert_int_equal(drive(expect, expect_len, NULL, 0, 0, 0, &kept), 0);
        assert_int_equal(kept.n, all.n - 1);
        assert_true(expect_len < len);
        for (size_t k = 0; k <= len; k++) {
            size_t n = 0;
            if (k > 0 && k < len)
                cuts[n++] = k;
            relay_run(in, len, cuts, n, false, &r);
            assert_int_equal(r.out_len, len);
            assert_memory_equal(r.out, in, len);
            relay_run(in, len, cuts, n, true, &r);
            assert_int_equal(r.out_len, expect_len);
            assert_memory_equal(r.out, expect, expect_len);
        }
        size_t n = 0;
        for (size_t k = 1; k < len; k++)
            cuts[n++] = k;
        relay_run(in, len, cuts, n, true, &r);
        assert_int_equal(r.out_len, expect_len);
        assert_memory_equal(r.out, expect, expect_len);
        rec_free(&all);
        rec_free(&kept);
        free(expect);
        free(cuts);
        free(r.held);
        free(r.out);
        free(in);
    }
}

/* ---- state and API contracts ---------------------------------------------------------------- */

static int count_cb(const struct tg_sse_event *ev, void *arg)
{
    (void)ev;
    (*(int *)arg)++;
    return 0;
}

static void test_idle(void **state)
{
    (void)state;
    static const struct {
        int line;
        const char *in;
        bool idle;
    } idle_rows[] = {
        {__LINE__, "", true},
        {__LINE__, ": ping\n\n", true},
        {__LINE__, ": ping\n", true},
        {__LINE__, ": ping\r", true},
        {__LINE__, ": pi", false},
        {__LINE__, "data: x\n", false},
        {__LINE__, "data: x\n\n", true},
        {__LINE__, "data: x\n\r", false},
        {__LINE__, "data: x\r\r", false},
        {__LINE__, "data: x\r\r\n", true},
        {__LINE__, "id: 1\n", false},
        {__LINE__, "id: 1\n\n", true},
        {__LINE__, "\xEF", false},
        {__LINE__, "\xEF\xBB\xBF", true},
        {__LINE__, "data: x\n\n: c\n", true},
        {__LINE__, "event: e\n\n", true},
        {__LINE__, "event:\n", false},
    };
    for (size_t i = 0; i < TG_ARRAY_LEN(idle_rows); i++) {
        struct tg_sse_parser p;
        memset(&p, 0, sizeof(p));
        int n = 0;
        assert_int_equal(tg_sse_feed(&p, idle_rows[i].in, strlen(idle_rows[i].in), count_cb, &n),
                         0);
        if (tg_sse_is_idle(&p) != idle_rows[i].idle)
            fail_msg("line %d: idle=%d", idle_rows[i].line, !idle_rows[i].idle);
        tg_sse_cleanup(&p);
    }
}

static void test_sticky_error_and_reset(void **state)
{
    (void)state;
    struct tg_sse_parser p;
    memset(&p, 0, sizeof(p));
    p.max_event_bytes = 10;
    int n = 0;
    assert_int_equal(tg_sse_feed(&p, "data: 0123456789\n\n", 18, count_cb, &n), TG_SSE_ERR_TOO_BIG);
    assert_int_equal(tg_sse_feed(&p, "data: a\n\n", 9, count_cb, &n), TG_SSE_ERR_TOO_BIG);
    assert_int_equal(n, 0);
    tg_sse_reset(&p);
    assert_int_equal(p.max_event_bytes, 10);
    /* after a reset the BOM may appear again */
    assert_int_equal(tg_sse_feed(&p,
                                 "\xEF\xBB\xBF"
                                 "data: a\n\n",
                                 12, count_cb, &n),
                     0);
    assert_int_equal(n, 1);
    /* finish returns the sticky error too, and resets */
    assert_int_equal(tg_sse_feed(&p, "data: 0123456789", 16, count_cb, &n), TG_SSE_ERR_TOO_BIG);
    assert_int_equal(tg_sse_finish(&p, count_cb, &n), TG_SSE_ERR_TOO_BIG);
    assert_int_equal(tg_sse_feed(&p, "data: a\n\n", 9, count_cb, &n), 0);
    assert_int_equal(n, 2);
    tg_sse_cleanup(&p);
    assert_null(p.acc);
    tg_sse_cleanup(NULL);
}

static void test_reset_mid_event(void **state)
{
    (void)state;
    struct tg_sse_parser p;
    memset(&p, 0, sizeof(p));
    struct rec r;
    memset(&r, 0, sizeof(r));
    r.buf_len = 100;
    assert_int_equal(tg_sse_feed(&p, "event: x\ndata: partial", 22, on_event, &r), 0);
    tg_sse_reset(&p);
    assert_int_equal(tg_sse_feed(&p, "data: fresh\n\n", 13, on_event, &r), 0);
    assert_int_equal(r.n, 1);
    assert_string_equal(r.ev[0].name, "");
    assert_string_equal(r.ev[0].data, "fresh");
    assert_int_equal(r.ev[0].end, 13);
    rec_free(&r);
    tg_sse_cleanup(&p);
}

/* The accumulator is allocated lazily and not reallocated per event in the steady state. */
static void test_no_steady_state_allocation(void **state)
{
    (void)state;
    struct tg_sse_parser p;
    memset(&p, 0, sizeof(p));
    int n = 0;
    assert_int_equal(tg_sse_feed(&p, ": c\n\nid: 1\n\n", 12, count_cb, &n), 0);
    assert_null(p.acc);
    const char *ev = "event: message\ndata: {\"a\":\"0123456789\"}\n\n";
    assert_int_equal(tg_sse_feed(&p, ev, strlen(ev), count_cb, &n), 0);
    char *acc = p.acc;
    size_t cap = p.acc_cap;
    assert_non_null(acc);
    for (int i = 0; i < 1000; i++)
        assert_int_equal(tg_sse_feed(&p, ev, strlen(ev), count_cb, &n), 0);
    assert_int_equal(n, 1001);
    assert_ptr_equal(p.acc, acc);
    assert_int_equal(p.acc_cap, cap);
    tg_sse_cleanup(&p);
}

static int stop_cb(const struct tg_sse_event *ev, void *arg)
{
    (void)ev;
    (void)arg;
    return -42;
}

/* A callback's value (even negative) is returned; the parser is not poisoned by it. */
static void test_callback_value(void **state)
{
    (void)state;
    struct tg_sse_parser p;
    memset(&p, 0, sizeof(p));
    assert_int_equal(tg_sse_feed(&p, "data: a\n\ndata: b\n\n", 18, stop_cb, NULL), -42);
    int n = 0;
    assert_int_equal(tg_sse_feed(&p, "data: b\n\n", 9, count_cb, &n), 0);
    assert_int_equal(n, 1);
    assert_int_equal(tg_sse_feed(&p, "data: c", 7, count_cb, &n), 0);
    assert_int_equal(tg_sse_finish(&p, stop_cb, NULL), -42);
    tg_sse_cleanup(&p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rows),
        cmocka_unit_test(test_fixtures),
        cmocka_unit_test(test_line_endings_agree),
        cmocka_unit_test(test_long_stream_chunkings),
        cmocka_unit_test(test_relay_model),
        cmocka_unit_test(test_idle),
        cmocka_unit_test(test_sticky_error_and_reset),
        cmocka_unit_test(test_reset_mid_event),
        cmocka_unit_test(test_no_steady_state_allocation),
        cmocka_unit_test(test_callback_value),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
