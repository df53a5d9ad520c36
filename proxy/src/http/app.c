/* app.c: start-up checks, wiring of every part, the signal loop and the graceful stop. */
#include "http/app.h"

#include <errno.h>
#include <event2/event.h>
#include <event2/thread.h>
#include <openssl/ssl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "auth/jwt.h"
#include "core/log.h"
#include "http/control.h"
#include "http/dbpool.h"
#include "http/identity.h"
#include "http/keyuse.h"
#include "http/req_quota.h"
#include "http/worker.h"
#include "ledger/ledger.h"
#include "quota/quota_math.h"
#include "quota/redis_async.h"
#include "quota/tz.h"
#include "upstream/upstream.h"

static struct tg_upstream_target upstream_target;

const struct tg_upstream_target *tg_app_upstream_target(void)
{
    return &upstream_target;
}

static char *read_file(const char *path, size_t max, size_t *len, char *err, size_t errlen,
                       const char *var)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        snprintf(err, errlen, "%s: cannot read %s: %s", var, path, strerror(errno));
        return NULL;
    }
    char *buf = malloc(max + 1);
    size_t n = buf ? fread(buf, 1, max + 1, f) : 0;
    fclose(f);
    if (buf == NULL || n > max) {
        free(buf);
        snprintf(err, errlen, "%s: %s is too large", var, path);
        return NULL;
    }
    buf[n] = '\0';
    *len = n;
    return buf;
}

/* The static part of the key set: JWT_SECRET and JWT_PUBLIC_KEY_FILE. */
static struct tg_jwt_keys *base_keys(char *err, size_t errlen)
{
    const struct tg_config *cfg = &tg_app->cfg;
    char *pem = NULL;
    size_t pem_len = 0;
    if (cfg->jwt_public_key_file[0]) {
        pem = read_file(cfg->jwt_public_key_file, 65536, &pem_len, err, errlen,
                        "JWT_PUBLIC_KEY_FILE");
        if (pem == NULL)
            return NULL;
    }
    char kerr[300] = "";
    struct tg_jwt_keys *k =
        tg_jwt_keys_create(cfg->jwt_secret[0] ? cfg->jwt_secret : NULL, strlen(cfg->jwt_secret),
                           pem, pem_len, kerr, sizeof(kerr));
    free(pem);
    if (k == NULL)
        snprintf(err, errlen, "%s: %s",
                 cfg->jwt_public_key_file[0] ? "JWT_PUBLIC_KEY_FILE" : "JWT_SECRET", kerr);
    return k;
}

static void swap_keys(struct tg_jwt_keys *k)
{
    pthread_mutex_lock(&tg_app->jwt_keys_mu);
    struct tg_jwt_keys *old = atomic_exchange(&tg_app->jwt_keys, k);
    pthread_mutex_unlock(&tg_app->jwt_keys_mu);
    tg_jwt_keys_unref(old);
}

int tg_app_install_jwks(const char *jwks, size_t len, char *err, size_t errlen)
{
    struct tg_jwt_keys *k = base_keys(err, errlen);
    if (k == NULL)
        return -1;
    char jerr[300] = "";
    if (tg_jwt_keys_add_jwks(k, jwks, len, jerr, sizeof(jerr)) != 0) {
        snprintf(err, errlen, "%s", jerr);
        tg_jwt_keys_unref(k);
        return -1;
    }
    if (jerr[0])
        tg_log(TG_LOG_INFO, "JWKS: %s", jerr);
    tg_log(TG_LOG_INFO, "JWKS: %zu keys installed", tg_jwt_keys_jwks_count(k));
    swap_keys(k);
    return 0;
}

static int setup_keys(char *err, size_t errlen)
{
    const struct tg_config *cfg = &tg_app->cfg;
    bool any = cfg->jwt_secret[0] || cfg->jwt_public_key_file[0] || cfg->jwt_jwks_file[0] ||
               cfg->jwt_jwks_url_raw[0];
    if (!any)
        return 0;
    if (cfg->jwt_jwks_file[0]) {
        size_t len;
        char *j = read_file(cfg->jwt_jwks_file, 1 << 20, &len, err, errlen, "JWT_JWKS_FILE");
        if (j == NULL)
            return -1;
        char e[300];
        int rc = tg_app_install_jwks(j, len, e, sizeof(e));
        free(j);
        if (rc != 0) {
            snprintf(err, errlen, "JWT_JWKS_FILE: %s", e);
            return -1;
        }
        return 0;
    }
    struct tg_jwt_keys *k = base_keys(err, errlen);
    if (k == NULL && (cfg->jwt_secret[0] || cfg->jwt_public_key_file[0]))
        return -1;
    if (k != NULL)
        swap_keys(k);
    return 0;
}

static void on_redis_state(void *arg, bool ready)
{
    struct tg_worker *w = arg;
    if (ready)
        tg_req_quota_on_redis_ready(w);
}

static void log_flush_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    (void)arg;
    tg_log_flush_thread();
}

static void log_arm(void *arg)
{
    struct event *ev = arg;
    struct timeval tv = {0, 10000};
    event_add(ev, &tv);
}

static void *worker_main(void *arg)
{
    struct tg_worker *w = arg;
    tg_worker_set_current(w);
    /* request log lines are written in batches, at most 10 ms late */
    struct event *flush = evtimer_new(w->base, log_flush_cb, NULL);
    if (flush != NULL)
        tg_log_set_thread_buffered(log_arm, flush);
    event_base_dispatch(w->base);
    tg_log_set_thread_buffered(NULL, NULL);
    tg_log_flush_thread();
    if (flush != NULL)
        event_free(flush);
    return NULL;
}

static void stop_accepting_cb(void *arg)
{
    tg_server_stop_accepting(arg);
}

static void close_all_cb(void *arg)
{
    struct tg_worker *w = arg;
    tg_server_close_all(w);
    tg_upstream_pool_close_idle(w->pool);
    event_base_loopexit(w->base, NULL);
}

static int64_t busy_total(void)
{
    int64_t n = 0;
    for (int i = 0; i < tg_app->nworkers; i++) {
        struct tg_worker *w = &tg_app->workers[i];
        n += atomic_load(&w->inflight);
        n += atomic_load(&w->metrics.open_conns);
    }
    return n;
}

static int setup_workers(char *err, size_t errlen)
{
    const struct tg_config *cfg = &tg_app->cfg;
    tg_app->workers = calloc((size_t)tg_app->nworkers, sizeof(struct tg_worker));
    if (tg_app->workers == NULL) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    for (int i = 0; i < tg_app->nworkers; i++) {
        struct tg_worker *w = &tg_app->workers[i];
        if (tg_worker_init(w, i) != 0) {
            snprintf(err, errlen, "cannot create event loop %d", i);
            return -1;
        }
        w->pool = tg_upstream_pool_create(w->base, cfg->upstream_pool_size,
                                          cfg->upstream_pool_idle_s, &w->metrics);
        w->ident = tg_identity_cache_create(cfg->auth_cache_entries);
        struct tg_redis_opts ro = {
            .host = cfg->redis.host,
            .port = cfg->redis.port,
            .password = cfg->redis.password,
            .db = cfg->redis.db,
            .timeout_ms = cfg->redis_timeout_ms,
            .on_state = on_redis_state,
            .state_arg = w,
        };
        w->redis = tg_redis_create(w->base, &ro);
        if (w->pool == NULL || w->ident == NULL || w->redis == NULL) {
            snprintf(err, errlen, "cannot set up worker %d", i);
            return -1;
        }
        if (tg_server_listen(w, err, errlen) != 0)
            return -1;
    }
    return 0;
}

int tg_app_run(void)
{
    struct tg_config *cfg = &tg_app->cfg;
    char err[600] = "";
    signal(SIGPIPE, SIG_IGN);
    evthread_use_pthreads();
    tg_log_setup(cfg->log_level, cfg->log_format, 2);
    pthread_mutex_init(&tg_app->jwt_keys_mu, NULL);

    struct tg_tz *tz = tg_tz_load(cfg->quota_timezone, err, sizeof(err));
    if (tz == NULL) {
        fprintf(stderr, "QUOTA_TIMEZONE: %s\n", err);
        return 2;
    }
    tg_app->tz = tz;
    enum tg_period period;
    if (tg_period_parse(cfg->quota_period, &period) != 0) {
        fprintf(stderr, "QUOTA_PERIOD: unknown period %s\n", cfg->quota_period);
        return 2;
    }
    tg_app->period = (int)period;
    if (setup_keys(err, sizeof(err)) != 0) {
        fprintf(stderr, "%s\n", err);
        return 2;
    }
    void *ssl = NULL;
    if (cfg->upstream.is_https) {
        ssl = tg_upstream_ssl_ctx_create(cfg->upstream_ca_file, err, sizeof(err));
        if (ssl == NULL) {
            fprintf(stderr, "UPSTREAM_CA_FILE: %s\n", err);
            return 2;
        }
    }
    tg_app->ssl_ctx = ssl;
    if (tg_upstream_target_init(&upstream_target, &cfg->upstream, ssl, err, sizeof(err)) != 0) {
        fprintf(stderr, "UPSTREAM_URL: %s\n", err);
        return 2;
    }
    tg_app->nworkers = cfg->workers;
    if (tg_server_probe_listen(err, sizeof(err)) != 0) {
        fprintf(stderr, "%s\n", err);
        return 2;
    }
    struct tg_ledger_config lc = {
        .conninfo = cfg->database_url,
        .spool_dir = cfg->ledger_spool_dir,
        .producers = (unsigned)tg_app->nworkers,
        .ring_bytes = (size_t)cfg->ledger_ring_bytes,
        .batch_max_rows = (unsigned)cfg->ledger_batch_rows,
        .flush_interval_ms = (unsigned)cfg->ledger_flush_ms,
    };
    tg_app->ledger = tg_ledger_create(&lc, err, sizeof(err));
    if (tg_app->ledger == NULL) {
        fprintf(stderr, "LEDGER_SPOOL_DIR: %s\n", err);
        return 2;
    }
    tg_app->db = tg_dbpool_create(cfg->database_url, cfg->db_pool_size, err, sizeof(err));
    if (tg_app->db == NULL) {
        fprintf(stderr, "DATABASE_URL: %s\n", err);
        return 2;
    }
    if (setup_workers(err, sizeof(err)) != 0) {
        fprintf(stderr, "%s\n", err);
        return 2;
    }
    if (tg_ledger_start(tg_app->ledger) != 0) {
        fprintf(stderr, "ledger: cannot start its thread\n");
        return 1;
    }
    if (tg_control_start(10000, err, sizeof(err)) != 0) {
        fprintf(stderr, "%s\n", err);
        return 2;
    }

    sigset_t sigs;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGTERM);
    sigaddset(&sigs, SIGINT);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);
    for (int i = 0; i < tg_app->nworkers; i++) {
        if (pthread_create(&tg_app->workers[i].thread, NULL, worker_main, &tg_app->workers[i]) !=
            0) {
            fprintf(stderr, "cannot start worker threads\n");
            return 1;
        }
        char name[16]; /* top and ps -L show which loop is busy */
        snprintf(name, sizeof(name), "tg-worker-%d", i % 1000); /* ≤ 256 workers */
        pthread_setname_np(tg_app->workers[i].thread, name);
    }
    {
        struct tg_logline l;
        tg_logline_begin(&l, TG_LOG_INFO, "tollgate started");
        tg_logline_str(&l, "listen", cfg->listen);
        tg_logline_int(&l, "port", (int64_t)tg_app_listen_port());
        tg_logline_int(&l, "workers", tg_app->nworkers);
        tg_logline_str(&l, "upstream", cfg->upstream_url_raw);
        tg_logline_str(&l, "instance", cfg->instance_id);
        tg_logline_end(&l);
    }

    int sig = 0;
    sigwait(&sigs, &sig);
    atomic_store(&tg_app->stopping, true);
    tg_log(TG_LOG_INFO, "%s: draining (up to %d s)", sig == SIGTERM ? "SIGTERM" : "SIGINT",
           cfg->drain_s);
    for (int i = 0; i < tg_app->nworkers; i++)
        (void)!tg_worker_post(&tg_app->workers[i], stop_accepting_cb, &tg_app->workers[i]);
    int64_t deadline = tg_mono_ms() + (int64_t)cfg->drain_s * 1000;
    while (busy_total() > 0 && tg_mono_ms() < deadline) {
        /* a second signal cuts the drain short */
        struct timespec ts = {0, 20 * 1000000};
        siginfo_t si;
        if (sigtimedwait(&sigs, &si, &ts) > 0)
            break;
    }
    if (busy_total() > 0)
        tg_log(TG_LOG_WARN, "drain time is up: closing %lld connections/requests",
               (long long)busy_total());
    for (int i = 0; i < tg_app->nworkers; i++)
        (void)!tg_worker_post(&tg_app->workers[i], close_all_cb, &tg_app->workers[i]);
    for (int i = 0; i < tg_app->nworkers; i++)
        pthread_join(tg_app->workers[i].thread, NULL);
    tg_control_stop();
    tg_dbpool_destroy(tg_app->db);
    tg_app->db = NULL;
    tg_ledger_stop(tg_app->ledger, 30000);
    struct tg_ledger_stats st;
    tg_ledger_get_stats(tg_app->ledger, &st);
    tg_ledger_destroy(tg_app->ledger);
    tg_app->ledger = NULL;
    for (int i = 0; i < tg_app->nworkers; i++) {
        struct tg_worker *w = &tg_app->workers[i];
        tg_redis_destroy(w->redis);
        tg_upstream_pool_destroy(w->pool);
        tg_identity_cache_destroy(w->ident);
        tg_worker_cleanup(w);
    }
    free(tg_app->workers);
    tg_jwt_keys_unref(atomic_exchange(&tg_app->jwt_keys, NULL));
    if (ssl != NULL)
        SSL_CTX_free(ssl);
    tg_tz_destroy(tz);
    struct tg_logline l;
    tg_logline_begin(&l, TG_LOG_INFO, "tollgate stopped");
    tg_logline_int(&l, "ledger_committed", (int64_t)st.committed);
    tg_logline_int(&l, "ledger_spooled", (int64_t)st.spooled);
    tg_logline_int(&l, "ledger_queue", (int64_t)st.queue_depth);
    tg_logline_end(&l);
    return 0;
}

int tg_app_listen_port(void)
{
    const struct sockaddr_storage *ss = &tg_app->cfg.listen_addr;
    if (ss->ss_family == AF_INET)
        return ntohs(((const struct sockaddr_in *)ss)->sin_port);
    if (ss->ss_family == AF_INET6)
        return ntohs(((const struct sockaddr_in6 *)ss)->sin6_port);
    return 0;
}
