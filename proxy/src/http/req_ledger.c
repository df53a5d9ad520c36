/* req_ledger.c: from a finished request to its ledger row. */
#include "http/req_ledger.h"

#include <stdio.h>
#include <string.h>

#include "core/log.h"
#include "http/request.h"
#include "http/worker.h"
#include "ledger/ledger.h"

static void copy_str(char *dst, size_t cap, const char *src)
{
    size_t n = strlen(src);
    if (n >= cap)
        n = cap - 1;
    memcpy(dst, src, n);
    dst[n] = '\0';
}

void tg_req_ledger_append(struct tg_request *r)
{
    struct tg_ledger_row row;
    memset(&row, 0, sizeof(row));
    memcpy(row.request_id, r->id_bin, 16);
    row.started_at_ms = r->started_ms;
    row.finished_at_us = r->finished_at_us;
    row.route = r->route;
    switch (r->status) {
    case TG_STATUS_OK:
        row.status = TG_LEDGER_STATUS_OK;
        break;
    case TG_STATUS_UPSTREAM_ERROR:
        row.status = TG_LEDGER_STATUS_UPSTREAM_ERROR;
        break;
    case TG_STATUS_CLIENT_ABORTED:
        row.status = TG_LEDGER_STATUS_CLIENT_ABORTED;
        break;
    case TG_STATUS_BLOCKED:
        row.status = TG_LEDGER_STATUS_BLOCKED;
        break;
    }
    row.count_source = r->count_estimated ? TG_LEDGER_COUNT_ESTIMATED : TG_LEDGER_COUNT_UPSTREAM;
    row.prompt_tokens = r->usage.prompt_tokens;
    row.completion_tokens = r->usage.completion_tokens;
    row.cached_tokens = r->usage.cached_tokens;
    row.reasoning_tokens = r->usage.reasoning_tokens;
    row.total_tokens = r->usage.prompt_tokens + r->usage.completion_tokens;
    row.upstream_status = r->upstream_status;
    row.ttfb_ms = r->ttfb_ms >= 0 ? (int32_t)TG_MIN(r->ttfb_ms, INT32_MAX) : -1;
    row.latency_ms = (int32_t)TG_MIN(r->latency_ms, INT32_MAX);
    copy_str(row.user_id, sizeof(row.user_id), r->who.user_id);
    copy_str(row.team_id, sizeof(row.team_id), r->user.team_id);
    copy_str(row.model, sizeof(row.model), r->info.has_model ? r->info.model : "");
    copy_str(row.upstream_call_id, sizeof(row.upstream_call_id), r->upstream_call_id);
    copy_str(row.client_request_id, sizeof(row.client_request_id), r->client_request_id);
    if (tg_ledger_append(tg_app->ledger, (unsigned)r->w->idx, &row) != 0) {
        /* the ledger refused the row (it validates every field): keep it in the log so
         * finance can enter it by hand; this must never happen */
        struct tg_logline l;
        tg_logline_begin(&l, TG_LOG_ERROR, "ledger refused a row");
        tg_logline_str(&l, "request_id", r->id);
        tg_logline_str(&l, "user", row.user_id);
        tg_logline_str(&l, "model", row.model);
        tg_logline_int(&l, "prompt_tokens", row.prompt_tokens);
        tg_logline_int(&l, "completion_tokens", row.completion_tokens);
        tg_logline_int(&l, "started_at_ms", row.started_at_ms);
        tg_logline_end(&l);
    }
}
