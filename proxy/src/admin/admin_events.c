/* admin_events.c: the "request" events of the admin live feed (one per finished metered
 * request); admin changes are published by the handlers, quota crossings by req_quota.c. */
#include <stdio.h>
#include <string.h>

#include "admin/admin_api.h"
#include "admin/admin_internal.h"
#include "http/events.h"
#include "http/request.h"

static const char *const ledger_status[] = {"ok", "upstream_error", "client_aborted", "blocked"};

void tg_admin_event_request(const struct tg_request *r)
{
    if (!tg_events_has_listeners())
        return;
    struct tg_buf b = {0};
    char started[32], finished[32];
    tg_admin_format_time(r->started_ms, started);
    tg_admin_format_time(r->finished_at_us / 1000, finished);
    int rc = tg_buf_puts(&b, "{\"request_id\":");
    rc |= tg_admin_json_str(&b, r->id);
    rc |= tg_buf_puts(&b, ",\"user_id\":");
    rc |= tg_admin_json_str(&b, r->who.user_id[0] ? r->who.user_id : NULL);
    rc |= tg_buf_puts(&b, ",\"team_id\":");
    rc |= tg_admin_json_str(&b, r->user.team_id[0] ? r->user.team_id : NULL);
    rc |= tg_buf_puts(&b, ",\"model\":");
    rc |= tg_admin_json_str(&b, r->info.has_model ? r->info.model : NULL);
    rc |= tg_buf_puts(&b, ",\"route\":");
    rc |= tg_admin_json_str(&b, tg_route_path(r->route));
    rc |= tg_buf_printf(
        &b,
        ",\"status\":\"%s\",\"http_status\":%d,\"prompt_tokens\":%lld,\"completion_tokens\":%lld,"
        "\"cached_tokens\":%lld,\"reasoning_tokens\":%lld,\"total_tokens\":%lld,"
        "\"count_source\":\"%s\",\"latency_ms\":%lld,\"ttfb_ms\":",
        (unsigned)r->status < TG_ARRAY_LEN(ledger_status) ? ledger_status[r->status] : "ok",
        r->client_status, (long long)r->usage.prompt_tokens, (long long)r->usage.completion_tokens,
        (long long)r->usage.cached_tokens, (long long)r->usage.reasoning_tokens,
        (long long)r->usage.total_tokens, r->count_estimated ? "estimated" : "upstream",
        (long long)r->latency_ms);
    if (r->ttfb_ms >= 0)
        rc |= tg_buf_printf(&b, "%lld", (long long)r->ttfb_ms);
    else
        rc |= tg_buf_puts(&b, "null");
    rc |= tg_buf_printf(&b, ",\"started_at\":\"%s\",\"finished_at\":\"%s\"}", started, finished);
    if (rc == 0)
        tg_events_publish("request", b.data, b.len);
    tg_buf_cleanup(&b);
}
