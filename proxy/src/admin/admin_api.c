/* admin_api.c: the admin API under /admin/api: authorization, the route table's dispatch, the
 * request/job life cycle, replies, input checks shared by the handlers, and the two routes that
 * need no database (the live feed and the OpenAPI document). */
#include "admin/admin_api.h"

#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <openssl/crypto.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "admin/admin_internal.h"
#include "admin/admin_openapi.h"
#include "core/log.h"
#include "core/timefmt.h"
#include "http/control.h"
#include "http/dbpool.h"
#include "http/events.h"
#include "http/reply.h"
#include "http/server.h"
#include "http/worker.h"

/* Bodies of admin requests are small JSON objects. */
#define MAX_ADMIN_BODY_BYTES (64 * 1024)

/* ---- errors ------------------------------------------------------------------------------- */

static const char *error_type(int status)
{
    switch (status) {
    case 401:
        return "authentication_error";
    case 403:
        return "permission_error";
    case 429:
        return "rate_limit_error";
    default:
        return status >= 500 ? "server_error" : "invalid_request_error";
    }
}

void tg_admin_reply_error(struct tg_conn *c, int status, const char *param, const char *code,
                          const char *message)
{
    struct tg_buf b = {0};
    int rc = tg_buf_puts(&b, "{\"error\":{\"message\":");
    rc |= tg_json_escape(&b, message, strlen(message));
    rc |= tg_buf_puts(&b, ",\"type\":");
    rc |= tg_admin_json_str(&b, error_type(status));
    rc |= tg_buf_puts(&b, ",\"param\":");
    rc |= tg_admin_json_str(&b, param != NULL && param[0] ? param : NULL);
    rc |= tg_buf_puts(&b, ",\"code\":");
    rc |= tg_admin_json_str(&b, code != NULL && code[0] ? code : NULL);
    rc |= tg_buf_puts(&b, "}}");
    if (status == 401)
        tg_conn_add_header(c, "WWW-Authenticate", "Bearer");
    tg_conn_add_header(c, "Cache-Control", "no-store");
    if (rc != 0)
        tg_conn_reply(c, 500, "application/json", "{}", 2);
    else
        tg_conn_reply(c, status, "application/json", b.data, b.len);
    tg_buf_cleanup(&b);
}

int tg_admin_fail(struct tg_admin_req *a, int status, const char *param, const char *code,
                  const char *fmt, ...)
{
    if (a->err_status != 0)
        return -1; /* keep the first error */
    a->err_status = status;
    snprintf(a->err_param, sizeof(a->err_param), "%s", param ? param : "");
    snprintf(a->err_code, sizeof(a->err_code), "%s", code ? code : "");
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(a->err_msg, sizeof(a->err_msg), fmt, ap);
    va_end(ap);
    return -1;
}

int tg_admin_json_str(struct tg_buf *b, const char *s)
{
    if (s == NULL)
        return tg_buf_puts(b, "null");
    return tg_json_escape(b, s, strlen(s));
}

/* ---- request life cycle ------------------------------------------------------------------- */

static void req_free(struct tg_admin_req *a)
{
    if (a == NULL)
        return;
    if (a->job != NULL) {
        if (a->free_fn != NULL)
            a->free_fn(a->job);
        free(a->job);
    }
    if (a->out.data != NULL)
        OPENSSL_cleanse(a->out.data, a->out.len); /* a new key's reply holds the key */
    tg_buf_cleanup(&a->out);
    for (int i = 0; i < TG_ADMIN_MAX_EVENTS; i++)
        tg_buf_cleanup(&a->events[i]);
    free(a);
}

static void on_gone(void *arg)
{
    struct tg_admin_req *a = arg;
    a->conn = NULL;
}

static const struct tg_conn_owner_ops req_ops = {NULL, on_gone};

void tg_admin_finish(struct tg_admin_req *a)
{
    struct tg_conn *c = a->conn;
    if (c != NULL) {
        tg_conn_set_owner(c, NULL, NULL);
        if (a->err_status != 0) {
            tg_admin_reply_error(c, a->err_status, a->err_param, a->err_code, a->err_msg);
        } else if (a->out.len == 0 && a->status == 0) {
            tg_admin_reply_error(c, 500, NULL, "internal", "The request produced no answer.");
        } else {
            tg_conn_add_header(c, "Cache-Control", "no-store");
            tg_conn_reply(c, a->status ? a->status : 200, "application/json", a->out.data,
                          a->out.len);
        }
    }
    req_free(a);
}

static void job_work(PGconn *db, void *arg)
{
    struct tg_admin_req *a = arg;
    if (db == NULL) {
        tg_admin_fail(a, 503, NULL, "database_unavailable",
                      "The database cannot be reached right now; try again.");
        return;
    }
    a->work(db, a);
    if (a->err_status != 0)
        tg_admin_rollback(db);
}

static void job_done(void *arg)
{
    tg_admin_finish(arg);
}

void tg_admin_submit(struct tg_admin_req *a, tg_admin_work_fn work)
{
    a->work = work;
    if (a->conn != NULL)
        tg_conn_set_owner(a->conn, &req_ops, a);
    if (tg_dbpool_submit(tg_app->db, a->w, job_work, job_done, a) != 0) {
        tg_admin_fail(a, 503, NULL, "database_busy",
                      "The database queue is full right now; try again.");
        tg_admin_finish(a);
    }
}

/* ---- database helpers --------------------------------------------------------------------- */

PGresult *tg_admin_exec(struct tg_admin_req *a, PGconn *db, const char *sql, int n,
                        const char *const *params)
{
    PGresult *res = PQexecParams(db, sql, n, NULL, params, NULL, NULL, 0);
    ExecStatusType st = PQresultStatus(res);
    if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK)
        return res;
    const char *state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
    const char *msg = PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY);
    if (msg == NULL)
        msg = PQerrorMessage(db);
    if (PQstatus(db) != CONNECTION_OK || state == NULL || strncmp(state, "08", 2) == 0 ||
        strncmp(state, "57", 2) == 0 || strcmp(state, "40001") == 0 ||
        strcmp(state, "40P01") == 0) {
        tg_log(TG_LOG_WARN, "admin api: database: %s", msg);
        tg_admin_fail(a, 503, NULL, "database_unavailable",
                      "The database cannot answer right now; try again.");
    } else if (strncmp(state, "22", 2) == 0 || strncmp(state, "23", 2) == 0) {
        tg_admin_fail(a, 400, NULL, "invalid_value", "The database refused the value: %s", msg);
    } else {
        tg_log(TG_LOG_WARN, "admin api: database error %s: %s", state, msg);
        tg_admin_fail(a, 500, NULL, "internal", "The database reported an error (%s).", state);
    }
    PQclear(res);
    return NULL;
}

static int simple(struct tg_admin_req *a, PGconn *db, const char *sql)
{
    PGresult *res = tg_admin_exec(a, db, sql, 0, NULL);
    if (res == NULL)
        return -1;
    PQclear(res);
    return 0;
}

int tg_admin_begin(struct tg_admin_req *a, PGconn *db, const char *options)
{
    char sql[160];
    snprintf(sql, sizeof(sql), "BEGIN%s%s", options ? " " : "", options ? options : "");
    return simple(a, db, sql);
}

int tg_admin_commit(struct tg_admin_req *a, PGconn *db)
{
    PGresult *res = PQexec(db, "COMMIT");
    bool ok = PQresultStatus(res) == PGRES_COMMAND_OK &&
              strcmp(PQcmdStatus(res), "COMMIT") == 0; /* "ROLLBACK" after an error */
    PQclear(res);
    if (!ok)
        return tg_admin_fail(a, 503, NULL, "database_unavailable",
                             "The change could not be committed; try again.");
    return 0;
}

void tg_admin_rollback(PGconn *db)
{
    PGTransactionStatusType ts = PQtransactionStatus(db);
    if (ts == PQTRANS_INTRANS || ts == PQTRANS_INERROR) {
        PGresult *res = PQexec(db, "ROLLBACK");
        PQclear(res);
    }
}

/* clang-format off */
#define SQL_AUDIT_INSERT                                                                           \
    "INSERT INTO audit_log (actor, action, target, before, after) "                                \
    "VALUES ($1, $2, $3, $4::jsonb, $5::jsonb) "                                                   \
    "RETURNING json_build_object('id', id, 'actor', actor, 'action', action, 'target', target, "   \
    "  'before', before, 'after', after, "                                                         \
    "  'at', to_char(at AT TIME ZONE 'UTC', " TG_ADMIN_SQL_TSFMT "))::text"
/* clang-format on */

int tg_admin_audit(struct tg_admin_req *a, PGconn *db, const char *action, const char *target,
                   const char *before, const char *after)
{
    const char *p[5] = {a->actor, action, target, before, after};
    PGresult *res = tg_admin_exec(a, db, SQL_AUDIT_INSERT, 5, p);
    if (res == NULL)
        return -1;
    if (a->nevents < TG_ADMIN_MAX_EVENTS &&
        tg_buf_puts(&a->events[a->nevents], PQgetvalue(res, 0, 0)) == 0)
        a->nevents++;
    PQclear(res);
    return 0;
}

void tg_admin_invalidate_later(struct tg_admin_req *a, const char *kind, const char *id)
{
    if (a->ninvalidate >= TG_ADMIN_MAX_EVENTS)
        return;
    if (id != NULL)
        snprintf(a->invalidate[a->ninvalidate], sizeof(a->invalidate[0]), "%s %s", kind, id);
    else
        snprintf(a->invalidate[a->ninvalidate], sizeof(a->invalidate[0]), "%s", kind);
    a->ninvalidate++;
}

void *tg_admin_job_new(struct tg_admin_req *a, size_t size)
{
    void *j = calloc(1, size);
    if (j == NULL) {
        tg_admin_fail(a, 500, NULL, "internal", "Out of memory.");
        tg_admin_finish(a);
        return NULL;
    }
    a->job = j;
    return j;
}

void tg_admin_after_commit(struct tg_admin_req *a)
{
    for (int i = 0; i < a->ninvalidate; i++)
        tg_control_invalidate(a->invalidate[i]);
    for (int i = 0; i < a->nevents; i++)
        tg_events_publish("admin", a->events[i].data, a->events[i].len);
}

/* ---- inputs ------------------------------------------------------------------------------- */

static bool word_in(const char *list, const char *s, size_t n)
{
    const char *p = list;
    while (*p) {
        while (*p == ' ')
            p++;
        size_t wl = strcspn(p, " ");
        if (wl == n && wl > 0 && memcmp(p, s, n) == 0)
            return true;
        p += wl;
    }
    return false;
}

int tg_admin_body_object(struct tg_admin_req *a, const char *allowed, bool optional,
                         struct tg_jv *root)
{
    const char *p = a->body;
    size_t n = a->body_len;
    size_t ws = 0;
    while (ws < n && (p[ws] == ' ' || p[ws] == '\t' || p[ws] == '\r' || p[ws] == '\n'))
        ws++;
    if (ws == n) {
        if (optional) {
            *root = (struct tg_jv){"{}", 2, TG_JSON_OBJECT};
            return 0;
        }
        return tg_admin_fail(a, 400, "body", "invalid_body",
                             "This route needs a JSON object as the request body.");
    }
    if (n > MAX_ADMIN_BODY_BYTES)
        return tg_admin_fail(a, 400, "body", "invalid_body",
                             "The request body is larger than %d bytes.", MAX_ADMIN_BODY_BYTES);
    size_t off = 0;
    if (tg_json_parse(p, n, root, &off) != 0)
        return tg_admin_fail(a, 400, "body", "invalid_json",
                             "The request body is not valid JSON (at byte %zu).", off);
    if (root->type != TG_JSON_OBJECT)
        return tg_admin_fail(a, 400, "body", "invalid_body",
                             "The request body must be a JSON object.");
    struct tg_json_iter it;
    struct tg_jv k, v;
    tg_json_iter_init(&it, root);
    while (tg_json_next_member(&it, &k, &v)) {
        char name[64];
        ssize_t kl = tg_json_string_copy(&k, name, sizeof(name) - 1);
        if (kl < 0 || !word_in(allowed, name, (size_t)kl) || memchr(name, '\0', (size_t)kl)) {
            if (kl < 0)
                kl = 0;
            name[kl] = '\0';
            if (allowed[0] == '\0')
                return tg_admin_fail(a, 400, kl > 0 ? name : "body", "unknown_field",
                                     "Unknown field '%s': this route takes an empty body or {}.",
                                     name);
            return tg_admin_fail(a, 400, kl > 0 ? name : "body", "unknown_field",
                                 "Unknown field '%s' (this route accepts: %s).", name, allowed);
        }
        name[kl] = '\0';
        struct tg_json_iter it2 = it;
        struct tg_jv k2, v2;
        while (tg_json_next_member(&it2, &k2, &v2))
            if (tg_json_string_eq(&k2, name, (size_t)kl))
                return tg_admin_fail(a, 400, name, "duplicate_field",
                                     "Field '%s' is given more than once.", name);
    }
    return 0;
}

int tg_admin_query_int(struct tg_admin_req *a, const char *name, int64_t min, int64_t max,
                       int64_t def, int64_t *out)
{
    const char *v = tg_admin_query_get(&a->query, name);
    if (v == NULL) {
        *out = def;
        return 0;
    }
    if (tg_admin_parse_int(v, strlen(v), min, max, out) != 0)
        return tg_admin_fail(a, 400, name, "invalid_value",
                             "'%s' must be an integer from %lld to %lld.", name, (long long)min,
                             (long long)max);
    return 0;
}

int tg_admin_query_time(struct tg_admin_req *a, const char *name, bool *has, int64_t *ms)
{
    const char *v = tg_admin_query_get(&a->query, name);
    *has = false;
    if (v == NULL)
        return 0;
    if (tg_time_parse_rfc3339(v, strlen(v), ms) != 0 || *ms < 0 ||
        *ms >= 253402300800000LL /* 10000-01-01 */)
        return tg_admin_fail(a, 400, name, "invalid_time",
                             "'%s' must be an RFC 3339 time such as 2025-11-01T00:00:00Z "
                             "(or a date, 2025-11-01), between 1970 and 9999.",
                             name);
    *has = true;
    return 0;
}

int tg_admin_query_range(struct tg_admin_req *a, bool *has_from, int64_t *from_ms, bool *has_to,
                         int64_t *to_ms)
{
    if (tg_admin_query_time(a, "from", has_from, from_ms) != 0 ||
        tg_admin_query_time(a, "to", has_to, to_ms) != 0)
        return -1;
    if (*has_from && *has_to && *from_ms > *to_ms)
        return tg_admin_fail(a, 400, "from", "invalid_range",
                             "'from' must not be after 'to' (from is inclusive, to exclusive).");
    return 0;
}

int tg_admin_query_choice(struct tg_admin_req *a, const char *name, const char *choices,
                          const char *def, const char **out)
{
    const char *v = tg_admin_query_get(&a->query, name);
    if (v == NULL) {
        *out = def;
        return 0;
    }
    if (!word_in(choices, v, strlen(v)))
        return tg_admin_fail(a, 400, name, "invalid_value", "'%s' must be one of: %s.", name,
                             choices);
    *out = v;
    return 0;
}

void tg_admin_format_time(int64_t ms, char dst[32])
{
    if (tg_time_format_rfc3339(ms, dst, 32) < 0)
        snprintf(dst, 32, "1970-01-01T00:00:00.000Z");
}

/* ---- routes without the database ---------------------------------------------------------- */

/* The live feed. Its socket gets a fixed send buffer: left to autotuning, the kernel would
 * hold up to tcp_wmem's maximum (4 MiB on Debian) for a subscriber that stopped reading before
 * events.c's own bound (TG_EVENTS_MAX_BACKLOG) is even reached; fixed, a stalled subscriber
 * costs at most about twice EVENTS_SNDBUF_BYTES of kernel memory plus that bound, and is dropped
 * soon. */
#define EVENTS_SNDBUF_BYTES (64 * 1024)

static void events(struct tg_conn *c)
{
    int fd = (int)bufferevent_getfd(c->bev);
    int sz = EVENTS_SNDBUF_BYTES;
    if (fd >= 0 && setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sz, sizeof(sz)) != 0)
        tg_log(TG_LOG_WARN, "events: cannot set SO_SNDBUF: %s", strerror(errno));
    tg_events_subscribe(c);
}

static void openapi(struct tg_conn *c)
{
    tg_conn_add_header(c, "Cache-Control", "no-cache");
    tg_conn_reply(c, 200, "application/json", tg_admin_openapi_json, tg_admin_openapi_json_len);
}

/* ---- dispatch ----------------------------------------------------------------------------- */

typedef void (*handler_fn)(struct tg_admin_req *a);

static const handler_fn handlers[TG_ADMIN_OP_COUNT] = {
    [TG_ADMIN_USERS_LIST] = tg_admin_users_list,
    [TG_ADMIN_USER_GET] = tg_admin_user_get,
    [TG_ADMIN_USER_QUOTA_PUT] = tg_admin_quota_put,
    [TG_ADMIN_TEAMS_LIST] = tg_admin_teams_list,
    [TG_ADMIN_TEAM_GET] = tg_admin_team_get,
    [TG_ADMIN_TEAM_QUOTA_PUT] = tg_admin_quota_put,
    [TG_ADMIN_DEFAULT_QUOTA_GET] = tg_admin_default_quota_get,
    [TG_ADMIN_DEFAULT_QUOTA_PUT] = tg_admin_quota_put,
    [TG_ADMIN_KEY_CREATE] = tg_admin_key_create,
    [TG_ADMIN_KEY_REVOKE] = tg_admin_key_revoke,
    [TG_ADMIN_USER_DISABLE] = tg_admin_user_set_disabled,
    [TG_ADMIN_USER_ENABLE] = tg_admin_user_set_disabled,
    [TG_ADMIN_USAGE] = tg_admin_usage,
    [TG_ADMIN_LEDGER] = tg_admin_ledger,
    [TG_ADMIN_LEDGER_CSV] = tg_admin_ledger_csv,
    [TG_ADMIN_PRICES_LIST] = tg_admin_prices_list,
    [TG_ADMIN_PRICE_PUT] = tg_admin_price_put,
    [TG_ADMIN_AUDIT] = tg_admin_audit_list,
};

void tg_admin_dispatch(struct tg_conn *c)
{
    struct tg_principal who;
    char msg[300];
    int rc = tg_identity_check_admin(c, &who, msg, sizeof(msg));
    if (rc == TG_AUTH_UNAUTHORIZED) {
        tg_admin_reply_error(c, 401, NULL, "invalid_api_key", msg);
        return;
    }
    if (rc != TG_AUTH_OK) {
        tg_admin_reply_error(c, 403, NULL, "forbidden", msg);
        return;
    }
    struct tg_admin_match *m = malloc(sizeof(*m));
    if (m == NULL) {
        tg_admin_reply_error(c, 500, NULL, "internal", "Out of memory.");
        return;
    }
    enum tg_admin_match_rc mr =
        tg_admin_route_match(c->head.method, c->head.method_len, c->path, c->path_len, m);
    if (mr == TG_ADMIN_MATCH_NO_PATH) {
        free(m);
        snprintf(msg, sizeof(msg), "Unknown admin route %.*s.", (int)TG_MIN(c->path_len, 200),
                 c->path);
        tg_admin_reply_error(c, 404, NULL, "not_found", msg);
        return;
    }
    if (mr == TG_ADMIN_MATCH_BAD_METHOD) {
        snprintf(msg, sizeof(msg), "Method %.*s is not allowed here; use %s.",
                 (int)TG_MIN(c->head.method_len, 16), c->head.method, m->allow);
        tg_conn_add_header(c, "Allow", m->allow);
        free(m);
        tg_admin_reply_error(c, 405, NULL, "method_not_allowed", msg);
        return;
    }
    if (mr == TG_ADMIN_MATCH_BAD_PARAM) {
        snprintf(msg, sizeof(msg), "Path parameter '%s' is malformed (bad %%-escape or too long).",
                 m->bad_param);
        tg_admin_reply_error(c, 400, m->bad_param, "invalid_value", msg);
        free(m);
        return;
    }
    const struct tg_admin_route *r = m->route;
    struct tg_admin_req *a = calloc(1, sizeof(*a));
    if (a == NULL) {
        free(m);
        tg_admin_reply_error(c, 500, NULL, "internal", "Out of memory.");
        return;
    }
    a->match = *m;
    free(m);
    a->conn = c;
    a->w = c->w;
    a->route = r;
    snprintf(a->actor, sizeof(a->actor), "%s", who.actor[0] ? who.actor : "admin");
    char bad[64];
    if (tg_admin_query_parse(c->query, c->query_len, r->query, &a->query, bad, sizeof(bad), msg,
                             sizeof(msg)) != 0) {
        tg_admin_fail(a, 400, bad, "invalid_query", "%s", msg);
        tg_admin_finish(a);
        return;
    }
    if (r->has_body) {
        a->body_len = evbuffer_get_length(c->body);
        a->body = a->body_len > 0 ? (const char *)evbuffer_pullup(c->body, -1) : "";
        if (a->body == NULL) {
            tg_admin_fail(a, 500, NULL, "internal", "Out of memory.");
            tg_admin_finish(a);
            return;
        }
    }
    switch (r->op) {
    case TG_ADMIN_EVENTS:
        req_free(a);
        events(c);
        return;
    case TG_ADMIN_OPENAPI:
        req_free(a);
        openapi(c);
        return;
    default:
        break;
    }
    if (tg_app->db == NULL || handlers[r->op] == NULL) {
        tg_admin_fail(a, 503, NULL, "database_unavailable", "The database is not configured.");
        tg_admin_finish(a);
        return;
    }
    handlers[r->op](a);
}
