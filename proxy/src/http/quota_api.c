/* quota_api.c: GET /v1/quota and GET /v1/quota/statement: the caller's own figures. */
#include "http/quota_api.h"

#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/json_scan.h"
#include "core/timefmt.h"
#include "http/dbpool.h"
#include "http/reply.h"
#include "http/request.h"
#include "http/worker.h"
#include "quota/quota_redis.h"

#define STATEMENT_DEFAULT_LIMIT 100
#define STATEMENT_MAX_LIMIT     1000

static void respond(struct tg_request *r, int status, const char *json, size_t len)
{
    r->client_status = status;
    if (r->conn != NULL) {
        tg_conn_add_header(r->conn, "X-Request-Id", r->id);
        tg_conn_add_header(r->conn, "Cache-Control", "no-store");
        tg_reply_json(r->conn, status, json, len);
    }
    tg_request_finish(r, TG_STATUS_OK);
}

static void respond_error(struct tg_request *r, int status, const char *msg, const char *code)
{
    r->client_status = status;
    snprintf(r->error_detail, sizeof(r->error_detail), "%s", msg);
    if (r->conn != NULL)
        tg_reply_error(r->conn, status, msg,
                       status >= 500 ? "server_error" : "invalid_request_error", code, r->id);
    tg_request_finish(r, TG_STATUS_OK);
}

/* ---- GET /v1/quota ------------------------------------------------------------------------ */

struct figure {
    char kind; /* 'u' or 't' */
    int64_t limit;
    int period;
    struct tg_period_bounds bounds;
    int64_t used;
    bool known; /* from Redis, or summed from the ledger */
};

struct quota_ctx {
    struct tg_request *r;
    struct figure fig[2];
    int nfig;
    int outstanding;
    bool failed;
};

static int figure_json(struct tg_buf *b, const struct figure *f)
{
    const struct tg_config *cfg = &tg_app->cfg;
    int64_t remaining = f->limit < 0 ? -1 : (f->used >= f->limit ? 0 : f->limit - f->used);
    int percent = f->limit < 0 ? 0 : tg_quota_percent(f->used, f->limit);
    enum tg_quota_state st = tg_quota_state_of(f->used, f->limit, cfg->quota_warn_percent);
    char reset[48] = "";
    int rc =
        tg_buf_printf(b,
                      "\"period\":\"%s\",\"limit_tokens\":%lld,\"used_tokens\":%lld,"
                      "\"remaining_tokens\":%lld,\"percent\":%d,\"state\":\"%s\",\"reset\":",
                      tg_period_name((enum tg_period)f->period), (long long)f->limit,
                      (long long)f->used, (long long)remaining, percent, tg_quota_state_name(st));
    if (f->bounds.reset_s != INT64_MAX &&
        tg_quota_format_rfc3339(f->bounds.reset_s, tg_app->tz, reset, sizeof(reset)) > 0) {
        rc |= tg_buf_printf(b, "\"%s\"", reset);
    } else {
        rc |= tg_buf_puts(b, "null");
    }
    return rc;
}

static void quota_reply(struct quota_ctx *q)
{
    struct tg_request *r = q->r;
    if (q->failed) {
        free(q);
        respond_error(r, 503, "The quota figures cannot be read right now; try again.",
                      "quota_unavailable");
        return;
    }
    struct tg_buf b = {0};
    int rc = tg_buf_puts(&b, "{\"user_id\":");
    rc |= tg_json_escape(&b, r->who.user_id, strlen(r->who.user_id));
    rc |= tg_buf_puts(&b, ",");
    rc |= figure_json(&b, &q->fig[0]);
    if (q->nfig > 1) {
        rc |= tg_buf_puts(&b, ",\"team\":{\"team_id\":");
        rc |= tg_json_escape(&b, r->user.team_id, strlen(r->user.team_id));
        rc |= tg_buf_puts(&b, ",");
        rc |= figure_json(&b, &q->fig[1]);
        rc |= tg_buf_puts(&b, "}");
    }
    rc |= tg_buf_puts(&b, "}");
    free(q);
    if (rc != 0)
        respond_error(r, 500, "Out of memory.", "internal");
    else
        respond(r, 200, b.data, b.len);
    tg_buf_cleanup(&b);
}

static void quota_one_done(struct quota_ctx *q)
{
    if (--q->outstanding > 0)
        return;
    struct tg_request *r = q->r;
    r->pending--;
    if (r->finished || r->client_gone) {
        free(q);
        if (!r->finished)
            tg_request_finish(r, TG_STATUS_CLIENT_ABORTED);
        tg_request_release(r);
        return;
    }
    quota_reply(q);
}

/* Redis lost the period (or is away): the ledger holds the truth. */
struct sum_job {
    struct quota_ctx *q;
    struct figure *f;
    char id[129];
    bool ok;
};

static void sum_work(PGconn *conn, void *arg)
{
    struct sum_job *j = arg;
    char start[24], reset[24];
    snprintf(start, sizeof(start), "%lld", (long long)j->f->bounds.start_s);
    snprintf(
        reset, sizeof(reset), "%lld",
        (long long)(j->f->bounds.reset_s == INT64_MAX ? 253402300799LL : j->f->bounds.reset_s));
    const char *params[3] = {j->id, start, reset};
    PGresult *res =
        tg_db_exec(conn,
                   j->f->kind == 't' ? "SELECT COALESCE(SUM(total_tokens), 0) FROM ledger WHERE "
                                       "team_id = $1 AND started_at >= timestamptz 'epoch' + "
                                       "$2::bigint * interval '1 second' AND started_at < "
                                       "timestamptz 'epoch' + $3::bigint * interval '1 second'"
                                     : "SELECT COALESCE(SUM(total_tokens), 0) FROM ledger WHERE "
                                       "user_id = $1 AND started_at >= timestamptz 'epoch' + "
                                       "$2::bigint * interval '1 second' AND started_at < "
                                       "timestamptz 'epoch' + $3::bigint * interval '1 second'",
                   3, params);
    if (res != NULL) {
        j->f->used = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
        j->ok = true;
        PQclear(res);
    }
}

static void sum_done(void *arg)
{
    struct sum_job *j = arg;
    if (!j->ok)
        j->q->failed = true;
    struct quota_ctx *q = j->q;
    free(j);
    quota_one_done(q);
}

static void from_ledger(struct quota_ctx *q, struct figure *f)
{
    struct sum_job *j = calloc(1, sizeof(*j));
    if (j == NULL) {
        q->failed = true;
        quota_one_done(q);
        return;
    }
    j->q = q;
    j->f = f;
    snprintf(j->id, sizeof(j->id), "%s", f->kind == 't' ? q->r->user.team_id : q->r->who.user_id);
    if (tg_dbpool_submit(tg_app->db, q->r->w, sum_work, sum_done, j) != 0) {
        free(j);
        q->failed = true;
        quota_one_done(q);
    }
}

struct peek_op {
    struct quota_ctx *q;
    struct figure *f;
};

static void on_peek(void *arg, const struct tg_quota_result *res)
{
    struct peek_op *op = arg;
    struct quota_ctx *q = op->q;
    struct figure *f = op->f;
    free(op);
    if (res->ok && res->code == TG_QUOTA_CODE_OK) {
        f->used = res->used;
        f->known = true;
        quota_one_done(q);
        return;
    }
    from_ledger(q, f);
}

static void quota_start(struct tg_request *r)
{
    struct quota_ctx *q = calloc(1, sizeof(*q));
    if (q == NULL) {
        respond_error(r, 500, "Out of memory.", "internal");
        return;
    }
    q->r = r;
    int64_t now_s = tg_now_ms() / 1000;
    q->fig[0] =
        (struct figure){.kind = 'u', .limit = r->user.limit_tokens, .period = r->user.period};
    q->nfig = 1;
    if (r->user.has_team_quota && r->user.team_id[0]) {
        q->fig[1] = (struct figure){
            .kind = 't', .limit = r->user.team_limit, .period = r->user.team_period};
        q->nfig = 2;
    }
    for (int i = 0; i < q->nfig; i++) {
        if (tg_quota_period_bounds(now_s, (enum tg_period)q->fig[i].period, tg_app->tz,
                                   &q->fig[i].bounds) != 0) {
            free(q);
            respond_error(r, 500, "Cannot compute the quota period.", "internal");
            return;
        }
    }
    q->outstanding = q->nfig;
    r->pending++;
    for (int i = 0; i < q->nfig; i++) {
        struct figure *f = &q->fig[i];
        struct tg_quota_subject s;
        const char *id = f->kind == 't' ? r->user.team_id : r->who.user_id;
        struct peek_op *op = calloc(1, sizeof(*op));
        if (op == NULL || tg_quota_subject_init(&s, f->kind, id, f->limit) != 0) {
            free(op);
            from_ledger(q, f);
            continue;
        }
        op->q = q;
        op->f = f;
        if (r->w->redis == NULL ||
            tg_quota_peek_start(r->w->redis, tg_app->cfg.redis_key_prefix, &s, &f->bounds,
                                tg_now_ms(), on_peek, op) != 0) {
            free(op);
            from_ledger(q, f);
        }
    }
}

/* ---- GET /v1/quota/statement ---------------------------------------------------------------- */

struct stmt_job {
    struct tg_request *r;
    char user[129];
    char from[32], to[32], limit[16];
    bool ok;
    struct tg_buf json;
};

static void stmt_work(PGconn *conn, void *arg)
{
    struct stmt_job *j = arg;
    const char *params[4] = {j->user, j->from, j->to, j->limit};
    PGresult *res = tg_db_exec(
        conn,
        "SELECT coalesce(json_agg(x ORDER BY x.started_at DESC, x.request_id DESC), '[]')::text "
        "FROM (SELECT request_id, to_char(started_at AT TIME ZONE 'UTC', "
        "'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"') AS started_at_text, started_at, "
        "to_char(finished_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"') AS "
        "finished_at, model, route, status, prompt_tokens, completion_tokens, cached_tokens, "
        "reasoning_tokens, total_tokens, cost_usd::text AS cost_usd, count_source, "
        "client_request_id FROM ledger WHERE user_id = $1 "
        "AND started_at >= $2::timestamptz AND started_at < $3::timestamptz "
        "ORDER BY started_at DESC, request_id DESC LIMIT $4::int) x",
        4, params);
    if (res == NULL)
        return;
    /* rename started_at_text → started_at in the output, drop the raw column */
    const char *agg = PQgetvalue(res, 0, 0);
    j->ok = tg_buf_puts(&j->json, agg) == 0;
    PQclear(res);
}

static void stmt_done(void *arg)
{
    struct stmt_job *j = arg;
    struct tg_request *r = j->r;
    r->pending--;
    if (r->finished || r->client_gone) {
        tg_buf_cleanup(&j->json);
        free(j);
        if (!r->finished)
            tg_request_finish(r, TG_STATUS_CLIENT_ABORTED);
        tg_request_release(r);
        return;
    }
    if (!j->ok) {
        tg_buf_cleanup(&j->json);
        free(j);
        respond_error(r, 503, "The statement cannot be read right now; try again.",
                      "database_unavailable");
        return;
    }
    /* reshape each row: started_at_text is what clients see as started_at */
    struct tg_buf out = {0};
    int rc = tg_buf_puts(&out, "{\"data\":[");
    struct tg_jv root, row, k, v;
    bool first = true;
    if (tg_json_parse(j->json.data, j->json.len, &root, NULL) == 0) {
        struct tg_json_iter it;
        tg_json_iter_init(&it, &root);
        while (tg_json_next_elem(&it, &row)) {
            rc |= tg_buf_puts(&out, first ? "{" : ",{");
            first = false;
            struct tg_json_iter mi;
            tg_json_iter_init(&mi, &row);
            bool firstm = true;
            while (tg_json_next_member(&mi, &k, &v)) {
                if (tg_json_key_is(&k, "started_at"))
                    continue;
                rc |= tg_buf_puts(&out, firstm ? "" : ",");
                firstm = false;
                if (tg_json_key_is(&k, "started_at_text"))
                    rc |= tg_buf_puts(&out, "\"started_at\"");
                else
                    rc |= tg_buf_append(&out, k.p, k.n);
                rc |= tg_buf_puts(&out, ":");
                rc |= tg_buf_append(&out, v.p, v.n);
            }
            rc |= tg_buf_puts(&out, "}");
        }
    }
    rc |= tg_buf_puts(&out, "]}");
    tg_buf_cleanup(&j->json);
    free(j);
    if (rc != 0)
        respond_error(r, 500, "Out of memory.", "internal");
    else
        respond(r, 200, out.data, out.len);
    tg_buf_cleanup(&out);
}

static void statement_start(struct tg_request *r)
{
    char v[64];
    int64_t from_ms = INT64_MIN, to_ms = INT64_MAX;
    bool has_from = false, has_to = false;
    if (tg_conn_query_param(r->conn, "from", v, sizeof(v)) >= 0) {
        has_from = true;
        if (tg_time_parse_rfc3339(v, strlen(v), &from_ms) != 0) {
            respond_error(r, 400, "'from' must be an RFC 3339 time.", "invalid_from");
            return;
        }
    }
    if (tg_conn_query_param(r->conn, "to", v, sizeof(v)) >= 0) {
        has_to = true;
        if (tg_time_parse_rfc3339(v, strlen(v), &to_ms) != 0) {
            respond_error(r, 400, "'to' must be an RFC 3339 time.", "invalid_to");
            return;
        }
    }
    struct tg_period_bounds b;
    if (!has_from && !has_to &&
        tg_quota_period_bounds(tg_now_ms() / 1000, (enum tg_period)r->user.period, tg_app->tz,
                               &b) == 0) {
        /* neither given: the current quota period; one given: open on the other side */
        from_ms = b.start_s * 1000;
        to_ms = b.reset_s == INT64_MAX ? INT64_MAX : b.reset_s * 1000;
    }
    if (from_ms > to_ms) {
        respond_error(r, 400, "'from' must not be after 'to'.", "invalid_range");
        return;
    }
    long limit = STATEMENT_DEFAULT_LIMIT;
    if (tg_conn_query_param(r->conn, "limit", v, sizeof(v)) >= 0) {
        char *end;
        limit = strtol(v, &end, 10);
        if (*end != '\0' || limit < 1 || limit > STATEMENT_MAX_LIMIT) {
            respond_error(r, 400, "'limit' must be an integer from 1 to 1000.", "invalid_limit");
            return;
        }
    }
    struct stmt_job *j = calloc(1, sizeof(*j));
    if (j == NULL) {
        respond_error(r, 500, "Out of memory.", "internal");
        return;
    }
    j->r = r;
    snprintf(j->user, sizeof(j->user), "%s", r->who.user_id);
    if (from_ms == INT64_MIN || tg_time_format_rfc3339(from_ms, j->from, sizeof(j->from)) < 0)
        snprintf(j->from, sizeof(j->from), "-infinity");
    if (to_ms == INT64_MAX || tg_time_format_rfc3339(to_ms, j->to, sizeof(j->to)) < 0)
        snprintf(j->to, sizeof(j->to), "infinity");
    snprintf(j->limit, sizeof(j->limit), "%ld", limit);
    r->pending++;
    if (tg_dbpool_submit(tg_app->db, r->w, stmt_work, stmt_done, j) != 0) {
        r->pending--;
        free(j);
        respond_error(r, 503, "The statement cannot be read right now; try again.",
                      "database_unavailable");
    }
}

void tg_quota_api_respond(struct tg_request *r)
{
    if (r->route == TG_ROUTE_STATEMENT)
        statement_start(r);
    else
        quota_start(r);
}
