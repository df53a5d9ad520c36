/* admin_users.c: users (list, detail, disable/enable), quotas (user, team, default) and
 * personal API keys (create, revoke) of the admin API, and the quota figures and user rows
 * admin_teams.c shares. */
#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "admin/admin_internal.h"
#include "auth/apikey.h"
#include "auth/claims.h"
#include "core/log.h"
#include "http/worker.h"
#include "quota/quota_math.h"

#define USERS_DEFAULT_LIMIT 50
#define USERS_MAX_LIMIT     1000
#define USERS_MAX_OFFSET    1000000000
#define MAX_LIMIT_TOKENS    9007199254740991LL /* 2^53 - 1: exact in every JSON client */
#define KEY_NAME_MAX        200

/* ---- quota periods ------------------------------------------------------------------------ */

int tg_admin_periods_now(struct tg_admin_req *a, struct tg_admin_periods *p)
{
    int64_t now_s = tg_now_ms() / 1000;
    for (int i = 0; i < 4; i++) {
        if (tg_quota_period_bounds(now_s, (enum tg_period)i, tg_app->tz, &p->b[i]) != 0)
            return tg_admin_fail(a, 500, NULL, "internal", "Cannot compute the quota periods.");
    }
    for (int i = 0; i < 3; i++) {
        snprintf(p->txt[2 * i], sizeof(p->txt[0]), "%lld", (long long)p->b[i].start_s);
        snprintf(p->txt[2 * i + 1], sizeof(p->txt[0]), "%lld", (long long)p->b[i].reset_s);
    }
    return 0;
}

/* Short names for the shared SQL fragments of admin_internal.h. */
#define P_START      TG_ADMIN_SQL_P_START
#define P_RESET      TG_ADMIN_SQL_P_RESET
#define SQL_DEFAULTS TG_ADMIN_SQL_DEFAULTS
#define TS(col)      TG_ADMIN_SQL_TS(col)

void tg_admin_defaults_params(char lim[24], const char **per)
{
    snprintf(lim, 24, "%lld", (long long)tg_app->cfg.quota_default_tokens);
    *per = tg_period_name((enum tg_period)tg_app->period);
}

const struct tg_period_bounds *tg_admin_period_bounds(const struct tg_admin_periods *ps,
                                                      const char *period)
{
    enum tg_period p;
    if (tg_period_parse(period, &p) != 0)
        p = TG_PERIOD_MONTH;
    return &ps->b[p];
}

int tg_admin_figures_json(struct tg_buf *b, bool has_limit, int64_t limit, const char *period,
                          int64_t used, const struct tg_admin_periods *ps)
{
    const struct tg_period_bounds *pb = tg_admin_period_bounds(ps, period);
    int rc;
    if (has_limit) {
        int64_t remaining = limit < 0 ? -1 : (used >= limit ? 0 : limit - used);
        enum tg_quota_state st = tg_quota_state_of(used, limit, tg_app->cfg.quota_warn_percent);
        rc = tg_buf_printf(b,
                           "\"limit_tokens\":%lld,\"period\":\"%s\",\"used_tokens\":%lld,"
                           "\"remaining_tokens\":%lld,\"percent\":%d,\"state\":\"%s\",",
                           (long long)limit, period, (long long)used, (long long)remaining,
                           tg_quota_percent(used, limit), tg_quota_state_name(st));
    } else {
        rc = tg_buf_printf(b,
                           "\"limit_tokens\":null,\"period\":\"%s\",\"used_tokens\":%lld,"
                           "\"remaining_tokens\":null,\"percent\":0,\"state\":\"%s\",",
                           period, (long long)used, tg_quota_state_name(TG_QUOTA_OK));
    }
    rc |= tg_buf_puts(b, "\"period_start\":");
    char t[48];
    if (pb->reset_s != INT64_MAX &&
        tg_quota_format_rfc3339(pb->start_s, tg_app->tz, t, sizeof(t)) > 0)
        rc |= tg_buf_printf(b, "\"%s\"", t);
    else
        rc |= tg_buf_puts(b, "null");
    rc |= tg_buf_puts(b, ",\"reset\":");
    if (pb->reset_s != INT64_MAX &&
        tg_quota_format_rfc3339(pb->reset_s, tg_app->tz, t, sizeof(t)) > 0)
        rc |= tg_buf_printf(b, "\"%s\"", t);
    else
        rc |= tg_buf_puts(b, "null");
    return rc;
}

static const char *val(const PGresult *res, int row, int col)
{
    return PQgetisnull(res, row, col) ? NULL : PQgetvalue(res, row, col);
}

static int64_t num(const PGresult *res, int row, int col)
{
    return PQgetisnull(res, row, col) ? 0 : strtoll(PQgetvalue(res, row, col), NULL, 10);
}

int tg_admin_path_id(struct tg_admin_req *a, char *dst, size_t cap)
{
    size_t n = 0;
    const char *id = tg_admin_match_param(&a->match, "id", &n);
    if (id == NULL || n >= cap || !tg_claims_user_id_valid(id, n))
        return tg_admin_fail(a, 400, "id", "invalid_id",
                             "The id in the path must be 1-128 bytes of UTF-8 without control "
                             "characters (percent-encode '/' and other reserved characters).");
    memcpy(dst, id, n);
    dst[n] = '\0';
    return 0;
}

/* ---- GET /admin/api/users ----------------------------------------------------------------- */

/* clang-format off */
/* The users with their effective quota and this period's usage: $1 default limit, $2 default
 * period, $3 search text ('' = all) or user id, $4..$9 periods; %s is the filter. */
#define SQL_USERS_BASE                                                                             \
    "WITH " SQL_DEFAULTS ", "                                                                      \
    "e AS (SELECT u.id, u.email, u.name, u.team_id, u.role, u.disabled, u.created_at, "            \
    "             u.updated_at, COALESCE(uq.limit_tokens, d.lim) AS limit_tokens, "                \
    "             COALESCE(uq.period, d.per) AS period, uq.limit_tokens IS NOT NULL AS own_limit " \
    "        FROM users u CROSS JOIN d "                                                           \
    "        LEFT JOIN quotas uq ON uq.subject_kind = 'user' AND uq.subject_id = u.id "            \
    "       WHERE %s), "                                                                           \
    "s AS (SELECT e.*, "                                                                           \
    "             (SELECT max(l.started_at) FROM ledger l WHERE l.user_id = e.id) AS last_seen_ts, " \
    "             (SELECT COALESCE(sum(l.total_tokens), 0) FROM ledger l "                         \
    "               WHERE l.user_id = e.id AND l.started_at >= " P_START                           \
    "                 AND l.started_at < " P_RESET ") AS used "                                    \
    "        FROM e) "                                                                             \
    "SELECT id, email, name, team_id, role, disabled, " TS("created_at") ", " TS("updated_at")     \
    "       , " TS("last_seen_ts") ", limit_tokens, period, own_limit, used FROM s "
/* A case-insensitive substring search over id, email and name in $1 or $3. */
#define SQL_SEARCH_ON(p)                                                                           \
    "(" p " = '' OR strpos(lower(u.id), lower(" p ")) > 0 "                                        \
    " OR strpos(lower(COALESCE(u.email, '')), lower(" p ")) > 0 "                                  \
    " OR strpos(lower(COALESCE(u.name, '')), lower(" p ")) > 0)"
#define SQL_USERS_COUNT "SELECT count(*) FROM users u WHERE " SQL_SEARCH_ON("$1")
#define SQL_SEARCH SQL_SEARCH_ON("$3")
/* clang-format on */

struct users_job {
    struct tg_admin_list list;
};

/* One user of a list or detail reply, from the columns of SQL_USERS_BASE. */
static int user_json(struct tg_buf *b, const PGresult *res, int i,
                     const struct tg_admin_periods *ps, bool with_figures)
{
    int rc = tg_buf_puts(b, "{\"id\":");
    rc |= tg_admin_json_str(b, val(res, i, 0));
    rc |= tg_buf_puts(b, ",\"email\":");
    rc |= tg_admin_json_str(b, val(res, i, 1));
    rc |= tg_buf_puts(b, ",\"name\":");
    rc |= tg_admin_json_str(b, val(res, i, 2));
    rc |= tg_buf_puts(b, ",\"team_id\":");
    rc |= tg_admin_json_str(b, val(res, i, 3));
    rc |= tg_buf_puts(b, ",\"role\":");
    rc |= tg_admin_json_str(b, val(res, i, 4));
    rc |= tg_buf_printf(b, ",\"disabled\":%s", PQgetvalue(res, i, 5)[0] == 't' ? "true" : "false");
    rc |= tg_buf_puts(b, ",\"created_at\":");
    rc |= tg_admin_json_str(b, val(res, i, 6));
    rc |= tg_buf_puts(b, ",\"updated_at\":");
    rc |= tg_admin_json_str(b, val(res, i, 7));
    rc |= tg_buf_puts(b, ",\"last_seen\":");
    rc |= tg_admin_json_str(b, val(res, i, 8));
    if (with_figures) {
        rc |= tg_buf_printf(b, ",\"quota_source\":\"%s\",",
                            PQgetvalue(res, i, 11)[0] == 't' ? "user" : "default");
        rc |= tg_admin_figures_json(b, true, num(res, i, 9), PQgetvalue(res, i, 10),
                                    num(res, i, 12), ps);
    }
    rc |= tg_buf_puts(b, "}");
    return rc;
}

void tg_admin_list_run(PGconn *db, struct tg_admin_req *a, const struct tg_admin_list *l,
                       const char *page_sql, const char *count_sql, tg_admin_row_fn row_fn)
{
    char lim[24], lt[24], ot[24];
    const char *per;
    tg_admin_defaults_params(lim, &per);
    snprintf(lt, sizeof(lt), "%lld", (long long)l->limit);
    snprintf(ot, sizeof(ot), "%lld", (long long)l->offset);
    const char *p[11] = {lim,
                         per,
                         l->q,
                         l->ps.txt[0],
                         l->ps.txt[1],
                         l->ps.txt[2],
                         l->ps.txt[3],
                         l->ps.txt[4],
                         l->ps.txt[5],
                         lt,
                         ot};
    if (tg_admin_begin(a, db, "ISOLATION LEVEL REPEATABLE READ READ ONLY") != 0)
        return;
    const char *cp[1] = {l->q};
    PGresult *cnt = tg_admin_exec(a, db, count_sql, 1, cp);
    if (cnt == NULL)
        return;
    int64_t total = num(cnt, 0, 0);
    PQclear(cnt);
    PGresult *res = tg_admin_exec(a, db, page_sql, 11, p);
    if (res == NULL)
        return;
    int rc = tg_buf_puts(&a->out, "{\"data\":[");
    for (int i = 0; i < PQntuples(res); i++) {
        if (i > 0)
            rc |= tg_buf_puts(&a->out, ",");
        rc |= row_fn(&a->out, res, i, &l->ps);
    }
    rc |= tg_buf_printf(&a->out, "],\"total\":%lld,\"limit\":%lld,\"offset\":%lld}",
                        (long long)total, (long long)l->limit, (long long)l->offset);
    PQclear(res);
    if (tg_admin_commit(a, db) != 0)
        return;
    if (rc != 0) {
        tg_admin_fail(a, 500, NULL, "internal", "Out of memory.");
        return;
    }
    a->status = 200;
}

static int user_row(struct tg_buf *b, const PGresult *res, int i, const struct tg_admin_periods *ps)
{
    return user_json(b, res, i, ps, true);
}

static void users_work(PGconn *db, struct tg_admin_req *a)
{
    struct users_job *j = a->job;
    char sql[4096];
    snprintf(sql, sizeof(sql), SQL_USERS_BASE TG_ADMIN_LIST_ORDER, SQL_SEARCH, j->list.sort_sql,
             j->list.order);
    tg_admin_list_run(db, a, &j->list, sql, SQL_USERS_COUNT, user_row);
}

int tg_admin_users_json(struct tg_admin_req *a, PGconn *db, const char *where, const char *arg,
                        const struct tg_admin_periods *ps)
{
    char lim[24];
    const char *per;
    tg_admin_defaults_params(lim, &per);
    const char *p[9] = {lim,        per,        arg,        ps->txt[0], ps->txt[1],
                        ps->txt[2], ps->txt[3], ps->txt[4], ps->txt[5]};
    char sql[4096];
    snprintf(sql, sizeof(sql), SQL_USERS_BASE "ORDER BY id", where);
    PGresult *res = tg_admin_exec(a, db, sql, 9, p);
    if (res == NULL)
        return -1;
    int rc = tg_buf_puts(&a->out, "[");
    for (int i = 0; i < PQntuples(res); i++) {
        if (i > 0)
            rc |= tg_buf_puts(&a->out, ",");
        rc |= user_json(&a->out, res, i, ps, true);
    }
    rc |= tg_buf_puts(&a->out, "]");
    PQclear(res);
    if (rc != 0)
        return tg_admin_fail(a, 500, NULL, "internal", "Out of memory.");
    return 0;
}

int tg_admin_list_parse(struct tg_admin_req *a, struct tg_admin_list *l, int64_t max_limit,
                        int64_t def_limit, int64_t max_offset, const struct tg_admin_sort *sorts,
                        size_t n)
{
    char names[256];
    size_t used = 0;
    names[0] = '\0';
    for (size_t i = 0; i < n && used < sizeof(names); i++)
        used += (size_t)snprintf(names + used, sizeof(names) - used, "%s%s", i ? " " : "",
                                 sorts[i].name);
    if (used >= sizeof(names)) /* the route's own table: cannot happen */
        return tg_admin_fail(a, 500, NULL, "internal", "Sort table too long.");
    const char *sort, *order;
    if (tg_admin_query_int(a, "limit", 1, max_limit, def_limit, &l->limit) != 0 ||
        tg_admin_query_int(a, "offset", 0, max_offset, 0, &l->offset) != 0 ||
        tg_admin_query_choice(a, "sort", names, sorts[0].name, &sort) != 0 ||
        tg_admin_query_choice(a, "order", "asc desc", "", &order) != 0 ||
        tg_admin_periods_now(a, &l->ps) != 0)
        return -1;
    const char *q = tg_admin_query_get(&a->query, "q");
    if (q != NULL) {
        if (!tg_admin_text_ok(q, strlen(q), 256)) {
            tg_admin_fail(a, 400, "q", "invalid_value",
                          "'q' must be 1-256 bytes of UTF-8 without control characters.");
            return -1;
        }
        snprintf(l->q, sizeof(l->q), "%s", q);
    }
    for (size_t i = 0; i < n; i++) {
        if (strcmp(sorts[i].name, sort) == 0) {
            l->sort_sql = sorts[i].sql;
            l->order = order[0] ? (order[0] == 'a' ? "ASC" : "DESC") : sorts[i].order;
        }
    }
    return 0;
}

void tg_admin_users_list(struct tg_admin_req *a)
{
    static const struct tg_admin_sort sorts[] = {
        {"id", "id", "ASC"},
        {"email", "email", "ASC"},
        {"name", "name", "ASC"},
        {"created_at", "s.created_at", "DESC"},
        {"last_seen", "last_seen_ts", "DESC"},
        {"used_tokens", "used", "DESC"},
        {"percent",
         "(CASE WHEN limit_tokens < 0 THEN 0 WHEN limit_tokens = 0 THEN 100 ELSE "
         "floor(used::numeric * 100 / limit_tokens) END)",
         "DESC"},
    };
    struct users_job *j = tg_admin_job_new(a, sizeof(*j));
    if (j == NULL)
        return;
    if (tg_admin_list_parse(a, &j->list, USERS_MAX_LIMIT, USERS_DEFAULT_LIMIT, USERS_MAX_OFFSET,
                            sorts, TG_ARRAY_LEN(sorts)) != 0) {
        tg_admin_finish(a);
        return;
    }
    tg_admin_submit(a, users_work);
}

/* ---- GET /admin/api/users/{id} ------------------------------------------------------------ */

struct user_job {
    char id[TG_ADMIN_PARAM_MAX + 1];
    bool has_from, has_to;
    int64_t from_ms, to_ms;
    struct tg_admin_periods ps;
};

/* clang-format off */
/* One user's usage between $2 and $3 grouped by the first %s (an SQL expression) and named
 * by the second in the JSON objects, ordered by the third. */
#define SQL_USER_USAGE                                                                             \
    "SELECT COALESCE(json_agg(json_build_object('%s', x.k, " TG_ADMIN_SQL_USAGE_JSON ") "          \
    "                          ORDER BY %s), '[]')::text "                                          \
    "  FROM (SELECT %s AS k, " TG_ADMIN_SQL_USAGE_COLS                                             \
    "          FROM ledger WHERE user_id = $1 "                                                    \
    "           AND started_at >= $2::timestamptz AND started_at < $3::timestamptz "               \
    "         GROUP BY 1) x"
/* The team quota of team $3 with its usage this period ($1, $2 defaults, $4..$9 periods). */
#define SQL_TEAM_QUOTA                                                                             \
    "WITH " SQL_DEFAULTS ", "                                                                      \
    "t AS (SELECT tq.limit_tokens, COALESCE(tq.period, d.per) AS period "                          \
    "        FROM quotas tq CROSS JOIN d "                                                         \
    "       WHERE tq.subject_kind = 'team' AND tq.subject_id = $3 "                                \
    "         AND tq.limit_tokens IS NOT NULL) "                                                   \
    "SELECT t.limit_tokens, t.period, "                                                            \
    "       (SELECT COALESCE(sum(l.total_tokens), 0) FROM ledger l "                               \
    "         WHERE l.team_id = $3 AND l.started_at >= " P_START " AND l.started_at < " P_RESET ") " \
    "  FROM t"
/* A user's keys ($1), newest first, without secrets. */
#define SQL_USER_KEYS                                                                              \
    "SELECT COALESCE(json_agg(json_build_object('id', k.id, 'name', k.name, 'prefix', k.prefix, "  \
    "         'created_at', " TS("k.created_at") ", 'last_used_at', " TS("k.last_used_at") ", "    \
    "         'revoked_at', " TS("k.revoked_at") ", 'revoked_by', k.revoked_by) "                  \
    "         ORDER BY k.created_at DESC, k.id), '[]')::text "                                     \
    "  FROM api_keys k WHERE k.user_id = $1"
/* clang-format on */

static int usage_rows(struct tg_admin_req *a, PGconn *db, const char *key, const char *name,
                      const char *order, const char *const *p)
{
    char sql[2048];
    snprintf(sql, sizeof(sql), SQL_USER_USAGE, name, order, key);
    PGresult *res = tg_admin_exec(a, db, sql, 3, p);
    if (res == NULL)
        return -1;
    int rc = tg_buf_puts(&a->out, PQgetvalue(res, 0, 0));
    PQclear(res);
    return rc;
}

static void user_work(PGconn *db, struct tg_admin_req *a)
{
    struct user_job *j = a->job;
    char lim[24];
    const char *per;
    tg_admin_defaults_params(lim, &per);
    const char *p[9] = {lim,          per,          j->id,        j->ps.txt[0], j->ps.txt[1],
                        j->ps.txt[2], j->ps.txt[3], j->ps.txt[4], j->ps.txt[5]};
    char sql[4096];
    snprintf(sql, sizeof(sql), SQL_USERS_BASE, "u.id = $3");
    if (tg_admin_begin(a, db, "ISOLATION LEVEL REPEATABLE READ READ ONLY") != 0)
        return;
    PGresult *res = tg_admin_exec(a, db, sql, 9, p);
    if (res == NULL)
        return;
    if (PQntuples(res) != 1) {
        PQclear(res);
        tg_admin_fail(a, 404, "id", "user_not_found", "No user '%s'.", j->id);
        return;
    }
    struct tg_buf *b = &a->out;
    int rc = tg_buf_puts(b, "{\"user\":");
    rc |= user_json(b, res, 0, &j->ps, false);
    rc |= tg_buf_printf(b, ",\"quota\":{\"source\":\"%s\",",
                        PQgetvalue(res, 0, 11)[0] == 't' ? "user" : "default");
    const char *period = PQgetvalue(res, 0, 10);
    const struct tg_period_bounds *pb = tg_admin_period_bounds(&j->ps, period);
    rc |= tg_admin_figures_json(b, true, num(res, 0, 9), period, num(res, 0, 12), &j->ps);
    rc |= tg_buf_puts(b, "},\"team_quota\":");
    char team[256] = "";
    if (!PQgetisnull(res, 0, 3))
        snprintf(team, sizeof(team), "%s", PQgetvalue(res, 0, 3));
    PQclear(res);
    bool has_team = false;
    if (team[0]) {
        const char *tp[9] = {lim,          per,          team,         j->ps.txt[0], j->ps.txt[1],
                             j->ps.txt[2], j->ps.txt[3], j->ps.txt[4], j->ps.txt[5]};
        res = tg_admin_exec(a, db, SQL_TEAM_QUOTA, 9, tp);
        if (res == NULL)
            return;
        if (PQntuples(res) == 1) {
            has_team = true;
            rc |= tg_buf_puts(b, "{\"team_id\":");
            rc |= tg_admin_json_str(b, team);
            rc |= tg_buf_puts(b, ",");
            rc |= tg_admin_figures_json(b, true, num(res, 0, 0), PQgetvalue(res, 0, 1),
                                        num(res, 0, 2), &j->ps);
            rc |= tg_buf_puts(b, "}");
        }
        PQclear(res);
    }
    if (!has_team)
        rc |= tg_buf_puts(b, "null");
    /* the usage range: the query's, else the user's current quota period */
    char from[32] = "-infinity", to[32] = "infinity";
    if (j->has_from)
        tg_admin_format_time(j->from_ms, from);
    else if (pb->reset_s != INT64_MAX)
        tg_admin_format_time(pb->start_s * 1000, from);
    if (j->has_to)
        tg_admin_format_time(j->to_ms, to);
    else if (pb->reset_s != INT64_MAX)
        tg_admin_format_time(pb->reset_s * 1000, to);
    rc |= tg_buf_puts(b, ",\"range\":{\"from\":");
    rc |= tg_admin_json_str(b, from[0] == '-' ? NULL : from);
    rc |= tg_buf_puts(b, ",\"to\":");
    rc |= tg_admin_json_str(b, to[0] == 'i' ? NULL : to);
    rc |= tg_buf_puts(b, "},\"usage_by_model\":");
    const char *up[3] = {j->id, from, to};
    if (usage_rows(a, db, "model", "model", "x.total_tokens DESC, x.k", up) != 0)
        return;
    rc |= tg_buf_puts(b, ",\"usage_by_day\":");
    if (usage_rows(a, db, "to_char((started_at AT TIME ZONE 'UTC')::date, 'YYYY-MM-DD')", "day",
                   "x.k", up) != 0)
        return;
    rc |= tg_buf_puts(b, ",\"keys\":");
    const char *kp[1] = {j->id};
    res = tg_admin_exec(a, db, SQL_USER_KEYS, 1, kp);
    if (res == NULL)
        return;
    rc |= tg_buf_puts(b, PQgetvalue(res, 0, 0));
    rc |= tg_buf_puts(b, "}");
    PQclear(res);
    if (tg_admin_commit(a, db) != 0)
        return;
    if (rc != 0)
        tg_admin_fail(a, 500, NULL, "internal", "Out of memory.");
    a->status = 200;
}

void tg_admin_user_get(struct tg_admin_req *a)
{
    struct user_job *j = tg_admin_job_new(a, sizeof(*j));
    if (j == NULL)
        return;
    if (tg_admin_path_id(a, j->id, sizeof(j->id)) != 0 ||
        tg_admin_query_range(a, &j->has_from, &j->from_ms, &j->has_to, &j->to_ms) != 0 ||
        tg_admin_periods_now(a, &j->ps) != 0) {
        tg_admin_finish(a);
        return;
    }
    tg_admin_submit(a, user_work);
}

/* ---- quotas ------------------------------------------------------------------------------- */

struct quota_job {
    const char *kind; /* "user", "team", "default" */
    char id[TG_ADMIN_PARAM_MAX + 1];
    bool has_limit;
    int64_t limit;
    char period[8]; /* "" = null */
};

/* The reply of the quota routes: $1 default limit, $2 default period, $3 kind, $4 id. */
/* clang-format off */
#define SQL_QUOTA_REPLY                                                                            \
    "WITH " SQL_DEFAULTS " "                                                                       \
    "SELECT json_build_object('subject', $3::text, 'id', NULLIF($4, ''), "                         \
    "         'limit_tokens', q.limit_tokens, 'period', q.period, "                                \
    "         'effective_limit_tokens', CASE $3 WHEN 'user' THEN COALESCE(q.limit_tokens, d.lim) " \
    "                                           WHEN 'team' THEN q.limit_tokens ELSE d.lim END, "  \
    "         'effective_period', CASE WHEN $3 = 'team' AND q.limit_tokens IS NULL THEN NULL "     \
    "                                  WHEN $3 = 'default' THEN d.per "                            \
    "                                  ELSE COALESCE(q.period, d.per) END, "                       \
    "         'updated_at', " TS("q.updated_at") ")::text "                                        \
    "  FROM d LEFT JOIN quotas q ON q.subject_kind = $3 AND q.subject_id = $4"
/* clang-format on */

static int quota_reply(struct tg_admin_req *a, PGconn *db, const char *kind, const char *id)
{
    char lim[24];
    const char *per;
    tg_admin_defaults_params(lim, &per);
    const char *p[4] = {lim, per, kind, id};
    PGresult *res = tg_admin_exec(a, db, SQL_QUOTA_REPLY, 4, p);
    if (res == NULL)
        return -1;
    int rc = tg_buf_puts(&a->out, PQgetvalue(res, 0, 0));
    PQclear(res);
    if (rc != 0)
        return tg_admin_fail(a, 500, NULL, "internal", "Out of memory.");
    a->status = 200;
    return 0;
}

/* Creates the user or team row of a change made before the subject was ever seen (audited). */
static int ensure_subject(struct tg_admin_req *a, PGconn *db, const char *kind, const char *id)
{
    const char *p[1] = {id};
    bool is_user = strcmp(kind, "user") == 0;
    PGresult *res = tg_admin_exec(
        a, db,
        is_user ? "INSERT INTO users (id) VALUES ($1) ON CONFLICT DO NOTHING RETURNING "
                  "json_build_object('id', id, 'disabled', disabled)::text"
                : "INSERT INTO teams (id) VALUES ($1) ON CONFLICT DO NOTHING RETURNING "
                  "json_build_object('id', id)::text",
        1, p);
    if (res == NULL)
        return -1;
    int rc = 0;
    if (PQntuples(res) == 1) {
        char target[600];
        snprintf(target, sizeof(target), "%s:%s", kind, id);
        rc = tg_admin_audit(a, db, is_user ? "user.create" : "team.create", target, NULL,
                            PQgetvalue(res, 0, 0));
    }
    PQclear(res);
    return rc;
}

static void quota_work(PGconn *db, struct tg_admin_req *a)
{
    struct quota_job *j = a->job;
    char target[600];
    if (strcmp(j->kind, "default") == 0)
        snprintf(target, sizeof(target), "default");
    else
        snprintf(target, sizeof(target), "%s:%s", j->kind, j->id);
    char lim[24];
    snprintf(lim, sizeof(lim), "%lld", (long long)j->limit);
    const char *p[4] = {j->kind, j->id, j->has_limit ? lim : NULL, j->period[0] ? j->period : NULL};
    if (tg_admin_begin(a, db, NULL) != 0)
        return;
    if (strcmp(j->kind, "default") != 0 && ensure_subject(a, db, j->kind, j->id) != 0)
        return;
    PGresult *res = tg_admin_exec(a, db,
                                  "SELECT json_build_object('limit_tokens', limit_tokens, "
                                  "'period', period)::text FROM quotas WHERE subject_kind = $1 "
                                  "AND subject_id = $2 FOR UPDATE",
                                  2, p);
    if (res == NULL)
        return;
    char *before = PQntuples(res) == 1 ? strdup(PQgetvalue(res, 0, 0)) : NULL;
    PQclear(res);
    if (!j->has_limit && !j->period[0])
        res = tg_admin_exec(a, db,
                            "DELETE FROM quotas WHERE subject_kind = $1 AND subject_id = $2 "
                            "RETURNING NULL::text",
                            2, p);
    else
        res = tg_admin_exec(
            a, db,
            "INSERT INTO quotas (subject_kind, subject_id, limit_tokens, period) VALUES ($1, $2, "
            "$3::bigint, $4) ON CONFLICT (subject_kind, subject_id) DO UPDATE SET limit_tokens = "
            "EXCLUDED.limit_tokens, period = EXCLUDED.period RETURNING "
            "json_build_object('limit_tokens', limit_tokens, 'period', period)::text",
            4, p);
    if (res == NULL) {
        free(before);
        return;
    }
    const char *after = PQntuples(res) == 1 ? val(res, 0, 0) : NULL;
    int rc = tg_admin_audit(a, db, "quota.set", target, before, after);
    free(before);
    PQclear(res);
    if (rc != 0 || quota_reply(a, db, j->kind, j->id) != 0 || tg_admin_commit(a, db) != 0)
        return;
    if (strcmp(j->kind, "user") == 0)
        tg_admin_invalidate_later(a, "user", j->id);
    else
        tg_admin_invalidate_later(a, "all", NULL);
    tg_admin_after_commit(a);
}

void tg_admin_quota_put(struct tg_admin_req *a)
{
    struct quota_job *j = tg_admin_job_new(a, sizeof(*j));
    if (j == NULL)
        return;
    j->kind = a->route->op == TG_ADMIN_USER_QUOTA_PUT   ? "user"
              : a->route->op == TG_ADMIN_TEAM_QUOTA_PUT ? "team"
                                                        : "default";
    struct tg_jv root, v;
    if ((strcmp(j->kind, "default") != 0 && tg_admin_path_id(a, j->id, sizeof(j->id)) != 0) ||
        tg_admin_body_object(a, "limit_tokens period", false, &root) != 0) {
        tg_admin_finish(a);
        return;
    }
    if (!tg_json_get(&root, "limit_tokens", &v)) {
        tg_admin_fail(a, 400, "limit_tokens", "missing_field",
                      "'limit_tokens' is required: a number of tokens per period, -1 for "
                      "unlimited, 0 to block, or null to go back to the default.");
        tg_admin_finish(a);
        return;
    }
    if (v.type != TG_JSON_NULL) {
        if (v.type != TG_JSON_NUMBER ||
            tg_admin_parse_int(v.p, v.n, -1, MAX_LIMIT_TOKENS, &j->limit) != 0) {
            tg_admin_fail(a, 400, "limit_tokens", "invalid_value",
                          "'limit_tokens' must be an integer from -1 (unlimited) and 0 (blocked) "
                          "to %lld tokens, or null (back to the default).",
                          MAX_LIMIT_TOKENS);
            tg_admin_finish(a);
            return;
        }
        j->has_limit = true;
    }
    if (tg_json_get(&root, "period", &v) && v.type != TG_JSON_NULL) {
        char per[16];
        ssize_t n = v.type == TG_JSON_STRING ? tg_json_string_copy(&v, per, sizeof(per) - 1) : -1;
        enum tg_period pe;
        if (n > 0)
            per[n] = '\0';
        if (n <= 0 || memchr(per, '\0', (size_t)n) != NULL || tg_period_parse(per, &pe) != 0) {
            tg_admin_fail(a, 400, "period", "invalid_value",
                          "'period' must be \"month\", \"week\", \"day\", \"none\" or null (the "
                          "default's period).");
            tg_admin_finish(a);
            return;
        }
        snprintf(j->period, sizeof(j->period), "%s", tg_period_name(pe));
    }
    tg_admin_submit(a, quota_work);
}

static void default_get_work(PGconn *db, struct tg_admin_req *a)
{
    (void)quota_reply(a, db, "default", "");
}

void tg_admin_default_quota_get(struct tg_admin_req *a)
{
    tg_admin_submit(a, default_get_work);
}

/* ---- keys --------------------------------------------------------------------------------- */

struct key_job {
    char user[TG_ADMIN_PARAM_MAX + 1];
    char name[KEY_NAME_MAX + 1];
    char key[TG_APIKEY_LEN + 1]; /* shown once, wiped when the job is freed */
    char hash[2 + TG_APIKEY_HASH_HEX_LEN + 1];
    char prefix[TG_APIKEY_DISPLAY_LEN + 1];
    char key_id[40];
};

static void key_job_free(void *job)
{
    OPENSSL_cleanse(job, sizeof(struct key_job));
}

/* clang-format off */
#define SQL_KEY_JSON                                                                               \
    "json_build_object('id', id, 'user_id', user_id, 'name', name, 'prefix', prefix, "             \
    "  'created_at', " TS("created_at") ", 'last_used_at', " TS("last_used_at") ", "               \
    "  'revoked_at', " TS("revoked_at") ", 'revoked_by', revoked_by)::text"
#define SQL_KEY_INSERT                                                                             \
    "INSERT INTO api_keys (user_id, name, key_hash, prefix) VALUES ($1, $2, $3::bytea, $4) "       \
    "RETURNING id, " TS("created_at") ", " SQL_KEY_JSON
/* clang-format on */

static void key_create_work(PGconn *db, struct tg_admin_req *a)
{
    struct key_job *j = a->job;
    if (tg_admin_begin(a, db, NULL) != 0 || ensure_subject(a, db, "user", j->user) != 0)
        return;
    const char *p[4] = {j->user, j->name, j->hash, j->prefix};
    PGresult *res = tg_admin_exec(a, db, SQL_KEY_INSERT, 4, p);
    if (res == NULL)
        return;
    snprintf(j->key_id, sizeof(j->key_id), "%s", PQgetvalue(res, 0, 0));
    char target[64];
    snprintf(target, sizeof(target), "key:%s", j->key_id);
    struct tg_buf *b = &a->out;
    int rc = tg_buf_puts(b, "{\"id\":");
    rc |= tg_admin_json_str(b, j->key_id);
    rc |= tg_buf_puts(b, ",\"key\":");
    rc |= tg_admin_json_str(b, j->key);
    rc |= tg_buf_puts(b, ",\"name\":");
    rc |= tg_admin_json_str(b, j->name);
    rc |= tg_buf_puts(b, ",\"prefix\":");
    rc |= tg_admin_json_str(b, j->prefix);
    rc |= tg_buf_puts(b, ",\"user_id\":");
    rc |= tg_admin_json_str(b, j->user);
    rc |= tg_buf_puts(b, ",\"created_at\":");
    rc |= tg_admin_json_str(b, PQgetvalue(res, 0, 1));
    rc |= tg_buf_puts(b, "}");
    int arc = tg_admin_audit(a, db, "key.create", target, NULL, PQgetvalue(res, 0, 2));
    PQclear(res);
    if (arc != 0)
        return;
    if (rc != 0) {
        tg_admin_fail(a, 500, NULL, "internal", "Out of memory.");
        return;
    }
    if (tg_admin_commit(a, db) != 0)
        return;
    a->status = 201;
    tg_admin_after_commit(a);
}

void tg_admin_key_create(struct tg_admin_req *a)
{
    struct key_job *j = tg_admin_job_new(a, sizeof(*j));
    if (j == NULL)
        return;
    a->free_fn = key_job_free;
    struct tg_jv root, v;
    if (tg_admin_path_id(a, j->user, sizeof(j->user)) != 0 ||
        tg_admin_body_object(a, "name", true, &root) != 0) {
        tg_admin_finish(a);
        return;
    }
    if (tg_json_get(&root, "name", &v) && v.type != TG_JSON_NULL) {
        ssize_t n = v.type == TG_JSON_STRING ? tg_json_string_copy(&v, j->name, KEY_NAME_MAX) : -1;
        if (n < 0 || (n > 0 && !tg_admin_text_ok(j->name, (size_t)n, KEY_NAME_MAX))) {
            tg_admin_fail(a, 400, "name", "invalid_value",
                          "'name' must be a string of at most %d bytes of UTF-8 without control "
                          "characters.",
                          KEY_NAME_MAX);
            tg_admin_finish(a);
            return;
        }
        j->name[n] = '\0';
    }
    uint8_t hash[TG_APIKEY_HASH_BYTES];
    if (tg_apikey_generate(j->key, sizeof(j->key), hash) != 0) {
        tg_admin_fail(a, 500, NULL, "internal", "The random generator failed.");
        tg_admin_finish(a);
        return;
    }
    memcpy(j->hash, "\\x", 2);
    tg_apikey_hash_hex(hash, j->hash + 2);
    tg_apikey_display_prefix(j->key, strlen(j->key), j->prefix, sizeof(j->prefix));
    tg_admin_submit(a, key_create_work);
}

struct revoke_job {
    char key_id[40];
};

static void key_revoke_work(PGconn *db, struct tg_admin_req *a)
{
    struct revoke_job *j = a->job;
    const char *p[2] = {j->key_id, a->actor};
    if (tg_admin_begin(a, db, NULL) != 0)
        return;
    PGresult *res = tg_admin_exec(a, db,
                                  "SELECT " SQL_KEY_JSON
                                  ", revoked_at IS NULL FROM api_keys WHERE id = $1::uuid "
                                  "FOR UPDATE",
                                  1, p);
    if (res == NULL)
        return;
    if (PQntuples(res) != 1) {
        PQclear(res);
        tg_admin_fail(a, 404, "key_id", "key_not_found", "No API key with id %s.", j->key_id);
        return;
    }
    bool active = PQgetvalue(res, 0, 1)[0] == 't';
    char *before = strdup(PQgetvalue(res, 0, 0));
    PQclear(res);
    if (before == NULL) {
        tg_admin_fail(a, 500, NULL, "internal", "Out of memory.");
        return;
    }
    int rc = 0;
    if (active) {
        res = tg_admin_exec(a, db,
                            "UPDATE api_keys SET revoked_at = now(), revoked_by = $2 WHERE id = "
                            "$1::uuid RETURNING " SQL_KEY_JSON,
                            2, p);
        if (res == NULL) {
            free(before);
            return;
        }
        char target[64];
        snprintf(target, sizeof(target), "key:%s", j->key_id);
        rc = tg_admin_audit(a, db, "key.revoke", target, before, PQgetvalue(res, 0, 0));
        rc |= tg_buf_puts(&a->out, PQgetvalue(res, 0, 0));
        PQclear(res);
    } else {
        rc = tg_buf_puts(&a->out, before); /* already revoked: nothing changes */
    }
    free(before);
    if (rc != 0) {
        tg_admin_fail(a, 500, NULL, "internal", "Cannot record the change.");
        return;
    }
    if (tg_admin_commit(a, db) != 0)
        return;
    a->status = 200;
    tg_admin_invalidate_later(a, "key", j->key_id);
    tg_admin_after_commit(a);
}

void tg_admin_key_revoke(struct tg_admin_req *a)
{
    struct revoke_job *j = tg_admin_job_new(a, sizeof(*j));
    if (j == NULL)
        return;
    size_t n = 0;
    const char *id = tg_admin_match_param(&a->match, "key_id", &n);
    if (id == NULL || !tg_admin_is_uuid(id, n)) {
        tg_admin_fail(a, 400, "key_id", "invalid_id",
                      "The key id in the path must be a UUID (as returned when the key was "
                      "created).");
        tg_admin_finish(a);
        return;
    }
    for (size_t i = 0; i < n; i++)
        j->key_id[i] = (char)(id[i] >= 'A' && id[i] <= 'F' ? id[i] + 32 : id[i]);
    j->key_id[n] = '\0';
    tg_admin_submit(a, key_revoke_work);
}

/* ---- disable / enable --------------------------------------------------------------------- */

struct disable_job {
    char id[TG_ADMIN_PARAM_MAX + 1];
    bool disabled;
};

/* clang-format off */
#define SQL_USER_JSON                                                                              \
    "json_build_object('id', id, 'email', email, 'name', name, 'team_id', team_id, "               \
    "  'role', role, 'disabled', disabled, 'created_at', " TS("created_at") ", "                   \
    "  'updated_at', " TS("updated_at") ")::text"
/* clang-format on */

static void disable_work(PGconn *db, struct tg_admin_req *a)
{
    struct disable_job *j = a->job;
    const char *p[2] = {j->id, j->disabled ? "true" : "false"};
    if (tg_admin_begin(a, db, NULL) != 0 || ensure_subject(a, db, "user", j->id) != 0)
        return;
    PGresult *res = tg_admin_exec(a, db,
                                  "SELECT disabled = $2::boolean, " SQL_USER_JSON
                                  " FROM users WHERE id = $1 FOR UPDATE",
                                  2, p);
    if (res == NULL)
        return;
    bool same = PQgetvalue(res, 0, 0)[0] == 't';
    int rc;
    if (same) {
        rc = tg_buf_puts(&a->out, PQgetvalue(res, 0, 1));
        PQclear(res);
    } else {
        PQclear(res);
        res = tg_admin_exec(
            a, db, "UPDATE users SET disabled = $2::boolean WHERE id = $1 RETURNING " SQL_USER_JSON,
            2, p);
        if (res == NULL)
            return;
        char target[600];
        snprintf(target, sizeof(target), "user:%s", j->id);
        rc = tg_admin_audit(a, db, j->disabled ? "user.disable" : "user.enable", target,
                            j->disabled ? "{\"disabled\":false}" : "{\"disabled\":true}",
                            j->disabled ? "{\"disabled\":true}" : "{\"disabled\":false}");
        rc |= tg_buf_puts(&a->out, PQgetvalue(res, 0, 0));
        PQclear(res);
    }
    if (rc != 0) {
        tg_admin_fail(a, 500, NULL, "internal", "Cannot record the change.");
        return;
    }
    if (tg_admin_commit(a, db) != 0)
        return;
    a->status = 200;
    tg_admin_invalidate_later(a, "user", j->id);
    tg_admin_after_commit(a);
}

void tg_admin_user_set_disabled(struct tg_admin_req *a)
{
    struct disable_job *j = tg_admin_job_new(a, sizeof(*j));
    if (j == NULL)
        return;
    j->disabled = a->route->op == TG_ADMIN_USER_DISABLE;
    struct tg_jv root;
    if (tg_admin_path_id(a, j->id, sizeof(j->id)) != 0 ||
        tg_admin_body_object(a, "", true, &root) != 0) {
        tg_admin_finish(a);
        return;
    }
    tg_admin_submit(a, disable_work);
}
