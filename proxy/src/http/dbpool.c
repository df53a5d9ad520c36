/* dbpool.c: a few threads with blocking libpq connections and a bounded job queue. */
#include "http/dbpool.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "http/worker.h"

#define MAX_QUEUED 20000

struct job {
    struct tg_worker *w;
    tg_db_work_fn work;
    tg_db_done_fn done;
    void *arg;
    struct job *next;
};

struct tg_dbpool {
    char *conninfo;
    int n;
    pthread_t *threads;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    struct job *head, *tail;
    int queued;
    bool stopping;
    atomic_bool up;
};

static PGconn *db_connect(struct tg_dbpool *p)
{
    const char *keys[] = {"dbname", "connect_timeout", "application_name", NULL};
    const char *vals[] = {p->conninfo, "3", "tollgate", NULL};
    PGconn *c = PQconnectdbParams(keys, vals, 1);
    if (PQstatus(c) != CONNECTION_OK) {
        tg_log(TG_LOG_WARN, "database: cannot connect: %s", PQerrorMessage(c));
        PQfinish(c);
        atomic_store(&p->up, false);
        return NULL;
    }
    atomic_store(&p->up, true);
    return c;
}

static void run_done(void *arg)
{
    struct job *j = arg;
    if (j->done != NULL)
        j->done(j->arg);
    free(j);
}

static void *pool_main(void *arg)
{
    struct tg_dbpool *p = arg;
    PGconn *conn = NULL;
    for (;;) {
        pthread_mutex_lock(&p->mu);
        while (p->head == NULL && !p->stopping)
            pthread_cond_wait(&p->cv, &p->mu);
        if (p->head == NULL && p->stopping) {
            pthread_mutex_unlock(&p->mu);
            break;
        }
        struct job *j = p->head;
        p->head = j->next;
        if (p->head == NULL)
            p->tail = NULL;
        p->queued--;
        pthread_mutex_unlock(&p->mu);

        if (conn != NULL && PQstatus(conn) != CONNECTION_OK) {
            PQfinish(conn);
            conn = NULL;
        }
        if (conn == NULL)
            conn = db_connect(p);
        j->work(conn, j->arg);
        if (conn != NULL && PQstatus(conn) != CONNECTION_OK) {
            atomic_store(&p->up, false);
            PQfinish(conn);
            conn = NULL;
        }
        if (j->w == NULL || tg_worker_post(j->w, run_done, j) != 0)
            run_done(j);
    }
    if (conn != NULL)
        PQfinish(conn);
    return NULL;
}

struct tg_dbpool *tg_dbpool_create(const char *conninfo, int n, char *err, size_t errlen)
{
    struct tg_dbpool *p = calloc(1, sizeof(*p));
    if (p == NULL || (p->conninfo = strdup(conninfo)) == NULL) {
        free(p);
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    p->n = n;
    p->threads = calloc((size_t)n, sizeof(pthread_t));
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->cv, NULL);
    atomic_init(&p->up, true);
    for (int i = 0; i < n; i++) {
        if (pthread_create(&p->threads[i], NULL, pool_main, p) != 0) {
            snprintf(err, errlen, "cannot start database threads");
            p->n = i;
            tg_dbpool_destroy(p);
            return NULL;
        }
    }
    return p;
}

int tg_dbpool_submit(struct tg_dbpool *p, struct tg_worker *w, tg_db_work_fn work,
                     tg_db_done_fn done, void *arg)
{
    struct job *j = malloc(sizeof(*j));
    if (j == NULL)
        return -1;
    j->w = w;
    j->work = work;
    j->done = done;
    j->arg = arg;
    j->next = NULL;
    pthread_mutex_lock(&p->mu);
    if (p->queued >= MAX_QUEUED || p->stopping) {
        pthread_mutex_unlock(&p->mu);
        free(j);
        return -1;
    }
    if (p->tail)
        p->tail->next = j;
    else
        p->head = j;
    p->tail = j;
    p->queued++;
    pthread_cond_signal(&p->cv);
    pthread_mutex_unlock(&p->mu);
    return 0;
}

void tg_dbpool_destroy(struct tg_dbpool *p)
{
    if (p == NULL)
        return;
    pthread_mutex_lock(&p->mu);
    p->stopping = true;
    pthread_cond_broadcast(&p->cv);
    pthread_mutex_unlock(&p->mu);
    for (int i = 0; i < p->n; i++)
        pthread_join(p->threads[i], NULL);
    free(p->threads);
    free(p->conninfo);
    pthread_mutex_destroy(&p->mu);
    pthread_cond_destroy(&p->cv);
    free(p);
}

bool tg_dbpool_is_up(struct tg_dbpool *p)
{
    return atomic_load(&p->up);
}

PGresult *tg_db_exec(PGconn *conn, const char *sql, int nparams, const char *const *params)
{
    if (conn == NULL)
        return NULL;
    PGresult *res = PQexecParams(conn, sql, nparams, NULL, params, NULL, NULL, 0);
    ExecStatusType st = PQresultStatus(res);
    if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
        tg_log(TG_LOG_WARN, "database: %s", PQresultErrorMessage(res));
        PQclear(res);
        return NULL;
    }
    return res;
}
