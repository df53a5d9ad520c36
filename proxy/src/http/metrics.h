/* metrics.h: per-worker counters (written by their worker, read by /metrics) and the
 * Prometheus text rendering. */
#ifndef TG_METRICS_H
#define TG_METRICS_H

#include <stdatomic.h>

#include "core/buf.h"
#include "core/common.h"

#define TG_METRIC_ROUTES       8 /* enum tg_route values, plus "other" at 0 */
#define TG_METRIC_HIST_BUCKETS 14

enum tg_up_err_kind {
    TG_UPERR_CONNECT,  /* connection refused / unreachable / TLS failure */
    TG_UPERR_TIMEOUT,  /* connect, first byte, idle or total time-out */
    TG_UPERR_PROTOCOL, /* unparsable reply */
    TG_UPERR_RESET,    /* closed or reset mid-reply */
    TG_UPERR_KINDS,
};

struct tg_hist {
    atomic_uint_fast64_t buckets[TG_METRIC_HIST_BUCKETS]; /* cumulative at render time */
    atomic_uint_fast64_t count;
    atomic_uint_fast64_t sum_us;
};

struct tg_metrics {
    atomic_uint_fast64_t requests[TG_METRIC_ROUTES][6]; /* [route][status/100], [..][0] = none */
    atomic_uint_fast64_t tokens_prompt, tokens_completion, tokens_cached, tokens_reasoning;
    atomic_uint_fast64_t count_estimated, count_upstream;
    atomic_uint_fast64_t quota_blocks, quota_warnings_sent, quota_fail_open, quota_unavailable;
    atomic_uint_fast64_t quota_rebuilds;
    atomic_uint_fast64_t upstream_errors[TG_UPERR_KINDS];
    atomic_uint_fast64_t client_aborts, drains_started, drains_cancelled;
    atomic_uint_fast64_t auth_failures, auth_cache_hits, auth_cache_misses;
    atomic_uint_fast64_t upstream_conns_opened, upstream_conns_reused;
    atomic_uint_fast64_t estimate_compared, estimate_abs_diff_tokens;
    atomic_int_fast64_t active_streams, open_conns;
    struct tg_hist upstream_ttfb; /* request sent -> first reply byte */
    struct tg_hist overhead;      /* request body complete -> request written upstream */
};

static inline void tg_metric_inc(atomic_uint_fast64_t *c, uint64_t n)
{
    atomic_fetch_add_explicit(c, n, memory_order_relaxed);
}

/* Records a duration in microseconds. */
void tg_hist_observe(struct tg_hist *h, int64_t us);

struct tg_ledger_stats;
/* Renders the Prometheus text exposition of the sum over `n` workers plus ledger stats. */
TG_MUST_CHECK int tg_metrics_render(struct tg_buf *out, struct tg_metrics *const *workers, int n,
                                    const struct tg_ledger_stats *ledger);

#endif
