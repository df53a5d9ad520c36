/* dbpool.h: blocking PostgreSQL work off the event loops; completions come back to the
 * submitting worker's loop. */
#ifndef TG_DBPOOL_H
#define TG_DBPOOL_H

#include <libpq-fe.h>

#include "core/common.h"

struct tg_worker;
struct tg_dbpool;

/* work runs on a pool thread with a connection (NULL when PostgreSQL cannot be reached);
 * done then runs on worker w's loop (or on the pool thread when w is NULL). */
typedef void (*tg_db_work_fn)(PGconn *conn, void *arg);
typedef void (*tg_db_done_fn)(void *arg);

/* Starts n threads. Connections are made lazily and remade after failures. */
struct tg_dbpool *tg_dbpool_create(const char *conninfo, int n, char *err, size_t errlen);
/* Queues a job. Returns 0, or -1 when the queue is full (the caller answers 503). */
TG_MUST_CHECK int tg_dbpool_submit(struct tg_dbpool *p, struct tg_worker *w, tg_db_work_fn work,
                                   tg_db_done_fn done, void *arg);
/* Finishes queued jobs, then stops the threads. */
void tg_dbpool_destroy(struct tg_dbpool *p);
/* True when the last connection attempt of any thread succeeded. */
bool tg_dbpool_is_up(struct tg_dbpool *p);

/* Helpers for work functions: run a parameterised statement; returns the PGresult (caller
 * PQclear) or NULL after logging the error. */
PGresult *tg_db_exec(PGconn *conn, const char *sql, int nparams, const char *const *params);

#endif
