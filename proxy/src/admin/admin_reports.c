/* admin_reports.c: usage totals, ledger pages, model prices and the audit log of the admin
 * API. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "admin/admin_internal.h"
#include "core/timefmt.h"
#include "http/worker.h"

#define USAGE_DEFAULT_LIMIT  1000
#define USAGE_MAX_LIMIT      10000
#define LEDGER_DEFAULT_LIMIT 100
#define LEDGER_MAX_LIMIT     1000
#define AUDIT_DEFAULT_LIMIT  100
#define AUDIT_MAX_LIMIT      1000
#define MODEL_MAX_BYTES      256

/* clang-format off */
#define TS(col) "to_char((" col ") AT TIME ZONE 'UTC', " TG_ADMIN_SQL_TSFMT ")"
/* clang-format on */

/* The first instant of the current UTC month and of the next one, in ms. */
static void this_month_utc(int64_t *from_ms, int64_t *to_ms)
{
    int64_t days = tg_now_ms() / 86400000;
    /* civil date from days since the epoch (Howard Hinnant's algorithm) */
    int64_t z = days + 719468;
    int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    int64_t doe = z - era * 146097;
    int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t y = yoe + era * 400;
    int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    int64_t mp = (5 * doy + 2) / 153;
    int64_t m = mp + (mp < 10 ? 3 : -9);
    y += m <= 2;
    char s[64];
    snprintf(s, sizeof(s), "%04lld-%02lld-01", (long long)y, (long long)m);
    if (tg_time_parse_rfc3339(s, strlen(s), from_ms) != 0)
        *from_ms = 0;
    if (m == 12)
        snprintf(s, sizeof(s), "%04lld-01-01", (long long)y + 1);
    else
        snprintf(s, sizeof(s), "%04lld-%02lld-01", (long long)y, (long long)m + 1);
    if (tg_time_parse_rfc3339(s, strlen(s), to_ms) != 0)
        *to_ms = *from_ms;
}

/* ---- GET /admin/api/usage ----------------------------------------------------------------- */

struct usage_job {
    char from[32], to[32];
    const char *group_by; /* "" for totals only */
    const char *key_sql;  /* SQL expression of the group key */
    const char *key_name; /* its JSON name */
    char order_sql[200];
    int64_t limit;
};

/* clang-format off */
/* Usage in [$1, $2) grouped by the first %s (an SQL expression) named by the second, the groups
 * ordered by the third and fourth (the same ORDER BY), at most $3 of them; then the number of
 * groups and the totals. */
#define SQL_USAGE                                                                                  \
    "WITH g AS MATERIALIZED ("                                                                     \
    "  SELECT %s AS k, " TG_ADMIN_SQL_USAGE_COLS                                                   \
    "    FROM ledger WHERE started_at >= $1::timestamptz AND started_at < $2::timestamptz "        \
    "   GROUP BY 1) "                                                                              \
    "SELECT (SELECT COALESCE(json_agg(json_build_object('%s', x.k, " TG_ADMIN_SQL_USAGE_JSON ") "  \
    "                                 ORDER BY x.rn), '[]') "                                      \
    "          FROM (SELECT g.*, row_number() OVER (ORDER BY %s) AS rn "                           \
    "                  FROM g ORDER BY %s LIMIT $3::bigint) x)::text, "                            \
    "       (SELECT count(*) FROM g), "                                                            \
    "       (SELECT json_build_object("                                                            \
    "          'requests', COALESCE(sum(t.requests), 0)::bigint, "                                 \
    "          'prompt_tokens', COALESCE(sum(t.prompt_tokens), 0)::bigint, "                       \
    "          'completion_tokens', COALESCE(sum(t.completion_tokens), 0)::bigint, "               \
    "          'cached_tokens', COALESCE(sum(t.cached_tokens), 0)::bigint, "                       \
    "          'reasoning_tokens', COALESCE(sum(t.reasoning_tokens), 0)::bigint, "                 \
    "          'total_tokens', COALESCE(sum(t.total_tokens), 0)::bigint, "                         \
    "          'cost_usd', sum(t.cost_usd)::text, "                                                \
    "          'unpriced_requests', COALESCE(sum(t.unpriced_requests), 0)::bigint) "               \
    "          FROM g t)::text"
/* clang-format on */

static void usage_work(PGconn *db, struct tg_admin_req *a)
{
    struct usage_job *j = a->job;
    char lim[24];
    snprintf(lim, sizeof(lim), "%lld", (long long)j->limit);
    const char *p[3] = {j->from, j->to, lim};
    char sql[4096];
    snprintf(sql, sizeof(sql), SQL_USAGE, j->key_sql, j->key_name, j->order_sql, j->order_sql);
    if (tg_admin_begin(a, db, "ISOLATION LEVEL REPEATABLE READ READ ONLY") != 0)
        return;
    PGresult *res = tg_admin_exec(a, db, sql, 3, p);
    if (res == NULL)
        return;
    struct tg_buf *b = &a->out;
    int rc = tg_buf_puts(b, "{\"from\":");
    rc |= tg_admin_json_str(b, j->from);
    rc |= tg_buf_puts(b, ",\"to\":");
    rc |= tg_admin_json_str(b, j->to);
    rc |= tg_buf_puts(b, ",\"group_by\":");
    rc |= tg_admin_json_str(b, j->group_by[0] ? j->group_by : NULL);
    rc |= tg_buf_puts(b, ",\"totals\":");
    rc |= tg_buf_puts(b, PQgetvalue(res, 0, 2));
    rc |= tg_buf_puts(b, ",\"groups\":");
    rc |= tg_buf_puts(b, j->group_by[0] ? PQgetvalue(res, 0, 1) : "0");
    rc |= tg_buf_puts(b, ",\"data\":");
    rc |= tg_buf_puts(b, j->group_by[0] ? PQgetvalue(res, 0, 0) : "[]");
    rc |= tg_buf_puts(b, "}");
    PQclear(res);
    if (tg_admin_commit(a, db) != 0)
        return;
    if (rc != 0)
        tg_admin_fail(a, 500, NULL, "internal", "Out of memory.");
    a->status = 200;
}

void tg_admin_usage(struct tg_admin_req *a)
{
    static const struct {
        const char *name, *key_sql, *key_name, *default_sort;
    } groups[] = {
        {"", "NULL::text", "key", "key"},
        {"user", "user_id", "user_id", "total_tokens"},
        {"team", "team_id", "team_id", "total_tokens"},
        {"model", "model", "model", "total_tokens"},
        {"day", "to_char((started_at AT TIME ZONE 'UTC')::date, 'YYYY-MM-DD')", "day", "key"},
    };
    static const struct {
        const char *name, *sql;
    } sorts[] = {
        {"key", "g.k"},
        {"requests", "g.requests"},
        {"total_tokens", "g.total_tokens"},
        {"cost_usd", "g.cost_usd"},
    };
    struct usage_job *j = tg_admin_job_new(a, sizeof(*j));
    if (j == NULL)
        return;
    bool has_from, has_to;
    int64_t from_ms, to_ms, dfrom, dto;
    const char *group, *sort, *order;
    if (tg_admin_query_range(a, &has_from, &from_ms, &has_to, &to_ms) != 0 ||
        tg_admin_query_choice(a, "group_by", "user team model day", "", &group) != 0 ||
        tg_admin_query_choice(a, "sort", "key requests total_tokens cost_usd", "", &sort) != 0 ||
        tg_admin_query_choice(a, "order", "asc desc", "", &order) != 0 ||
        tg_admin_query_int(a, "limit", 1, USAGE_MAX_LIMIT, USAGE_DEFAULT_LIMIT, &j->limit) != 0) {
        tg_admin_finish(a);
        return;
    }
    this_month_utc(&dfrom, &dto);
    if (!has_from)
        from_ms = has_to && to_ms < dfrom ? to_ms : dfrom;
    if (!has_to)
        to_ms = from_ms > dto ? from_ms : dto;
    tg_admin_format_time(from_ms, j->from);
    tg_admin_format_time(to_ms, j->to);
    for (size_t i = 0; i < TG_ARRAY_LEN(groups); i++) {
        if (strcmp(groups[i].name, group) == 0) {
            j->group_by = groups[i].name;
            j->key_sql = groups[i].key_sql;
            j->key_name = groups[i].key_name;
            if (!sort[0])
                sort = groups[i].default_sort;
        }
    }
    bool is_key = strcmp(sort, "key") == 0;
    const char *dir = order[0] ? (order[0] == 'a' ? "ASC" : "DESC") : (is_key ? "ASC" : "DESC");
    for (size_t i = 0; i < TG_ARRAY_LEN(sorts); i++) {
        /* e.g. "g.cost_usd DESC NULLS LAST, g.total_tokens DESC, g.k ASC NULLS LAST" */
        if (strcmp(sorts[i].name, sort) == 0)
            snprintf(j->order_sql, sizeof(j->order_sql), "%s %s NULLS LAST%s, g.k ASC NULLS LAST",
                     sorts[i].sql, dir, is_key ? "" : ", g.total_tokens DESC");
    }
    tg_admin_submit(a, usage_work);
}

/* ---- GET /admin/api/ledger ---------------------------------------------------------------- */

/* clang-format off */
#define SQL_LEDGER_JSON                                                                            \
    "json_build_object('request_id', request_id, 'user_id', user_id, 'team_id', team_id, "         \
    "  'model', model, 'route', route, 'status', status, 'prompt_tokens', prompt_tokens, "         \
    "  'completion_tokens', completion_tokens, 'cached_tokens', cached_tokens, "                   \
    "  'reasoning_tokens', reasoning_tokens, 'total_tokens', total_tokens, "                       \
    "  'cost_usd', cost_usd::text, 'count_source', count_source, "                                 \
    "  'upstream_status', upstream_status, 'started_at', " TS("started_at") ", "                   \
    "  'finished_at', " TS("finished_at") ", 'ttfb_ms', ttfb_ms, 'latency_ms', latency_ms, "       \
    "  'upstream_call_id', upstream_call_id, 'client_request_id', client_request_id)::text"
/* clang-format on */

struct ledger_job {
    bool has_from, has_to, has_cursor, has_user;
    char from[32], to[32], cursor[40];
    char user[TG_ADMIN_PARAM_MAX + 1];
    int64_t limit;
};

/* Appends " AND <cond>" to sql, each '@' in cond becoming the placeholder of value v, numbered
 * after the parameters already in p[0..*n). */
static void cond(char *sql, size_t cap, const char *c, const char **p, int *n, const char *v)
{
    p[*n] = v;
    (*n)++;
    size_t l = strlen(sql);
    l += (size_t)snprintf(sql + l, cap - l, " AND ");
    for (; *c && l + 8 < cap; c++) {
        if (*c == '@')
            l += (size_t)snprintf(sql + l, cap - l, "$%d", *n);
        else
            sql[l++] = *c;
    }
    sql[l] = '\0';
}

static void ledger_work(PGconn *db, struct tg_admin_req *a)
{
    struct ledger_job *j = a->job;
    const char *p[8];
    int n = 0;
    char sql[2048], lim[24];
    snprintf(lim, sizeof(lim), "%lld", (long long)j->limit + 1);
    snprintf(sql, sizeof(sql),
             "SELECT request_id::text, " SQL_LEDGER_JSON " FROM ledger WHERE true");
    if (j->has_user) {
        /* ledger_user_started_idx (user_id, started_at, request_id) */
        cond(sql, sizeof(sql), "user_id = @", p, &n, j->user);
        if (j->has_from)
            cond(sql, sizeof(sql), "started_at >= @::timestamptz", p, &n, j->from);
        if (j->has_to)
            cond(sql, sizeof(sql), "started_at < @::timestamptz", p, &n, j->to);
        if (j->has_cursor)
            cond(sql, sizeof(sql), "(started_at, request_id) < (tg_uuid7_time(@::uuid), @::uuid)",
                 p, &n, j->cursor);
    } else {
        /* the primary key, walked backwards in request_id (= time) order */
        if (j->has_from)
            cond(sql, sizeof(sql),
                 "started_at >= @::timestamptz AND request_id >= tg_uuid7_min(@::timestamptz)", p,
                 &n, j->from);
        if (j->has_to)
            cond(sql, sizeof(sql),
                 "started_at < @::timestamptz AND request_id < tg_uuid7_min(@::timestamptz)", p, &n,
                 j->to);
        if (j->has_cursor)
            cond(sql, sizeof(sql), "request_id < @::uuid AND started_at <= tg_uuid7_time(@::uuid)",
                 p, &n, j->cursor);
    }
    p[n++] = lim;
    size_t l = strlen(sql);
    snprintf(sql + l, sizeof(sql) - l, " ORDER BY started_at DESC, request_id DESC LIMIT $%d", n);
    PGresult *res = tg_admin_exec(a, db, sql, n, p);
    if (res == NULL)
        return;
    int rows = PQntuples(res);
    bool more = rows > j->limit;
    if (more)
        rows = (int)j->limit;
    struct tg_buf *b = &a->out;
    int rc = tg_buf_puts(b, "{\"data\":[");
    for (int i = 0; i < rows; i++) {
        if (i > 0)
            rc |= tg_buf_puts(b, ",");
        rc |= tg_buf_puts(b, PQgetvalue(res, i, 1));
    }
    rc |= tg_buf_printf(b, "],\"has_more\":%s,\"next_cursor\":", more ? "true" : "false");
    rc |= tg_admin_json_str(b, more ? PQgetvalue(res, rows - 1, 0) : NULL);
    rc |= tg_buf_puts(b, "}");
    PQclear(res);
    if (rc != 0)
        tg_admin_fail(a, 500, NULL, "internal", "Out of memory.");
    a->status = 200;
}

void tg_admin_ledger(struct tg_admin_req *a)
{
    struct ledger_job *j = tg_admin_job_new(a, sizeof(*j));
    if (j == NULL)
        return;
    int64_t from_ms, to_ms;
    if (tg_admin_query_range(a, &j->has_from, &from_ms, &j->has_to, &to_ms) != 0 ||
        tg_admin_query_int(a, "limit", 1, LEDGER_MAX_LIMIT, LEDGER_DEFAULT_LIMIT, &j->limit) != 0) {
        tg_admin_finish(a);
        return;
    }
    if (j->has_from)
        tg_admin_format_time(from_ms, j->from);
    if (j->has_to)
        tg_admin_format_time(to_ms, j->to);
    const char *cur = tg_admin_query_get(&a->query, "cursor");
    if (cur != NULL) {
        if (!tg_admin_is_uuid(cur, strlen(cur))) {
            tg_admin_fail(a, 400, "cursor", "invalid_cursor",
                          "'cursor' must be the next_cursor of a previous page.");
            tg_admin_finish(a);
            return;
        }
        j->has_cursor = true;
        snprintf(j->cursor, sizeof(j->cursor), "%s", cur);
    }
    const char *user = tg_admin_query_get(&a->query, "user");
    if (user != NULL) {
        if (!tg_admin_text_ok(user, strlen(user), 128)) {
            tg_admin_fail(a, 400, "user", "invalid_id",
                          "'user' must be a user id: 1-128 bytes of UTF-8 without control "
                          "characters.");
            tg_admin_finish(a);
            return;
        }
        j->has_user = true;
        snprintf(j->user, sizeof(j->user), "%s", user);
    }
    tg_admin_submit(a, ledger_work);
}

/* ---- prices ------------------------------------------------------------------------------- */

/* clang-format off */
/* A model_prices row named p as JSON (prices as exact text). */
#define SQL_PRICE_JSON                                                                             \
    "json_build_object('model', p.model, 'input_usd_per_mtok', p.input_usd_per_mtok::text, "       \
    "  'cached_input_usd_per_mtok', p.cached_input_usd_per_mtok::text, "                           \
    "  'output_usd_per_mtok', p.output_usd_per_mtok::text, "                                       \
    "  'effective_from', " TS("p.effective_from") ", 'created_at', " TS("p.created_at") ")"
/* Every price row ($1: one model, '' for all), newest first per model, with `current`. */
#define SQL_PRICES_LIST                                                                            \
    "SELECT COALESCE(json_agg(jsonb_build_object('current', COALESCE(p.effective_from = c.cur, false)) " \
    "                         || " SQL_PRICE_JSON "::jsonb "                                       \
    "                         ORDER BY p.model, p.effective_from DESC), '[]')::text "              \
    "  FROM model_prices p "                                                                       \
    "  LEFT JOIN (SELECT model, max(effective_from) AS cur FROM model_prices "                     \
    "              WHERE effective_from <= now() GROUP BY model) c ON c.model = p.model "          \
    " WHERE ($1 = '' OR p.model = $1)"
/* The price of model $1 in effect at $2 (NULL: now), locked. */
#define SQL_PRICE_BEFORE                                                                           \
    "SELECT " SQL_PRICE_JSON "::text FROM model_prices p "                                         \
    " WHERE p.model = $1 AND p.effective_from <= COALESCE($2::timestamptz, now()) "                \
    " ORDER BY p.effective_from DESC LIMIT 1 FOR UPDATE"
#define SQL_PRICE_UPSERT                                                                           \
    "INSERT INTO model_prices AS p (model, input_usd_per_mtok, cached_input_usd_per_mtok, "        \
    "                               output_usd_per_mtok, effective_from) "                         \
    "VALUES ($1, $2::numeric, $3::numeric, $4::numeric, COALESCE($5::timestamptz, now())) "        \
    "ON CONFLICT (model, effective_from) DO UPDATE SET "                                           \
    "  input_usd_per_mtok = EXCLUDED.input_usd_per_mtok, "                                         \
    "  cached_input_usd_per_mtok = EXCLUDED.cached_input_usd_per_mtok, "                           \
    "  output_usd_per_mtok = EXCLUDED.output_usd_per_mtok, created_at = now() "                    \
    "RETURNING " SQL_PRICE_JSON "::text, (p.xmax = 0)"
/* clang-format on */

struct prices_job {
    char model[MODEL_MAX_BYTES + 1];
};

static void prices_work(PGconn *db, struct tg_admin_req *a)
{
    struct prices_job *j = a->job;
    const char *p[1] = {j->model};
    PGresult *res = tg_admin_exec(a, db, SQL_PRICES_LIST, 1, p);
    if (res == NULL)
        return;
    int rc = tg_buf_puts(&a->out, "{\"data\":");
    rc |= tg_buf_puts(&a->out, PQgetvalue(res, 0, 0));
    rc |= tg_buf_puts(&a->out, "}");
    PQclear(res);
    if (rc != 0)
        tg_admin_fail(a, 500, NULL, "internal", "Out of memory.");
    a->status = 200;
}

void tg_admin_prices_list(struct tg_admin_req *a)
{
    struct prices_job *j = tg_admin_job_new(a, sizeof(*j));
    if (j == NULL)
        return;
    const char *model = tg_admin_query_get(&a->query, "model");
    if (model != NULL) {
        if (!tg_admin_text_ok(model, strlen(model), MODEL_MAX_BYTES)) {
            tg_admin_fail(a, 400, "model", "invalid_value",
                          "'model' must be 1-%d bytes of UTF-8 without control characters.",
                          MODEL_MAX_BYTES);
            tg_admin_finish(a);
            return;
        }
        snprintf(j->model, sizeof(j->model), "%s", model);
    }
    tg_admin_submit(a, prices_work);
}

struct price_job {
    char model[MODEL_MAX_BYTES + 1];
    char input[64], cached[64], output[64];
    bool has_cached;
    char eff[32];
    bool has_eff;
};

/* A price field: a JSON number or a string holding a plain decimal, 0..TG_ADMIN_PRICE_MAX. */
static int price_field(struct tg_admin_req *a, const struct tg_jv *root, const char *name,
                       bool required, char dst[64], bool *has)
{
    struct tg_jv v;
    *has = false;
    if (!tg_json_get(root, name, &v) || v.type == TG_JSON_NULL) {
        if (required)
            return tg_admin_fail(a, 400, name, "missing_field",
                                 "'%s' is required (USD per million tokens, e.g. \"2.50\").", name);
        return 0;
    }
    ssize_t n = -1;
    if (v.type == TG_JSON_NUMBER && v.n < 64) {
        memcpy(dst, v.p, v.n);
        n = (ssize_t)v.n;
    } else if (v.type == TG_JSON_STRING) {
        n = tg_json_string_copy(&v, dst, 63);
    }
    enum tg_admin_price_rc rc =
        n < 0 ? TG_ADMIN_PRICE_SYNTAX : tg_admin_price_check(dst, (size_t)n);
    switch (rc) {
    case TG_ADMIN_PRICE_OK:
        dst[n] = '\0';
        *has = true;
        return 0;
    case TG_ADMIN_PRICE_NEGATIVE:
        return tg_admin_fail(a, 400, name, "invalid_price", "'%s' must not be negative.", name);
    case TG_ADMIN_PRICE_TOO_LARGE:
        return tg_admin_fail(a, 400, name, "invalid_price",
                             "'%s' is above %d USD per million tokens, which is surely a "
                             "mistake.",
                             name, TG_ADMIN_PRICE_MAX);
    case TG_ADMIN_PRICE_SYNTAX:
    default:
        return tg_admin_fail(
            a, 400, name, "invalid_price",
            "'%s' must be a plain decimal number of USD per million tokens, as a "
            "string or a number, e.g. \"2.50\" (no exponent, at most %d decimals).",
            name, TG_ADMIN_PRICE_MAX_DIGITS);
    }
}

static void price_work(PGconn *db, struct tg_admin_req *a)
{
    struct price_job *j = a->job;
    const char *p[5] = {j->model, j->input, j->has_cached ? j->cached : NULL, j->output,
                        j->has_eff ? j->eff : NULL};
    if (tg_admin_begin(a, db, NULL) != 0)
        return;
    const char *bp[2] = {j->model, p[4]};
    PGresult *res = tg_admin_exec(a, db, SQL_PRICE_BEFORE, 2, bp);
    if (res == NULL)
        return;
    char *before = PQntuples(res) == 1 ? strdup(PQgetvalue(res, 0, 0)) : NULL;
    PQclear(res);
    res = tg_admin_exec(a, db, SQL_PRICE_UPSERT, 5, p);
    if (res == NULL) {
        free(before);
        return;
    }
    char target[300];
    snprintf(target, sizeof(target), "model:%s", j->model);
    int rc = tg_admin_audit(a, db, "price.set", target, before, PQgetvalue(res, 0, 0));
    free(before);
    bool inserted = PQgetvalue(res, 0, 1)[0] == 't';
    rc |= tg_buf_puts(&a->out, PQgetvalue(res, 0, 0));
    PQclear(res);
    if (rc != 0) {
        tg_admin_fail(a, 500, NULL, "internal", "Cannot record the change.");
        return;
    }
    if (tg_admin_commit(a, db) != 0)
        return;
    a->status = inserted ? 201 : 200;
    tg_admin_after_commit(a);
}

void tg_admin_price_put(struct tg_admin_req *a)
{
    struct price_job *j = tg_admin_job_new(a, sizeof(*j));
    if (j == NULL)
        return;
    size_t mn = 0;
    const char *model = tg_admin_match_param(&a->match, "model", &mn);
    if (model == NULL || !tg_admin_text_ok(model, mn, MODEL_MAX_BYTES)) {
        tg_admin_fail(a, 400, "model", "invalid_value",
                      "The model in the path must be 1-%d bytes of UTF-8 without control "
                      "characters.",
                      MODEL_MAX_BYTES);
        tg_admin_finish(a);
        return;
    }
    memcpy(j->model, model, mn);
    j->model[mn] = '\0';
    struct tg_jv root, v;
    bool has;
    if (tg_admin_body_object(a,
                             "input_usd_per_mtok cached_input_usd_per_mtok output_usd_per_mtok "
                             "effective_from",
                             false, &root) != 0 ||
        price_field(a, &root, "input_usd_per_mtok", true, j->input, &has) != 0 ||
        price_field(a, &root, "cached_input_usd_per_mtok", false, j->cached, &j->has_cached) != 0 ||
        price_field(a, &root, "output_usd_per_mtok", true, j->output, &has) != 0) {
        tg_admin_finish(a);
        return;
    }
    if (tg_json_get(&root, "effective_from", &v) && v.type != TG_JSON_NULL) {
        char t[64];
        ssize_t n = v.type == TG_JSON_STRING ? tg_json_string_copy(&v, t, sizeof(t) - 1) : -1;
        int64_t ms = 0;
        if (n <= 0 || tg_time_parse_rfc3339(t, (size_t)n, &ms) != 0 || ms < 0 ||
            ms >= 253402300800000LL) {
            tg_admin_fail(a, 400, "effective_from", "invalid_time",
                          "'effective_from' must be an RFC 3339 time such as "
                          "2025-11-01T00:00:00Z, or null for now.");
            tg_admin_finish(a);
            return;
        }
        tg_admin_format_time(ms, j->eff);
        j->has_eff = true;
    }
    tg_admin_submit(a, price_work);
}

/* ---- GET /admin/api/audit ----------------------------------------------------------------- */

struct audit_job {
    int64_t limit;
    bool has_cursor;
    char cursor[24];
    char actor[TG_ADMIN_PARAM_MAX + 1], action[TG_ADMIN_PARAM_MAX + 1],
        target[TG_ADMIN_PARAM_MAX + 1];
};

/* clang-format off */
#define SQL_AUDIT_SELECT                                                                           \
    "SELECT id, json_build_object('id', id, 'actor', actor, 'action', action, 'target', target, "  \
    "         'before', before, 'after', after, 'at', " TS("at") ")::text "                        \
    "  FROM audit_log WHERE true"
/* clang-format on */

static void audit_work(PGconn *db, struct tg_admin_req *a)
{
    struct audit_job *j = a->job;
    const char *p[6];
    int n = 0;
    char sql[1024], lim[24];
    snprintf(lim, sizeof(lim), "%lld", (long long)j->limit + 1);
    snprintf(sql, sizeof(sql), "%s", SQL_AUDIT_SELECT);
    if (j->has_cursor)
        cond(sql, sizeof(sql), "id < @::bigint", p, &n, j->cursor);
    if (j->actor[0])
        cond(sql, sizeof(sql), "actor = @", p, &n, j->actor);
    if (j->action[0])
        cond(sql, sizeof(sql), "action = @", p, &n, j->action);
    if (j->target[0])
        cond(sql, sizeof(sql), "target = @", p, &n, j->target);
    p[n++] = lim;
    size_t l = strlen(sql);
    snprintf(sql + l, sizeof(sql) - l, " ORDER BY id DESC LIMIT $%d", n);
    PGresult *res = tg_admin_exec(a, db, sql, n, p);
    if (res == NULL)
        return;
    int rows = PQntuples(res);
    bool more = rows > j->limit;
    if (more)
        rows = (int)j->limit;
    struct tg_buf *b = &a->out;
    int rc = tg_buf_puts(b, "{\"data\":[");
    for (int i = 0; i < rows; i++) {
        if (i > 0)
            rc |= tg_buf_puts(b, ",");
        rc |= tg_buf_puts(b, PQgetvalue(res, i, 1));
    }
    rc |= tg_buf_printf(b, "],\"has_more\":%s,\"next_cursor\":", more ? "true" : "false");
    rc |= tg_admin_json_str(b, more ? PQgetvalue(res, rows - 1, 0) : NULL);
    rc |= tg_buf_puts(b, "}");
    PQclear(res);
    if (rc != 0)
        tg_admin_fail(a, 500, NULL, "internal", "Out of memory.");
    a->status = 200;
}

void tg_admin_audit_list(struct tg_admin_req *a)
{
    struct audit_job *j = tg_admin_job_new(a, sizeof(*j));
    if (j == NULL)
        return;
    int64_t cursor;
    if (tg_admin_query_int(a, "limit", 1, AUDIT_MAX_LIMIT, AUDIT_DEFAULT_LIMIT, &j->limit) != 0 ||
        tg_admin_query_int(a, "cursor", 1, INT64_MAX, 0, &cursor) != 0) {
        tg_admin_finish(a);
        return;
    }
    if (cursor > 0) {
        j->has_cursor = true;
        snprintf(j->cursor, sizeof(j->cursor), "%lld", (long long)cursor);
    }
    static const char *const names[] = {"actor", "action", "target"};
    char *dst[] = {j->actor, j->action, j->target};
    for (size_t i = 0; i < TG_ARRAY_LEN(names); i++) {
        const char *v = tg_admin_query_get(&a->query, names[i]);
        if (v == NULL)
            continue;
        if (!tg_admin_text_ok(v, strlen(v), 300)) {
            tg_admin_fail(a, 400, names[i], "invalid_value",
                          "'%s' must be 1-300 bytes of UTF-8 without control characters.",
                          names[i]);
            tg_admin_finish(a);
            return;
        }
        snprintf(dst[i], TG_ADMIN_PARAM_MAX + 1, "%s", v);
    }
    tg_admin_submit(a, audit_work);
}
