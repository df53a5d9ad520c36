/* admin_export.c: GET /admin/api/ledger.csv: the ledger streamed as PostgreSQL CSV, never
 * buffered whole.
 *
 * A producer thread with its own PostgreSQL connection runs COPY (SELECT ...) TO STDOUT and
 * queues the rows in chunks; the worker sends them as the client reads. The queue is bounded
 * (EXPORT_MAX_QUEUED bytes): when it is full the producer waits, so PostgreSQL, the producer and
 * the socket each hold a bounded amount and a slow client slows the COPY down instead of growing
 * memory. The export has its own connection (not a db-pool thread) because a large or slowly
 * read export lasts long and the pool (DB_POOL_SIZE, 2 by default) serves the request path; at
 * most EXPORT_MAX_ACTIVE exports run at once, more get 429. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "admin/admin_internal.h"
#include "core/log.h"
#include "http/server.h"
#include "http/worker.h"

#define EXPORT_CHUNK_BYTES (64 * 1024)
#define EXPORT_MAX_QUEUED  (4 * EXPORT_CHUNK_BYTES)
#define EXPORT_MAX_ACTIVE  2

static atomic_int active_exports;

struct chunk {
    struct chunk *next;
    size_t len;
    char data[];
};

struct export
{
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int refs; /* the producer, the consumer (worker side) and a queued wake-up */

    /* shared, under mu */
    struct chunk *head, *tail;
    size_t queued_bytes;
    bool started;   /* the COPY is running: the reply may begin */
    bool done;      /* the producer has finished (see failed) */
    bool failed;    /* the producer failed; err_* say why */
    bool cancelled; /* the consumer is gone: stop */
    bool posted;    /* a wake-up is queued on the worker */
    int err_status;
    char err_code[40];
    char err_msg[300];

    /* consumer side (worker thread) */
    struct tg_conn *conn; /* NULL once the client is gone or the reply is over */
    struct tg_worker *w;
    bool reply_started;
    bool consumer_released;

    /* producer input */
    bool has_from, has_to, has_user;
    char from[32], to[32];
    char user[TG_ADMIN_PARAM_MAX + 1];
    char filename[96];

    /* producer statistics */
    int64_t rows;
    int64_t bytes;
    int64_t t0_ms;
};

static void export_free(struct export *e)
{
    struct chunk *c = e->head;
    while (c != NULL) {
        struct chunk *n = c->next;
        free(c);
        c = n;
    }
    pthread_mutex_destroy(&e->mu);
    pthread_cond_destroy(&e->cv);
    free(e);
}

static void unref(struct export *e)
{
    pthread_mutex_lock(&e->mu);
    bool freed = --e->refs == 0;
    pthread_mutex_unlock(&e->mu);
    if (freed)
        export_free(e);
}

/* ---- consumer (worker thread) ------------------------------------------------------------- */

static void on_writable(void *arg);
static void on_gone(void *arg);
static const struct tg_conn_owner_ops export_ops = {on_writable, on_gone};

static void consumer_release(struct export *e)
{
    if (e->consumer_released)
        return;
    e->consumer_released = true;
    e->conn = NULL;
    pthread_mutex_lock(&e->mu);
    e->cancelled = true;
    pthread_cond_signal(&e->cv);
    pthread_mutex_unlock(&e->mu);
    unref(e);
}

/* Moves queued chunks to the client while its output buffer has room; ends the reply when the
 * producer is done. */
static void pump(struct export *e)
{
    struct tg_conn *c = e->conn;
    if (c == NULL || e->consumer_released)
        return;
    pthread_mutex_lock(&e->mu);
    if (!e->reply_started) {
        if (!e->started && !e->done) {
            pthread_mutex_unlock(&e->mu);
            return;
        }
        if (!e->started) {
            /* failed before the first byte: a proper JSON error */
            int st = e->err_status;
            char code[40], msg[300];
            snprintf(code, sizeof(code), "%s", e->err_code);
            snprintf(msg, sizeof(msg), "%s", e->err_msg);
            pthread_mutex_unlock(&e->mu);
            tg_conn_set_owner(c, NULL, NULL);
            tg_admin_reply_error(c, st ? st : 500, NULL, code, msg);
            consumer_release(e);
            return;
        }
        pthread_mutex_unlock(&e->mu);
        char disp[160];
        snprintf(disp, sizeof(disp), "attachment; filename=\"%s\"", e->filename);
        tg_conn_add_header(c, "Content-Disposition", disp);
        tg_conn_add_header(c, "Cache-Control", "no-store");
        tg_conn_add_header(c, "X-Content-Type-Options", "nosniff");
        tg_conn_reply_start(c, 200, "text/csv; charset=utf-8");
        e->reply_started = true;
        pthread_mutex_lock(&e->mu);
    }
    while (e->head != NULL && tg_conn_out_pending(c) < TG_CONN_HIGH_WATERMARK) {
        struct chunk *ch = e->head;
        e->head = ch->next;
        if (e->head == NULL)
            e->tail = NULL;
        e->queued_bytes -= ch->len;
        pthread_cond_signal(&e->cv);
        pthread_mutex_unlock(&e->mu);
        tg_conn_reply_send_mem(c, ch->data, ch->len);
        free(ch);
        pthread_mutex_lock(&e->mu);
    }
    bool finished = e->head == NULL && e->done;
    bool failed = e->failed;
    pthread_mutex_unlock(&e->mu);
    if (!finished)
        return;
    if (failed) {
        /* a truncated chunked body: the client sees an incomplete transfer, never a short file
         * that looks complete */
        tg_conn_reply_abort(c);
    } else {
        tg_conn_reply_end(c);
    }
    consumer_release(e);
}

static void on_writable(void *arg)
{
    pump(arg);
}

static void on_gone(void *arg)
{
    struct export *e = arg;
    e->conn = NULL;
    consumer_release(e);
}

static void on_wake(void *arg)
{
    struct export *e = arg;
    pthread_mutex_lock(&e->mu);
    e->posted = false;
    pthread_mutex_unlock(&e->mu);
    pump(e);
    unref(e);
}

/* ---- producer (its own thread) ------------------------------------------------------------ */

/* mu held: asks the worker to pump, unless a wake-up is already queued or nobody listens. */
static void wake_locked(struct export *e)
{
    if (e->posted || e->cancelled)
        return;
    e->refs++;
    e->posted = true;
    if (tg_worker_post(e->w, on_wake, e) != 0) {
        e->posted = false;
        e->refs--;
    }
}

static void producer_fail(struct export *e, int status, const char *code, const char *msg)
{
    pthread_mutex_lock(&e->mu);
    if (!e->failed) {
        e->failed = true;
        e->err_status = status;
        snprintf(e->err_code, sizeof(e->err_code), "%s", code);
        snprintf(e->err_msg, sizeof(e->err_msg), "%s", msg);
    }
    pthread_mutex_unlock(&e->mu);
}

/* Queues a chunk, waiting while the queue is full. Returns false when the consumer is gone. */
static bool push_chunk(struct export *e, struct chunk *ch)
{
    pthread_mutex_lock(&e->mu);
    while (!e->cancelled && e->queued_bytes >= EXPORT_MAX_QUEUED) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_sec += 1;
        pthread_cond_timedwait(&e->cv, &e->mu, &ts);
    }
    if (e->cancelled) {
        pthread_mutex_unlock(&e->mu);
        free(ch);
        return false;
    }
    ch->next = NULL;
    if (e->tail != NULL)
        e->tail->next = ch;
    else
        e->head = ch;
    e->tail = ch;
    e->queued_bytes += ch->len;
    wake_locked(e);
    pthread_mutex_unlock(&e->mu);
    return true;
}

static bool exec_ok(PGconn *db, const char *sql)
{
    PGresult *res = PQexec(db, sql);
    bool ok = PQresultStatus(res) == PGRES_COMMAND_OK;
    if (!ok)
        tg_log(TG_LOG_WARN, "ledger export: %s: %s", sql, PQresultErrorMessage(res));
    PQclear(res);
    return ok;
}

static int build_sql(struct export *e, PGconn *db, char *sql, size_t cap)
{
    size_t l = (size_t)snprintf(sql, cap, "COPY (SELECT * FROM ledger WHERE true");
    if (e->has_user) {
        char *lit = PQescapeLiteral(db, e->user, strlen(e->user));
        if (lit == NULL)
            return -1;
        l += (size_t)snprintf(sql + l, cap - l, " AND user_id = %s", lit);
        PQfreemem(lit);
    }
    /* from/to are our own RFC 3339 text (digits, '-', ':', 'T', '.', 'Z'): safe literals */
    if (e->has_from)
        l += (size_t)snprintf(sql + l, cap - l,
                              " AND started_at >= '%s' AND request_id >= tg_uuid7_min('%s')",
                              e->from, e->from);
    if (e->has_to)
        l += (size_t)snprintf(sql + l, cap - l,
                              " AND started_at < '%s' AND request_id < tg_uuid7_min('%s')", e->to,
                              e->to);
    /* oldest first; request_id order is time order (UUIDv7) and follows the primary key */
    l +=
        (size_t)snprintf(sql + l, cap - l, "%s) TO STDOUT WITH (FORMAT csv, HEADER)",
                         e->has_user ? " ORDER BY started_at, request_id" : " ORDER BY request_id");
    return l < cap ? 0 : -1;
}

static void produce(struct export *e, PGconn *db)
{
    char sql[2048];
    if (!exec_ok(db, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY") ||
        !exec_ok(db, "SET LOCAL TimeZone = 'UTC'") ||
        !exec_ok(db, "SET LOCAL DateStyle = 'ISO, YMD'") ||
        !exec_ok(db, "SET LOCAL IntervalStyle = 'postgres'")) {
        producer_fail(e, 503, "database_unavailable", "The export could not start; try again.");
        return;
    }
    if (build_sql(e, db, sql, sizeof(sql)) != 0) {
        producer_fail(e, 500, "internal", "The export query could not be built.");
        return;
    }
    PGresult *res = PQexec(db, sql);
    if (PQresultStatus(res) != PGRES_COPY_OUT) {
        tg_log(TG_LOG_WARN, "ledger export: %s", PQresultErrorMessage(res));
        PQclear(res);
        producer_fail(e, 503, "database_unavailable", "The export could not start; try again.");
        return;
    }
    PQclear(res);
    pthread_mutex_lock(&e->mu);
    e->started = true;
    wake_locked(e);
    pthread_mutex_unlock(&e->mu);
    struct chunk *ch = NULL;
    for (;;) {
        char *row = NULL;
        int n = PQgetCopyData(db, &row, 0);
        if (n == -1)
            break;
        if (n < 0) {
            tg_log(TG_LOG_WARN, "ledger export: %s", PQerrorMessage(db));
            free(ch);
            producer_fail(e, 503, "database_unavailable", "The export was interrupted.");
            return;
        }
        if (ch != NULL && ch->len + (size_t)n > EXPORT_CHUNK_BYTES) {
            bool queued = push_chunk(e, ch);
            ch = NULL;
            if (!queued) {
                PQfreemem(row);
                return; /* the client is gone; PQfinish ends the COPY */
            }
        }
        if (ch == NULL) {
            size_t cap = TG_MAX((size_t)EXPORT_CHUNK_BYTES, (size_t)n);
            ch = malloc(sizeof(*ch) + cap);
            if (ch == NULL) {
                PQfreemem(row);
                producer_fail(e, 500, "internal", "Out of memory.");
                return;
            }
            ch->len = 0;
        }
        memcpy(ch->data + ch->len, row, (size_t)n);
        ch->len += (size_t)n;
        e->rows++;
        e->bytes += n;
        PQfreemem(row);
    }
    if (ch != NULL && !push_chunk(e, ch))
        return;
    res = PQgetResult(db);
    bool ok = PQresultStatus(res) == PGRES_COMMAND_OK;
    if (!ok)
        tg_log(TG_LOG_WARN, "ledger export: %s", PQresultErrorMessage(res));
    PQclear(res);
    while ((res = PQgetResult(db)) != NULL)
        PQclear(res);
    if (!ok || !exec_ok(db, "COMMIT"))
        producer_fail(e, 503, "database_unavailable", "The export was interrupted.");
}

static void *producer_main(void *arg)
{
    struct export *e = arg;
    const char *keys[] = {"dbname", "connect_timeout", "application_name", NULL};
    const char *vals[] = {tg_app->cfg.database_url, "5", "tollgate-export", NULL};
    PGconn *db = PQconnectdbParams(keys, vals, 1);
    if (PQstatus(db) != CONNECTION_OK) {
        tg_log(TG_LOG_WARN, "ledger export: cannot connect: %s", PQerrorMessage(db));
        producer_fail(e, 503, "database_unavailable",
                      "The database cannot be reached right now; try again.");
    } else {
        produce(e, db);
    }
    PQfinish(db);
    pthread_mutex_lock(&e->mu);
    bool failed = e->failed, cancelled = e->cancelled;
    e->done = true;
    wake_locked(e);
    pthread_mutex_unlock(&e->mu);
    struct tg_logline l;
    tg_logline_begin(&l, failed ? TG_LOG_WARN : TG_LOG_INFO, "ledger export");
    tg_logline_int(&l, "rows", e->rows > 0 ? e->rows - 1 : 0); /* minus the header */
    tg_logline_int(&l, "bytes", e->bytes);
    tg_logline_int(&l, "ms", tg_now_ms() - e->t0_ms);
    tg_logline_str(&l, "outcome", failed ? "failed" : cancelled ? "client_gone" : "ok");
    tg_logline_end(&l);
    atomic_fetch_sub(&active_exports, 1);
    unref(e);
    return NULL;
}

/* ---- the route ---------------------------------------------------------------------------- */

void tg_admin_ledger_csv(struct tg_admin_req *a)
{
    int64_t from_ms, to_ms;
    bool has_from, has_to;
    if (tg_admin_query_range(a, &has_from, &from_ms, &has_to, &to_ms) != 0) {
        tg_admin_finish(a);
        return;
    }
    const char *user = tg_admin_query_get(&a->query, "user");
    if (user != NULL && !tg_admin_text_ok(user, strlen(user), 128)) {
        tg_admin_fail(a, 400, "user", "invalid_id",
                      "'user' must be a user id: 1-128 bytes of UTF-8 without control "
                      "characters.");
        tg_admin_finish(a);
        return;
    }
    if (atomic_fetch_add(&active_exports, 1) >= EXPORT_MAX_ACTIVE) {
        atomic_fetch_sub(&active_exports, 1);
        if (a->conn != NULL)
            tg_conn_add_header(a->conn, "Retry-After", "10");
        tg_admin_fail(a, 429, NULL, "too_many_exports",
                      "%d ledger exports are already running; try again when one is done.",
                      EXPORT_MAX_ACTIVE);
        tg_admin_finish(a);
        return;
    }
    struct export *e = calloc(1, sizeof(*e));
    if (e == NULL) {
        atomic_fetch_sub(&active_exports, 1);
        tg_admin_fail(a, 500, NULL, "internal", "Out of memory.");
        tg_admin_finish(a);
        return;
    }
    pthread_mutex_init(&e->mu, NULL);
    pthread_cond_init(&e->cv, NULL);
    e->refs = 2;
    e->conn = a->conn;
    e->w = a->w;
    e->t0_ms = tg_now_ms();
    e->has_from = has_from;
    e->has_to = has_to;
    if (has_from)
        tg_admin_format_time(from_ms, e->from);
    if (has_to)
        tg_admin_format_time(to_ms, e->to);
    if (user != NULL) {
        e->has_user = true;
        snprintf(e->user, sizeof(e->user), "%s", user);
    }
    snprintf(e->filename, sizeof(e->filename), "ledger%s%.10s%s%.10s.csv", has_from ? "-" : "",
             has_from ? e->from : "", has_to ? "-" : "", has_to ? e->to : "");
    pthread_attr_t attr;
    pthread_t th;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    int rc = pthread_create(&th, &attr, producer_main, e);
    pthread_attr_destroy(&attr);
    if (rc != 0) {
        atomic_fetch_sub(&active_exports, 1);
        export_free(e);
        tg_admin_fail(a, 503, NULL, "export_unavailable", "Cannot start the export; try again.");
        tg_admin_finish(a);
        return;
    }
    if (e->conn != NULL)
        tg_conn_set_owner(e->conn, &export_ops, e);
    else
        consumer_release(e);
    a->conn = NULL; /* the export owns the reply now */
    tg_admin_finish(a);
}
