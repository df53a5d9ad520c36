/* ops.c: /healthz, /readyz and /metrics. */
#include "http/ops.h"

#include <stdio.h>
#include <string.h>

#include "core/buf.h"
#include "core/json_scan.h"
#include "http/control.h"
#include "http/dbpool.h"
#include "http/events.h"
#include "http/metrics.h"
#include "http/reply.h"
#include "http/server.h"
#include "http/worker.h"
#include "ledger/ledger.h"
#include "quota/redis_async.h"

/* A spool larger than this means PostgreSQL has been away long enough to page someone. */
#define SPOOL_BACKLOG_BYTES (64 * 1024 * 1024)

void tg_ops_healthz(struct tg_conn *c)
{
    tg_reply_json(c, 200, "{\"status\":\"ok\"}", 15);
}

void tg_ops_readyz(struct tg_conn *c)
{
    struct tg_ledger_stats ls;
    tg_ledger_get_stats(tg_app->ledger, &ls);
    bool redis_ok = c->w->redis != NULL && tg_redis_is_ready(c->w->redis);
    char up_detail[200];
    int up = tg_control_upstream_health(up_detail, sizeof(up_detail));
    bool pg_ok = ls.pg_up && tg_dbpool_is_up(tg_app->db);
    bool spool_ok = ls.spool_bytes < SPOOL_BACKLOG_BYTES;
    bool stopping = atomic_load(&tg_app->stopping);
    bool ready = redis_ok && pg_ok && up == 1 && spool_ok && !stopping;
    struct tg_buf b = {0};
    int rc = tg_buf_printf(&b, "{\"status\":\"%s\",\"checks\":{", ready ? "ready" : "not ready");
    rc |= tg_buf_printf(&b, "\"postgresql\":\"%s\",", pg_ok ? "ok" : "unreachable");
    rc |= tg_buf_printf(&b, "\"redis\":\"%s\",", redis_ok ? "ok" : "unreachable");
    rc |= tg_buf_printf(&b, "\"upstream\":\"%s\",",
                        up == 1   ? "ok"
                        : up == 0 ? "unreachable"
                                  : "unknown");
    rc |= tg_buf_printf(&b, "\"spool_bytes\":%llu,\"spool\":\"%s\"",
                        (unsigned long long)ls.spool_bytes, spool_ok ? "ok" : "backlog");
    if (stopping)
        rc |= tg_buf_puts(&b, ",\"shutdown\":\"in progress\"");
    rc |= tg_buf_puts(&b, "}");
    if (!ready) {
        char failing[200] = "";
        if (!pg_ok)
            strcat(failing, "postgresql ");
        if (!redis_ok)
            strcat(failing, "redis ");
        if (up != 1)
            strcat(failing, "upstream ");
        if (!spool_ok)
            strcat(failing, "spool ");
        size_t fl = strlen(failing);
        if (fl > 0)
            failing[fl - 1] = '\0';
        rc |= tg_buf_puts(&b, ",\"failing\":");
        rc |= tg_json_escape(&b, failing, strlen(failing));
        if (up == 0 && up_detail[0]) {
            rc |= tg_buf_puts(&b, ",\"upstream_error\":");
            rc |= tg_json_escape(&b, up_detail, strlen(up_detail));
        }
    }
    rc |= tg_buf_puts(&b, "}");
    if (rc != 0)
        tg_reply_json(c, 500, "{}", 2);
    else
        tg_reply_json(c, ready ? 200 : 503, b.data, b.len);
    tg_buf_cleanup(&b);
}

void tg_ops_metrics(struct tg_conn *c)
{
    struct tg_metrics *ms[256];
    int n = tg_app->nworkers < 256 ? tg_app->nworkers : 256;
    for (int i = 0; i < n; i++)
        ms[i] = &tg_app->workers[i].metrics;
    struct tg_ledger_stats ls;
    tg_ledger_get_stats(tg_app->ledger, &ls);
    struct tg_buf b = {0};
    int rc = tg_metrics_render(&b, ms, n, &ls);
    rc |= tg_buf_printf(&b,
                        "# HELP tollgate_events_dropped_total Live-feed subscribers dropped for "
                        "not reading.\n# TYPE tollgate_events_dropped_total counter\n"
                        "tollgate_events_dropped_total %llu\n",
                        (unsigned long long)tg_events_dropped());
    if (rc != 0)
        tg_reply_json(c, 500, "{}", 2);
    else
        tg_conn_reply(c, 200, "text/plain; version=0.0.4; charset=utf-8", b.data, b.len);
    tg_buf_cleanup(&b);
}
