/* req_quota.c: reservation, settlement, rebuild from the ledger and fail modes (SPEC §5). */
#include "http/req_quota.h"

#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/json_scan.h"
#include "core/log.h"
#include "core/lru.h"
#include "http/dbpool.h"
#include "http/events.h"
#include "http/reply.h"
#include "http/req_ledger.h"
#include "http/request.h"
#include "http/worker.h"
#include "ledger/ledger.h"
#include "meter/notice.h"
#include "quota/quota_redis.h"

/* One subject's part of a reservation in flight. */
struct reserve_op {
    struct tg_request *r;
    struct tg_req_quota *q;
    char kind; /* 'u' or 't' */
    struct tg_quota_result res;
    bool done;
};

struct reserve_ctx {
    struct tg_request *r;
    struct reserve_op ops[2];
    int nops;
    int outstanding;
    int64_t amount;
    bool claim_notice;
};

static const char *prefix(void)
{
    return tg_app->cfg.redis_key_prefix;
}

int tg_quota_outbox_id(char *dst, size_t cap, bool exhausted, char kind, const char *subject,
                       const char *period_key)
{
    int n = snprintf(dst, cap, "%s:%s:%s:%s", exhausted ? "quota.exhausted" : "quota.warning",
                     kind == 't' ? "team" : "user", subject, period_key);
    return n > 0 && (size_t)n < cap ? n : -1;
}

/* ---- subjects served without Redis (fail open) or whose settle failed ------------------------ */

struct dirty_entry {
    char kind;
    char id[129];
    char period_key[24];
};

static __thread struct tg_lru *dirty;

static void mark_dirty(struct tg_request *r, char kind, const struct tg_req_quota *q)
{
    if (dirty == NULL)
        dirty = tg_lru_create(100000, sizeof(struct dirty_entry));
    if (dirty == NULL)
        return;
    const char *id = kind == 't' ? r->user.team_id : r->who.user_id;
    char key[160 + 24];
    int n = snprintf(key, sizeof(key), "%c%s|%s", kind, id, q->bounds.key);
    if (n <= 0 || (size_t)n >= TG_LRU_MAX_KEY)
        return;
    struct dirty_entry *e = tg_lru_put(dirty, key, (size_t)n, INT64_MAX);
    if (e != NULL) {
        e->kind = kind;
        snprintf(e->id, sizeof(e->id), "%s", id);
        snprintf(e->period_key, sizeof(e->period_key), "%s", q->bounds.key);
    }
}

static void del_done(void *arg, const redisReply *reply, enum tg_redis_status st)
{
    (void)arg;
    (void)reply;
    (void)st;
}

static bool dirty_flush_one(const void *value, void *arg)
{
    const struct dirty_entry *e = value;
    struct tg_worker *w = arg;
    struct tg_quota_subject s;
    if (tg_quota_subject_init(&s, e->kind, e->id, 0) != 0)
        return true;
    char h[400];
    if (tg_quota_key(h, sizeof(h), prefix(), s.tag, e->period_key, "") != 0)
        return true;
    /* the next reservation finds the hash missing and rebuilds it from the ledger, which
     * holds what was served meanwhile */
    if (tg_redis_command(w->redis, del_done, NULL, "DEL %s", h) != 0)
        return false;
    return true;
}

void tg_req_quota_on_redis_ready(struct tg_worker *w)
{
    if (dirty == NULL || tg_lru_count(dirty) == 0)
        return;
    tg_log(TG_LOG_INFO, "redis is back: rebuilding %zu quota counters from the ledger",
           tg_lru_count(dirty));
    tg_lru_del_if(dirty, dirty_flush_one, w);
}

/* ---- block and 503 replies --------------------------------------------------------------------
 */

static void reply_block(struct tg_request *r, const struct tg_req_quota *q, char kind)
{
    const struct tg_config *cfg = &tg_app->cfg;
    char msg[400];
    int64_t now_s = tg_now_ms() / 1000;
    int period = kind == 't' ? r->user.team_period : r->user.period;
    if (tg_quota_block_message(msg, sizeof(msg), q->used, q->limit, (enum tg_period)period,
                               &q->bounds, now_s) < 0)
        snprintf(msg, sizeof(msg), "You have used all of your AI quota.");
    char team_msg[460];
    const char *text = msg;
    if (kind == 't' && strncmp(msg, "You have used", 13) == 0) {
        /* "You have used" → "Your team has used" */
        snprintf(team_msg, sizeof(team_msg), "Your team has used%s", msg + 13);
        text = team_msg;
    }
    r->quota_state = TG_QUOTA_EXHAUSTED;
    r->client_status = cfg->quota_block_status;
    snprintf(r->error_detail, sizeof(r->error_detail), "quota exhausted (%s)",
             kind == 't' ? "team" : "user");
    tg_metric_inc(&r->w->metrics.quota_blocks, 1);
    if (r->conn != NULL) {
        struct tg_quota_headers h;
        tg_quota_headers_fill(&h, r->uq.used, r->uq.limit, &r->uq.bounds, tg_app->tz,
                              cfg->quota_warn_percent);
        tg_conn_add_header(r->conn, "x-quota-limit-tokens", h.limit);
        tg_conn_add_header(r->conn, "x-quota-used-tokens", h.used);
        tg_conn_add_header(r->conn, "x-quota-remaining-tokens", h.remaining);
        tg_conn_add_header(r->conn, "x-quota-reset", h.reset);
        tg_conn_add_header(r->conn, "x-quota-state", "exhausted");
        tg_conn_add_header(r->conn, "x-should-retry", "false");
        tg_reply_error(r->conn, cfg->quota_block_status, text, "insufficient_quota",
                       "insufficient_quota", r->id);
    }
    tg_request_finish(r, TG_STATUS_BLOCKED);
}

static void reply_unavailable(struct tg_request *r)
{
    tg_metric_inc(&r->w->metrics.quota_unavailable, 1);
    r->is_metered = false; /* nothing forwarded, nothing to bill */
    r->client_status = 503;
    snprintf(r->error_detail, sizeof(r->error_detail), "quota store unavailable");
    if (r->conn != NULL) {
        tg_conn_add_header(r->conn, "Retry-After", "5");
        tg_reply_error(r->conn, 503,
                       "The quota service is unavailable; the request was not processed.",
                       "server_error", "quota_unavailable", r->id);
    }
    tg_request_finish(r, TG_STATUS_OK);
}

/* ---- reservation ----------------------------------------------------------------------------- */

static void reserve_subject(struct reserve_ctx *ctx, struct reserve_op *op);
static void rebuild_subject(struct reserve_ctx *ctx, struct reserve_op *op);

static void release_done(void *arg, const struct tg_quota_result *res)
{
    (void)res;
    struct tg_request *r = arg;
    r->pending--;
    tg_request_release(r);
}

static void release_reservation(struct tg_request *r, struct tg_req_quota *q, char kind,
                                bool give_back_notice)
{
    if (!q->reserve_ok)
        return;
    q->reserve_ok = false;
    struct tg_quota_subject s;
    const char *id = kind == 't' ? r->user.team_id : r->who.user_id;
    if (tg_quota_subject_init(&s, kind, id, q->limit) != 0)
        return;
    r->pending++;
    if (tg_quota_release_start(r->w->redis, prefix(), &s, &q->bounds, r->id, give_back_notice,
                               release_done, r) != 0)
        r->pending--;
}

static void reserve_decide(struct reserve_ctx *ctx)
{
    struct tg_request *r = ctx->r;
    const struct tg_config *cfg = &tg_app->cfg;
    bool transport_failed = false;
    struct reserve_op *blocked = NULL;
    for (int i = 0; i < ctx->nops; i++) {
        struct reserve_op *op = &ctx->ops[i];
        if (!op->res.ok) {
            transport_failed = true;
            continue;
        }
        op->q->used = op->res.used;
        if (op->res.code == TG_QUOTA_CODE_OK) {
            op->q->reserve_ok = true;
            if (op->kind == 'u' && op->res.notice > 0)
                r->notice_claimed = true;
        } else if (op->res.code == TG_QUOTA_CODE_BLOCKED && blocked == NULL) {
            blocked = op;
        }
    }
    free(ctx);
    if (r->finished)
        return;
    if (r->client_gone) {
        release_reservation(r, &r->uq, 'u', r->notice_claimed);
        release_reservation(r, &r->tq, 't', false);
        tg_request_finish(r, TG_STATUS_CLIENT_ABORTED);
        return;
    }
    if (transport_failed) {
        release_reservation(r, &r->uq, 'u', r->notice_claimed);
        release_reservation(r, &r->tq, 't', false);
        r->notice_claimed = false;
        if (cfg->quota_fail_mode == TG_FAIL_OPEN) {
            r->quota_skipped = true;
            tg_metric_inc(&r->w->metrics.quota_fail_open, 1);
            tg_request_on_reserved(r);
        } else {
            reply_unavailable(r);
        }
        return;
    }
    if (blocked != NULL) {
        release_reservation(r, &r->uq, 'u', r->notice_claimed);
        release_reservation(r, &r->tq, 't', false);
        r->notice_claimed = false;
        reply_block(r, blocked->q, blocked->kind);
        return;
    }
    r->quota_state = tg_quota_state_of(r->uq.used, r->uq.limit, cfg->quota_warn_percent);
    tg_request_on_reserved(r);
}

static void op_finished(struct reserve_ctx *ctx)
{
    if (--ctx->outstanding > 0)
        return;
    struct tg_request *r = ctx->r;
    r->pending--;
    reserve_decide(ctx);
    tg_request_release(r);
}

static void on_reserve(void *arg, const struct tg_quota_result *res)
{
    struct reserve_op *op = arg;
    op->res = *res;
    op->res.error = NULL;
    struct reserve_ctx *c = (struct reserve_ctx *)op->r->quota_ctx;
    if (res->ok && res->code == TG_QUOTA_CODE_NEED_INIT && !op->r->finished &&
        !op->r->client_gone) {
        op->q->need_init = true;
        rebuild_subject(c, op);
        return;
    }
    op_finished(c);
}

static void reserve_subject(struct reserve_ctx *ctx, struct reserve_op *op)
{
    struct tg_request *r = ctx->r;
    struct tg_quota_subject s;
    const char *id = op->kind == 't' ? r->user.team_id : r->who.user_id;
    if (tg_quota_subject_init(&s, op->kind, id, op->q->limit) != 0) {
        op->res.ok = false;
        op->res.redis = TG_REDIS_OK;
        op_finished(ctx);
        return;
    }
    int64_t now = tg_now_ms();
    bool claim = op->kind == 'u' && ctx->claim_notice;
    if (tg_quota_reserve_start(r->w->redis, prefix(), &s, &op->q->bounds, r->id, ctx->amount, now,
                               (int64_t)tg_app->cfg.quota_reservation_ttl_s * 1000, claim,
                               on_reserve, op) != 0) {
        op->res.ok = false;
        op->res.redis = TG_REDIS_NOT_CONNECTED;
        op_finished(ctx);
    }
}

/* ---- rebuild: sum the ledger once it holds every row this process billed --------------------- */

struct rebuild_job {
    struct reserve_ctx *ctx;
    struct reserve_op *op;
    struct tg_worker *w;
    char kind;
    char id[129];
    char period_key[24];
    int64_t start_s, reset_s;
    int64_t since_ms; /* W */
    bool ok;
    int64_t tokens;
    bool warned, exhausted;
};

static void rebuild_ledger_fn(void *conn_arg, void *arg)
{
    PGconn *conn = conn_arg;
    struct rebuild_job *j = arg;
    if (conn != NULL) {
        char start[24], reset[24], since[24];
        snprintf(start, sizeof(start), "%lld", (long long)j->start_s);
        snprintf(reset, sizeof(reset), "%lld",
                 (long long)(j->reset_s == INT64_MAX ? 253402300799LL : j->reset_s));
        snprintf(since, sizeof(since), "%lld", (long long)j->since_ms);
        const char *params[4] = {j->id, start, reset, since};
        const char *sql =
            j->kind == 't'
                ? "SELECT COALESCE(SUM(total_tokens), 0) FROM ledger WHERE team_id = $1 "
                  "AND started_at >= timestamptz 'epoch' + $2::bigint * interval '1 second' "
                  "AND started_at < timestamptz 'epoch' + $3::bigint * interval '1 second' "
                  "AND finished_at < timestamptz 'epoch' + $4::bigint * interval '1 millisecond'"
                : "SELECT COALESCE(SUM(total_tokens), 0) FROM ledger WHERE user_id = $1 "
                  "AND started_at >= timestamptz 'epoch' + $2::bigint * interval '1 second' "
                  "AND started_at < timestamptz 'epoch' + $3::bigint * interval '1 second' "
                  "AND finished_at < timestamptz 'epoch' + $4::bigint * interval '1 millisecond'";
        PGresult *res = tg_db_exec(conn, sql, 4, params);
        if (res != NULL && PQntuples(res) == 1) {
            j->tokens = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
            j->ok = true;
        }
        if (res != NULL)
            PQclear(res);
        if (j->ok) {
            char wid[400], eid[400];
            if (tg_quota_outbox_id(wid, sizeof(wid), false, j->kind, j->id, j->period_key) > 0 &&
                tg_quota_outbox_id(eid, sizeof(eid), true, j->kind, j->id, j->period_key) > 0) {
                const char *p2[2] = {wid, eid};
                res = tg_db_exec(conn, "SELECT id FROM webhook_outbox WHERE id IN ($1, $2)", 2, p2);
                if (res == NULL) {
                    j->ok = false;
                } else {
                    for (int i = 0; i < PQntuples(res); i++) {
                        if (strcmp(PQgetvalue(res, i, 0), wid) == 0)
                            j->warned = true;
                        else
                            j->exhausted = true;
                    }
                    PQclear(res);
                }
            }
        }
    }
}

static void on_init(void *arg, const struct tg_quota_result *res);

static void rebuild_back(void *arg)
{
    struct rebuild_job *j = arg;
    struct reserve_op *op = j->op;
    struct reserve_ctx *ctx = j->ctx;
    struct tg_request *r = ctx->r;
    if (!j->ok || r->finished || r->client_gone) {
        if (!j->ok) {
            op->res.ok = false;
            op->res.redis = TG_REDIS_OK;
            tg_log(TG_LOG_WARN, "quota rebuild from the ledger failed for %c:%s", j->kind, j->id);
        }
        free(j);
        op_finished(ctx);
        return;
    }
    struct tg_quota_subject s;
    if (tg_quota_subject_init(&s, j->kind, j->id, op->q->limit) != 0 ||
        tg_quota_init_start(r->w->redis, prefix(), &s, &op->q->bounds, j->tokens, j->since_ms,
                            j->warned, j->exhausted, tg_app->cfg.quota_warn_percent, on_init,
                            op) != 0) {
        op->res.ok = false;
        op->res.redis = TG_REDIS_NOT_CONNECTED;
        free(j);
        op_finished(ctx);
        return;
    }
    free(j);
}

static void rebuild_ledger_entry(void *conn, void *arg)
{
    struct rebuild_job *j = arg;
    rebuild_ledger_fn(conn, arg);
    if (tg_worker_post(j->w, rebuild_back, j) != 0) {
        /* the worker is gone (shutdown): nothing can use the result */
        free(j);
    }
}

static void on_init(void *arg, const struct tg_quota_result *res)
{
    struct reserve_op *op = arg;
    struct reserve_ctx *ctx = (struct reserve_ctx *)op->r->quota_ctx;
    if (!res->ok) {
        op->res = *res;
        op->res.error = NULL;
        op_finished(ctx);
        return;
    }
    /* built (by us or by another instance): reserve again */
    reserve_subject(ctx, op);
}

static void rebuild_subject(struct reserve_ctx *ctx, struct reserve_op *op)
{
    struct tg_request *r = ctx->r;
    struct rebuild_job *j = calloc(1, sizeof(*j));
    if (j == NULL) {
        op->res.ok = false;
        op_finished(ctx);
        return;
    }
    j->ctx = ctx;
    j->op = op;
    j->w = r->w;
    j->kind = op->kind;
    snprintf(j->id, sizeof(j->id), "%s", op->kind == 't' ? r->user.team_id : r->who.user_id);
    snprintf(j->period_key, sizeof(j->period_key), "%s", op->q->bounds.key);
    j->start_s = op->q->bounds.start_s;
    j->reset_s = op->q->bounds.reset_s;
    j->since_ms = tg_now_ms();
    if (tg_ledger_run_after_flush(tg_app->ledger, rebuild_ledger_entry, j) != 0) {
        free(j);
        op->res.ok = false;
        op_finished(ctx);
    }
}

static int subject_bounds(struct tg_req_quota *q, int period)
{
    return tg_quota_period_bounds(tg_now_ms() / 1000, (enum tg_period)period, tg_app->tz,
                                  &q->bounds);
}

void tg_req_quota_reserve(struct tg_request *r)
{
    const struct tg_config *cfg = &tg_app->cfg;
    r->uq.limit = r->user.limit_tokens;
    r->uq.active = true;
    if (subject_bounds(&r->uq, r->user.period) != 0) {
        reply_unavailable(r);
        return;
    }
    if (r->user.has_team_quota && r->user.team_id[0]) {
        r->tq.active = true;
        r->tq.limit = r->user.team_limit;
        if (subject_bounds(&r->tq, r->user.team_period) != 0) {
            reply_unavailable(r);
            return;
        }
    }
    int64_t amount =
        tg_quota_reservation(r->prompt_estimate, r->info.max_tokens,
                             cfg->quota_reserve_default_tokens, cfg->quota_reserve_max_tokens);
    if (r->w->redis == NULL || !tg_redis_is_ready(r->w->redis)) {
        if (cfg->quota_fail_mode == TG_FAIL_OPEN) {
            r->quota_skipped = true;
            tg_metric_inc(&r->w->metrics.quota_fail_open, 1);
            mark_dirty(r, 'u', &r->uq);
            if (r->tq.active)
                mark_dirty(r, 't', &r->tq);
            tg_request_on_reserved(r);
        } else {
            reply_unavailable(r);
        }
        return;
    }
    struct reserve_ctx *ctx = calloc(1, sizeof(*ctx));
    if (ctx == NULL) {
        reply_unavailable(r);
        return;
    }
    ctx->r = r;
    ctx->amount = amount;
    ctx->claim_notice =
        cfg->quota_warn_inline && r->route == TG_ROUTE_CHAT && r->info.stream && r->info.n == 1;
    r->uq.reserved = amount;
    ctx->ops[0] = (struct reserve_op){.r = r, .q = &r->uq, .kind = 'u'};
    ctx->nops = 1;
    if (r->tq.active) {
        r->tq.reserved = amount;
        ctx->ops[1] = (struct reserve_op){.r = r, .q = &r->tq, .kind = 't'};
        ctx->nops = 2;
    }
    ctx->outstanding = ctx->nops;
    r->quota_ctx = ctx;
    r->pending++;
    for (int i = 0; i < ctx->nops; i++)
        reserve_subject(ctx, &ctx->ops[i]);
}

/* ---- settlement ------------------------------------------------------------------------------ */

struct settle_op {
    struct tg_request *r;
    char kind;
    struct tg_req_quota *q;
};

struct outbox_job {
    char id[400];
    char type[24];
    char payload[2048];
    char kind;
    char subject[129];
    char period_key[24];
};

static void outbox_work(PGconn *conn, void *arg)
{
    struct outbox_job *j = arg;
    if (conn == NULL) {
        tg_log(TG_LOG_WARN, "webhook outbox: database unreachable, %s not queued", j->id);
        return;
    }
    const char *kind = j->kind == 't' ? "team" : "user";
    const char *params[6] = {j->id, j->type, kind, j->subject, j->period_key, j->payload};
    PGresult *res = tg_db_exec(conn,
                               "INSERT INTO webhook_outbox (id, type, subject_kind, subject_id, "
                               "period_key, payload) VALUES ($1, $2, $3, $4, $5, $6::jsonb) "
                               "ON CONFLICT (id) DO NOTHING",
                               6, params);
    if (res != NULL)
        PQclear(res);
}

static void outbox_done(void *arg)
{
    free(arg);
}

static void queue_crossing(struct tg_request *r, char kind, const struct tg_req_quota *q,
                           bool exhausted, int64_t used)
{
    /* recorded even without a webhook URL: the outbox row is also what tells a rebuild that
     * the crossing already happened this period */
    struct outbox_job *j = calloc(1, sizeof(*j));
    if (j == NULL)
        return;
    const char *subject = kind == 't' ? r->user.team_id : r->who.user_id;
    if (tg_quota_outbox_id(j->id, sizeof(j->id), exhausted, kind, subject, q->bounds.key) < 0) {
        free(j);
        return;
    }
    snprintf(j->type, sizeof(j->type), "%s", exhausted ? "quota.exhausted" : "quota.warning");
    j->kind = kind;
    snprintf(j->subject, sizeof(j->subject), "%s", subject);
    snprintf(j->period_key, sizeof(j->period_key), "%s", q->bounds.key);
    char start[40], at[40];
    if (tg_quota_format_rfc3339(q->bounds.start_s, tg_app->tz, start, sizeof(start)) < 0)
        snprintf(start, sizeof(start), "1970-01-01T00:00:00Z");
    if (tg_quota_format_rfc3339(tg_now_ms() / 1000, NULL, at, sizeof(at)) < 0)
        snprintf(at, sizeof(at), "1970-01-01T00:00:00Z");
    int period = kind == 't' ? r->user.team_period : r->user.period;
    struct tg_buf b = {0};
    int rc = tg_buf_puts(&b, "{\"id\":");
    rc |= tg_json_escape(&b, j->id, strlen(j->id));
    rc |= tg_buf_printf(&b, ",\"type\":\"%s\",\"user_id\":", j->type);
    rc |= tg_json_escape(&b, r->who.user_id, strlen(r->who.user_id));
    rc |= tg_buf_puts(&b, ",\"team_id\":");
    if (r->user.team_id[0])
        rc |= tg_json_escape(&b, r->user.team_id, strlen(r->user.team_id));
    else
        rc |= tg_buf_puts(&b, "null");
    rc |= tg_buf_printf(&b,
                        ",\"subject\":\"%s\",\"used_tokens\":%lld,\"limit_tokens\":%lld,"
                        "\"period\":\"%s\",\"period_start\":\"%s\",\"at\":\"%s\"}",
                        kind == 't' ? "team" : "user", (long long)used, (long long)q->limit,
                        tg_period_name((enum tg_period)period), start, at);
    if (rc != 0 || b.len >= sizeof(j->payload)) {
        tg_buf_cleanup(&b);
        free(j);
        return;
    }
    memcpy(j->payload, b.data, b.len + 1);
    tg_events_publish(j->type, b.data, b.len);
    tg_buf_cleanup(&b);
    if (tg_dbpool_submit(tg_app->db, NULL, outbox_work, outbox_done, j) != 0)
        free(j);
}

static void on_settle(void *arg, const struct tg_quota_result *res)
{
    struct settle_op *op = arg;
    struct tg_request *r = op->r;
    if (!res->ok) {
        mark_dirty(r, op->kind, op->q);
    } else {
        if (res->crossed & TG_QUOTA_CROSSED_WARNING)
            queue_crossing(r, op->kind, op->q, false, res->used);
        if (res->crossed & TG_QUOTA_CROSSED_EXHAUSTED)
            queue_crossing(r, op->kind, op->q, true, res->used);
    }
    free(op);
    r->pending--;
    tg_request_release(r);
}

static void settle_subject(struct tg_request *r, char kind, struct tg_req_quota *q, bool give_back)
{
    struct tg_quota_subject s;
    const char *id = kind == 't' ? r->user.team_id : r->who.user_id;
    if (tg_quota_subject_init(&s, kind, id, q->limit) != 0)
        return;
    struct settle_op *op = calloc(1, sizeof(*op));
    if (op == NULL)
        return;
    op->r = r;
    op->kind = kind;
    op->q = q;
    int64_t finish_ms = r->finished_at_us / 1000;
    int64_t dedupe_ms = tg_now_ms() + (int64_t)tg_app->cfg.quota_reservation_ttl_s * 1000;
    r->pending++;
    if (tg_quota_settle_start(r->w->redis, prefix(), &s, &q->bounds, r->id, r->usage.total_tokens,
                              finish_ms, tg_app->cfg.quota_warn_percent, give_back, dedupe_ms,
                              on_settle, op) != 0) {
        r->pending--;
        free(op);
        mark_dirty(r, kind, q);
    }
}

void tg_req_quota_settle(struct tg_request *r)
{
    if (!r->uq.active || r->status == TG_STATUS_BLOCKED)
        return;
    if (r->quota_skipped) {
        /* served without Redis: the ledger has it; rebuild the counter when Redis is back */
        mark_dirty(r, 'u', &r->uq);
        if (r->tq.active)
            mark_dirty(r, 't', &r->tq);
        return;
    }
    if (r->w->redis == NULL || !tg_redis_is_ready(r->w->redis)) {
        mark_dirty(r, 'u', &r->uq);
        if (r->tq.active)
            mark_dirty(r, 't', &r->tq);
        return;
    }
    if (r->uq.reserve_ok || r->uq.active)
        settle_subject(r, 'u', &r->uq, r->notice_claimed && !r->notice_placed);
    if (r->tq.active)
        settle_subject(r, 't', &r->tq, false);
}

int tg_req_quota_notice_text(struct tg_request *r, char *dst, size_t cap)
{
    int percent = tg_quota_percent(r->uq.used, r->uq.limit);
    if (percent < tg_app->cfg.quota_warn_percent)
        percent = tg_app->cfg.quota_warn_percent;
    int64_t now_s = tg_now_ms() / 1000;
    struct tg_tz_civil civ;
    tg_tz_to_civil(tg_app->tz, now_s, &civ);
    return tg_notice_format(dst, cap, percent, tg_period_name((enum tg_period)r->user.period),
                            r->uq.bounds.reset_day > 0 ? r->uq.bounds.reset_day : 1,
                            r->uq.bounds.reset_month > 0 ? r->uq.bounds.reset_month : 1,
                            r->uq.bounds.reset_year, (int)civ.year);
}
