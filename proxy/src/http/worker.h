/* worker.h: the process (struct tg_app) and its event-loop threads (struct tg_worker). */
#ifndef TG_WORKER_H
#define TG_WORKER_H

#include <pthread.h>
#include <stdatomic.h>
#include <sys/queue.h>

#include "core/config.h"
#include "core/uuid7.h"
#include "http/metrics.h"
#include "http/server.h"

struct event_base;
struct evconnlistener;
struct tg_upstream_pool;
struct tg_redis;
struct tg_ledger;
struct tg_dbpool;
struct tg_identity_cache;
struct tg_tz;
struct tg_jwt_keys;
struct tg_request;
struct tg_upstream_target;

/* A function run later on a worker's loop (cross-thread hand-off). */
struct tg_post {
    void (*fn)(void *arg);
    void *arg;
    struct tg_post *next;
};

struct tg_worker {
    int idx;
    pthread_t thread;
    struct event_base *base;
    struct evconnlistener *listener;
    TAILQ_HEAD(, tg_conn) conns; /* every open client connection */
    int nconns;
    bool accepting;

    struct tg_uuid7_gen ids; /* request ids made on this thread */
    struct tg_metrics metrics;

    struct tg_upstream_pool *pool;   /* keep-alive upstream connections */
    struct tg_redis *redis;          /* quota scripts (pipelined) */
    struct tg_identity_cache *ident; /* verified credentials and user records */
    int drains_active;               /* streams being drained after their client left */
    atomic_int_fast64_t inflight;    /* requests between head and release (read at shutdown) */

    /* cross-thread posts (db pool, ledger, control thread) */
    pthread_mutex_t post_mu;
    struct tg_post *post_head, *post_tail;
    struct event *post_ev;
    struct event *stop_ev;
};

struct tg_app {
    struct tg_config cfg;
    const struct tg_tz *tz;
    int period; /* enum tg_period */
    struct tg_worker *workers;
    int nworkers;
    struct tg_ledger *ledger;
    struct tg_dbpool *db;
    _Atomic(struct tg_jwt_keys *) jwt_keys; /* current snapshot; swapped on JWKS refresh */
    pthread_mutex_t jwt_keys_mu;            /* serialises ref-taking against swaps */
    atomic_bool stopping;
    atomic_int_fast64_t started_ms;
    void *ssl_ctx;       /* SSL_CTX for an https upstream, NULL for http */
    void *upstream_addr; /* struct tg_upstream_addr (atomic swap by the control thread) */
    atomic_uint_fast64_t config_generation; /* bumped by invalidations (quota/user/key changes) */
    char schema_dir[1024];
    char dashboard_dir[1024];
};

extern struct tg_app *tg_app;

/* Sets up / tears down a worker's loop and post queue (no listener yet). */
TG_MUST_CHECK int tg_worker_init(struct tg_worker *w, int idx);
void tg_worker_cleanup(struct tg_worker *w);
void tg_worker_set_current(struct tg_worker *w);

/* The upstream gateway as resolved at start-up (or last re-resolved). */
const struct tg_upstream_target *tg_app_upstream_target(void);

/* Runs fn(arg) on worker w's loop soon. Thread-safe. Returns 0 or -1 (allocation). */
TG_MUST_CHECK int tg_worker_post(struct tg_worker *w, void (*fn)(void *), void *arg);
/* The worker whose loop is running on this thread, or NULL. */
struct tg_worker *tg_worker_current(void);
/* Current time in ms (CLOCK_REALTIME) and monotonic ms. */
int64_t tg_now_ms(void);
int64_t tg_now_us(void);
int64_t tg_mono_ms(void);

#endif
