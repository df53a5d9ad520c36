/* admin_teams.c: teams of the admin API (list, detail): each team with its members, its quota
 * in effect and this period's usage, summed from the ledger as for users. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "admin/admin_internal.h"
#include "http/worker.h"

#define TEAMS_DEFAULT_LIMIT 50
#define TEAMS_MAX_LIMIT     1000
#define TEAMS_MAX_OFFSET    1000000000

/* clang-format off */
/* Every team tollgate knows: registered in teams (a JWT's team claim, a team quota), named by a
 * user's team_id (not a foreign key, see schema/002_accounts.sql) or given a quota row. */
#define SQL_TEAM_IDS                                                                               \
    "ids AS (SELECT id FROM teams "                                                                \
    "        UNION SELECT team_id FROM users WHERE team_id IS NOT NULL "                           \
    "        UNION SELECT subject_id FROM quotas WHERE subject_kind = 'team')"
/* The teams with their quota in effect and this period's usage: $1 default limit, $2 default
 * period, $3 search text ('' = all) or team id, $4..$9 periods; %s is the filter (on i.id and
 * t.name). A team quota is in effect when its row has a limit (as the quota engine reads it,
 * http/identity.c); its period is the row's, else the default's. A team without one is counted
 * over the default quota's period. Usage is the ledger rows billed to the team (their team_id),
 * with the ledger's team index. */
#define SQL_TEAMS_BASE                                                                             \
    "WITH " TG_ADMIN_SQL_DEFAULTS ", " SQL_TEAM_IDS ", "                                           \
    "e AS (SELECT i.id, t.name, tq.limit_tokens, "                                                 \
    "             CASE WHEN tq.limit_tokens IS NULL THEN d.per "                                   \
    "                  ELSE COALESCE(tq.period, d.per) END AS period, "                            \
    "             (SELECT count(*) FROM users u WHERE u.team_id = i.id) AS members "               \
    "        FROM ids i CROSS JOIN d "                                                             \
    "        LEFT JOIN teams t ON t.id = i.id "                                                    \
    "        LEFT JOIN quotas tq ON tq.subject_kind = 'team' AND tq.subject_id = i.id "            \
    "       WHERE %s), "                                                                           \
    "s AS (SELECT e.*, "                                                                           \
    "             (SELECT COALESCE(sum(l.total_tokens), 0) FROM ledger l "                         \
    "               WHERE l.team_id = e.id AND l.started_at >= " TG_ADMIN_SQL_P_START              \
    "                 AND l.started_at < " TG_ADMIN_SQL_P_RESET ") AS used "                       \
    "        FROM e) "                                                                             \
    "SELECT id, name, members, limit_tokens, period, used FROM s "
/* A case-insensitive substring search over id and name in $1 or $3. */
#define SQL_TEAM_SEARCH_ON(p)                                                                      \
    "(" p " = '' OR strpos(lower(i.id), lower(" p ")) > 0 "                                        \
    " OR strpos(lower(COALESCE(t.name, '')), lower(" p ")) > 0)"
#define SQL_TEAMS_COUNT                                                                            \
    "WITH " SQL_TEAM_IDS " SELECT count(*) FROM ids i LEFT JOIN teams t ON t.id = i.id "           \
    " WHERE " SQL_TEAM_SEARCH_ON("$1")
/* One team's usage between $2 and $3 by model, the largest first. */
#define SQL_TEAM_BY_MODEL                                                                          \
    "SELECT COALESCE(json_agg(json_build_object('model', x.k, " TG_ADMIN_SQL_USAGE_JSON ") "       \
    "                          ORDER BY x.total_tokens DESC, x.k), '[]')::text "                   \
    "  FROM (SELECT model AS k, " TG_ADMIN_SQL_USAGE_COLS                                          \
    "          FROM ledger WHERE team_id = $1 "                                                    \
    "           AND started_at >= $2::timestamptz AND started_at < $3::timestamptz "               \
    "         GROUP BY 1) x"
/* clang-format on */

static const char *val(const PGresult *res, int row, int col)
{
    return PQgetisnull(res, row, col) ? NULL : PQgetvalue(res, row, col);
}

static int64_t num(const PGresult *res, int row, int col)
{
    return PQgetisnull(res, row, col) ? 0 : strtoll(PQgetvalue(res, row, col), NULL, 10);
}

/* The fields of one team of a list or detail reply, from the columns of SQL_TEAMS_BASE (no
 * braces). */
static int team_fields(struct tg_buf *b, const PGresult *res, int i,
                       const struct tg_admin_periods *ps)
{
    bool has_limit = !PQgetisnull(res, i, 3);
    int rc = tg_buf_puts(b, "\"id\":");
    rc |= tg_admin_json_str(b, val(res, i, 0));
    rc |= tg_buf_puts(b, ",\"name\":");
    rc |= tg_admin_json_str(b, val(res, i, 1));
    rc |= tg_buf_printf(b, ",\"member_count\":%lld,\"quota_source\":%s,", (long long)num(res, i, 2),
                        has_limit ? "\"team\"" : "null");
    rc |= tg_admin_figures_json(b, has_limit, num(res, i, 3), PQgetvalue(res, i, 4), num(res, i, 5),
                                ps);
    return rc;
}

/* ---- GET /admin/api/teams ----------------------------------------------------------------- */

struct teams_job {
    struct tg_admin_list list;
};

static int team_row(struct tg_buf *b, const PGresult *res, int i, const struct tg_admin_periods *ps)
{
    int rc = tg_buf_puts(b, "{");
    rc |= team_fields(b, res, i, ps);
    return rc | tg_buf_puts(b, "}");
}

static void teams_work(PGconn *db, struct tg_admin_req *a)
{
    struct teams_job *j = a->job;
    char sql[4096];
    snprintf(sql, sizeof(sql), SQL_TEAMS_BASE TG_ADMIN_LIST_ORDER, SQL_TEAM_SEARCH_ON("$3"),
             j->list.sort_sql, j->list.order);
    tg_admin_list_run(db, a, &j->list, sql, SQL_TEAMS_COUNT, team_row);
}

void tg_admin_teams_list(struct tg_admin_req *a)
{
    static const struct tg_admin_sort sorts[] = {
        {"id", "id", "ASC"},
        {"name", "name", "ASC"},
        {"member_count", "members", "DESC"},
        {"used_tokens", "used", "DESC"},
        /* a team without a quota counts as unlimited: 0 % */
        {"percent",
         "(CASE WHEN limit_tokens IS NULL OR limit_tokens < 0 THEN 0 WHEN limit_tokens = 0 THEN "
         "100 ELSE floor(used::numeric * 100 / limit_tokens) END)",
         "DESC"},
    };
    struct teams_job *j = tg_admin_job_new(a, sizeof(*j));
    if (j == NULL)
        return;
    if (tg_admin_list_parse(a, &j->list, TEAMS_MAX_LIMIT, TEAMS_DEFAULT_LIMIT, TEAMS_MAX_OFFSET,
                            sorts, TG_ARRAY_LEN(sorts)) != 0) {
        tg_admin_finish(a);
        return;
    }
    tg_admin_submit(a, teams_work);
}

/* ---- GET /admin/api/teams/{id} ------------------------------------------------------------ */

struct team_job {
    char id[TG_ADMIN_PARAM_MAX + 1];
    struct tg_admin_periods ps;
};

static void team_work(PGconn *db, struct tg_admin_req *a)
{
    struct team_job *j = a->job;
    char lim[24];
    const char *per;
    tg_admin_defaults_params(lim, &per);
    const char *p[9] = {lim,          per,          j->id,        j->ps.txt[0], j->ps.txt[1],
                        j->ps.txt[2], j->ps.txt[3], j->ps.txt[4], j->ps.txt[5]};
    char sql[4096];
    snprintf(sql, sizeof(sql), SQL_TEAMS_BASE, "i.id = $3");
    if (tg_admin_begin(a, db, "ISOLATION LEVEL REPEATABLE READ READ ONLY") != 0)
        return;
    PGresult *res = tg_admin_exec(a, db, sql, 9, p);
    if (res == NULL)
        return;
    if (PQntuples(res) != 1) {
        PQclear(res);
        tg_admin_fail(a, 404, "id", "team_not_found", "No team '%s'.", j->id);
        return;
    }
    struct tg_buf *b = &a->out;
    int rc = tg_buf_puts(b, "{");
    rc |= team_fields(b, res, 0, &j->ps);
    /* by model over the team's current period, as its used_tokens */
    const struct tg_period_bounds *pb = tg_admin_period_bounds(&j->ps, PQgetvalue(res, 0, 4));
    PQclear(res);
    char from[32] = "-infinity", to[32] = "infinity";
    if (pb->reset_s != INT64_MAX) {
        tg_admin_format_time(pb->start_s * 1000, from);
        tg_admin_format_time(pb->reset_s * 1000, to);
    }
    rc |= tg_buf_puts(b, ",\"members\":");
    if (tg_admin_users_json(a, db, "u.team_id = $3", j->id, &j->ps) != 0)
        return;
    rc |= tg_buf_puts(b, ",\"range\":{\"from\":");
    rc |= tg_admin_json_str(b, from[0] == '-' ? NULL : from);
    rc |= tg_buf_puts(b, ",\"to\":");
    rc |= tg_admin_json_str(b, to[0] == 'i' ? NULL : to);
    rc |= tg_buf_puts(b, "},\"usage_by_model\":");
    const char *up[3] = {j->id, from, to};
    res = tg_admin_exec(a, db, SQL_TEAM_BY_MODEL, 3, up);
    if (res == NULL)
        return;
    rc |= tg_buf_puts(b, PQgetvalue(res, 0, 0));
    rc |= tg_buf_puts(b, "}");
    PQclear(res);
    if (tg_admin_commit(a, db) != 0)
        return;
    if (rc != 0) {
        tg_admin_fail(a, 500, NULL, "internal", "Out of memory.");
        return;
    }
    a->status = 200;
}

void tg_admin_team_get(struct tg_admin_req *a)
{
    struct team_job *j = tg_admin_job_new(a, sizeof(*j));
    if (j == NULL)
        return;
    if (tg_admin_path_id(a, j->id, sizeof(j->id)) != 0 || tg_admin_periods_now(a, &j->ps) != 0) {
        tg_admin_finish(a);
        return;
    }
    tg_admin_submit(a, team_work);
}
