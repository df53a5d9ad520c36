/* bench_http.c: the benchmark clients' HTTP/1.1 response parser and latency histogram. */
#include "bench_http.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* ---- response parser ------------------------------------------------------------------------- */

void tg_bench_resp_init(struct tg_bench_resp *r)
{
    tg_bench_body_fn fn = r->on_body;
    void *arg = r->body_arg;
    bool no_body = r->no_body;
    r->state = TG_BENCH_RS_HEAD;
    r->status = 0;
    r->is_chunked = false;
    r->should_close = false;
    r->is_head_done = false;
    r->content_length = -1;
    r->remaining = 0;
    r->body_bytes = 0;
    r->line_len = 0;
    r->on_body = fn;
    r->body_arg = arg;
    r->no_body = no_body;
}

static bool name_is(const char *line, size_t name_len, const char *name)
{
    return strlen(name) == name_len && strncasecmp(line, name, name_len) == 0;
}

/* true when the comma-separated header value holds `token` */
static bool has_token(const char *v, size_t n, const char *token)
{
    size_t tl = strlen(token);
    size_t i = 0;
    while (i < n) {
        while (i < n && (v[i] == ' ' || v[i] == '\t' || v[i] == ','))
            i++;
        size_t s = i;
        while (i < n && v[i] != ',')
            i++;
        size_t e = i;
        while (e > s && (v[e - 1] == ' ' || v[e - 1] == '\t'))
            e--;
        if (e - s == tl && strncasecmp(v + s, token, tl) == 0)
            return true;
    }
    return false;
}

static int parse_u64(const char *p, size_t n, int base, int64_t *out)
{
    if (n == 0 || n > 15)
        return -1;
    int64_t v = 0;
    for (size_t i = 0; i < n; i++) {
        int d;
        char c = p[i];
        if (c >= '0' && c <= '9')
            d = c - '0';
        else if (base == 16 && c >= 'a' && c <= 'f')
            d = c - 'a' + 10;
        else if (base == 16 && c >= 'A' && c <= 'F')
            d = c - 'A' + 10;
        else
            return -1;
        v = v * base + d;
    }
    *out = v;
    return 0;
}

static int status_line(struct tg_bench_resp *r, const char *l, size_t n)
{
    /* HTTP/1.x SSS[ reason] */
    if (n < 12 || memcmp(l, "HTTP/1.", 7) != 0 || (l[7] != '0' && l[7] != '1') || l[8] != ' ')
        return -1;
    if (!isdigit((unsigned char)l[9]) || !isdigit((unsigned char)l[10]) ||
        !isdigit((unsigned char)l[11]) || (n > 12 && l[12] != ' '))
        return -1;
    r->status = (l[9] - '0') * 100 + (l[10] - '0') * 10 + (l[11] - '0');
    if (r->status < 100)
        return -1;
    r->should_close = l[7] == '0'; /* HTTP/1.0 closes unless it says keep-alive */
    return 0;
}

static int header_line(struct tg_bench_resp *r, const char *l, size_t n)
{
    const char *colon = memchr(l, ':', n);
    if (colon == NULL || colon == l)
        return -1;
    size_t nl = (size_t)(colon - l);
    const char *v = colon + 1;
    size_t vn = n - nl - 1;
    while (vn > 0 && (*v == ' ' || *v == '\t')) {
        v++;
        vn--;
    }
    while (vn > 0 && (v[vn - 1] == ' ' || v[vn - 1] == '\t'))
        vn--;
    if (name_is(l, nl, "content-length")) {
        int64_t cl;
        if (parse_u64(v, vn, 10, &cl) != 0)
            return -1;
        r->content_length = cl;
    } else if (name_is(l, nl, "transfer-encoding")) {
        r->is_chunked = has_token(v, vn, "chunked");
    } else if (name_is(l, nl, "connection")) {
        if (has_token(v, vn, "close"))
            r->should_close = true;
        else if (has_token(v, vn, "keep-alive"))
            r->should_close = false;
    }
    return 0;
}

/* The head is complete: choose how the body is delimited. Returns 1 when the response has
 * no body (it is complete now), 0 otherwise, -1 on error. */
static int head_done(struct tg_bench_resp *r)
{
    if (r->status >= 100 && r->status < 200) {
        /* an interim response (100 Continue): the real one follows */
        int keep_close = r->should_close;
        tg_bench_resp_init(r);
        r->should_close = keep_close;
        return 0;
    }
    r->is_head_done = true;
    if (r->no_body || r->status == 204 || r->status == 304)
        return 1;
    if (r->is_chunked) {
        r->state = TG_BENCH_RS_CHUNK_SIZE;
        return 0;
    }
    if (r->content_length >= 0) {
        if (r->content_length == 0)
            return 1;
        r->remaining = r->content_length;
        r->state = TG_BENCH_RS_BODY_LENGTH;
        return 0;
    }
    r->should_close = true;
    r->state = TG_BENCH_RS_UNTIL_CLOSE;
    return 0;
}

static void body(struct tg_bench_resp *r, const char *p, size_t n)
{
    r->body_bytes += n;
    if (r->on_body != NULL && n > 0)
        r->on_body(r->body_arg, p, n);
}

/* A complete line (without CRLF) in the current state. Returns DONE, NEED_MORE or ERROR. */
static int on_line(struct tg_bench_resp *r, const char *l, size_t n)
{
    switch (r->state) {
    case TG_BENCH_RS_HEAD:
        if (r->status == 0)
            return status_line(r, l, n) == 0 ? TG_BENCH_RESP_NEED_MORE : TG_BENCH_RESP_ERROR;
        if (n == 0) {
            int rc = head_done(r);
            if (rc < 0)
                return TG_BENCH_RESP_ERROR;
            return rc == 1 ? TG_BENCH_RESP_DONE : TG_BENCH_RESP_NEED_MORE;
        }
        return header_line(r, l, n) == 0 ? TG_BENCH_RESP_NEED_MORE : TG_BENCH_RESP_ERROR;
    case TG_BENCH_RS_CHUNK_SIZE: {
        size_t k = 0;
        while (k < n && isxdigit((unsigned char)l[k]))
            k++;
        if (k < n && l[k] != ';' && l[k] != ' ' && l[k] != '\t')
            return TG_BENCH_RESP_ERROR;
        int64_t size;
        if (parse_u64(l, k, 16, &size) != 0)
            return TG_BENCH_RESP_ERROR;
        if (size == 0) {
            r->state = TG_BENCH_RS_TRAILER;
            return TG_BENCH_RESP_NEED_MORE;
        }
        r->remaining = size;
        r->state = TG_BENCH_RS_CHUNK_DATA;
        return TG_BENCH_RESP_NEED_MORE;
    }
    case TG_BENCH_RS_CHUNK_CRLF:
        if (n != 0)
            return TG_BENCH_RESP_ERROR;
        r->state = TG_BENCH_RS_CHUNK_SIZE;
        return TG_BENCH_RESP_NEED_MORE;
    case TG_BENCH_RS_TRAILER:
        return n == 0 ? TG_BENCH_RESP_DONE : TG_BENCH_RESP_NEED_MORE;
    default:
        return TG_BENCH_RESP_ERROR;
    }
}

int tg_bench_resp_feed(struct tg_bench_resp *r, const char *p, size_t n, size_t *consumed)
{
    size_t i = 0;
    while (i < n) {
        switch (r->state) {
        case TG_BENCH_RS_BODY_LENGTH:
        case TG_BENCH_RS_CHUNK_DATA: {
            size_t take = n - i;
            if ((int64_t)take > r->remaining)
                take = (size_t)r->remaining;
            body(r, p + i, take);
            i += take;
            r->remaining -= (int64_t)take;
            if (r->remaining == 0) {
                if (r->state == TG_BENCH_RS_BODY_LENGTH) {
                    *consumed = i;
                    return TG_BENCH_RESP_DONE;
                }
                r->state = TG_BENCH_RS_CHUNK_CRLF;
            }
            break;
        }
        case TG_BENCH_RS_UNTIL_CLOSE:
            body(r, p + i, n - i);
            i = n;
            break;
        default: {
            /* line-oriented states: collect up to LF */
            const char *lf = memchr(p + i, '\n', n - i);
            size_t take = lf ? (size_t)(lf - (p + i)) : n - i;
            if (r->line_len + take >= sizeof(r->line))
                return TG_BENCH_RESP_ERROR;
            memcpy(r->line + r->line_len, p + i, take);
            r->line_len += take;
            i += take;
            if (lf == NULL)
                break;
            i++; /* the LF */
            size_t ll = r->line_len;
            if (ll > 0 && r->line[ll - 1] == '\r')
                ll--;
            r->line_len = 0;
            int rc = on_line(r, r->line, ll);
            if (rc == TG_BENCH_RESP_ERROR)
                return rc;
            if (rc == TG_BENCH_RESP_DONE) {
                *consumed = i;
                return rc;
            }
            break;
        }
        }
    }
    *consumed = n;
    return TG_BENCH_RESP_NEED_MORE;
}

int tg_bench_resp_eof(struct tg_bench_resp *r)
{
    if (r->state == TG_BENCH_RS_UNTIL_CLOSE)
        return TG_BENCH_RESP_DONE;
    return TG_BENCH_RESP_ERROR;
}

/* ---- histogram ---------------------------------------------------------------------------------
 */

size_t tg_bench_hist_index(uint64_t us)
{
    if (us < TG_BENCH_HIST_EXACT)
        return (size_t)us;
    int e = 63 - __builtin_clzll(us); /* 2^e ≤ us < 2^(e+1), e ≥ 11 */
    int shift = e - 10;               /* us >> shift is in [1024, 2048) */
    size_t octave = (size_t)(e - 11);
    if (octave >= TG_BENCH_HIST_OCTAVES)
        return TG_BENCH_HIST_BUCKETS - 1;
    size_t sub = (size_t)(us >> shift) - TG_BENCH_HIST_SUB;
    return TG_BENCH_HIST_EXACT + octave * TG_BENCH_HIST_SUB + sub;
}

uint64_t tg_bench_hist_bucket_top(size_t idx)
{
    if (idx < TG_BENCH_HIST_EXACT)
        return idx;
    size_t k = idx - TG_BENCH_HIST_EXACT;
    int shift = (int)(k / TG_BENCH_HIST_SUB) + 1;
    uint64_t low = (uint64_t)(TG_BENCH_HIST_SUB + k % TG_BENCH_HIST_SUB) << shift;
    return low + ((uint64_t)1 << shift) - 1;
}

void tg_bench_hist_record(struct tg_bench_hist *h, uint64_t us)
{
    if (h->count == 0 || us < h->min_us)
        h->min_us = us;
    if (us > h->max_us)
        h->max_us = us;
    h->count++;
    h->sum_us += us;
    h->buckets[tg_bench_hist_index(us)]++;
}

void tg_bench_hist_merge(struct tg_bench_hist *dst, const struct tg_bench_hist *src)
{
    if (src->count == 0)
        return;
    if (dst->count == 0 || src->min_us < dst->min_us)
        dst->min_us = src->min_us;
    if (src->max_us > dst->max_us)
        dst->max_us = src->max_us;
    dst->count += src->count;
    dst->sum_us += src->sum_us;
    for (size_t i = 0; i < TG_BENCH_HIST_BUCKETS; i++)
        dst->buckets[i] += src->buckets[i];
}

uint64_t tg_bench_hist_percentile(const struct tg_bench_hist *h, double pct)
{
    if (h->count == 0)
        return 0;
    if (pct > 100.0)
        pct = 100.0;
    /* rank of the value: ceil(pct/100 × count), at least 1 (pct 99.9 of 1000 values is 999,
     * not the 1000 that the rounding error of 99.9 / 100 × 1000 would give) */
    double want = pct / 100.0 * (double)h->count;
    uint64_t rank = (uint64_t)want;
    if (want - (double)rank > 1e-9 * want)
        rank++;
    if (rank < 1)
        rank = 1;
    uint64_t seen = 0;
    for (size_t i = 0; i < TG_BENCH_HIST_BUCKETS; i++) {
        seen += h->buckets[i];
        if (seen >= rank) {
            uint64_t top = tg_bench_hist_bucket_top(i);
            return top < h->max_us ? top : h->max_us;
        }
    }
    return h->max_us;
}
