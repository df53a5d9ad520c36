/* ledger.c: the ledger thread: drains the worker rings into PostgreSQL in batches, spools when
 * PostgreSQL is away, replays the spool in order, isolates rows PostgreSQL refuses. */
#include "ledger/ledger.h"

#include <errno.h>
#include <fcntl.h>
#include <libpq-fe.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/buf.h"
#include "core/log.h"
#include "ledger/ring.h"
#include "ledger/spool.h"

#define STAGE_TABLE "tg_ledger_stage"

static const char create_stage_sql[] =
    "CREATE TEMP TABLE IF NOT EXISTS " STAGE_TABLE " ("
    "request_id uuid, user_id text, team_id text, model text, route text, status text, "
    "prompt_tokens bigint, completion_tokens bigint, cached_tokens bigint, "
    "reasoning_tokens bigint, total_tokens bigint, count_source text, upstream_status integer, "
    "started_at timestamptz, finished_at timestamptz, ttfb_ms integer, latency_ms integer, "
    "upstream_call_id text, client_request_id text) ON COMMIT DELETE ROWS";

static const char copy_sql[] = "COPY " STAGE_TABLE " (" TG_LEDGER_COPY_COLUMNS ") FROM STDIN";

/* One statement moves the batch into the ledger and prices it; blocked rows cost 0 (SPEC §6). */
static const char insert_sql[] =
    "WITH ins AS (INSERT INTO ledger (request_id, user_id, team_id, model, route, status, "
    "prompt_tokens, completion_tokens, cached_tokens, reasoning_tokens, total_tokens, cost_usd, "
    "count_source, upstream_status, started_at, finished_at, ttfb_ms, latency_ms, "
    "upstream_call_id, client_request_id) "
    "SELECT request_id, user_id, team_id, model, route, status, prompt_tokens, "
    "completion_tokens, cached_tokens, reasoning_tokens, total_tokens, "
    "CASE WHEN status = 'blocked' THEN 0 ELSE tg_ledger_cost(model, started_at, prompt_tokens, "
    "cached_tokens, completion_tokens) END, "
    "count_source, upstream_status, started_at, finished_at, ttfb_ms, latency_ms, "
    "upstream_call_id, client_request_id FROM " STAGE_TABLE " ON CONFLICT DO NOTHING "
    "RETURNING cost_usd) "
    "SELECT count(*), count(*) FILTER (WHERE cost_usd IS NULL) FROM ins";

/* A row that found its ring full; lives on the producer's overflow queue. */
struct ovf_node {
    _Atomic(struct ovf_node *) next;
    struct tg_ledger_row row;
};

struct producer {
    struct tg_ring *ring; /* NULL never: every producer index has its ring */
    /* written by the producer thread only */
    _Alignas(64) struct ovf_node *ovf_tail;
    _Atomic uint64_t appended;
    _Atomic uint64_t pushed; /* overflow nodes pushed */
    _Atomic uint64_t overflowed;
    _Atomic uint64_t invalid;
    /* written by the ledger thread only */
    _Alignas(64) struct ovf_node *ovf_head; /* stub node of the SPSC queue */
    _Atomic uint64_t popped;
    _Atomic uint64_t released; /* records settled: in PostgreSQL, spooled, rejected, or torn */
    uint64_t recovered;        /* records pending in the ring at open */
    unsigned batch_records;    /* records taken into the current batch */
    bool batch_ring_moved;
    uint64_t batch_ring_pos;
};

struct after_flush {
    void (*fn)(void *conn, void *arg);
    void *arg;
    struct after_flush *next;
    uint64_t target[]; /* per producer: appended + recovered when registered */
};

struct batch {
    struct tg_ledger_row *rows;
    unsigned n;
    int64_t first_ms; /* monotonic ms when the first row was taken; 0 = empty */
};

enum pg_rc { PG_OK = 0, PG_DATA, PG_FAIL };

struct tg_ledger {
    struct tg_ledger_config cfg; /* strings below are owned copies */
    char *conninfo;
    char *spool_dir;
    unsigned nprod; /* producers + rings left by an earlier, larger configuration */
    struct producer *prod;
    struct tg_spool *spool;

    pthread_t thread;
    bool started, joined;
    _Atomic bool stopping;
    _Atomic bool stopped; /* appends refused */
    int stop_timeout_ms;
    pthread_mutex_t mu; /* guards cond, callbacks, last_error */
    pthread_cond_t cond;
    bool kicked; /* stop or run_after_flush since the thread last waited */
    struct after_flush *callbacks;

    /* ledger thread state */
    PGconn *conn;
    bool pg_tried; /* at least one connection attempt was made */
    int64_t next_connect_ms;
    int64_t next_spool_try_ms;
    int64_t next_replay_try_ms;
    int64_t stop_deadline_ms;
    int64_t last_unpriced_log_ms;
    unsigned rr; /* producer to start the next batch from */
    struct batch direct, replay;
    struct tg_buf copybuf, framebuf;
    int64_t *months; /* partitions known to exist (tg_ledger_month_index) */
    size_t nmonths, capmonths;
    bool spooling_logged;

    /* counters (ledger thread writes) */
    _Atomic uint64_t committed, spooled, replayed, duplicates, unpriced, torn, rejected, batches;
    _Atomic uint64_t recovered, commit_us_last, commit_us_max, commit_us_sum, undecodable;
    _Atomic bool pg_up;
    _Atomic int64_t last_commit_ms;
    _Atomic uint64_t spool_bytes, spool_files;
    char last_error[256];
};

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int64_t mono_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static int64_t wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void add(_Atomic uint64_t *c, uint64_t v)
{
    atomic_fetch_add_explicit(c, v, memory_order_relaxed);
}

/* Producer-owned counter: a plain store, no locked instruction on the request path. */
static void bump(_Atomic uint64_t *c)
{
    atomic_store_explicit(c, atomic_load_explicit(c, memory_order_relaxed) + 1,
                          memory_order_release);
}

static void set_error(struct tg_ledger *l, const char *msg)
{
    pthread_mutex_lock(&l->mu);
    snprintf(l->last_error, sizeof(l->last_error), "%s", msg);
    size_t n = strlen(l->last_error);
    while (n > 0 && (l->last_error[n - 1] == '\n' || l->last_error[n - 1] == ' '))
        l->last_error[--n] = '\0';
    pthread_mutex_unlock(&l->mu);
}

static void sync_spool_stats(struct tg_ledger *l)
{
    atomic_store_explicit(&l->spool_bytes, tg_spool_bytes(l->spool), memory_order_relaxed);
    atomic_store_explicit(&l->spool_files, tg_spool_files(l->spool), memory_order_relaxed);
}

/* ---------------------------------------------------------------- rejected-<date>.log */

/* Appends text to rejected-<UTC date>.log in the spool directory and fsyncs it. */
static int write_rejected(struct tg_ledger *l, const char *text, size_t n)
{
    time_t t = time(NULL);
    struct tm tm;
    gmtime_r(&t, &tm);
    char path[4200];
    snprintf(path, sizeof(path), "%s/rejected-%04d-%02d-%02d.log", l->spool_dir, tm.tm_year + 1900,
             tm.tm_mon + 1, tm.tm_mday);
    int fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    if (fd < 0) {
        tg_log(TG_LOG_ERROR, "ledger: cannot open %s: %s", path, strerror(errno));
        return -1;
    }
    const char *p = text;
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0) {
            tg_log(TG_LOG_ERROR, "ledger: cannot write %s: %s", path, strerror(errno));
            close(fd);
            return -1;
        }
        p += w;
        n -= (size_t)w;
    }
    int rc = fsync(fd);
    close(fd);
    return rc;
}

/* A record whose checksum was right but which does not decode: keep its bytes. */
static void report_undecodable(struct tg_ledger *l, const char *source, const uint8_t *p,
                               uint32_t len)
{
    add(&l->torn, 1);
    add(&l->undecodable, 1);
    tg_log(TG_LOG_ERROR, "ledger: undecodable %u-byte record in %s kept in rejected log", len,
           source);
    struct tg_buf b = {0};
    if (tg_buf_printf(&b, "-- undecodable record from %s (hex):\n", source) == 0) {
        static const char hex[] = "0123456789abcdef";
        int rc = 0;
        for (uint32_t i = 0; i < len && rc == 0; i++) {
            char h[2] = {hex[p[i] >> 4], hex[p[i] & 15]};
            rc = tg_buf_append(&b, h, 2);
        }
        if (rc == 0 && tg_buf_puts(&b, "\n") == 0)
            (void)write_rejected(l, b.data, b.len);
    }
    tg_buf_cleanup(&b);
}

/* ---------------------------------------------------------------- PostgreSQL */

static void pg_drop(struct tg_ledger *l, const char *why)
{
    if (l->conn != NULL) {
        PQfinish(l->conn);
        l->conn = NULL;
        tg_log(TG_LOG_WARN, "ledger: PostgreSQL connection lost, rows go to the spool: %s", why);
    }
    atomic_store(&l->pg_up, false);
    l->next_connect_ms = mono_ms() + l->cfg.retry_interval_ms;
    set_error(l, why);
}

static int64_t query_deadline(const struct tg_ledger *l)
{
    int64_t d = mono_ms() + l->cfg.query_timeout_ms;
    if (atomic_load(&l->stopping) && l->stop_deadline_ms > 0) {
        int64_t s = TG_MAX(l->stop_deadline_ms, mono_ms() + 1000);
        d = TG_MIN(d, s);
    }
    return d;
}

/* Waits for the next result of the query in flight; NULL when there are no more, or on a
 * time-out or a broken connection (then *lost is set). */
static PGresult *next_result(struct tg_ledger *l, int64_t deadline, bool *lost)
{
    while (PQisBusy(l->conn)) {
        int64_t left = deadline - mono_ms();
        if (left <= 0) {
            *lost = true;
            return NULL;
        }
        struct pollfd pfd = {.fd = PQsocket(l->conn), .events = POLLIN};
        int rc = poll(&pfd, 1, (int)TG_MIN(left, 1000));
        if (rc < 0 && errno != EINTR) {
            *lost = true;
            return NULL;
        }
        if (rc > 0 && PQconsumeInput(l->conn) == 0) {
            *lost = true;
            return NULL;
        }
    }
    return PQgetResult(l->conn);
}

/* Classifies a failed result: class 22 (data exception) and 23 (integrity) are the row's
 * fault; anything else means PostgreSQL cannot take rows now. */
static enum pg_rc classify(struct tg_ledger *l, const PGresult *res)
{
    if (l->conn == NULL || PQstatus(l->conn) != CONNECTION_OK || res == NULL)
        return PG_FAIL;
    const char *state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
    if (state != NULL && (strncmp(state, "22", 2) == 0 || strncmp(state, "23", 2) == 0))
        return PG_DATA;
    return PG_FAIL;
}

/* Runs one statement (params may be NULL) and drains its results. On PG_OK, *out (if not
 * NULL) receives the last tuples result (caller PQclears). On failure errmsg holds the
 * server's message. PG_FAIL leaves the connection dropped. */
static enum pg_rc pg_exec(struct tg_ledger *l, const char *sql, int nparams,
                          const char *const *params, PGresult **out, char *errmsg, size_t errlen)
{
    if (out != NULL)
        *out = NULL;
    if (PQsendQueryParams(l->conn, sql, nparams, NULL, params, NULL, NULL, 0) == 0) {
        snprintf(errmsg, errlen, "%s", PQerrorMessage(l->conn));
        pg_drop(l, errmsg);
        return PG_FAIL;
    }
    int64_t deadline = query_deadline(l);
    enum pg_rc rc = PG_OK;
    bool lost = false;
    PGresult *res;
    while ((res = next_result(l, deadline, &lost)) != NULL) {
        ExecStatusType st = PQresultStatus(res);
        if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK) {
            if (out != NULL && st == PGRES_TUPLES_OK && rc == PG_OK) {
                PQclear(*out);
                *out = res;
                continue;
            }
        } else if (rc == PG_OK) {
            snprintf(errmsg, errlen, "%s", PQresultErrorMessage(res));
            rc = classify(l, res);
        }
        PQclear(res);
    }
    if (lost) {
        if (rc == PG_OK)
            snprintf(errmsg, errlen, "no answer from PostgreSQL within %u ms or connection broken",
                     l->cfg.query_timeout_ms);
        rc = PG_FAIL;
    }
    if (rc != PG_OK && out != NULL) {
        PQclear(*out);
        *out = NULL;
    }
    if (rc == PG_FAIL)
        pg_drop(l, errmsg);
    return rc;
}

static enum pg_rc pg_simple(struct tg_ledger *l, const char *sql, char *errmsg, size_t errlen)
{
    return pg_exec(l, sql, 0, NULL, NULL, errmsg, errlen);
}

static void pg_connect(struct tg_ledger *l)
{
    char timeout[32], user_timeout[32];
    snprintf(timeout, sizeof(timeout), "%u", TG_MAX(2u, l->cfg.query_timeout_ms / 1000));
    snprintf(user_timeout, sizeof(user_timeout), "%u", l->cfg.query_timeout_ms);
    /* Our defaults first; the dbname entry (the configured string) is expanded last so that
     * anything it sets wins. */
    const char *keys[] = {
        "connect_timeout",  "application_name", "keepalives_idle", "keepalives_interval",
        "keepalives_count", "tcp_user_timeout", "dbname",          NULL};
    const char *vals[] = {timeout, "tollgate-ledger", "10",        "5",
                          "3",     user_timeout,      l->conninfo, NULL};
    l->pg_tried = true;
    PGconn *c = PQconnectdbParams(keys, vals, 1);
    if (c == NULL || PQstatus(c) != CONNECTION_OK) {
        char msg[256];
        snprintf(msg, sizeof(msg), "connect: %s", c ? PQerrorMessage(c) : "out of memory");
        if (atomic_load(&l->pg_up) || l->last_error[0] == '\0')
            tg_log(TG_LOG_WARN, "ledger: PostgreSQL unreachable, retrying every %u ms: %s",
                   l->cfg.retry_interval_ms, msg);
        PQfinish(c);
        atomic_store(&l->pg_up, false);
        set_error(l, msg);
        l->next_connect_ms = mono_ms() + l->cfg.retry_interval_ms;
        return;
    }
    l->conn = c;
    l->nmonths = 0; /* the database may be another one now */
    char err[512];
    if (pg_simple(l, create_stage_sql, err, sizeof(err)) != PG_OK) {
        if (l->conn != NULL)
            pg_drop(l, err);
        return;
    }
    atomic_store(&l->pg_up, true);
    tg_log(TG_LOG_INFO, "ledger: connected to PostgreSQL");
}

static bool month_known(const struct tg_ledger *l, int64_t m)
{
    for (size_t i = 0; i < l->nmonths; i++)
        if (l->months[i] == m)
            return true;
    return false;
}

/* Creates the monthly partitions the rows need (outside the batch transaction). */
static enum pg_rc ensure_partitions(struct tg_ledger *l, const struct tg_ledger_row *rows,
                                    unsigned n, char *errmsg, size_t errlen)
{
    for (unsigned i = 0; i < n; i++) {
        int64_t m = tg_ledger_month_index(rows[i].started_at_ms);
        if (month_known(l, m))
            continue;
        char from[40];
        snprintf(from, sizeof(from), "%04lld-%02lld-01 00:00:00+00", (long long)(m / 12),
                 (long long)(m % 12 + 1));
        const char *params[] = {from};
        enum pg_rc rc = pg_exec(l, "SELECT tg_ensure_ledger_partitions($1::timestamptz, 0)", 1,
                                params, NULL, errmsg, errlen);
        if (rc != PG_OK)
            return rc;
        if (l->nmonths == l->capmonths) {
            size_t cap = l->capmonths ? l->capmonths * 2 : 16;
            int64_t *p = realloc(l->months, cap * sizeof(*p));
            if (p == NULL)
                continue; /* not cached: asked again next time */
            l->months = p;
            l->capmonths = cap;
        }
        l->months[l->nmonths++] = m;
    }
    return PG_OK;
}

/* COPY rows into the stage table and insert them, in one transaction. */
static enum pg_rc insert_tx(struct tg_ledger *l, const struct tg_ledger_row *rows, unsigned n,
                            char *errmsg, size_t errlen)
{
    enum pg_rc rc = ensure_partitions(l, rows, n, errmsg, errlen);
    if (rc != PG_OK)
        return rc;
    tg_buf_reset(&l->copybuf);
    for (unsigned i = 0; i < n; i++) {
        if (tg_ledger_row_copy_line(&rows[i], &l->copybuf) != 0) {
            snprintf(errmsg, errlen, "out of memory building the COPY data");
            return PG_FAIL; /* rows stay queued; retried */
        }
    }
    int64_t t0 = mono_us();
    rc = pg_simple(l, "BEGIN", errmsg, errlen);
    if (rc != PG_OK)
        return rc;
    if (PQsendQuery(l->conn, copy_sql) == 0) {
        snprintf(errmsg, errlen, "%s", PQerrorMessage(l->conn));
        pg_drop(l, errmsg);
        return PG_FAIL;
    }
    bool lost = false;
    int64_t deadline = query_deadline(l);
    PGresult *res = next_result(l, deadline, &lost);
    if (res == NULL || PQresultStatus(res) != PGRES_COPY_IN) {
        if (res != NULL)
            snprintf(errmsg, errlen, "COPY: %s", PQresultErrorMessage(res));
        else if (lost)
            snprintf(errmsg, errlen, "COPY: no answer from PostgreSQL within %u ms",
                     l->cfg.query_timeout_ms);
        else
            snprintf(errmsg, errlen, "COPY: no answer from PostgreSQL");
        PQclear(res);
        while (!lost && (res = next_result(l, deadline, &lost)) != NULL)
            PQclear(res);
        pg_drop(l, errmsg);
        return PG_FAIL;
    }
    PQclear(res);
    if (PQputCopyData(l->conn, l->copybuf.data, (int)l->copybuf.len) != 1 ||
        PQputCopyEnd(l->conn, NULL) != 1) {
        snprintf(errmsg, errlen, "COPY data: %s", PQerrorMessage(l->conn));
        pg_drop(l, errmsg);
        return PG_FAIL;
    }
    rc = PG_OK;
    while ((res = next_result(l, deadline, &lost)) != NULL) {
        if (PQresultStatus(res) != PGRES_COMMAND_OK && rc == PG_OK) {
            snprintf(errmsg, errlen, "COPY: %s", PQresultErrorMessage(res));
            rc = classify(l, res);
        }
        PQclear(res);
    }
    if (lost) {
        snprintf(errmsg, errlen, "COPY: no answer from PostgreSQL within %u ms",
                 l->cfg.query_timeout_ms);
        rc = PG_FAIL;
    }
    if (rc == PG_FAIL) {
        pg_drop(l, errmsg);
        return rc;
    }
    PGresult *counts = NULL;
    if (rc == PG_OK)
        rc = pg_exec(l, insert_sql, 0, NULL, &counts, errmsg, errlen);
    if (rc == PG_OK) {
        char cerr[256];
        rc = pg_simple(l, "COMMIT", cerr, sizeof(cerr));
        if (rc != PG_OK)
            snprintf(errmsg, errlen, "%s", cerr);
    }
    if (rc == PG_DATA) {
        char rerr[256];
        PQclear(counts);
        if (pg_simple(l, "ROLLBACK", rerr, sizeof(rerr)) != PG_OK)
            return PG_FAIL;
        return PG_DATA;
    }
    if (rc != PG_OK) {
        PQclear(counts);
        return rc;
    }
    uint64_t inserted = 0, null_cost = 0;
    if (counts != NULL && PQntuples(counts) == 1) {
        inserted = strtoull(PQgetvalue(counts, 0, 0), NULL, 10);
        null_cost = strtoull(PQgetvalue(counts, 0, 1), NULL, 10);
    }
    PQclear(counts);
    uint64_t us = (uint64_t)(mono_us() - t0);
    add(&l->committed, inserted);
    add(&l->duplicates, n - inserted);
    add(&l->unpriced, null_cost);
    add(&l->batches, 1);
    add(&l->commit_us_sum, us);
    atomic_store(&l->commit_us_last, us);
    if (us > atomic_load(&l->commit_us_max))
        atomic_store(&l->commit_us_max, us);
    atomic_store(&l->last_commit_ms, wall_ms());
    atomic_store(&l->pg_up, true);
    if (null_cost > 0 && mono_ms() - l->last_unpriced_log_ms >= 60000) {
        l->last_unpriced_log_ms = mono_ms();
        tg_log(TG_LOG_WARN,
               "ledger: %llu rows stored with cost_usd NULL: their model has no model_prices "
               "row at started_at (counted as unpriced)",
               (unsigned long long)null_cost);
    }
    return PG_OK;
}

/* A row PostgreSQL refuses on its own: written to rejected-<date>.log, never retried. */
static enum pg_rc reject_row(struct tg_ledger *l, const struct tg_ledger_row *row, const char *why)
{
    char uuid[37];
    tg_ledger_format_uuid(row->request_id, uuid);
    struct tg_buf b = {0};
    char msg[1024];
    snprintf(msg, sizeof(msg), "%s", why);
    for (char *p = msg; *p; p++)
        if (*p == '\n' || *p == '\r')
            *p = ' ';
    int rc = tg_buf_printf(&b, "-- rejected %lld: %s\n", (long long)wall_ms(), msg);
    if (rc == 0)
        rc = tg_ledger_row_copy_line(row, &b);
    if (rc == 0)
        rc = write_rejected(l, b.data, b.len);
    tg_buf_cleanup(&b);
    if (rc != 0)
        return PG_FAIL; /* keep the row: it goes to the spool and is tried again */
    add(&l->rejected, 1);
    tg_log(TG_LOG_ERROR,
           "ledger: PostgreSQL refused row request_id=%s user=%s; kept in %s/rejected-*.log: %s",
           uuid, row->user_id, l->spool_dir, msg);
    return PG_OK;
}

/* Inserts rows[0..n): a data error splits the range until the offending rows are alone and
 * rejected, so one bad row never holds up the others. PG_FAIL: PostgreSQL is unusable now
 * (rows may be partly committed; a later replay is deduplicated by the primary key). */
static enum pg_rc insert_rows(struct tg_ledger *l, const struct tg_ledger_row *rows, unsigned n)
{
    if (n == 0)
        return PG_OK;
    char err[1024];
    enum pg_rc rc = insert_tx(l, rows, n, err, sizeof(err));
    if (rc == PG_DATA) {
        /* A partition may have been dropped behind our back: forget what we know, try once more. */
        l->nmonths = 0;
        rc = insert_tx(l, rows, n, err, sizeof(err));
    }
    if (rc == PG_OK)
        return PG_OK;
    if (rc == PG_FAIL)
        return PG_FAIL;
    if (n == 1)
        return reject_row(l, rows, err);
    unsigned half = n / 2;
    rc = insert_rows(l, rows, half);
    if (rc != PG_OK)
        return rc;
    return insert_rows(l, rows + half, n - half);
}

/* ---------------------------------------------------------------- batches */

/* Takes the next record of producer p: ring first, then its overflow queue. */
static bool take_one(struct tg_ledger *l, struct producer *pr, struct tg_ledger_row *row,
                     bool *got_row)
{
    const uint8_t *payload;
    uint32_t len;
    uint64_t bad;
    *got_row = false;
    for (;;) {
        enum tg_ring_read_result r = tg_ring_read(pr->ring, &payload, &len, &bad);
        if (r == TG_RING_READ_OK) {
            pr->batch_records++;
            pr->batch_ring_moved = true;
            pr->batch_ring_pos = tg_ring_read_pos(pr->ring);
            if (tg_ledger_row_decode(payload, len, row) == 0)
                *got_row = true;
            else
                report_undecodable(l, "a ring file", payload, len);
            return true;
        }
        if (r == TG_RING_READ_CORRUPT) {
            add(&l->torn, 1);
            tg_log(TG_LOG_ERROR,
                   "ledger: corrupt record in ring %u at offset %llu; skipped to the write "
                   "position",
                   (unsigned)(pr - l->prod), (unsigned long long)bad);
            pr->batch_ring_moved = true;
            pr->batch_ring_pos = tg_ring_read_pos(pr->ring);
            continue;
        }
        /* Ring empty. A node in the overflow queue was pushed after every ring record that
         * came before it; re-reading the ring after seeing the node keeps the order. */
        struct ovf_node *next = atomic_load_explicit(&pr->ovf_head->next, memory_order_acquire);
        if (next == NULL)
            return false;
        if (tg_ring_has_data(pr->ring))
            continue;
        *row = next->row;
        free(pr->ovf_head);
        pr->ovf_head = next;
        atomic_store_explicit(&pr->popped, atomic_load(&pr->popped) + 1, memory_order_release);
        pr->batch_records++;
        *got_row = true;
        return true;
    }
}

/* Fills l->direct from the rings and overflow queues, up to batch_max_rows. */
static void fill_batch(struct tg_ledger *l)
{
    struct batch *b = &l->direct;
    unsigned start = l->rr++;
    for (unsigned k = 0; k < l->nprod && b->n < l->cfg.batch_max_rows; k++) {
        struct producer *pr = &l->prod[(start + k) % l->nprod];
        bool got;
        while (b->n < l->cfg.batch_max_rows && take_one(l, pr, &b->rows[b->n], &got)) {
            if (got)
                b->n++;
            if (b->first_ms == 0)
                b->first_ms = mono_ms();
        }
    }
}

/* The batch's rows are safe elsewhere: free their ring space, count them settled. */
static void release_batch(struct tg_ledger *l)
{
    for (unsigned i = 0; i < l->nprod; i++) {
        struct producer *pr = &l->prod[i];
        if (pr->batch_ring_moved)
            tg_ring_commit(pr->ring, pr->batch_ring_pos);
        if (pr->batch_records > 0)
            atomic_fetch_add_explicit(&pr->released, pr->batch_records, memory_order_release);
        pr->batch_records = 0;
        pr->batch_ring_moved = false;
    }
    l->direct.n = 0;
    l->direct.first_ms = 0;
}

static bool batch_has_records(const struct tg_ledger *l)
{
    if (l->direct.n > 0)
        return true;
    for (unsigned i = 0; i < l->nprod; i++)
        if (l->prod[i].batch_records > 0 || l->prod[i].batch_ring_moved)
            return true;
    return false;
}

/* Writes the current batch to the spool (fsync'd). Returns 0, or -1 (batch kept). */
static int spool_batch(struct tg_ledger *l)
{
    struct batch *b = &l->direct;
    tg_buf_reset(&l->framebuf);
    for (unsigned i = 0; i < b->n; i++) {
        uint8_t enc[TG_LEDGER_ROW_ENCODED_MAX];
        size_t len = tg_ledger_row_encode(&b->rows[i], enc, sizeof(enc));
        if (len == 0 || tg_buf_reserve(&l->framebuf, tg_ledger_frame_size(len)) != 0) {
            l->next_spool_try_ms = mono_ms() + l->cfg.retry_interval_ms;
            return -1;
        }
        tg_ledger_frame_write((uint8_t *)l->framebuf.data + l->framebuf.len, enc, (uint32_t)len);
        l->framebuf.len += tg_ledger_frame_size(len);
    }
    if (l->framebuf.len > 0) {
        char err[512];
        if (tg_spool_write(l->spool, l->framebuf.data, l->framebuf.len, err, sizeof(err)) != 0) {
            tg_log(TG_LOG_ERROR, "ledger: cannot spool %u rows (kept in the rings, retrying): %s",
                   b->n, err);
            set_error(l, err);
            l->next_spool_try_ms = mono_ms() + l->cfg.retry_interval_ms;
            return -1;
        }
        if (!l->spooling_logged) {
            l->spooling_logged = true;
            tg_log(TG_LOG_WARN, "ledger: spooling rows to %s until PostgreSQL takes them",
                   l->spool_dir);
        }
    }
    add(&l->spooled, b->n);
    release_batch(l);
    sync_spool_stats(l);
    return 0;
}

static void on_spool_record(void *arg, const uint8_t *payload, uint32_t len)
{
    struct tg_ledger *l = arg;
    struct batch *b = &l->replay;
    if (tg_ledger_row_decode(payload, len, &b->rows[b->n]) == 0)
        b->n++;
    else
        report_undecodable(l, "a spool file", payload, len);
}

static void on_spool_tear(void *arg, const struct tg_spool_tear *t)
{
    struct tg_ledger *l = arg;
    add(&l->torn, 1);
    struct tg_buf msg = {0};
    int rc;
    if (t->missing)
        rc = tg_buf_printf(&msg, "spool file %s vanished before its last %llu bytes were replayed",
                           t->path, (unsigned long long)t->bytes);
    else
        rc = tg_buf_printf(&msg,
                           "%s spool record in %s at offset %llu (%llu bytes skipped); the "
                           "records before it are replayed",
                           t->at_tail ? "torn last" : "corrupt", t->path,
                           (unsigned long long)t->offset, (unsigned long long)t->bytes);
    if (rc == 0) {
        tg_log(TG_LOG_ERROR, "ledger: %s", msg.data);
        set_error(l, msg.data);
    }
    tg_buf_cleanup(&msg);
}

/* Replays one batch of the spool into PostgreSQL. Returns true when it made progress. */
static bool replay_some(struct tg_ledger *l)
{
    char err[512];
    l->replay.n = 0;
    int n = tg_spool_read(l->spool, l->cfg.batch_max_rows, on_spool_record, on_spool_tear, l, err,
                          sizeof(err));
    if (n < 0) {
        tg_log(TG_LOG_ERROR, "ledger: cannot read the spool (retrying every %u ms): %s",
               l->cfg.retry_interval_ms, err);
        set_error(l, err);
        l->next_replay_try_ms = mono_ms() + l->cfg.retry_interval_ms;
        return false;
    }
    if (insert_rows(l, l->replay.rows, l->replay.n) != PG_OK)
        return false;
    tg_spool_commit(l->spool);
    add(&l->replayed, (uint64_t)l->replay.n);
    l->replay.n = 0;
    sync_spool_stats(l);
    if (tg_spool_is_empty(l->spool)) {
        l->spooling_logged = false;
        tg_log(TG_LOG_INFO, "ledger: spool replayed; writing to PostgreSQL directly again");
    }
    return true;
}

/* ---------------------------------------------------------------- run_after_flush */

static bool flushed_for(const struct tg_ledger *l, const struct after_flush *cb)
{
    if (!tg_spool_is_empty(l->spool))
        return false;
    for (unsigned i = 0; i < l->nprod; i++)
        if (atomic_load_explicit(&l->prod[i].released, memory_order_relaxed) < cb->target[i])
            return false;
    return true;
}

static void call_back(struct tg_ledger *l, struct after_flush *cb, bool with_conn)
{
    cb->fn(with_conn ? (void *)l->conn : NULL, cb->arg);
    free(cb);
    if (with_conn && l->conn != NULL) {
        if (PQstatus(l->conn) != CONNECTION_OK) {
            pg_drop(l, "connection broken by a run_after_flush callback");
        } else if (PQtransactionStatus(l->conn) != PQTRANS_IDLE) {
            char err[256];
            (void)pg_simple(l, "ROLLBACK", err, sizeof(err));
        }
    }
}

/* Runs the callbacks that are due; `final` runs all of them (conn NULL unless due). */
static void run_callbacks(struct tg_ledger *l, bool final)
{
    pthread_mutex_lock(&l->mu);
    struct after_flush *list = l->callbacks;
    l->callbacks = NULL;
    pthread_mutex_unlock(&l->mu);
    struct after_flush *keep = NULL, **tail = &keep;
    while (list != NULL) {
        struct after_flush *cb = list;
        list = cb->next;
        cb->next = NULL;
        if (l->conn != NULL && flushed_for(l, cb))
            call_back(l, cb, true);
        else if (final || (l->conn == NULL && l->pg_tried))
            call_back(l, cb, false);
        else {
            *tail = cb;
            tail = &cb->next;
        }
    }
    if (keep != NULL) {
        pthread_mutex_lock(&l->mu);
        *tail = l->callbacks;
        l->callbacks = keep;
        pthread_mutex_unlock(&l->mu);
    }
}

/* ---------------------------------------------------------------- the thread */

static bool rings_empty(struct tg_ledger *l)
{
    for (unsigned i = 0; i < l->nprod; i++) {
        struct producer *pr = &l->prod[i];
        if (tg_ring_has_data(pr->ring) ||
            atomic_load_explicit(&pr->ovf_head->next, memory_order_acquire) != NULL)
            return false;
    }
    return true;
}

static void wait_ms(struct tg_ledger *l, int64_t ms)
{
    if (ms <= 0)
        return;
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    ts.tv_sec += ms / 1000;
    ts.tv_nsec += (ms % 1000) * 1000000;
    if (ts.tv_nsec >= 1000000000) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000;
    }
    pthread_mutex_lock(&l->mu);
    if (!l->kicked)
        pthread_cond_timedwait(&l->cond, &l->mu, &ts);
    l->kicked = false;
    pthread_mutex_unlock(&l->mu);
}

/* One turn of the loop. Returns true when it did work (loop again at once). */
static bool step(struct tg_ledger *l, bool stopping, bool past_deadline)
{
    int64_t now = mono_ms();
    bool did = false;
    if (l->conn == NULL && now >= l->next_connect_ms && !past_deadline)
        pg_connect(l);
    fill_batch(l);
    struct batch *b = &l->direct;
    bool full = b->n >= l->cfg.batch_max_rows;
    bool due = batch_has_records(l) &&
               (full || stopping || now - b->first_ms >= (int64_t)l->cfg.flush_interval_ms);
    if (due) {
        bool to_spool = l->conn == NULL || !tg_spool_is_empty(l->spool) || past_deadline;
        if (!to_spool) {
            if (insert_rows(l, b->rows, b->n) == PG_OK) {
                release_batch(l);
                did = true;
            } else {
                to_spool = true;
            }
        }
        if (to_spool && now >= l->next_spool_try_ms)
            did = spool_batch(l) == 0 || did;
    }
    if (l->conn != NULL && !tg_spool_is_empty(l->spool) && !past_deadline &&
        now >= l->next_replay_try_ms)
        did = replay_some(l) || did;
    run_callbacks(l, false);
    return did;
}

static void *thread_main(void *arg)
{
    struct tg_ledger *l = arg;
    int64_t poll = TG_MAX(1, TG_MIN((int64_t)l->cfg.flush_interval_ms / 4, 10));
    for (;;) {
        bool stopping = atomic_load(&l->stopping);
        bool past = stopping && mono_ms() >= l->stop_deadline_ms;
        bool did = step(l, stopping, past);
        if (stopping && rings_empty(l) && !batch_has_records(l) &&
            (tg_spool_is_empty(l->spool) || l->conn == NULL || past))
            break;
        if (past && !did)
            break; /* neither PostgreSQL nor the spool takes rows: they stay in the rings */
        if (!did) {
            int64_t w = poll;
            if (l->conn == NULL)
                w = TG_MIN(w, TG_MAX(1, l->next_connect_ms - mono_ms()));
            wait_ms(l, w);
        }
    }
    run_callbacks(l, true);
    return NULL;
}

/* ---------------------------------------------------------------- public API */

static int open_rings(struct tg_ledger *l, char *err, size_t errlen)
{
    /* Rings of an earlier run with more workers still hold rows: drain them too. */
    unsigned n = l->cfg.producers;
    for (unsigned i = n; i < TG_LEDGER_MAX_PRODUCERS * 4; i++) {
        char path[4200];
        snprintf(path, sizeof(path), "%s/ring-%u.bin", l->spool_dir, i);
        if (access(path, F_OK) == 0)
            n = i + 1;
    }
    l->prod = calloc(n, sizeof(*l->prod));
    if (l->prod == NULL) {
        snprintf(err, errlen, "ledger: out of memory");
        return -1;
    }
    l->nprod = n;
    for (unsigned i = 0; i < n; i++) {
        struct producer *pr = &l->prod[i];
        pr->ovf_head = pr->ovf_tail = calloc(1, sizeof(struct ovf_node));
        if (pr->ovf_head == NULL) {
            snprintf(err, errlen, "ledger: out of memory");
            return -1;
        }
        char path[4200];
        snprintf(path, sizeof(path), "%s/ring-%u.bin", l->spool_dir, i);
        struct tg_ring_recovery rec;
        pr->ring = tg_ring_open(path, l->cfg.ring_bytes, &rec, err, errlen);
        if (pr->ring == NULL)
            return -1;
        pr->recovered = rec.pending_records;
        add(&l->recovered, rec.pending_records);
        if (rec.header_invalid) {
            add(&l->torn, 1);
            tg_log(TG_LOG_ERROR, "ledger: ring %s had an invalid header; kept as %s.corrupt-*",
                   path, path);
        }
        if (rec.torn_records > 0) {
            add(&l->torn, rec.torn_records);
            tg_log(TG_LOG_ERROR,
                   "ledger: ring %s: torn record at offset %llu; %llu records before it are "
                   "replayed, %llu bytes after it are lost",
                   path, (unsigned long long)rec.torn_offset,
                   (unsigned long long)rec.pending_records, (unsigned long long)rec.lost_bytes);
        }
        if (rec.pending_records > 0)
            tg_log(TG_LOG_INFO, "ledger: ring %s: %llu rows left by the previous run are queued",
                   path, (unsigned long long)rec.pending_records);
    }
    return 0;
}

struct tg_ledger *tg_ledger_create(const struct tg_ledger_config *cfg, char *err, size_t errlen)
{
    if (cfg->conninfo == NULL || cfg->spool_dir == NULL || cfg->spool_dir[0] == '\0') {
        snprintf(err, errlen, "ledger: conninfo and spool_dir are required");
        return NULL;
    }
    if (cfg->producers == 0 || cfg->producers > TG_LEDGER_MAX_PRODUCERS) {
        snprintf(err, errlen, "ledger: producers must be 1..%d", TG_LEDGER_MAX_PRODUCERS);
        return NULL;
    }
    struct tg_ledger *l = calloc(1, sizeof(*l));
    if (l == NULL) {
        snprintf(err, errlen, "ledger: out of memory");
        return NULL;
    }
    l->cfg = *cfg;
    if (l->cfg.ring_bytes == 0)
        l->cfg.ring_bytes = TG_RING_DEFAULT_BYTES;
    l->cfg.ring_bytes = TG_MAX((l->cfg.ring_bytes + 4095) / 4096 * 4096, TG_RING_MIN_BYTES);
    if (l->cfg.batch_max_rows == 0)
        l->cfg.batch_max_rows = TG_LEDGER_DEFAULT_BATCH_ROWS;
    if (l->cfg.flush_interval_ms == 0)
        l->cfg.flush_interval_ms = TG_LEDGER_DEFAULT_FLUSH_MS;
    if (l->cfg.retry_interval_ms == 0)
        l->cfg.retry_interval_ms = TG_LEDGER_DEFAULT_RETRY_MS;
    if (l->cfg.query_timeout_ms == 0)
        l->cfg.query_timeout_ms = TG_LEDGER_DEFAULT_QUERY_MS;
    pthread_mutex_init(&l->mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&l->cond, &ca);
    pthread_condattr_destroy(&ca);
    l->conninfo = strdup(cfg->conninfo);
    l->spool_dir = strdup(cfg->spool_dir);
    l->direct.rows = calloc(l->cfg.batch_max_rows, sizeof(struct tg_ledger_row));
    l->replay.rows = calloc(l->cfg.batch_max_rows, sizeof(struct tg_ledger_row));
    if (l->conninfo == NULL || l->spool_dir == NULL || l->direct.rows == NULL ||
        l->replay.rows == NULL) {
        snprintf(err, errlen, "ledger: out of memory");
        goto fail;
    }
    l->cfg.conninfo = l->conninfo;
    l->cfg.spool_dir = l->spool_dir;
    l->spool = tg_spool_open(l->spool_dir, l->cfg.spool_segment_bytes, err, errlen);
    if (l->spool == NULL)
        goto fail;
    if (open_rings(l, err, errlen) != 0)
        goto fail;
    sync_spool_stats(l);
    if (!tg_spool_is_empty(l->spool))
        tg_log(TG_LOG_INFO, "ledger: %llu spool files (%llu bytes) from an earlier run to replay",
               (unsigned long long)tg_spool_files(l->spool),
               (unsigned long long)tg_spool_bytes(l->spool));
    return l;
fail:
    tg_ledger_destroy(l);
    return NULL;
}

int tg_ledger_start(struct tg_ledger *l)
{
    if (l->started || atomic_load(&l->stopped))
        return -1;
    if (pthread_create(&l->thread, NULL, thread_main, l) != 0)
        return -1;
    pthread_setname_np(l->thread, "tg-ledger");
    l->started = true;
    return 0;
}

int tg_ledger_append(struct tg_ledger *l, unsigned producer, const struct tg_ledger_row *row)
{
    if (producer >= l->cfg.producers || atomic_load_explicit(&l->stopped, memory_order_relaxed))
        return -1;
    struct producer *pr = &l->prod[producer];
    uint8_t enc[TG_LEDGER_ROW_ENCODED_MAX];
    size_t len = tg_ledger_row_encode(row, enc, sizeof(enc));
    if (len == 0) {
        bump(&pr->invalid);
        return -1;
    }
    /* While older rows wait in the overflow queue, newer ones queue behind them. */
    if (atomic_load_explicit(&pr->pushed, memory_order_relaxed) ==
            atomic_load_explicit(&pr->popped, memory_order_acquire) &&
        tg_ring_append(pr->ring, enc, (uint32_t)len) == 0) {
        bump(&pr->appended);
        return 0;
    }
    struct ovf_node *n = malloc(sizeof(*n));
    if (n == NULL)
        return -1;
    atomic_init(&n->next, NULL);
    n->row = *row;
    atomic_store_explicit(&pr->ovf_tail->next, n, memory_order_release);
    pr->ovf_tail = n;
    bump(&pr->pushed);
    bump(&pr->overflowed);
    bump(&pr->appended);
    return 0;
}

int tg_ledger_run_after_flush(struct tg_ledger *l, void (*fn)(void *conn, void *arg), void *arg)
{
    if (atomic_load(&l->stopped))
        return -1;
    struct after_flush *cb = malloc(sizeof(*cb) + l->nprod * sizeof(uint64_t));
    if (cb == NULL)
        return -1;
    cb->fn = fn;
    cb->arg = arg;
    cb->next = NULL;
    for (unsigned i = 0; i < l->nprod; i++)
        cb->target[i] =
            atomic_load_explicit(&l->prod[i].appended, memory_order_acquire) + l->prod[i].recovered;
    pthread_mutex_lock(&l->mu);
    struct after_flush **t = &l->callbacks;
    while (*t != NULL)
        t = &(*t)->next;
    *t = cb;
    l->kicked = true;
    pthread_cond_signal(&l->cond);
    pthread_mutex_unlock(&l->mu);
    return 0;
}

void tg_ledger_stop(struct tg_ledger *l, int timeout_ms)
{
    if (l == NULL)
        return;
    atomic_store(&l->stopped, true);
    if (l->started && !l->joined) {
        pthread_mutex_lock(&l->mu);
        l->stop_deadline_ms = mono_ms() + TG_MAX(timeout_ms, 0);
        atomic_store(&l->stopping, true);
        l->kicked = true;
        pthread_cond_signal(&l->cond);
        pthread_mutex_unlock(&l->mu);
        pthread_join(l->thread, NULL);
        l->joined = true;
    } else if (!l->started) {
        /* No thread ever ran: callbacks still get their one call. */
        pthread_mutex_lock(&l->mu);
        struct after_flush *list = l->callbacks;
        l->callbacks = NULL;
        pthread_mutex_unlock(&l->mu);
        while (list != NULL) {
            struct after_flush *cb = list;
            list = cb->next;
            cb->fn(NULL, cb->arg);
            free(cb);
        }
    }
    if (l->conn != NULL) {
        PQfinish(l->conn);
        l->conn = NULL;
        atomic_store(&l->pg_up, false);
    }
}

void tg_ledger_destroy(struct tg_ledger *l)
{
    if (l == NULL)
        return;
    tg_ledger_stop(l, 5000);
    uint64_t lost = 0;
    for (unsigned i = 0; l->prod != NULL && i < l->nprod; i++) {
        struct producer *pr = &l->prod[i];
        struct ovf_node *n = pr->ovf_head;
        if (n != NULL)
            n = atomic_load(&n->next);
        while (n != NULL) {
            lost++;
            n = atomic_load(&n->next);
        }
        for (n = pr->ovf_head; n != NULL;) {
            struct ovf_node *next = atomic_load(&n->next);
            free(n);
            n = next;
        }
        tg_ring_close(pr->ring);
    }
    if (lost > 0)
        tg_log(TG_LOG_ERROR,
               "ledger: %llu overflow rows could be neither committed nor spooled and are lost",
               (unsigned long long)lost);
    if (l->direct.n > 0)
        tg_log(TG_LOG_WARN, "ledger: %u batch rows not settled stay in the ring files",
               l->direct.n);
    free(l->prod);
    tg_spool_close(l->spool);
    free(l->direct.rows);
    free(l->replay.rows);
    free(l->months);
    tg_buf_cleanup(&l->copybuf);
    tg_buf_cleanup(&l->framebuf);
    free(l->conninfo);
    free(l->spool_dir);
    pthread_mutex_destroy(&l->mu);
    pthread_cond_destroy(&l->cond);
    free(l);
}

void tg_ledger_get_stats(struct tg_ledger *l, struct tg_ledger_stats *out)
{
    memset(out, 0, sizeof(*out));
    uint64_t queued = 0, released = 0;
    for (unsigned i = 0; i < l->nprod; i++) {
        struct producer *pr = &l->prod[i];
        uint64_t rel = atomic_load_explicit(&pr->released, memory_order_acquire);
        out->appended += atomic_load_explicit(&pr->appended, memory_order_relaxed);
        out->overflow += atomic_load_explicit(&pr->overflowed, memory_order_relaxed);
        out->invalid += atomic_load_explicit(&pr->invalid, memory_order_relaxed);
        queued += atomic_load_explicit(&pr->appended, memory_order_relaxed) + pr->recovered;
        released += rel;
    }
    out->queue_depth = queued > released ? queued - released : 0;
    out->committed = atomic_load(&l->committed);
    out->spooled = atomic_load(&l->spooled);
    out->replayed = atomic_load(&l->replayed);
    out->duplicates = atomic_load(&l->duplicates);
    out->unpriced = atomic_load(&l->unpriced);
    out->torn_records = atomic_load(&l->torn);
    out->recovered = atomic_load(&l->recovered);
    out->rejected = atomic_load(&l->rejected);
    out->batches = atomic_load(&l->batches);
    out->spool_bytes = atomic_load(&l->spool_bytes);
    out->spool_files = atomic_load(&l->spool_files);
    out->commit_us_last = atomic_load(&l->commit_us_last);
    out->commit_us_max = atomic_load(&l->commit_us_max);
    out->commit_us_sum = atomic_load(&l->commit_us_sum);
    out->pg_up = atomic_load(&l->pg_up);
    out->last_commit_ms = atomic_load(&l->last_commit_ms);
    pthread_mutex_lock(&l->mu);
    memcpy(out->last_error, l->last_error, sizeof(out->last_error));
    pthread_mutex_unlock(&l->mu);
}
