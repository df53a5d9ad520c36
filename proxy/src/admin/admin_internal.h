/* admin_internal.h: what the admin API's files share: one admin request (struct tg_admin_req),
 * its database job, replies and input checks. Not used outside proxy/src/admin. */
#ifndef TG_ADMIN_INTERNAL_H
#define TG_ADMIN_INTERNAL_H

#include <libpq-fe.h>

#include "admin/admin_routes.h"
#include "core/buf.h"
#include "core/json_scan.h"
#include "http/identity.h"
#include "quota/quota_math.h"

struct tg_conn;
struct tg_worker;
struct tg_admin_req;

/* Runs on a db-pool thread with a connection (never NULL: the caller answers 503 itself). */
typedef void (*tg_admin_work_fn)(PGconn *db, struct tg_admin_req *a);
/* Releases what a handler's job holds (called before the job itself is freed). */
typedef void (*tg_admin_free_fn)(void *job);

#define TG_ADMIN_MAX_EVENTS 4

/* One admin API request, created by the dispatcher and handed to the route's handler, which
 * validates its inputs (recording a 400 with tg_admin_fail and calling tg_admin_finish) or
 * submits one database job. */
struct tg_admin_req {
    struct tg_conn *conn; /* borrowed; NULL once the client is gone (worker thread only) */
    struct tg_worker *w;  /* the worker the request arrived on */
    const struct tg_admin_route *route;
    struct tg_admin_match match; /* path parameters */
    struct tg_admin_query query; /* accepted query parameters */
    char actor[160];             /* audit: the admin JWT's sub or "admin-key" */
    const char *body;            /* the request body (pulled up; valid until the reply) */
    size_t body_len;
    tg_admin_work_fn work;
    void *job;                /* the handler's own data; owned */
    tg_admin_free_fn free_fn; /* frees what job holds besides itself (NULL: job is freed) */

    /* results, written by the work function (pool thread), read by the reply (worker) */
    int status;         /* HTTP status of a success reply */
    struct tg_buf out;  /* JSON body of a success reply */
    int err_status;     /* 0 = success */
    char err_msg[400];  /* OpenAI error message */
    char err_param[64]; /* the bad field, "" for none */
    char err_code[48];
    struct tg_buf events[TG_ADMIN_MAX_EVENTS]; /* audit rows to publish once committed */
    int nevents;
    char invalidate[TG_ADMIN_MAX_EVENTS][200]; /* cache invalidations once committed */
    int ninvalidate;
};

/* Runs a->work on the db pool, then replies from the worker (success: a->status + a->out; else
 * the error). Takes ownership of a (freed after the reply, or when the client is gone). */
void tg_admin_submit(struct tg_admin_req *a, tg_admin_work_fn work);

/* Replies now, from the worker thread, with what a holds (used when nothing needs the
 * database, or after a validation error), and frees a. */
void tg_admin_finish(struct tg_admin_req *a);

/* Records an error: status, the field it is about (NULL for none), a code, a message.
 * Returns -1 so callers can `return tg_admin_fail(...)`. */
TG_PRINTF(5, 6)
int tg_admin_fail(struct tg_admin_req *a, int status, const char *param, const char *code,
                  const char *fmt, ...);

/* Sends an OpenAI-shaped error naming `param` (NULL → null) straight to a connection. */
void tg_admin_reply_error(struct tg_conn *c, int status, const char *param, const char *code,
                          const char *message);

/* Allocates the route's job (zeroed, `size` bytes, owned by a: a->job). NULL after answering
 * 500 and finishing a (out of memory): the handler just returns. */
void *tg_admin_job_new(struct tg_admin_req *a, size_t size);

/* ---- database helpers (pool thread) -------------------------------------------------------- */

/* Runs a statement. On failure records the error in a (400 for a constraint or data error,
 * 503 when the connection is gone, else 500), logs it and returns NULL. */
PGresult *tg_admin_exec(struct tg_admin_req *a, PGconn *db, const char *sql, int n,
                        const char *const *params);
/* BEGIN (with options, e.g. "ISOLATION LEVEL REPEATABLE READ READ ONLY") / COMMIT. 0 or -1. */
TG_MUST_CHECK int tg_admin_begin(struct tg_admin_req *a, PGconn *db, const char *options);
TG_MUST_CHECK int tg_admin_commit(struct tg_admin_req *a, PGconn *db);
/* Rolls back when a transaction is open (after a failure). */
void tg_admin_rollback(PGconn *db);
/* Inserts one audit_log row (in the caller's transaction) and keeps it to publish on the live
 * feed after the commit. before/after are JSON text or NULL. Returns 0 or -1. */
TG_MUST_CHECK int tg_admin_audit(struct tg_admin_req *a, PGconn *db, const char *action,
                                 const char *target, const char *before, const char *after);
/* Queues a cache invalidation for after the commit: kind "user" or "key" with an id, or "all"
 * with id NULL (see tg_control_invalidate). */
void tg_admin_invalidate_later(struct tg_admin_req *a, const char *kind, const char *id);
/* Publishes the kept audit rows and applies the queued invalidations (after COMMIT). */
void tg_admin_after_commit(struct tg_admin_req *a);

/* ---- inputs (worker thread) ----------------------------------------------------------------- */

/* Parses the body as one JSON object whose member names are all in `allowed` (space separated)
 * and none repeated. An empty body is an empty object when `optional`. 0, or -1 (400 recorded). */
TG_MUST_CHECK int tg_admin_body_object(struct tg_admin_req *a, const char *allowed, bool optional,
                                       struct tg_jv *root);
/* An integer query parameter in [min, max] (def when absent). 0, or -1 (400 recorded). */
TG_MUST_CHECK int tg_admin_query_int(struct tg_admin_req *a, const char *name, int64_t min,
                                     int64_t max, int64_t def, int64_t *out);
/* An RFC 3339 query parameter as Unix ms; *has = false when absent. 0, or -1 (400 recorded). */
TG_MUST_CHECK int tg_admin_query_time(struct tg_admin_req *a, const char *name, bool *has,
                                      int64_t *ms);
/* from/to of a range: both optional; when both are given from must not be after to. */
TG_MUST_CHECK int tg_admin_query_range(struct tg_admin_req *a, bool *has_from, int64_t *from_ms,
                                       bool *has_to, int64_t *to_ms);
/* One of `choices` (space separated), def when absent. 0, or -1 (400 recorded). */
TG_MUST_CHECK int tg_admin_query_choice(struct tg_admin_req *a, const char *name,
                                        const char *choices, const char *def, const char **out);
/* Formats Unix ms as RFC 3339 (UTC, ms) into dst[32]. */
void tg_admin_format_time(int64_t ms, char dst[32]);

/* ---- JSON output ----------------------------------------------------------------------------- */

/* Appends a JSON string (NULL → null). Returns 0 or -1. */
TG_MUST_CHECK int tg_admin_json_str(struct tg_buf *b, const char *s);

/* ---- quota figures (admin_users.c; used by admin_teams.c too) ---------------------------------
 */

/* The current month, week and day (QUOTA_TIMEZONE) as SQL parameters $4..$9 (start, reset in
 * Unix seconds), so that usage sums use exactly the periods the quota engine enforces. */
struct tg_admin_periods {
    struct tg_period_bounds b[4]; /* by enum tg_period */
    char txt[6][24];
};

/* Fills p for now (worker thread). 0, or -1 (500 recorded). */
TG_MUST_CHECK int tg_admin_periods_now(struct tg_admin_req *a, struct tg_admin_periods *p);
/* A list route's query (users, teams): `limit`, `offset`, `sort`, `order`, `q`, and this
 * period's bounds. */
struct tg_admin_list {
    char q[TG_ADMIN_PARAM_MAX + 1]; /* "" = no search */
    const char *sort_sql;           /* the ORDER BY expression of `sort` */
    const char *order;              /* "ASC" / "DESC" */
    int64_t limit, offset;
    struct tg_admin_periods ps;
};

/* One `sort` choice: its name, its SQL expression, its default order. */
struct tg_admin_sort {
    const char *name, *sql, *order;
};

/* Parses a list route's query into l: limit in 1..max_limit (default def_limit), offset in
 * 0..max_offset, sort among sorts[0..n) (default the first), order, q (1-256 bytes of UTF-8
 * without control characters), then the period bounds. 0, or -1 with the 400 (or 500)
 * recorded. */
TG_MUST_CHECK int tg_admin_list_parse(struct tg_admin_req *a, struct tg_admin_list *l,
                                      int64_t max_limit, int64_t def_limit, int64_t max_offset,
                                      const struct tg_admin_sort *sorts, size_t n);

/* Writes row i of a list page as one JSON object (with its braces). 0 or -1 (no memory). */
typedef int (*tg_admin_row_fn)(struct tg_buf *b, const PGresult *res, int i,
                               const struct tg_admin_periods *ps);

/* The end of a list route's page query: sort, order, and $10 limit, $11 offset. */
#define TG_ADMIN_LIST_ORDER "ORDER BY %s %s NULLS LAST, id LIMIT $10 OFFSET $11"

/* Runs a list route in one read-only snapshot: count_sql ($1 = q) for the total, then
 * page_sql (parameters $1, $2 the default quota, $3 q, $4..$9 the periods, $10 limit,
 * $11 offset) for the page, written by row_fn as {"data":[…],"total":…,"limit":…,"offset":…}.
 * Sets a->status or records the error. */
void tg_admin_list_run(PGconn *db, struct tg_admin_req *a, const struct tg_admin_list *l,
                       const char *page_sql, const char *count_sql, tg_admin_row_fn row_fn);

/* The bounds of the period named `period` ("month", "week", "day", "none"; else month). */
const struct tg_period_bounds *tg_admin_period_bounds(const struct tg_admin_periods *ps,
                                                      const char *period);
/* The default quota's SQL parameters $1, $2: QUOTA_DEFAULT_TOKENS as text into lim and
 * QUOTA_PERIOD's name (static) into *per (TG_ADMIN_SQL_DEFAULTS prefers the quotas row). */
void tg_admin_defaults_params(char lim[24], const char **per);
/* Appends "limit_tokens", "period", "used_tokens", "remaining_tokens", "percent", "state",
 * "period_start", "reset" (no braces) as /v1/quota computes them. Without has_limit (a team
 * without a quota) limit_tokens and remaining_tokens are null, percent 0 and state "ok".
 * Returns 0 or -1. */
TG_MUST_CHECK int tg_admin_figures_json(struct tg_buf *b, bool has_limit, int64_t limit,
                                        const char *period, int64_t used,
                                        const struct tg_admin_periods *ps);
/* Checks the {id} path parameter as a user or team id (SPEC §2) and copies it into dst[cap].
 * 0, or -1 (400 recorded). */
TG_MUST_CHECK int tg_admin_path_id(struct tg_admin_req *a, char *dst, size_t cap);
/* Appends to a->out a JSON array of the users matching `where` (an SQL condition on users u
 * that may use `arg` as $3), ordered by id, each as in GET /admin/api/users (with their own
 * quota figures). Pool thread. 0, or -1 (error recorded). */
TG_MUST_CHECK int tg_admin_users_json(struct tg_admin_req *a, PGconn *db, const char *where,
                                      const char *arg, const struct tg_admin_periods *ps);

/* ---- handlers (admin_users.c, admin_teams.c, admin_reports.c, admin_export.c) --------------- */

void tg_admin_users_list(struct tg_admin_req *a);
void tg_admin_user_get(struct tg_admin_req *a);
void tg_admin_teams_list(struct tg_admin_req *a);
void tg_admin_team_get(struct tg_admin_req *a);
void tg_admin_quota_put(struct tg_admin_req *a);
void tg_admin_default_quota_get(struct tg_admin_req *a);
void tg_admin_key_create(struct tg_admin_req *a);
void tg_admin_key_revoke(struct tg_admin_req *a);
void tg_admin_user_set_disabled(struct tg_admin_req *a);
void tg_admin_usage(struct tg_admin_req *a);
void tg_admin_ledger(struct tg_admin_req *a);
void tg_admin_prices_list(struct tg_admin_req *a);
void tg_admin_price_put(struct tg_admin_req *a);
void tg_admin_audit_list(struct tg_admin_req *a);
/* Streams GET /admin/api/ledger.csv (takes over the conn; frees a). */
void tg_admin_ledger_csv(struct tg_admin_req *a);

/* clang-format off */
/* SQL: the usage columns of a GROUP BY over ledger rows (cost_usd numeric, NULL when no row
 * of the group is priced). */
#define TG_ADMIN_SQL_USAGE_COLS                                                                    \
    "count(*)::bigint AS requests, "                                                               \
    "COALESCE(sum(prompt_tokens), 0)::bigint AS prompt_tokens, "                                   \
    "COALESCE(sum(completion_tokens), 0)::bigint AS completion_tokens, "                           \
    "COALESCE(sum(cached_tokens), 0)::bigint AS cached_tokens, "                                   \
    "COALESCE(sum(reasoning_tokens), 0)::bigint AS reasoning_tokens, "                             \
    "COALESCE(sum(total_tokens), 0)::bigint AS total_tokens, "                                     \
    "sum(cost_usd) AS cost_usd, "                                                                  \
    "count(*) FILTER (WHERE cost_usd IS NULL)::bigint AS unpriced_requests"
/* SQL: json_build_object arguments for those columns of a row named x (cost as exact text). */
#define TG_ADMIN_SQL_USAGE_JSON                                                                    \
    "'requests', x.requests, 'prompt_tokens', x.prompt_tokens, "                                   \
    "'completion_tokens', x.completion_tokens, 'cached_tokens', x.cached_tokens, "                 \
    "'reasoning_tokens', x.reasoning_tokens, 'total_tokens', x.total_tokens, "                     \
    "'cost_usd', x.cost_usd::text, 'unpriced_requests', x.unpriced_requests"
/* SQL: the to_char format of RFC 3339 UTC text with milliseconds:
 * "to_char(ts AT TIME ZONE 'UTC', " TG_ADMIN_SQL_TSFMT ")". */
#define TG_ADMIN_SQL_TSFMT "'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"'"
/* SQL: an expression as RFC 3339 UTC text with milliseconds (NULL stays NULL). */
#define TG_ADMIN_SQL_TS(col) "to_char((" col ") AT TIME ZONE 'UTC', " TG_ADMIN_SQL_TSFMT ")"
/* SQL: the start / reset of the period in column `period` (params $4..$9 of
 * struct tg_admin_periods, Unix seconds). */
#define TG_ADMIN_SQL_P_START                                                                       \
    "CASE period WHEN 'month' THEN to_timestamp($4::bigint) WHEN 'week' THEN "                     \
    "to_timestamp($6::bigint) WHEN 'day' THEN to_timestamp($8::bigint) "                           \
    "ELSE '-infinity'::timestamptz END"
#define TG_ADMIN_SQL_P_RESET                                                                       \
    "CASE period WHEN 'month' THEN to_timestamp($5::bigint) WHEN 'week' THEN "                     \
    "to_timestamp($7::bigint) WHEN 'day' THEN to_timestamp($9::bigint) "                           \
    "ELSE 'infinity'::timestamptz END"
/* SQL: a WITH item d (lim, per): the default quota, the quotas row, else QUOTA_DEFAULT_TOKENS /
 * QUOTA_PERIOD ($1, $2). */
#define TG_ADMIN_SQL_DEFAULTS                                                                      \
    "d AS (SELECT COALESCE((SELECT q.limit_tokens FROM quotas q "                                  \
    "                        WHERE q.subject_kind = 'default' AND q.subject_id = ''), $1::bigint) AS lim, " \
    "             COALESCE((SELECT q.period FROM quotas q "                                        \
    "                        WHERE q.subject_kind = 'default' AND q.subject_id = ''), $2::text) AS per)"
/* clang-format on */

#endif
