/* metrics.c: Prometheus text exposition of the per-worker counters. */
#include "http/metrics.h"

#include <string.h>

#include "ledger/ledger.h"

/* upper bounds of the histogram buckets, in microseconds (last = +Inf) */
static const int64_t bucket_us[TG_METRIC_HIST_BUCKETS] = {
    500,    1000,   2500,    5000,    10000,    25000,    50000,
    100000, 250000, 1000000, 2500000, 10000000, 60000000, INT64_MAX,
};

void tg_hist_observe(struct tg_hist *h, int64_t us)
{
    if (us < 0)
        us = 0;
    for (int i = 0; i < TG_METRIC_HIST_BUCKETS; i++) {
        if (us <= bucket_us[i]) {
            tg_metric_inc(&h->buckets[i], 1);
            break;
        }
    }
    tg_metric_inc(&h->count, 1);
    tg_metric_inc(&h->sum_us, (uint64_t)us);
}

static uint64_t ld(const atomic_uint_fast64_t *c)
{
    return atomic_load_explicit(c, memory_order_relaxed);
}

#define SUM(field)                                                                                 \
    ({                                                                                             \
        uint64_t s_ = 0;                                                                           \
        for (int i_ = 0; i_ < n; i_++)                                                             \
            s_ += ld(&w[i_]->field);                                                               \
        s_;                                                                                        \
    })

static const char *const route_label[TG_METRIC_ROUTES] = {
    "other",         "/v1/chat/completions", "/v1/completions", "/v1/embeddings",
    "/v1/responses", "/v1/messages",         "/v1/models",      "other2",
};

static const char *const class_label[6] = {"none", "1xx", "2xx", "3xx", "4xx", "5xx"};

static int hist(struct tg_buf *out, const char *name, const char *help, struct tg_metrics *const *w,
                int n, size_t off)
{
    if (tg_buf_printf(out, "# HELP %s %s\n# TYPE %s histogram\n", name, help, name) != 0)
        return -1;
    uint64_t cum = 0;
    for (int b = 0; b < TG_METRIC_HIST_BUCKETS; b++) {
        for (int i = 0; i < n; i++) {
            const struct tg_hist *h = (const struct tg_hist *)((const char *)w[i] + off);
            cum += ld(&h->buckets[b]);
        }
        int rc =
            b == TG_METRIC_HIST_BUCKETS - 1
                ? tg_buf_printf(out, "%s_bucket{le=\"+Inf\"} %llu\n", name, (unsigned long long)cum)
                : tg_buf_printf(out, "%s_bucket{le=\"%g\"} %llu\n", name,
                                (double)bucket_us[b] / 1e6, (unsigned long long)cum);
        if (rc != 0)
            return -1;
    }
    uint64_t count = 0, sum = 0;
    for (int i = 0; i < n; i++) {
        const struct tg_hist *h = (const struct tg_hist *)((const char *)w[i] + off);
        count += ld(&h->count);
        sum += ld(&h->sum_us);
    }
    return tg_buf_printf(out, "%s_sum %.6f\n%s_count %llu\n", name, (double)sum / 1e6, name,
                         (unsigned long long)count);
}

static int counter(struct tg_buf *out, const char *name, const char *help, uint64_t v)
{
    return tg_buf_printf(out, "# HELP %s %s\n# TYPE %s counter\n%s %llu\n", name, help, name, name,
                         (unsigned long long)v);
}

static int gauge(struct tg_buf *out, const char *name, const char *help, int64_t v)
{
    return tg_buf_printf(out, "# HELP %s %s\n# TYPE %s gauge\n%s %lld\n", name, help, name, name,
                         (long long)v);
}

int tg_metrics_render(struct tg_buf *out, struct tg_metrics *const *w, int n,
                      const struct tg_ledger_stats *ls)
{
    int rc = 0;
    rc |= tg_buf_puts(out, "# HELP tollgate_requests_total Requests answered, by route and "
                           "status class.\n# TYPE tollgate_requests_total counter\n");
    for (int r = 0; r < TG_METRIC_ROUTES; r++) {
        for (int s = 0; s < 6; s++) {
            uint64_t v = 0;
            for (int i = 0; i < n; i++)
                v += ld(&w[i]->requests[r][s]);
            if (v == 0)
                continue;
            rc |= tg_buf_printf(out, "tollgate_requests_total{route=\"%s\",code=\"%s\"} %llu\n",
                                route_label[r], class_label[s], (unsigned long long)v);
        }
    }
    rc |= tg_buf_puts(out, "# HELP tollgate_tokens_total Tokens billed, by kind.\n"
                           "# TYPE tollgate_tokens_total counter\n");
    rc |= tg_buf_printf(out, "tollgate_tokens_total{kind=\"prompt\"} %llu\n",
                        (unsigned long long)SUM(tokens_prompt));
    rc |= tg_buf_printf(out, "tollgate_tokens_total{kind=\"completion\"} %llu\n",
                        (unsigned long long)SUM(tokens_completion));
    rc |= tg_buf_printf(out, "tollgate_tokens_total{kind=\"cached\"} %llu\n",
                        (unsigned long long)SUM(tokens_cached));
    rc |= tg_buf_printf(out, "tollgate_tokens_total{kind=\"reasoning\"} %llu\n",
                        (unsigned long long)SUM(tokens_reasoning));
    rc |= tg_buf_puts(out, "# HELP tollgate_count_source_total Requests by count source.\n"
                           "# TYPE tollgate_count_source_total counter\n");
    rc |= tg_buf_printf(out, "tollgate_count_source_total{source=\"upstream\"} %llu\n",
                        (unsigned long long)SUM(count_upstream));
    rc |= tg_buf_printf(out, "tollgate_count_source_total{source=\"estimated\"} %llu\n",
                        (unsigned long long)SUM(count_estimated));
    rc |= counter(out, "tollgate_quota_blocks_total", "Requests refused by a quota.",
                  SUM(quota_blocks));
    rc |= counter(out, "tollgate_quota_notices_total", "80 % notices placed in chat replies.",
                  SUM(quota_warnings_sent));
    rc |= counter(out, "tollgate_quota_fail_open_total",
                  "Requests served without a quota check because Redis was unavailable.",
                  SUM(quota_fail_open));
    rc |=
        counter(out, "tollgate_quota_unavailable_total",
                "Requests refused with 503 because Redis was unavailable.", SUM(quota_unavailable));
    rc |= tg_buf_puts(out, "# HELP tollgate_upstream_errors_total Upstream failures by kind.\n"
                           "# TYPE tollgate_upstream_errors_total counter\n");
    static const char *const kinds[TG_UPERR_KINDS] = {"connect", "timeout", "protocol", "reset"};
    for (int k = 0; k < TG_UPERR_KINDS; k++)
        rc |= tg_buf_printf(out, "tollgate_upstream_errors_total{kind=\"%s\"} %llu\n", kinds[k],
                            (unsigned long long)SUM(upstream_errors[k]));
    rc |= counter(out, "tollgate_client_aborts_total", "Requests whose client left early.",
                  SUM(client_aborts));
    rc |= counter(out, "tollgate_stream_drains_total", "Abandoned streams drained to the end.",
                  SUM(drains_started));
    rc |= counter(out, "tollgate_auth_failures_total", "Requests refused with 401.",
                  SUM(auth_failures));
    rc |= counter(out, "tollgate_quota_rebuilds_total",
                  "Quota counters summed from the ledger (one per subject and worker at a time).",
                  SUM(quota_rebuilds));
    rc |= counter(out, "tollgate_auth_cache_hits_total",
                  "Credentials and user records answered from the in-process cache.",
                  SUM(auth_cache_hits));
    rc |= counter(out, "tollgate_auth_cache_misses_total",
                  "Credentials and user records that needed verification or a database lookup.",
                  SUM(auth_cache_misses));
    rc |= counter(out, "tollgate_upstream_connections_opened_total", "New upstream connections.",
                  SUM(upstream_conns_opened));
    rc |= counter(out, "tollgate_upstream_connections_reused_total",
                  "Upstream requests sent on a kept-alive connection.", SUM(upstream_conns_reused));
    rc |= counter(out, "tollgate_token_estimate_compared_total",
                  "Replies where the local count could be compared with the gateway's usage.",
                  SUM(estimate_compared));
    rc |= counter(out, "tollgate_token_estimate_abs_diff_total",
                  "Sum of |local completion count - gateway completion count| (disagreement).",
                  SUM(estimate_abs_diff_tokens));
    int64_t streams = 0, conns = 0;
    for (int i = 0; i < n; i++) {
        streams += atomic_load_explicit(&w[i]->active_streams, memory_order_relaxed);
        conns += atomic_load_explicit(&w[i]->open_conns, memory_order_relaxed);
    }
    rc |= gauge(out, "tollgate_active_streams", "Streams being relayed now.", streams);
    rc |= gauge(out, "tollgate_open_connections", "Open client connections.", conns);
    rc |= hist(out, "tollgate_upstream_ttfb_seconds",
               "Upstream time from request sent to first reply byte.", w, n,
               offsetof(struct tg_metrics, upstream_ttfb));
    rc |= hist(out, "tollgate_overhead_seconds",
               "Time from a complete request to its forwarding upstream (auth + quota).", w, n,
               offsetof(struct tg_metrics, overhead));
    if (ls != NULL) {
        rc |= gauge(out, "tollgate_ledger_queue_rows", "Ledger rows waiting for PostgreSQL.",
                    (int64_t)ls->queue_depth);
        rc |= gauge(out, "tollgate_ledger_spool_bytes", "Bytes in the ledger spool.",
                    (int64_t)ls->spool_bytes);
        rc |= gauge(out, "tollgate_ledger_spool_files", "Files in the ledger spool.",
                    (int64_t)ls->spool_files);
        rc |= gauge(out, "tollgate_ledger_pg_up", "1 when the ledger writer reaches PostgreSQL.",
                    ls->pg_up ? 1 : 0);
        rc |= counter(out, "tollgate_ledger_rows_committed_total",
                      "Ledger rows committed to PostgreSQL.", ls->committed);
        rc |= counter(out, "tollgate_ledger_rows_spooled_total",
                      "Ledger rows written to the spool.", ls->spooled);
        rc |= counter(out, "tollgate_ledger_rows_unpriced_total",
                      "Ledger rows whose model had no price (cost_usd NULL).", ls->unpriced);
        rc |= counter(out, "tollgate_ledger_torn_records_total",
                      "Torn or corrupt spool/ring records found during replay.", ls->torn_records);
    }
    return rc ? -1 : 0;
}
