/* upstream.c: the HTTP/1.1 client side: connections, pool, TLS, reply framing, time-outs. */
#include "upstream/upstream.h"

#include <arpa/inet.h>
#include <errno.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <netdb.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>

#define MAX_REPLY_HEAD (64 * 1024)

enum u_state { U_IDLE, U_CONNECTING, U_SENDING, U_WAIT_HEAD, U_BODY };
enum u_framing { FR_NONE, FR_LENGTH, FR_CHUNKED, FR_CLOSE };

struct tg_upstream_pool {
    struct event_base *base;
    TAILQ_HEAD(, tg_uconn) idle;
    int nidle;
    int max_idle;
    int idle_s;
    struct tg_metrics *metrics;
};

struct tg_uconn {
    struct tg_upstream_pool *pool;
    struct bufferevent *bev;
    const struct tg_upstream_target *target;
    uint64_t id;
    TAILQ_ENTRY(tg_uconn) link;
    bool in_pool;
    bool is_reused; /* this exchange runs on a connection that served one before */
    int uses;

    /* the exchange */
    const struct tg_up_cbs *cbs;
    void *arg;
    struct evbuffer *request; /* borrowed: the caller keeps it unchanged until the end */
    struct tg_up_timeouts to;
    enum u_state state;
    enum u_framing framing;
    int64_t body_left;
    struct tg_chunked chunked;
    bool keep_alive;
    bool paused;
    bool got_byte;
    bool retried;
    bool is_dead; /* cancelled or failed: free when no callback is running */
    int in_cb;
    struct evbuffer *scratch;
    struct event *timer;       /* connect time-out; pool idle time-out */
    struct event *total_timer; /* whole exchange */
};

#define UPSTREAM_MAX_READ (4096 - 128) /* see u_connect */

static atomic_uint_fast64_t next_conn_id = 1;

static void u_read_cb(struct bufferevent *bev, void *arg);
static void u_write_cb(struct bufferevent *bev, void *arg);
static void u_event_cb(struct bufferevent *bev, short what, void *arg);
static void u_process(struct tg_uconn *u);
static int u_connect(struct tg_uconn *u);

struct tg_upstream_pool *tg_upstream_pool_create(struct event_base *base, int max_idle, int idle_s,
                                                 struct tg_metrics *metrics)
{
    struct tg_upstream_pool *p = calloc(1, sizeof(*p));
    if (p == NULL)
        return NULL;
    p->base = base;
    TAILQ_INIT(&p->idle);
    p->max_idle = max_idle;
    p->idle_s = idle_s;
    p->metrics = metrics;
    return p;
}

static void u_free(struct tg_uconn *u)
{
    if (u->in_pool) {
        TAILQ_REMOVE(&u->pool->idle, u, link);
        u->pool->nidle--;
        u->in_pool = false;
    }
    if (u->bev != NULL)
        bufferevent_free(u->bev);
    if (u->timer != NULL)
        event_free(u->timer);
    if (u->total_timer != NULL)
        event_free(u->total_timer);
    if (u->scratch != NULL)
        evbuffer_free(u->scratch);
    free(u);
}

void tg_upstream_pool_close_idle(struct tg_upstream_pool *p)
{
    while (!TAILQ_EMPTY(&p->idle))
        u_free(TAILQ_FIRST(&p->idle));
}

void tg_upstream_pool_destroy(struct tg_upstream_pool *p)
{
    if (p == NULL)
        return;
    tg_upstream_pool_close_idle(p);
    free(p);
}

/* Marks the exchange over and frees now or when the running callback returns. */
static void u_kill(struct tg_uconn *u)
{
    u->is_dead = true;
    u->cbs = NULL;
    if (u->bev != NULL)
        bufferevent_disable(u->bev, EV_READ | EV_WRITE);
    event_del(u->timer);
    event_del(u->total_timer);
    if (u->in_cb == 0)
        u_free(u);
}

static void u_fail(struct tg_uconn *u, enum tg_up_err_kind kind, const char *detail)
{
    const struct tg_up_cbs *cbs = u->cbs;
    void *arg = u->arg;
    if (kind < TG_UPERR_KINDS && u->pool->metrics != NULL)
        tg_metric_inc(&u->pool->metrics->upstream_errors[kind], 1);
    u->in_cb++;
    u_kill(u);
    if (cbs != NULL && cbs->on_error != NULL)
        cbs->on_error(arg, kind, detail);
    u->in_cb--;
    if (u->in_cb == 0)
        u_free(u);
}

/* ---- pool ------------------------------------------------------------------------------- */

static void idle_read_cb(struct bufferevent *bev, void *arg)
{
    (void)bev;
    u_free(arg); /* a server must not send anything on an idle connection */
}

static void idle_event_cb(struct bufferevent *bev, short what, void *arg)
{
    (void)bev;
    (void)what;
    u_free(arg);
}

static void idle_timer_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    u_free(arg);
}

/* The exchange ended cleanly: keep the connection for the next one, or close it. */
static void u_release(struct tg_uconn *u)
{
    struct tg_upstream_pool *p = u->pool;
    bool reusable = u->keep_alive && u->framing != FR_CLOSE &&
                    evbuffer_get_length(bufferevent_get_input(u->bev)) == 0 &&
                    p->nidle < p->max_idle;
    u->cbs = NULL;
    u->arg = NULL;
    event_del(u->total_timer);
    u->request = NULL;
    if (!reusable) {
        u_kill(u);
        return;
    }
    u->state = U_IDLE;
    u->paused = false;
    bufferevent_set_timeouts(u->bev, NULL, NULL);
    bufferevent_setcb(u->bev, idle_read_cb, NULL, idle_event_cb, u);
    bufferevent_enable(u->bev, EV_READ);
    event_assign(u->timer, p->base, -1, 0, idle_timer_cb, u);
    struct timeval tv = {p->idle_s, 0};
    event_add(u->timer, &tv);
    TAILQ_INSERT_HEAD(&p->idle, u, link);
    p->nidle++;
    u->in_pool = true;
}

/* ---- the exchange ----------------------------------------------------------------------- */

static void u_send(struct tg_uconn *u)
{
    u->state = U_SENDING;
    struct evbuffer *out = bufferevent_get_output(u->bev);
    /* the output refers to the caller's bytes: no copy, even for a 10 MB body */
    if (evbuffer_add_buffer_reference(out, u->request) != 0)
        evbuffer_add_buffer(out, u->request); /* never expected: a buffer that can't be shared */
    bufferevent_setwatermark(u->bev, EV_WRITE, 0, 0);
    bufferevent_enable(u->bev, EV_READ | EV_WRITE);
    struct timeval fb = {u->to.first_byte_ms / 1000, (u->to.first_byte_ms % 1000) * 1000};
    bufferevent_set_timeouts(u->bev, &fb, NULL);
}

static void total_timer_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    u_fail(arg, TG_UPERR_TIMEOUT, "total time-out");
}

static void connect_timer_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    u_fail(arg, TG_UPERR_CONNECT, "connect time-out");
}

static void u_finish(struct tg_uconn *u)
{
    const struct tg_up_cbs *cbs = u->cbs;
    void *arg = u->arg;
    u->in_cb++;
    u_release(u);
    if (cbs != NULL && cbs->on_end != NULL)
        cbs->on_end(arg);
    u->in_cb--;
    if (u->in_cb == 0 && u->is_dead)
        u_free(u);
}

static bool reply_has_no_body(int status)
{
    return (status >= 100 && status < 200) || status == 204 || status == 304;
}

/* Parses the head; returns 1 done, 0 need more, -1 failed (u may be dead). */
static int u_parse_head(struct tg_uconn *u)
{
    struct evbuffer *in = bufferevent_get_input(u->bev);
    for (;;) {
        size_t avail = evbuffer_get_length(in);
        if (avail == 0)
            return 0;
        size_t look = TG_MIN(avail, (size_t)MAX_REPLY_HEAD);
        const char *p = (const char *)evbuffer_pullup(in, (ssize_t)look);
        struct tg_http_response_head h;
        ssize_t n = tg_http_parse_response(p, look, &h);
        if (n == TG_HTTP_NEED_MORE) {
            if (avail >= MAX_REPLY_HEAD) {
                u_fail(u, TG_UPERR_PROTOCOL, "reply head too large");
                return -1;
            }
            return 0;
        }
        if (n < 0) {
            u_fail(u, TG_UPERR_PROTOCOL, "malformed reply head");
            return -1;
        }
        if (h.status >= 100 && h.status < 200) { /* 100 Continue and friends */
            evbuffer_drain(in, (size_t)n);
            continue;
        }
        const struct tg_http_header *te =
            tg_http_find_header(h.headers, h.num_headers, "transfer-encoding");
        const struct tg_http_header *cl =
            tg_http_find_header(h.headers, h.num_headers, "content-length");
        const struct tg_http_header *conn =
            tg_http_find_header(h.headers, h.num_headers, "connection");
        u->keep_alive = h.minor_version >= 1;
        if (conn != NULL && tg_http_has_token(conn->value, conn->value_len, "close"))
            u->keep_alive = false;
        if (conn != NULL && tg_http_has_token(conn->value, conn->value_len, "keep-alive"))
            u->keep_alive = true;
        if (reply_has_no_body(h.status)) {
            u->framing = FR_NONE;
        } else if (te != NULL && tg_http_has_token(te->value, te->value_len, "chunked")) {
            u->framing = FR_CHUNKED;
            memset(&u->chunked, 0, sizeof(u->chunked));
        } else if (cl != NULL) {
            if (tg_http_parse_content_length(cl->value, cl->value_len, &u->body_left) != 0) {
                u_fail(u, TG_UPERR_PROTOCOL, "invalid Content-Length in reply");
                return -1;
            }
            u->framing = u->body_left > 0 ? FR_LENGTH : FR_NONE;
        } else {
            u->framing = FR_CLOSE;
            u->keep_alive = false;
        }
        /* the views point into the input buffer: keep them valid during on_head */
        u->state = U_BODY;
        struct timeval idle = {u->to.idle_ms / 1000, (u->to.idle_ms % 1000) * 1000};
        bufferevent_set_timeouts(u->bev, &idle, NULL);
        if (u->cbs != NULL && u->cbs->on_head != NULL)
            u->cbs->on_head(u->arg, &h);
        if (u->is_dead)
            return -1;
        evbuffer_drain(in, (size_t)n);
        if (u->framing == FR_NONE) {
            u_finish(u);
            return -1; /* nothing more to do with this exchange */
        }
        return 1;
    }
}

static void deliver(struct tg_uconn *u, size_t n)
{
    struct evbuffer *in = bufferevent_get_input(u->bev);
    evbuffer_remove_buffer(in, u->scratch, n);
    if (u->cbs != NULL && u->cbs->on_data != NULL)
        u->cbs->on_data(u->arg, u->scratch);
    evbuffer_drain(u->scratch, evbuffer_get_length(u->scratch));
}

static void u_process(struct tg_uconn *u)
{
    struct evbuffer *in = bufferevent_get_input(u->bev);
    u->in_cb++;
    while (!u->is_dead && !u->paused) {
        if (u->state == U_SENDING || u->state == U_WAIT_HEAD) {
            if (evbuffer_get_length(in) > 0)
                u->got_byte = true;
            int rc = u_parse_head(u);
            if (rc <= 0)
                break;
            continue;
        }
        if (u->state != U_BODY)
            break;
        size_t avail = evbuffer_get_length(in);
        if (avail == 0)
            break;
        if (u->framing == FR_LENGTH) {
            size_t n = (size_t)TG_MIN((int64_t)avail, u->body_left);
            u->body_left -= (int64_t)n;
            deliver(u, n);
            if (!u->is_dead && u->body_left == 0) {
                u_finish(u);
                break;
            }
        } else if (u->framing == FR_CLOSE) {
            deliver(u, avail);
        } else {
            struct evbuffer_iovec v;
            if (evbuffer_peek(in, -1, NULL, &v, 1) < 1)
                break;
            size_t skip, data;
            enum tg_chunk_rc rc = tg_chunked_next(&u->chunked, v.iov_base, v.iov_len, &skip, &data);
            if (rc == TG_CHUNK_ERROR) {
                u_fail(u, TG_UPERR_PROTOCOL, "malformed chunked reply");
                break;
            }
            evbuffer_drain(in, skip);
            if (rc == TG_CHUNK_DATA) {
                deliver(u, data);
            } else if (rc == TG_CHUNK_DONE) {
                u_finish(u);
                break;
            } else if (skip == 0) {
                break; /* need more */
            }
        }
    }
    u->in_cb--;
    if (u->in_cb == 0 && u->is_dead)
        u_free(u);
}

static void u_read_cb(struct bufferevent *bev, void *arg)
{
    (void)bev;
    u_process(arg);
}

static void u_write_cb(struct bufferevent *bev, void *arg)
{
    (void)bev;
    struct tg_uconn *u = arg;
    if (u->state == U_SENDING)
        u->state = U_WAIT_HEAD;
}

static bool u_try_retry(struct tg_uconn *u)
{
    /* A pooled connection the server closed while it was idle: nothing was processed, so
     * sending the request again on a new connection cannot bill twice. */
    if (!u->is_reused || u->retried || u->got_byte ||
        (u->state != U_SENDING && u->state != U_WAIT_HEAD))
        return false;
    u->retried = true;
    u->is_reused = false;
    bufferevent_free(u->bev);
    u->bev = NULL;
    if (u_connect(u) != 0) {
        u_fail(u, TG_UPERR_CONNECT, "cannot create a connection");
        return true;
    }
    return true;
}

static void ssl_detail(struct bufferevent *bev, char *buf, size_t cap)
{
    unsigned long e = bufferevent_get_openssl_error(bev);
    if (e == 0) {
        SSL *ssl = bufferevent_openssl_get_ssl(bev);
        long vr = ssl ? SSL_get_verify_result(ssl) : X509_V_OK;
        if (vr != X509_V_OK) {
            snprintf(buf, cap, "TLS certificate verification failed: %s",
                     X509_verify_cert_error_string(vr));
            return;
        }
        snprintf(buf, cap, "%s", errno ? strerror(errno) : "connection failed");
        return;
    }
    char es[200];
    ERR_error_string_n(e, es, sizeof(es));
    snprintf(buf, cap, "TLS: %s", es);
}

static void u_event_cb(struct bufferevent *bev, short what, void *arg)
{
    struct tg_uconn *u = arg;
    if (what & BEV_EVENT_CONNECTED) {
        event_del(u->timer);
        int one = 1;
        setsockopt(bufferevent_getfd(bev), IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        u_send(u);
        return;
    }
    if (what & BEV_EVENT_TIMEOUT) {
        u_fail(u, TG_UPERR_TIMEOUT, u->got_byte ? "idle time-out" : "first-byte time-out");
        return;
    }
    if (what & BEV_EVENT_EOF) {
        /* process what is buffered first (a close-delimited body ends here) */
        u_process(u);
        if (u->is_dead || u->state == U_IDLE)
            return;
        if (u->state == U_BODY && u->framing == FR_CLOSE) {
            u_finish(u);
            return;
        }
        if (u_try_retry(u))
            return;
        u_fail(u, TG_UPERR_RESET,
               u->state == U_BODY ? "connection closed mid-reply" : "connection closed");
        return;
    }
    if (what & BEV_EVENT_ERROR) {
        char detail[300];
        if (u->state == U_CONNECTING) {
            ssl_detail(bev, detail, sizeof(detail));
            u_fail(u, TG_UPERR_CONNECT, detail);
            return;
        }
        if (u_try_retry(u))
            return;
        snprintf(detail, sizeof(detail), "%s", errno ? strerror(errno) : "connection error");
        u_fail(u, TG_UPERR_RESET, detail);
    }
}

static int u_connect(struct tg_uconn *u)
{
    const struct tg_upstream_target *t = u->target;
    struct event_base *base = u->pool->base;
    if (t->url.is_https) {
        SSL *ssl = SSL_new((SSL_CTX *)t->ssl_ctx);
        if (ssl == NULL)
            return -1;
        SSL_set_tlsext_host_name(ssl, t->url.host);
        struct in6_addr tmp;
        if (inet_pton(AF_INET, t->url.host, &tmp) == 1 ||
            inet_pton(AF_INET6, t->url.host, &tmp) == 1)
            X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), t->url.host);
        else
            SSL_set1_host(ssl, t->url.host);
        u->bev = bufferevent_openssl_socket_new(base, -1, ssl, BUFFEREVENT_SSL_CONNECTING,
                                                BEV_OPT_CLOSE_ON_FREE);
        if (u->bev == NULL) {
            SSL_free(ssl);
            return -1;
        }
        bufferevent_openssl_set_allow_dirty_shutdown(u->bev, 1);
    } else {
        u->bev = bufferevent_socket_new(base, -1, BEV_OPT_CLOSE_ON_FREE);
        if (u->bev == NULL)
            return -1;
    }
    /* A read of 4 096 bytes goes into a chain of 8 KiB (libevent rounds the chain and its
     * header up to a power of two); a stream paused because its client is behind keeps the
     * rest of its last read in that chain. Reads a little shorter fit chains of 4 KiB: half
     * the memory of 1 000 stalled streams' partial reads, for 3 % more read calls on big bodies. */
    bufferevent_set_max_single_read(u->bev, UPSTREAM_MAX_READ);
    u->state = U_CONNECTING;
    u->got_byte = false;
    bufferevent_setcb(u->bev, u_read_cb, u_write_cb, u_event_cb, u);
    event_assign(u->timer, base, -1, 0, connect_timer_cb, u);
    struct timeval ct = {u->to.connect_ms / 1000, (u->to.connect_ms % 1000) * 1000};
    event_add(u->timer, &ct);
    u->id = atomic_fetch_add(&next_conn_id, 1);
    if (u->pool->metrics != NULL)
        tg_metric_inc(&u->pool->metrics->upstream_conns_opened, 1);
    if (bufferevent_socket_connect(u->bev, (const struct sockaddr *)&t->addr, (int)t->addr_len) !=
        0) {
        /* immediate failure (e.g. refused on loopback): report from the loop, not inline */
        event_del(u->timer);
        event_assign(u->timer, base, -1, 0, connect_timer_cb, u);
        struct timeval zero = {0, 0};
        event_add(u->timer, &zero);
    }
    return 0;
}

struct tg_uconn *tg_upstream_start(struct tg_upstream_pool *p, const struct tg_upstream_target *t,
                                   struct evbuffer *request, const struct tg_up_timeouts *to,
                                   const struct tg_up_cbs *cbs, void *arg)
{
    struct tg_uconn *u = NULL;
    /* newest idle connection first (most likely still open) */
    while (!TAILQ_EMPTY(&p->idle)) {
        struct tg_uconn *c = TAILQ_FIRST(&p->idle);
        TAILQ_REMOVE(&p->idle, c, link);
        p->nidle--;
        c->in_pool = false;
        if (c->target == t) {
            u = c;
            break;
        }
        u_free(c);
    }
    if (u != NULL) {
        event_del(u->timer);
        u->is_reused = true;
        u->uses++;
        u->cbs = cbs;
        u->arg = arg;
        u->request = request;
        u->to = *to;
        u->retried = false;
        u->got_byte = false;
        u->paused = false;
        u->is_dead = false;
        bufferevent_setcb(u->bev, u_read_cb, u_write_cb, u_event_cb, u);
        if (p->metrics != NULL)
            tg_metric_inc(&p->metrics->upstream_conns_reused, 1);
        u_send(u);
    } else {
        u = calloc(1, sizeof(*u));
        if (u == NULL)
            return NULL;
        u->pool = p;
        u->target = t;
        u->cbs = cbs;
        u->arg = arg;
        u->request = request;
        u->to = *to;
        u->scratch = evbuffer_new();
        u->timer = event_new(p->base, -1, 0, connect_timer_cb, u);
        u->total_timer = evtimer_new(p->base, total_timer_cb, u);
        if (u->scratch == NULL || u->timer == NULL || u->total_timer == NULL || u_connect(u) != 0) {
            u_free(u);
            return NULL;
        }
    }
    if (to->total_ms > 0) {
        struct timeval tt = {to->total_ms / 1000, (to->total_ms % 1000) * 1000};
        event_add(u->total_timer, &tt);
    }
    return u;
}

void tg_upstream_pause(struct tg_uconn *u)
{
    if (u->is_dead || u->paused)
        return;
    u->paused = true;
    bufferevent_disable(u->bev, EV_READ);
}

void tg_upstream_resume(struct tg_uconn *u)
{
    if (u->is_dead || !u->paused)
        return;
    u->paused = false;
    bufferevent_enable(u->bev, EV_READ);
    /* bytes may already be buffered: process them, but not inside the caller's stack */
    if (evbuffer_get_length(bufferevent_get_input(u->bev)) > 0 && u->in_cb == 0) {
        u_process(u);
    }
}

void tg_upstream_cancel(struct tg_uconn *u)
{
    if (u == NULL || u->is_dead)
        return;
    u->keep_alive = false;
    u_kill(u);
}

void tg_upstream_set_total_timeout(struct tg_uconn *u, int total_ms)
{
    if (u->is_dead)
        return;
    event_del(u->total_timer);
    if (total_ms > 0) {
        struct timeval tt = {total_ms / 1000, (total_ms % 1000) * 1000};
        event_add(u->total_timer, &tt);
    }
}

uint64_t tg_upstream_conn_id(const struct tg_uconn *u)
{
    return u->id;
}

bool tg_upstream_conn_reused(const struct tg_uconn *u)
{
    return u->is_reused;
}

int tg_upstream_target_init(struct tg_upstream_target *t, const struct tg_url *url, void *ssl_ctx,
                            char *err, size_t errlen)
{
    memset(t, 0, sizeof(*t));
    t->url = *url;
    t->ssl_ctx = ssl_ctx;
    bool default_port = (url->is_https && url->port == 443) || (!url->is_https && url->port == 80);
    bool v6 = strchr(url->host, ':') != NULL;
    if (default_port)
        snprintf(t->host_header, sizeof(t->host_header), v6 ? "[%s]" : "%s", url->host);
    else
        snprintf(t->host_header, sizeof(t->host_header), v6 ? "[%s]:%u" : "%s:%u", url->host,
                 url->port);
    struct addrinfo hints = {0}, *res = NULL;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_family = AF_UNSPEC;
    char port[8];
    snprintf(port, sizeof(port), "%u", url->port);
    int rc = getaddrinfo(url->host, port, &hints, &res);
    if (rc != 0 || res == NULL) {
        snprintf(err, errlen, "cannot resolve %s: %s", url->host, gai_strerror(rc));
        return -1;
    }
    memcpy(&t->addr, res->ai_addr, res->ai_addrlen);
    t->addr_len = res->ai_addrlen;
    freeaddrinfo(res);
    return 0;
}

void *tg_upstream_ssl_ctx_create(const char *ca_file, char *err, size_t errlen)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    if (ctx == NULL) {
        snprintf(err, errlen, "cannot create a TLS context");
        return NULL;
    }
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
    int ok = (ca_file != NULL && ca_file[0] != '\0')
                 ? SSL_CTX_load_verify_locations(ctx, ca_file, NULL)
                 : SSL_CTX_set_default_verify_paths(ctx);
    if (ok != 1) {
        snprintf(err, errlen, "cannot load CA certificates from %s",
                 ca_file && ca_file[0] ? ca_file : "the system store");
        SSL_CTX_free(ctx);
        return NULL;
    }
    return ctx;
}
