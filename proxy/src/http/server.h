/* server.h: the client side: listeners, HTTP/1.1 connections, responses, backpressure. */
#ifndef TG_SERVER_H
#define TG_SERVER_H

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <sys/queue.h>

#include "core/common.h"
#include "http/http_parse.h"

struct tg_worker;
struct tg_conn;

/* What a handler is told about the connection it is borrowing. */
struct tg_conn_owner_ops {
    /* The output buffer drained below the low watermark (backpressure released). */
    void (*on_writable)(void *arg);
    /* The client closed or reset the connection, or stopped reading for too long.
     * The conn is gone after this returns: the owner must drop its pointer. */
    void (*on_client_gone)(void *arg);
};

enum tg_conn_state {
    TG_CONN_READ_HEAD, /* waiting for (the rest of) a request head */
    TG_CONN_READ_BODY, /* reading the request body */
    TG_CONN_HANDLING,  /* a handler owns the request */
    TG_CONN_CLOSING,   /* flushing output, then close */
};

struct tg_conn {
    struct tg_worker *w;      /* borrowed; outlives the connection */
    struct bufferevent *bev;  /* owned */
    enum tg_conn_state state; /* written only by conn_set_state() */
    TAILQ_ENTRY(tg_conn) link;
    char peer[64];

    /* the current request */
    char *head_copy; /* owned copy of the head bytes; the views in `head` point into it */
    size_t head_len;
    struct tg_http_request_head head;
    const char *path; /* view into head_copy: target without the query */
    size_t path_len;
    const char *query; /* after '?', or "" */
    size_t query_len;
    struct evbuffer *body; /* owned; the complete request body once HANDLING */
    int64_t body_expected; /* Content-Length, -1 when chunked */
    struct tg_chunked chunked;
    bool keep_alive;      /* answer with keep-alive and read the next request */
    bool request_logged;  /* the handler writes its own log line (tg_request) */
    int64_t t_head_us;    /* monotonic time the head was complete */
    bool expect_continue; /* client sent Expect: 100-continue */
    int requests;         /* served on this connection */

    /* the response */
    struct evbuffer *resp_headers; /* owned; extra header lines for the next reply */
    bool resp_started;
    bool resp_chunked; /* HTTP/1.1 streaming reply */
    bool resp_close_delimited;
    int resp_status;
    int64_t resp_bytes;

    /* the handler that owns the request while HANDLING */
    const struct tg_conn_owner_ops *owner_ops;
    void *owner;

    struct event *timer; /* header/body/idle timeouts */
    bool is_free_pending;
};

/* ---- handler API (all called on the conn's worker thread) ---- */

/* Adds a response header for the next reply. `value` is copied. CR/LF are refused. */
void tg_conn_add_header(struct tg_conn *c, const char *name, const char *value);
void tg_conn_add_headern(struct tg_conn *c, const char *name, const char *value, size_t len);
/* Sends a complete reply with Content-Length. Ends the request. */
void tg_conn_reply(struct tg_conn *c, int status, const char *content_type, const void *body,
                   size_t len);
/* Same, taking the body from an evbuffer (drained). */
void tg_conn_reply_buffer(struct tg_conn *c, int status, const char *content_type,
                          struct evbuffer *body);
/* Starts a streamed reply (chunked for HTTP/1.1, close-delimited for HTTP/1.0). Extra headers
 * must be added before. */
void tg_conn_reply_start(struct tg_conn *c, int status, const char *content_type);
/* Starts a streamed reply of known length (a pass-through with the upstream's
 * Content-Length): the handler sends exactly `length` bytes, then ends. */
void tg_conn_reply_start_length(struct tg_conn *c, int status, const char *content_type,
                                int64_t length);
/* Sends `data` (drained into the socket buffer) as part of a streamed reply. */
void tg_conn_reply_send(struct tg_conn *c, struct evbuffer *data);
void tg_conn_reply_send_mem(struct tg_conn *c, const void *p, size_t n);
/* Ends a streamed reply. Ends the request. */
void tg_conn_reply_end(struct tg_conn *c);
/* Ends a streamed reply abnormally: the connection is closed after the buffered output,
 * without the terminating chunk, so the client sees a truncated body. */
void tg_conn_reply_abort(struct tg_conn *c);
/* Bytes waiting in the output buffer. */
size_t tg_conn_out_pending(const struct tg_conn *c);
/* Registers the request's owner (see tg_conn_owner_ops); NULL ops to detach. */
void tg_conn_set_owner(struct tg_conn *c, const struct tg_conn_owner_ops *ops, void *owner);
/* Header of the current request, or NULL. */
const struct tg_http_header *tg_conn_header(const struct tg_conn *c, const char *name);
/* Decoded value of a query parameter into dst (NUL-terminated). Returns length or -1. */
ssize_t tg_conn_query_param(const struct tg_conn *c, const char *name, char *dst, size_t cap);
/* Output buffer size above which a streaming handler should pause its source, and below which
 * it resumes. Small on purpose: a client that stopped reading pins about this much (plus the
 * rest of one upstream read) while the upstream waits in its own socket buffers; 1 000 stalled
 * streams must fit T3's 64 MiB (measured: 80 MiB with 8 KiB and whole-chain moves, 57 MiB
 * now; docs/benchmarks.md). A client that reads keeps the buffer near empty (the kernel's send
 * buffer takes the bytes), so the threshold costs it nothing; nginx holds 8 × 4 KiB. */
#define TG_CONN_HIGH_WATERMARK (4 * 1024)
#define TG_CONN_LOW_WATERMARK  (1 * 1024)

/* ---- server life cycle (server.c) ---- */

/* Binds the worker's listening socket (SO_REUSEPORT). Returns 0 or -1 with err. */
TG_MUST_CHECK int tg_server_listen(struct tg_worker *w, char *err, size_t errlen);
/* Checks that the configured address is free (binding once without SO_REUSEPORT). */
TG_MUST_CHECK int tg_server_probe_listen(char *err, size_t errlen);
/* Stops accepting and closes idle keep-alive connections; in-flight requests go on and
 * their connections close when they finish. */
void tg_server_stop_accepting(struct tg_worker *w);
/* Closes every connection now (end of the drain period). */
void tg_server_close_all(struct tg_worker *w);

/* The router (router.c) calls the handler for a complete request. */
void tg_router_dispatch(struct tg_conn *c);

#endif
