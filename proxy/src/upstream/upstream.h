/* upstream.h: HTTP/1.1 client to the gateway: per-worker keep-alive pool, TLS, time-outs,
 * pause/resume for backpressure. Used for LiteLLM requests, webhooks and JWKS fetches. */
#ifndef TG_UPSTREAM_H
#define TG_UPSTREAM_H

#include <event2/buffer.h>
#include <sys/socket.h>

#include "core/common.h"
#include "core/config.h"
#include "http/http_parse.h"
#include "http/metrics.h"

struct event_base;
struct tg_uconn;
struct tg_upstream_pool;
struct tg_metrics;

/* Where to connect: resolved once at start-up (and again by the control thread). */
struct tg_upstream_target {
    struct sockaddr_storage addr;
    socklen_t addr_len;
    struct tg_url url;     /* scheme, host (for SNI, verification and Host:), base path */
    char host_header[300]; /* "host" or "host:port" */
    void *ssl_ctx;         /* SSL_CTX* when https */
};

struct tg_up_timeouts {
    int connect_ms;
    int first_byte_ms; /* request written -> first reply byte */
    int idle_ms;       /* between two reads of the reply */
    int total_ms;      /* whole exchange; 0 = none */
};

/* Callbacks of one exchange; each is called on the pool's loop. After on_end or on_error no
 * further callback comes. tg_upstream_cancel() stops all callbacks at once. */
struct tg_up_cbs {
    /* The reply head; views are valid during the call only. */
    void (*on_head)(void *arg, const struct tg_http_response_head *h);
    /* Decoded body bytes (chunked framing removed). The callee must drain all of `data`. */
    void (*on_data)(void *arg, struct evbuffer *data);
    /* The body is complete. */
    void (*on_end)(void *arg);
    /* Failure: no reply, a time-out, or the connection broke mid-reply. */
    void (*on_error)(void *arg, enum tg_up_err_kind kind, const char *detail);
};

/* Creates a worker's pool; max_idle connections are kept, each for idle_s at most. */
struct tg_upstream_pool *tg_upstream_pool_create(struct event_base *base, int max_idle, int idle_s,
                                                 struct tg_metrics *metrics);
/* Closes idle connections; in-flight exchanges must have been cancelled or finished. */
void tg_upstream_pool_destroy(struct tg_upstream_pool *p);
/* Closes idle connections (shutdown). */
void tg_upstream_pool_close_idle(struct tg_upstream_pool *p);

/* Starts an exchange. `request` holds the full request bytes (head and body); it is borrowed
 * and must stay unchanged until the exchange ends (on_end, on_error or tg_upstream_cancel):
 * the bytes are sent by reference, and resent once on a fresh connection when a pooled
 * connection turns out to have been closed by the server while idle. Returns the exchange
 * handle, or NULL when it could not even start (cbs not called). */
struct tg_uconn *tg_upstream_start(struct tg_upstream_pool *p, const struct tg_upstream_target *t,
                                   struct evbuffer *request, const struct tg_up_timeouts *to,
                                   const struct tg_up_cbs *cbs, void *arg);
/* Backpressure: stop / go on reading the reply. The idle time-out is suspended meanwhile. */
void tg_upstream_pause(struct tg_uconn *u);
void tg_upstream_resume(struct tg_uconn *u);
/* Ends the exchange now: no more callbacks, the connection is closed (so the gateway sees
 * the cancellation). */
void tg_upstream_cancel(struct tg_uconn *u);
/* Replaces the remaining time-outs (drain mode gets its own limit). */
void tg_upstream_set_total_timeout(struct tg_uconn *u, int total_ms);
/* Id of the TCP connection (increases per new connection in this process), for tests/logs. */
uint64_t tg_upstream_conn_id(const struct tg_uconn *u);
bool tg_upstream_conn_reused(const struct tg_uconn *u);

/* Resolves url (blocking getaddrinfo: start-up and control thread only). */
TG_MUST_CHECK int tg_upstream_target_init(struct tg_upstream_target *t, const struct tg_url *url,
                                          void *ssl_ctx, char *err, size_t errlen);
/* Creates a client SSL_CTX with verification on (ca_file NULL/"" = system CAs). */
void *tg_upstream_ssl_ctx_create(const char *ca_file, char *err, size_t errlen);

#endif
