/* req_quota.c: reservation, settlement, rebuild from the ledger and fail modes (SPEC §5). */
#include "http/req_quota.h"

#include <libpq-fe.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/json_scan.h"
#include "core/log.h"
#include "core/lru.h"
#include "core/timefmt.h"
#include "http/control.h"
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

/* ---- work left for when Redis is back (per worker thread) ----------------------------------
 * dirty: subjects served without Redis (fail open) or whose settle failed: their period hash
 *        is deleted on reconnect, so the next request rebuilds it from the ledger.
 * orphans: reservations whose reserve command timed out or lost its connection after it was
 *        sent: Redis may still have applied them; they are released on reconnect instead of
 *        holding the user's room until QUOTA_RESERVATION_TTL_S. */

struct dirty_entry {
    char kind;
    char id[129];
    char period_key[24];
};

struct orphan {
    struct orphan *next;
    char kind;
    bool give_back_notice;
    char id[129];
    char request_id[37];
    struct tg_period_bounds bounds;
};

#define MAX_ORPHANS 100000

struct worker_state {
    struct tg_lru *dirty;
    struct orphan *orphans;
    size_t norphans;
};

/* Freed when the thread exits (the key's destructor). */
static __thread struct worker_state *wstate;
static pthread_key_t wstate_key;
static pthread_once_t wstate_once = PTHREAD_ONCE_INIT;
static bool wstate_key_ok;

static void wstate_free(void *p)
{
    struct worker_state *ws = p;
    tg_lru_destroy(ws->dirty);
    while (ws->orphans != NULL) {
        struct orphan *o = ws->orphans;
        ws->orphans = o->next;
        free(o);
    }
    free(ws);
}

static void wstate_key_init(void)
{
    wstate_key_ok = pthread_key_create(&wstate_key, wstate_free) == 0;
}

static struct worker_state *worker_state(void)
{
    if (wstate != NULL)
        return wstate;
    pthread_once(&wstate_once, wstate_key_init);
    if (!wstate_key_ok)
        return NULL;
    struct worker_state *ws = calloc(1, sizeof(*ws));
    if (ws == NULL)
        return NULL;
    ws->dirty = tg_lru_create(100000, sizeof(struct dirty_entry));
    if (ws->dirty == NULL || pthread_setspecific(wstate_key, ws) != 0) {
        tg_lru_destroy(ws->dirty);
        free(ws);
        return NULL;
    }
    wstate = ws;
    return ws;
}

static void mark_dirty(struct tg_request *r, char kind, const struct tg_req_quota *q)
{
    struct worker_state *ws = worker_state();
    if (ws == NULL)
        return;
    const char *id = kind == 't' ? r->user.team_id : r->who.user_id;
    char key[160 + 24];
    int n = snprintf(key, sizeof(key), "%c%s|%s", kind, id, q->bounds.key);
    if (n <= 0 || (size_t)n >= TG_LRU_MAX_KEY)
        return;
    struct dirty_entry *e = tg_lru_put(ws->dirty, key, (size_t)n, INT64_MAX);
    if (e != NULL) {
        e->kind = kind;
        snprintf(e->id, sizeof(e->id), "%s", id);
        snprintf(e->period_key, sizeof(e->period_key), "%s", q->bounds.key);
    }
}

static void add_orphan(struct tg_request *r, char kind, const struct tg_req_quota *q,
                       bool give_back_notice)
{
    struct worker_state *ws = worker_state();
    if (ws == NULL || ws->norphans >= MAX_ORPHANS)
        return; /* the reservation's expiry still frees it */
    struct orphan *o = calloc(1, sizeof(*o));
    if (o == NULL)
        return;
    o->kind = kind;
    o->give_back_notice = give_back_notice;
    snprintf(o->id, sizeof(o->id), "%s", kind == 't' ? r->user.team_id : r->who.user_id);
    snprintf(o->request_id, sizeof(o->request_id), "%s", r->id);
    o->bounds = q->bounds;
    o->next = ws->orphans;
    ws->orphans = o;
    ws->norphans++;
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
    if (tg_quota_key(h, sizeof(h), prefix(), s.tag, e->period_key, "") < 0)
        return true;
    /* the next reservation finds the hash missing and rebuilds it from the ledger, which
     * holds what was served meanwhile */
    if (tg_redis_command(w->redis, del_done, NULL, "DEL %s", h) != 0)
        return false;
    return true;
}

static void orphan_released(void *arg, const struct tg_quota_result *res)
{
    (void)arg;
    (void)res;
}

void tg_req_quota_on_redis_ready(struct tg_worker *w)
{
    struct worker_state *ws = wstate;
    if (ws == NULL)
        return;
    if (ws->norphans > 0)
        tg_log(TG_LOG_INFO, "redis is back: releasing %zu reservations of failed requests",
               ws->norphans);
    while (ws->orphans != NULL) {
        struct orphan *o = ws->orphans;
        ws->orphans = o->next;
        ws->norphans--;
        struct tg_quota_subject s;
        if (tg_quota_subject_init(&s, o->kind, o->id, 0) == 0)
            (void)!tg_quota_release_start(w->redis, prefix(), &s, &o->bounds, o->request_id,
                                          o->give_back_notice, orphan_released, NULL);
        free(o);
    }
    if (tg_lru_count(ws->dirty) > 0) {
        tg_log(TG_LOG_INFO, "redis is back: rebuilding %zu quota counters from the ledger",
               tg_lru_count(ws->dirty));
        tg_lru_del_if(ws->dirty, dirty_flush_one, w);
    }
}

/* ---- block and 503 replies ------------------------------------------------------------------ */

/* The block sentence for a team: the user's sentence told about the team ("You have used 120 %
 * of your monthly AI quota" → "Your team has used 120 % of its monthly AI quota"; "Your AI
 * quota is 0 tokens" → "Your team's AI quota is 0 tokens"). */
static void team_sentence(char *dst, size_t cap, const char *msg)
{
    static const char used[] = "You have used ", zero[] = "Your AI quota";
    const char *of = strstr(msg, " of your ");
    if (strncmp(msg, used, sizeof(used) - 1) == 0 && of != NULL) {
        snprintf(dst, cap, "Your team has used %.*s of its %s",
                 (int)(of - msg - (sizeof(used) - 1)), msg + sizeof(used) - 1, of + 9);
    } else if (strncmp(msg, zero, sizeof(zero) - 1) == 0) {
        snprintf(dst, cap, "Your team's AI quota%s", msg + sizeof(zero) - 1);
    } else {
        snprintf(dst, cap, "%s", msg);
    }
}

static void reply_block(struct tg_request *r, const struct tg_req_quota *q, char kind)
{
    const struct tg_config *cfg = &tg_app->cfg;
    char msg[400];
    int64_t now_s = tg_now_ms() / 1000;
    int period = kind == 't' ? r->user.team_period : r->user.period;
    if (tg_quota_block_message(msg, sizeof(msg), q->used, q->limit, (enum tg_period)period,
                               &q->bounds, now_s) < 0)
        snprintf(msg, sizeof(msg), "You have used all of your AI quota.");
    if (q->limit > 0 && q->used < q->limit) {
        /* refused because requests still running hold the rest */
        size_t n = strlen(msg);
        snprintf(msg + n, sizeof(msg) - n, " Requests still in progress hold the rest of it.");
    }
    char team_msg[460];
    const char *text = msg;
    if (kind == 't') {
        team_sentence(team_msg, sizeof(team_msg), msg);
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
        if (h.reset[0] != '\0') /* period none: no next period */
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
    struct tg_req_quota *blocked = NULL; /* lives in r, not in ctx */
    char blocked_kind = 'u';
    for (int i = 0; i < ctx->nops; i++) {
        struct reserve_op *op = &ctx->ops[i];
        if (!op->res.ok) {
            transport_failed = true;
            /* sent, but no answer: Redis may have taken the reservation all the same */
            if (op->res.redis == TG_REDIS_TIMEOUT || op->res.redis == TG_REDIS_DISCONNECTED)
                add_orphan(r, op->kind, op->q, op->kind == 'u' && ctx->claim_notice);
            continue;
        }
        op->q->used = op->res.used;
        if (op->res.code == TG_QUOTA_CODE_OK) {
            op->q->reserve_ok = true;
            if (op->kind == 'u' && op->res.notice > 0)
                r->notice_claimed = true;
        } else if (op->res.code == TG_QUOTA_CODE_BLOCKED && blocked == NULL) {
            blocked = op->q;
            blocked_kind = op->kind;
        }
    }
    free(ctx);
    r->quota_ctx = NULL;
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
        reply_block(r, blocked, blocked_kind);
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
    /* r->pending still counts this reservation, so a reply that finishes r inside
     * reserve_decide (a block, a 503) cannot free it under us */
    reserve_decide(ctx);
    r->pending--;
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

/* ---- rebuild: sum the ledger once it holds every row this process billed --------------------
 * One rebuild per subject and period is in flight per worker: the requests that find the same
 * counter missing meanwhile wait for it (after a Redis restart under load that is hundreds of
 * requests of one heavy user, and each sum can take a second of PostgreSQL). The sum runs with
 * a statement time-out; when it fails or times out, the waiting requests follow
 * QUOTA_FAIL_MODE like any other quota failure. */

#define REBUILD_STATEMENT_TIMEOUT "15s"

struct rebuild_waiter {
    struct reserve_ctx *ctx;
    struct reserve_op *op;
    struct rebuild_waiter *next;
};

struct rebuild_job {
    struct tg_worker *w;
    struct rebuild_job *next; /* the worker's jobs in flight */
    struct rebuild_waiter *waiters;
    char kind;
    char id[129];
    char period_key[24];
    int64_t start_s, reset_s;
    int64_t since_ms; /* W */
    bool ok;
    int64_t tokens;
    bool warned, exhausted;
};

/* the rebuilds this worker's thread has in flight (only its loop touches the list) */
static __thread struct rebuild_job *rebuilds;

static PGresult *exec_or_rollback(PGconn *conn, const char *sql, int n, const char *const *p)
{
    PGresult *res = tg_db_exec(conn, sql, n, p);
    if (res == NULL) {
        PGresult *rb = PQexec(conn, "ROLLBACK");
        PQclear(rb);
    }
    return res;
}

static void rebuild_ledger_fn(void *conn_arg, void *arg)
{
    PGconn *conn = conn_arg;
    struct rebuild_job *j = arg;
    if (conn == NULL)
        return;
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
    PGresult *res = tg_db_exec(conn, "BEGIN", 0, NULL);
    if (res == NULL)
        return;
    PQclear(res);
    res = exec_or_rollback(conn, "SET LOCAL statement_timeout = '" REBUILD_STATEMENT_TIMEOUT "'", 0,
                           NULL);
    if (res == NULL)
        return;
    PQclear(res);
    res = exec_or_rollback(conn, sql, 4, params);
    if (res == NULL)
        return;
    bool ok = PQntuples(res) == 1;
    if (ok)
        j->tokens = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
    PQclear(res);
    char wid[400], eid[400];
    if (ok && tg_quota_outbox_id(wid, sizeof(wid), false, j->kind, j->id, j->period_key) > 0 &&
        tg_quota_outbox_id(eid, sizeof(eid), true, j->kind, j->id, j->period_key) > 0) {
        const char *p2[2] = {wid, eid};
        res = exec_or_rollback(conn, "SELECT id FROM webhook_outbox WHERE id IN ($1, $2)", 2, p2);
        if (res == NULL)
            return;
        for (int i = 0; i < PQntuples(res); i++) {
            if (strcmp(PQgetvalue(res, i, 0), wid) == 0)
                j->warned = true;
            else
                j->exhausted = true;
        }
        PQclear(res);
    }
    res = tg_db_exec(conn, "COMMIT", 0, NULL);
    if (res == NULL)
        return;
    PQclear(res);
    j->ok = ok;
}

static void on_init(void *arg, const struct tg_quota_result *res);
static void queue_crossing(struct tg_request *r, char kind, const struct tg_req_quota *q,
                           bool exhausted, int64_t used);

static void rebuild_unlink(struct rebuild_job *j)
{
    for (struct rebuild_job **p = &rebuilds; *p != NULL; p = &(*p)->next) {
        if (*p == j) {
            *p = j->next;
            return;
        }
    }
}

static void rebuild_free(struct rebuild_job *j)
{
    while (j->waiters != NULL) {
        struct rebuild_waiter *wt = j->waiters;
        j->waiters = wt->next;
        free(wt);
    }
    free(j);
}

/* One waiting request gets the rebuilt figure: init the counter (a no-op when another request
 * or instance built it first), then reserve again. */
static void rebuild_deliver(const struct rebuild_job *j, struct reserve_ctx *ctx,
                            struct reserve_op *op)
{
    struct tg_request *r = ctx->r;
    if (!j->ok || r->finished || r->client_gone) {
        if (!j->ok) {
            op->res.ok = false;
            op->res.redis = TG_REDIS_OK;
        }
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
        op_finished(ctx);
    }
}

static void rebuild_back(void *arg)
{
    struct rebuild_job *j = arg;
    rebuild_unlink(j);
    if (!j->ok)
        tg_log(TG_LOG_WARN, "quota rebuild from the ledger failed for %c:%s", j->kind, j->id);
    /* detach the list first: a waiter's reply may start a new rebuild of the same subject */
    struct rebuild_waiter *wt = j->waiters;
    j->waiters = NULL;
    while (wt != NULL) {
        struct rebuild_waiter *next = wt->next;
        rebuild_deliver(j, wt->ctx, wt->op);
        free(wt);
        wt = next;
    }
    rebuild_free(j);
}

static void rebuild_ledger_entry(void *conn, void *arg)
{
    struct rebuild_job *j = arg;
    rebuild_ledger_fn(conn, arg);
    if (tg_worker_post(j->w, rebuild_back, j) != 0) {
        /* the worker is gone (shutdown): nothing can use the result */
        rebuild_free(j);
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
    /* a rebuilt figure can cross a threshold no alert covered yet (e.g. requests served
     * while Redis was away): the same alerts as a settle */
    if (res->code == TG_QUOTA_CODE_OK) {
        if (res->crossed & TG_QUOTA_CROSSED_WARNING)
            queue_crossing(op->r, op->kind, op->q, false, res->used);
        if (res->crossed & TG_QUOTA_CROSSED_EXHAUSTED)
            queue_crossing(op->r, op->kind, op->q, true, res->used);
    }
    /* built (by us or by another instance): reserve again */
    reserve_subject(ctx, op);
}

static void rebuild_subject(struct reserve_ctx *ctx, struct reserve_op *op)
{
    struct tg_request *r = ctx->r;
    const char *id = op->kind == 't' ? r->user.team_id : r->who.user_id;
    struct rebuild_waiter *wt = calloc(1, sizeof(*wt));
    if (wt == NULL) {
        op->res.ok = false;
        op_finished(ctx);
        return;
    }
    wt->ctx = ctx;
    wt->op = op;
    for (struct rebuild_job *j = rebuilds; j != NULL; j = j->next) {
        if (j->kind == op->kind && strcmp(j->id, id) == 0 &&
            strcmp(j->period_key, op->q->bounds.key) == 0 && j->start_s == op->q->bounds.start_s) {
            wt->next = j->waiters;
            j->waiters = wt;
            return;
        }
    }
    struct rebuild_job *j = calloc(1, sizeof(*j));
    if (j == NULL) {
        free(wt);
        op->res.ok = false;
        op_finished(ctx);
        return;
    }
    j->w = r->w;
    j->waiters = wt;
    j->kind = op->kind;
    snprintf(j->id, sizeof(j->id), "%s", id);
    snprintf(j->period_key, sizeof(j->period_key), "%s", op->q->bounds.key);
    j->start_s = op->q->bounds.start_s;
    j->reset_s = op->q->bounds.reset_s;
    j->since_ms = tg_now_ms();
    if (tg_ledger_run_after_flush(tg_app->ledger, rebuild_ledger_entry, j) != 0) {
        rebuild_free(j);
        op->res.ok = false;
        op_finished(ctx);
        return;
    }
    j->next = rebuilds;
    rebuilds = j;
    tg_metric_inc(&r->w->metrics.quota_rebuilds, 1);
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
    tg_control_kick_webhooks(); /* deliver now rather than at the next poll */
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
    if (tg_time_format_rfc3339(tg_now_ms(), at, sizeof(at)) < 0)
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
    /* A settle is sent once; the marker only guards against a duplicate delivered late (a
     * reconnect): two minutes, so Redis holds ~2 min of request ids, not the period's. */
    int64_t dedupe_ms = 120 * 1000;
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
