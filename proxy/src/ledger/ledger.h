/* ledger.h: the ledger writer: per-worker rings -> ledger thread -> PostgreSQL, spool when away. */
#ifndef TG_LEDGER_H
#define TG_LEDGER_H

#include "core/common.h"
#include "ledger/ledger_row.h"

#define TG_LEDGER_DEFAULT_BATCH_ROWS 2000
#define TG_LEDGER_DEFAULT_FLUSH_MS   20
#define TG_LEDGER_DEFAULT_RETRY_MS   1000
#define TG_LEDGER_DEFAULT_QUERY_MS   30000
#define TG_LEDGER_MAX_PRODUCERS      256

struct tg_ledger_config {
    const char *conninfo;       /* libpq connection string or URI (copied) */
    const char *spool_dir;      /* rings, spool segments, rejected-<date>.log (copied) */
    unsigned producers;         /* workers: ring-0.bin .. ring-<producers-1>.bin; 1..256 */
    size_t ring_bytes;          /* record space per ring, rounded up to 4 KiB; 0 = 8 MiB */
    unsigned batch_max_rows;    /* rows per PostgreSQL transaction; 0 = 2000 */
    unsigned flush_interval_ms; /* longest wait of a row for a fuller batch; 0 = 20 */
    unsigned retry_interval_ms; /* reconnect period while PostgreSQL is away; 0 = 1000 */
    unsigned query_timeout_ms;  /* a statement without an answer this long = connection lost;
                                   0 = 30000 */
    size_t spool_segment_bytes; /* spool file rollover size; 0 = 64 MiB */
};

struct tg_ledger;

/* Counters since tg_ledger_create, for /metrics and /readyz. */
struct tg_ledger_stats {
    uint64_t appended;     /* rows taken by tg_ledger_append (ring or overflow) */
    uint64_t committed;    /* rows inserted into PostgreSQL (direct or replayed) */
    uint64_t spooled;      /* rows written to spool files while PostgreSQL was away */
    uint64_t replayed;     /* spooled rows read back and settled in PostgreSQL */
    uint64_t duplicates;   /* rows PostgreSQL already had (ON CONFLICT DO NOTHING) */
    uint64_t unpriced;     /* inserted rows whose cost_usd is NULL (model without a price) */
    uint64_t torn_records; /* torn or corrupt records found in rings and spool files */
    uint64_t overflow;     /* appends that found their ring full and went to memory */
    uint64_t recovered;    /* ring records left pending by the previous process */
    uint64_t rejected;     /* rows PostgreSQL refused (CHECK, ...): in rejected-<date>.log */
    uint64_t invalid;      /* appends refused by tg_ledger_row_check */
    uint64_t batches;      /* transactions committed */
    uint64_t queue_depth;  /* rows in rings, overflow and the current batch */
    uint64_t spool_bytes;  /* bytes in spool files not yet replayed */
    uint64_t spool_files;
    uint64_t commit_us_last; /* duration of the last committed batch (COPY + INSERT + COMMIT) */
    uint64_t commit_us_max;
    uint64_t commit_us_sum; /* over `batches`, for an average */
    bool pg_up;             /* the last PostgreSQL operation succeeded */
    int64_t last_commit_ms; /* unix ms of the last commit, 0 = none */
    char last_error[256];   /* last PostgreSQL or spool error, "" = none */
};

/* Opens (creating as needed) the spool directory with its exclusive lock, one ring file
 * per producer and the spool segments; rows left by a previous process (pending ring
 * records, spool segments) are queued for PostgreSQL. Does not connect to PostgreSQL.
 * Returns the ledger (owned; tg_ledger_destroy), or NULL with err set (the spool directory
 * is locked by another process, a file cannot be created, a bad config value). */
TG_MUST_CHECK struct tg_ledger *tg_ledger_create(const struct tg_ledger_config *cfg, char *err,
                                                 size_t errlen);

/* Starts the ledger thread. Returns 0, or -1 (thread creation failed, or already started). */
TG_MUST_CHECK int tg_ledger_start(struct tg_ledger *l);

/* Queues a finished request's row. Only the thread that owns index `producer` may call it
 * with that index. Wait-free when the ring has room (a memcpy into the mapped ring file: the
 * row survives kill -9 from here on); when the ring is full the row goes to an in-memory
 * overflow list (malloc) so it is never dropped. Returns 0, or -1 when the row fails
 * tg_ledger_row_check (counted as `invalid`), producer is out of range, the ledger is
 * stopped, or malloc failed for an overflow row. */
TG_MUST_CHECK int tg_ledger_append(struct tg_ledger *l, unsigned producer,
                                   const struct tg_ledger_row *row);

/* Calls fn(conn, arg) exactly once on the ledger thread: with the thread's PGconn * once
 * every row appended (by any producer) before this call is committed in PostgreSQL and the
 * spool is empty, or with conn NULL when PostgreSQL is unreachable at that point or the
 * ledger stops first. fn may run queries on conn (outside any transaction) and must not
 * close it or call tg_ledger_* functions other than tg_ledger_get_stats. Any thread; before
 * tg_ledger_start too. Returns 0, or -1 (malloc failed or stopped; fn is not called). */
TG_MUST_CHECK int tg_ledger_run_after_flush(struct tg_ledger *l, void (*fn)(void *conn, void *arg),
                                            void *arg);

/* Flushes every queued row to PostgreSQL, or to the spool when PostgreSQL does not take them
 * within timeout_ms, calls the pending run_after_flush callbacks, and joins the thread.
 * Producers must have stopped appending. Idempotent; also fine if never started (rows then
 * stay in the ring files for the next process). */
void tg_ledger_stop(struct tg_ledger *l, int timeout_ms);

/* Stops (with a 5 s timeout) if still running, then frees everything (NULL-safe). */
void tg_ledger_destroy(struct tg_ledger *l);

/* A consistent-enough snapshot of the counters; any thread. */
void tg_ledger_get_stats(struct tg_ledger *l, struct tg_ledger_stats *out);

#endif
