/* control.c: background duties on their own event loop, never on a serving worker. */
#include "http/control.h"

#include <event2/buffer.h>
#include <event2/event.h>
#include <libpq-fe.h>
#include <openssl/sha.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth/jwt.h"
#include "core/log.h"
#include "http/dbpool.h"
#include "http/identity.h"
#include "http/keyuse.h"
#include "http/worker.h"
#include "quota/redis_async.h"
#include "upstream/upstream.h"

#define FETCH_MAX_BODY (1024 * 1024)

static struct {
    struct tg_worker w; /* the control loop (no listener) */
    pthread_t thread;
    bool running;
    struct tg_redis *pub;
    struct tg_redis *sub;
    char channel[128];
    struct event *jwks_timer, *webhook_timer, *keyuse_timer, *probe_timer;
    struct tg_upstream_target jwks_target;
    char jwks_path[600];
    bool has_jwks_url;
    struct tg_upstream_target hook_target;
    char hook_path[600];
    bool has_webhook;
    bool webhook_busy;
    atomic_int upstream_health;
    char upstream_detail[200];
    pthread_mutex_t detail_mu;
    pthread_mutex_t ready_mu;
    pthread_cond_t ready_cv;
    bool jwks_first_done;
    bool jwks_have_digest;
    unsigned char jwks_digest[SHA256_DIGEST_LENGTH]; /* of the last document installed */
} ctl;

/* ---- invalidation ------------------------------------------------------------------------- */

struct inval {
    struct tg_worker *w;
    char msg[200];
};

static void apply_on_worker(void *arg)
{
    struct inval *iv = arg;
    struct tg_identity_cache *ic = iv->w->ident;
    if (ic != NULL) {
        if (strncmp(iv->msg, "user ", 5) == 0)
            tg_identity_invalidate_user(ic, iv->msg + 5);
        else if (strncmp(iv->msg, "key ", 4) == 0)
            tg_identity_invalidate_key(ic, iv->msg + 4);
        else
            tg_identity_cache_flush(ic);
    }
    free(iv);
}

void tg_control_apply_invalidation(const char *msg, size_t len)
{
    if (len >= sizeof(((struct inval *)0)->msg))
        len = sizeof(((struct inval *)0)->msg) - 1;
    for (int i = 0; i < tg_app->nworkers; i++) {
        struct inval *iv = calloc(1, sizeof(*iv));
        if (iv == NULL)
            continue;
        iv->w = &tg_app->workers[i];
        memcpy(iv->msg, msg, len);
        iv->msg[len] = '\0';
        if (tg_worker_post(iv->w, apply_on_worker, iv) != 0)
            free(iv);
    }
}

static void publish_done(void *arg, const redisReply *reply, enum tg_redis_status st)
{
    char *msg = arg;
    if (st != TG_REDIS_OK || reply == NULL || reply->type == REDIS_REPLY_ERROR)
        tg_log(TG_LOG_WARN,
               "invalidation '%s' not published (%s): other instances see it when their "
               "caches expire (AUTH_CACHE_TTL_S)",
               msg, tg_redis_status_name(st));
    free(msg);
}

static void publish_on_control(void *arg)
{
    char *msg = arg;
    if (ctl.pub == NULL ||
        tg_redis_command(ctl.pub, publish_done, msg, "PUBLISH %s %s", ctl.channel, msg) != 0)
        publish_done(msg, NULL, TG_REDIS_NOT_CONNECTED);
}

void tg_control_invalidate(const char *msg)
{
    tg_control_apply_invalidation(msg, strlen(msg));
    char *copy = strdup(msg);
    if (copy == NULL)
        return;
    if (!ctl.running || tg_worker_post(&ctl.w, publish_on_control, copy) != 0)
        free(copy);
}

static void on_inval_message(void *arg, const char *payload, size_t len)
{
    (void)arg;
    tg_control_apply_invalidation(payload, len);
}

static void on_subscribed(void *arg)
{
    (void)arg;
    /* (re)subscribed: messages may have been missed while we were away */
    tg_control_apply_invalidation("all", 3);
}

/* ---- small HTTP fetches on the control loop ------------------------------------------------- */

struct fetch {
    struct tg_uconn *up;
    struct evbuffer *req;
    struct evbuffer *body;
    int status;
    void (*done)(struct fetch *f, bool ok, const char *detail);
    void *arg;
};

static void f_head(void *arg, const struct tg_http_response_head *h)
{
    struct fetch *f = arg;
    f->status = h->status;
}

static void f_data(void *arg, struct evbuffer *data)
{
    struct fetch *f = arg;
    size_t n = evbuffer_get_length(data);
    if (evbuffer_get_length(f->body) + n <= FETCH_MAX_BODY)
        evbuffer_add_buffer(f->body, data);
    else
        evbuffer_drain(data, n);
}

static void f_free(struct fetch *f)
{
    evbuffer_free(f->req);
    evbuffer_free(f->body);
    free(f);
}

static void f_end(void *arg)
{
    struct fetch *f = arg;
    f->up = NULL;
    f->done(f, true, "");
    f_free(f);
}

static void f_error(void *arg, enum tg_up_err_kind kind, const char *detail)
{
    (void)kind;
    struct fetch *f = arg;
    f->up = NULL;
    f->done(f, false, detail);
    f_free(f);
}

static const struct tg_up_cbs fetch_cbs = {f_head, f_data, f_end, f_error};

static int fetch_start(const struct tg_upstream_target *t, const char *method, const char *path,
                       const char *extra_headers, const char *body, size_t body_len,
                       void (*done)(struct fetch *, bool, const char *), void *arg)
{
    struct fetch *f = calloc(1, sizeof(*f));
    if (f == NULL)
        return -1;
    f->req = evbuffer_new();
    f->body = evbuffer_new();
    f->done = done;
    f->arg = arg;
    evbuffer_add_printf(f->req,
                        "%s %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: tollgate\r\n"
                        "Accept-Encoding: identity\r\n%sContent-Length: %zu\r\n\r\n",
                        method, path[0] ? path : "/", t->host_header,
                        extra_headers ? extra_headers : "", body_len);
    if (body_len > 0)
        evbuffer_add(f->req, body, body_len);
    struct tg_up_timeouts to = {
        .connect_ms = 5000, .first_byte_ms = 10000, .idle_ms = 10000, .total_ms = 30000};
    f->up = tg_upstream_start(ctl.w.pool, t, f->req, &to, &fetch_cbs, f);
    if (f->up == NULL) {
        f_free(f);
        return -1;
    }
    return 0;
}

/* ---- JWKS ------------------------------------------------------------------------------------ */

static void schedule(struct event *ev, int seconds)
{
    struct timeval tv = {seconds, 0};
    event_add(ev, &tv);
}

static void jwks_signal_first(void)
{
    pthread_mutex_lock(&ctl.ready_mu);
    ctl.jwks_first_done = true;
    pthread_cond_broadcast(&ctl.ready_cv);
    pthread_mutex_unlock(&ctl.ready_mu);
}

/* Builds a new key snapshot from the configured secret/PEM plus this JWKS and swaps it in. */
int tg_app_install_jwks(const char *jwks, size_t len, char *err, size_t errlen);

static void jwks_done(struct fetch *f, bool ok, const char *detail)
{
    if (!ok || f->status != 200) {
        tg_log(TG_LOG_WARN, "JWT_JWKS_URL: refresh failed (%s); keeping the last good keys",
               ok ? "HTTP status not 200" : detail);
    } else {
        size_t n = evbuffer_get_length(f->body);
        const char *p = (const char *)evbuffer_pullup(f->body, (ssize_t)n);
        char err[300];
        unsigned char d[SHA256_DIGEST_LENGTH];
        SHA256((const unsigned char *)(p ? p : ""), n, d);
        if (ctl.jwks_have_digest && memcmp(d, ctl.jwks_digest, sizeof(d)) == 0) {
            /* unchanged: keep the keys and the verified-token caches as they are */
        } else if (tg_app_install_jwks(p ? p : "", n, err, sizeof(err)) != 0) {
            tg_log(TG_LOG_WARN, "JWT_JWKS_URL: %s; keeping the last good keys", err);
        } else {
            memcpy(ctl.jwks_digest, d, sizeof(d));
            ctl.jwks_have_digest = true;
            tg_control_apply_invalidation("jwt", 3);
        }
    }
    jwks_signal_first();
    schedule(ctl.jwks_timer, tg_app->cfg.jwt_jwks_refresh_s);
}

static void jwks_tick(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    (void)arg;
    if (fetch_start(&ctl.jwks_target, "GET", ctl.jwks_path, "Accept: application/json\r\n", NULL, 0,
                    jwks_done, NULL) != 0) {
        jwks_signal_first();
        schedule(ctl.jwks_timer, tg_app->cfg.jwt_jwks_refresh_s);
    }
}

/* ---- webhooks -------------------------------------------------------------------------------- */

struct hook_batch {
    int n, next;
    char ids[16][400];
    char *payloads[16];
    int attempts[16];
    int status[16];
    char error[16][200];
    bool delivered[16];
};

static void hook_deliver_next(struct hook_batch *b);

static void hook_mark_work(PGconn *conn, void *arg)
{
    struct hook_batch *b = arg;
    for (int i = 0; i < b->n && conn != NULL; i++) {
        PGresult *res;
        if (b->delivered[i]) {
            const char *p[1] = {b->ids[i]};
            res = tg_db_exec(conn,
                             "UPDATE webhook_outbox SET delivered_at = now(), last_error = NULL "
                             "WHERE id = $1",
                             1, p);
        } else {
            char backoff[16];
            int secs = 1 << (b->attempts[i] < 8 ? b->attempts[i] : 8);
            snprintf(backoff, sizeof(backoff), "%d", secs > 300 ? 300 : secs);
            const char *p[3] = {b->ids[i], backoff, b->error[i]};
            res = tg_db_exec(conn,
                             "UPDATE webhook_outbox SET next_attempt_at = now() + $2::int * "
                             "interval '1 second', last_error = $3 WHERE id = $1",
                             3, p);
        }
        if (res != NULL)
            PQclear(res);
    }
}

static void hook_mark_done(void *arg)
{
    struct hook_batch *b = arg;
    int delivered = 0;
    for (int i = 0; i < b->n; i++) {
        delivered += b->delivered[i];
        free(b->payloads[i]);
    }
    free(b);
    ctl.webhook_busy = false;
    /* more may be waiting */
    schedule(ctl.webhook_timer, delivered > 0 ? 0 : 1);
}

static void hook_sent(struct fetch *f, bool ok, const char *detail)
{
    struct hook_batch *b = f->arg;
    int i = b->next;
    b->delivered[i] = ok && f->status >= 200 && f->status < 300;
    if (!b->delivered[i])
        snprintf(b->error[i], sizeof(b->error[i]), "%s",
                 ok ? "receiver answered with an error status" : detail);
    if (ok && !b->delivered[i])
        snprintf(b->error[i], sizeof(b->error[i]), "HTTP %d", f->status);
    tg_log(b->delivered[i] ? TG_LOG_INFO : TG_LOG_WARN, "webhook %s: %s", b->ids[i],
           b->delivered[i] ? "delivered" : b->error[i]);
    b->next++;
    hook_deliver_next(b);
}

static void hook_deliver_next(struct hook_batch *b)
{
    while (b->next < b->n) {
        int i = b->next;
        char hdr[600];
        snprintf(hdr, sizeof(hdr), "Content-Type: application/json\r\nIdempotency-Key: %s\r\n",
                 b->ids[i]);
        if (fetch_start(&ctl.hook_target, "POST", ctl.hook_path, hdr, b->payloads[i],
                        strlen(b->payloads[i]), hook_sent, b) == 0)
            return;
        snprintf(b->error[i], sizeof(b->error[i]), "cannot start the request");
        b->next++;
    }
    if (tg_dbpool_submit(tg_app->db, &ctl.w, hook_mark_work, hook_mark_done, b) != 0)
        hook_mark_done(b);
}

static void hook_claim_work(PGconn *conn, void *arg)
{
    struct hook_batch *b = arg;
    if (conn == NULL)
        return;
    PGresult *res = tg_db_exec(
        conn,
        "UPDATE webhook_outbox o SET next_attempt_at = now() + interval '60 seconds', "
        "attempts = o.attempts + 1 "
        "WHERE o.id IN (SELECT id FROM webhook_outbox WHERE delivered_at IS NULL "
        "AND next_attempt_at <= now() ORDER BY created_at LIMIT 16 FOR UPDATE SKIP LOCKED) "
        "RETURNING o.id, o.payload::text, o.attempts",
        0, NULL);
    if (res == NULL)
        return;
    for (int i = 0; i < PQntuples(res) && b->n < 16; i++) {
        snprintf(b->ids[b->n], sizeof(b->ids[b->n]), "%s", PQgetvalue(res, i, 0));
        b->payloads[b->n] = strdup(PQgetvalue(res, i, 1));
        b->attempts[b->n] = atoi(PQgetvalue(res, i, 2));
        if (b->payloads[b->n] != NULL)
            b->n++;
    }
    PQclear(res);
}

static void hook_claim_done(void *arg)
{
    struct hook_batch *b = arg;
    if (b->n == 0) {
        free(b);
        ctl.webhook_busy = false;
        schedule(ctl.webhook_timer, 1);
        return;
    }
    hook_deliver_next(b);
}

static void webhook_tick(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    (void)arg;
    if (ctl.webhook_busy)
        return;
    struct hook_batch *b = calloc(1, sizeof(*b));
    if (b == NULL) {
        schedule(ctl.webhook_timer, 1);
        return;
    }
    ctl.webhook_busy = true;
    if (tg_dbpool_submit(tg_app->db, &ctl.w, hook_claim_work, hook_claim_done, b) != 0) {
        free(b);
        ctl.webhook_busy = false;
        schedule(ctl.webhook_timer, 1);
    }
}

static void kick_on_control(void *arg)
{
    (void)arg;
    if (ctl.has_webhook && !ctl.webhook_busy)
        schedule(ctl.webhook_timer, 0);
}

void tg_control_kick_webhooks(void)
{
    if (ctl.running)
        (void)!tg_worker_post(&ctl.w, kick_on_control, NULL);
}

/* ---- key use, upstream probe ----------------------------------------------------------------- */

static void keyuse_work(PGconn *conn, void *arg)
{
    (void)arg;
    if (conn != NULL)
        tg_keyuse_flush(conn);
}

static void keyuse_tick(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    (void)arg;
    (void)!tg_dbpool_submit(tg_app->db, NULL, keyuse_work, NULL, NULL);
    schedule(ctl.keyuse_timer, 10);
}

static void probe_done(struct fetch *f, bool ok, const char *detail)
{
    (void)f;
    atomic_store(&ctl.upstream_health, ok ? 1 : 0);
    pthread_mutex_lock(&ctl.detail_mu);
    snprintf(ctl.upstream_detail, sizeof(ctl.upstream_detail), "%s", ok ? "" : detail);
    pthread_mutex_unlock(&ctl.detail_mu);
    schedule(ctl.probe_timer, 5);
}

static void probe_tick(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    (void)arg;
    const struct tg_upstream_target *t = tg_app_upstream_target();
    char path[600];
    snprintf(path, sizeof(path), "%s/health/liveliness", t->url.path);
    if (fetch_start(t, "GET", path, NULL, NULL, 0, probe_done, NULL) != 0)
        schedule(ctl.probe_timer, 5);
}

int tg_control_upstream_health(char *detail, size_t cap)
{
    pthread_mutex_lock(&ctl.detail_mu);
    snprintf(detail, cap, "%s", ctl.upstream_detail);
    pthread_mutex_unlock(&ctl.detail_mu);
    return atomic_load(&ctl.upstream_health);
}

/* ---- life cycle ------------------------------------------------------------------------------ */

static void *control_main(void *arg)
{
    (void)arg;
    tg_worker_set_current(&ctl.w);
    event_base_dispatch(ctl.w.base);
    return NULL;
}

static int url_target(const char *raw, struct tg_upstream_target *t, char *path, size_t pcap,
                      const char *name, char *err, size_t errlen)
{
    struct tg_url u;
    char e[300];
    if (tg_config_parse_url(raw, &u, e, sizeof(e)) != 0) {
        snprintf(err, errlen, "%s: %s", name, e);
        return -1;
    }
    void *ssl = NULL;
    if (u.is_https) {
        ssl = u.is_https ? tg_upstream_ssl_ctx_create(NULL, e, sizeof(e)) : NULL;
        if (ssl == NULL) {
            snprintf(err, errlen, "%s: %s", name, e);
            return -1;
        }
    }
    if (tg_upstream_target_init(t, &u, ssl, e, sizeof(e)) != 0) {
        snprintf(err, errlen, "%s: %s", name, e);
        return -1;
    }
    snprintf(path, pcap, "%s", u.path[0] ? u.path : "/");
    return 0;
}

int tg_control_start(int wait_jwks_ms, char *err, size_t errlen)
{
    const struct tg_config *cfg = &tg_app->cfg;
    pthread_mutex_init(&ctl.detail_mu, NULL);
    pthread_mutex_init(&ctl.ready_mu, NULL);
    pthread_cond_init(&ctl.ready_cv, NULL);
    atomic_init(&ctl.upstream_health, -1);
    if (tg_worker_init(&ctl.w, -1) != 0) {
        snprintf(err, errlen, "cannot create the control loop");
        return -1;
    }
    ctl.w.pool = tg_upstream_pool_create(ctl.w.base, 4, 4, NULL);
    snprintf(ctl.channel, sizeof(ctl.channel), "%sinvalidate", cfg->redis_key_prefix);
    struct tg_redis_opts ro = {
        .host = cfg->redis.host,
        .port = cfg->redis.port,
        .password = cfg->redis.password,
        .db = cfg->redis.db,
        .timeout_ms = cfg->redis_timeout_ms < 1000 ? 1000 : cfg->redis_timeout_ms,
    };
    ctl.pub = tg_redis_create(ctl.w.base, &ro);
    ctl.sub =
        tg_redis_subscribe(ctl.w.base, &ro, ctl.channel, on_inval_message, on_subscribed, NULL);
    if (ctl.pub == NULL || ctl.sub == NULL || ctl.w.pool == NULL) {
        snprintf(err, errlen, "REDIS_URL: cannot create the control connections");
        return -1;
    }
    ctl.jwks_timer = evtimer_new(ctl.w.base, jwks_tick, NULL);
    ctl.webhook_timer = evtimer_new(ctl.w.base, webhook_tick, NULL);
    ctl.keyuse_timer = evtimer_new(ctl.w.base, keyuse_tick, NULL);
    ctl.probe_timer = evtimer_new(ctl.w.base, probe_tick, NULL);
    if (cfg->jwt_jwks_url_raw[0]) {
        if (url_target(cfg->jwt_jwks_url_raw, &ctl.jwks_target, ctl.jwks_path,
                       sizeof(ctl.jwks_path), "JWT_JWKS_URL", err, errlen) != 0)
            return -1;
        ctl.has_jwks_url = true;
        schedule(ctl.jwks_timer, 0);
    }
    if (cfg->alert_webhook_url_raw[0]) {
        if (url_target(cfg->alert_webhook_url_raw, &ctl.hook_target, ctl.hook_path,
                       sizeof(ctl.hook_path), "ALERT_WEBHOOK_URL", err, errlen) != 0)
            return -1;
        ctl.has_webhook = true;
        schedule(ctl.webhook_timer, 1);
    }
    schedule(ctl.keyuse_timer, 10);
    schedule(ctl.probe_timer, 0);
    if (pthread_create(&ctl.thread, NULL, control_main, NULL) != 0) {
        snprintf(err, errlen, "cannot start the control thread");
        return -1;
    }
    pthread_setname_np(ctl.thread, "tg-control");
    ctl.running = true;
    if (ctl.has_jwks_url && wait_jwks_ms > 0) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_sec += wait_jwks_ms / 1000;
        pthread_mutex_lock(&ctl.ready_mu);
        while (!ctl.jwks_first_done)
            if (pthread_cond_timedwait(&ctl.ready_cv, &ctl.ready_mu, &ts) != 0)
                break;
        pthread_mutex_unlock(&ctl.ready_mu);
    }
    return 0;
}

static void stop_on_control(void *arg)
{
    (void)arg;
    event_base_loopbreak(ctl.w.base);
}

void tg_control_stop(void)
{
    if (!ctl.running)
        return;
    (void)!tg_worker_post(&ctl.w, stop_on_control, NULL);
    pthread_join(ctl.thread, NULL);
    ctl.running = false;
    /* the last batch of last_used_at: one short-lived connection (shutdown may block) */
    if (!tg_keyuse_pending())
        return;
    const char *keys[] = {"dbname", "connect_timeout", NULL};
    const char *vals[] = {tg_app->cfg.database_url, "3", NULL};
    PGconn *conn = PQconnectdbParams(keys, vals, 1);
    tg_keyuse_flush(conn != NULL && PQstatus(conn) == CONNECTION_OK ? conn : NULL);
    PQfinish(conn);
}
