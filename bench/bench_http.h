/* bench_http.h: what the benchmark clients share: an incremental HTTP/1.1 response parser and a
 * latency histogram with microsecond resolution. Pure: no sockets, no clock. */
#ifndef TG_BENCH_HTTP_H
#define TG_BENCH_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/common.h"

/* ---- HTTP/1.1 response parser ---------------------------------------------------------------- */

#define TG_BENCH_RESP_LINE_MAX 8192

enum tg_bench_resp_rc {
    TG_BENCH_RESP_ERROR = -1,    /* malformed; the connection is unusable */
    TG_BENCH_RESP_NEED_MORE = 0, /* every byte was taken; the response is not complete */
    TG_BENCH_RESP_DONE = 1,      /* a whole response ended; see *consumed */
};

enum tg_bench_resp_state {
    TG_BENCH_RS_HEAD,        /* status line and header lines */
    TG_BENCH_RS_BODY_LENGTH, /* Content-Length body */
    TG_BENCH_RS_CHUNK_SIZE,  /* a chunk-size line */
    TG_BENCH_RS_CHUNK_DATA,  /* chunk bytes */
    TG_BENCH_RS_CHUNK_CRLF,  /* the CRLF after chunk bytes */
    TG_BENCH_RS_TRAILER,     /* trailer lines after the last chunk */
    TG_BENCH_RS_UNTIL_CLOSE, /* no length: the body ends at EOF */
};

/* Called with decoded body bytes (chunk framing removed). Borrowed views. */
typedef void (*tg_bench_body_fn)(void *arg, const char *p, size_t n);

/* One response being parsed. Zero-filled (or tg_bench_resp_init) is the start state. */
struct tg_bench_resp {
    enum tg_bench_resp_state state;
    int status;             /* status code, once the status line was read */
    bool is_chunked;        /* Transfer-Encoding: chunked */
    bool should_close;      /* Connection: close, or HTTP/1.0 without keep-alive */
    bool is_head_done;      /* the head was read (status and headers are final) */
    int64_t content_length; /* -1 when absent */
    int64_t remaining;      /* body or chunk bytes still expected */
    uint64_t body_bytes;    /* decoded body bytes seen so far */
    char line[TG_BENCH_RESP_LINE_MAX];
    size_t line_len;
    bool no_body;             /* set by the caller for a HEAD request (no body whatever the head) */
    tg_bench_body_fn on_body; /* optional, set by the caller */
    void *body_arg;
};

/* Resets `r` for the next response on the same connection, keeping on_body/body_arg. */
void tg_bench_resp_init(struct tg_bench_resp *r);

/* Feeds `n` bytes. Returns TG_BENCH_RESP_DONE when a response ended (the bytes after it,
 * from p + *consumed on, belong to the next response), TG_BENCH_RESP_NEED_MORE when all `n`
 * bytes were taken (*consumed = n), TG_BENCH_RESP_ERROR on a malformed response. */
TG_MUST_CHECK int tg_bench_resp_feed(struct tg_bench_resp *r, const char *p, size_t n,
                                     size_t *consumed);

/* The peer closed the connection. Returns TG_BENCH_RESP_DONE when that ends a close-delimited
 * body, TG_BENCH_RESP_ERROR otherwise (a response cut short, or none started). */
TG_MUST_CHECK int tg_bench_resp_eof(struct tg_bench_resp *r);

/* ---- latency histogram -------------------------------------------------------------------------
 */

/* Exact microseconds below TG_BENCH_HIST_EXACT µs; above, 1024 buckets per power of two
 * (relative error < 0.1 %), up to 2^42 µs. */
#define TG_BENCH_HIST_EXACT   2048
#define TG_BENCH_HIST_SUB     1024
#define TG_BENCH_HIST_OCTAVES 32
#define TG_BENCH_HIST_BUCKETS (TG_BENCH_HIST_EXACT + TG_BENCH_HIST_OCTAVES * TG_BENCH_HIST_SUB)

struct tg_bench_hist {
    uint64_t count;
    uint64_t sum_us;
    uint64_t max_us;
    uint64_t min_us;
    uint64_t buckets[TG_BENCH_HIST_BUCKETS];
};

/* Bucket index of a value (values past the last bucket go into it). */
size_t tg_bench_hist_index(uint64_t us);

/* The largest value that falls into bucket `idx` (what a percentile reports). */
uint64_t tg_bench_hist_bucket_top(size_t idx);

/* Records one value. */
void tg_bench_hist_record(struct tg_bench_hist *h, uint64_t us);

/* Adds every value of `src` to `dst`. */
void tg_bench_hist_merge(struct tg_bench_hist *dst, const struct tg_bench_hist *src);

/* The value at percentile `pct` (0 < pct ≤ 100): the smallest recorded bucket top such that at
 * least pct % of the values are ≤ it, clamped to the exact maximum. 0 when empty. */
uint64_t tg_bench_hist_percentile(const struct tg_bench_hist *h, double pct);

#endif
