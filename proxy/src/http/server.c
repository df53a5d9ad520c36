/* server.c: listeners and client connections: HTTP/1.1 framing, keep-alive, time-outs,
 * early-close detection and output backpressure. Handlers live in router.c and request.c. */
#include "http/server.h"

#include <errno.h>
#include <event2/listener.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "core/json_scan.h"
#include "core/log.h"
#include "http/reply.h"
#include "http/worker.h"

#define MAX_HEAD_BYTES          (64 * 1024)
#define MAX_PIPELINED           (64 * 1024)
/* "Bearer " and the longest token identity accepts (TG_JWT_MAX_TOKEN_BYTES, auth/jwt.h) */
#define TG_MAX_CREDENTIAL_BYTES (8 * 1024 + 16)

static void conn_read_cb(struct bufferevent *bev, void *arg);
static void conn_write_cb(struct bufferevent *bev, void *arg);
static void conn_event_cb(struct bufferevent *bev, short what, void *arg);
static void conn_timer_cb(evutil_socket_t fd, short what, void *arg);
static void conn_process_input(struct tg_conn *c);

static void conn_set_state(struct tg_conn *c, enum tg_conn_state s)
{
    c->state = s;
}

static void conn_arm_timer(struct tg_conn *c, int seconds)
{
    struct timeval tv = {seconds, 0};
    event_add(c->timer, &tv);
}

static void conn_free_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct tg_conn *c = arg;
    if (c->bev != NULL)
        bufferevent_free(c->bev);
    if (c->timer != NULL)
        event_free(c->timer);
    evbuffer_free(c->body);
    evbuffer_free(c->resp_headers);
    free(c->head_copy);
    free(c);
}

/* Closes the connection now. Notifies a handler that still owns the request. Never frees
 * inside the current callback chain: the struct goes away on the next loop turn. */
static void conn_close(struct tg_conn *c)
{
    if (c->is_free_pending)
        return;
    c->is_free_pending = true;
    struct tg_worker *w = c->w;
    TAILQ_REMOVE(&w->conns, c, link);
    w->nconns--;
    atomic_fetch_sub_explicit(&w->metrics.open_conns, 1, memory_order_relaxed);
    event_del(c->timer);
    if (c->bev != NULL) {
        bufferevent_disable(c->bev, EV_READ | EV_WRITE);
        bufferevent_setcb(c->bev, NULL, NULL, NULL, NULL);
    }
    const struct tg_conn_owner_ops *ops = c->owner_ops;
    void *owner = c->owner;
    c->owner_ops = NULL;
    c->owner = NULL;
    if (ops != NULL && ops->on_client_gone != NULL)
        ops->on_client_gone(owner);
    struct timeval zero = {0, 0};
    event_base_once(w->base, -1, EV_TIMEOUT, conn_free_cb, c, &zero);
}

/* Close once the output buffer has been written. */
static void conn_close_after_flush(struct tg_conn *c)
{
    conn_set_state(c, TG_CONN_CLOSING);
    bufferevent_disable(c->bev, EV_READ);
    if (evbuffer_get_length(bufferevent_get_output(c->bev)) == 0) {
        conn_close(c);
        return;
    }
    bufferevent_setwatermark(c->bev, EV_WRITE, 0, 0);
    conn_arm_timer(c, 10); /* give up on a client that doesn't read its last bytes */
}

/* ---- responses --------------------------------------------------------------------------- */

static const char *status_text(int status)
{
    switch (status) {
    case 100:
        return "Continue";
    case 200:
        return "OK";
    case 201:
        return "Created";
    case 204:
        return "No Content";
    case 304:
        return "Not Modified";
    case 400:
        return "Bad Request";
    case 401:
        return "Unauthorized";
    case 402:
        return "Payment Required";
    case 403:
        return "Forbidden";
    case 404:
        return "Not Found";
    case 405:
        return "Method Not Allowed";
    case 408:
        return "Request Timeout";
    case 409:
        return "Conflict";
    case 411:
        return "Length Required";
    case 413:
        return "Content Too Large";
    case 415:
        return "Unsupported Media Type";
    case 422:
        return "Unprocessable Content";
    case 429:
        return "Too Many Requests";
    case 431:
        return "Request Header Fields Too Large";
    case 500:
        return "Internal Server Error";
    case 501:
        return "Not Implemented";
    case 502:
        return "Bad Gateway";
    case 503:
        return "Service Unavailable";
    case 504:
        return "Gateway Timeout";
    case 505:
        return "HTTP Version Not Supported";
    default:
        return "Status";
    }
}

static bool header_value_ok(const char *v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (v[i] == '\r' || v[i] == '\n' || v[i] == '\0')
            return false;
    return true;
}

void tg_conn_add_headern(struct tg_conn *c, const char *name, const char *value, size_t len)
{
    if (!header_value_ok(value, len) || !header_value_ok(name, strlen(name)))
        return;
    evbuffer_add_printf(c->resp_headers, "%s: ", name);
    evbuffer_add(c->resp_headers, value, len);
    evbuffer_add(c->resp_headers, "\r\n", 2);
}

void tg_conn_add_header(struct tg_conn *c, const char *name, const char *value)
{
    tg_conn_add_headern(c, name, value, strlen(value));
}

static void write_head(struct tg_conn *c, int status, const char *content_type, int64_t length)
{
    struct evbuffer *out = bufferevent_get_output(c->bev);
    bool stopping = atomic_load_explicit(&tg_app->stopping, memory_order_relaxed);
    if (stopping)
        c->keep_alive = false;
    evbuffer_add_printf(out, "HTTP/1.%d %d %s\r\n", c->head.minor_version, status,
                        status_text(status));
    if (content_type != NULL)
        evbuffer_add_printf(out, "Content-Type: %s\r\n", content_type);
    if (length >= 0) {
        evbuffer_add_printf(out, "Content-Length: %lld\r\n", (long long)length);
    } else if (c->head.minor_version >= 1) {
        evbuffer_add(out, "Transfer-Encoding: chunked\r\n", 28);
        c->resp_chunked = true;
    } else {
        c->resp_close_delimited = true;
        c->keep_alive = false;
    }
    if (!c->keep_alive)
        evbuffer_add(out, "Connection: close\r\n", 19);
    else if (c->head.minor_version == 0)
        evbuffer_add(out, "Connection: keep-alive\r\n", 24);
    evbuffer_remove_buffer(c->resp_headers, out, evbuffer_get_length(c->resp_headers));
    evbuffer_add(out, "\r\n", 2);
    c->resp_started = true;
    c->resp_status = status;
}

static int64_t mono_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* One log line for requests that no tg_request logs (operations, admin, errors). */
static void access_log(struct tg_conn *c)
{
    bool probe = (c->path_len == 8 && memcmp(c->path, "/healthz", 8) == 0) ||
                 (c->path_len == 7 && memcmp(c->path, "/readyz", 7) == 0) ||
                 (c->path_len == 8 && memcmp(c->path, "/metrics", 8) == 0);
    struct tg_logline l;
    tg_logline_begin(&l, probe ? TG_LOG_DEBUG : TG_LOG_INFO, "request");
    tg_logline_strn(&l, "method", c->head.method ? c->head.method : "-",
                    c->head.method ? c->head.method_len : 1);
    tg_logline_strn(&l, "path", c->path ? c->path : "-", c->path ? c->path_len : 1);
    tg_logline_int(&l, "status", c->resp_status);
    tg_logline_int(&l, "latency_ms", c->t_head_us ? (mono_us() - c->t_head_us) / 1000 : 0);
    tg_logline_str(&l, "peer", c->peer);
    tg_logline_end(&l);
}

/* The request is answered: read the next one or close. */
static void conn_request_done(struct tg_conn *c)
{
    if (!c->request_logged)
        access_log(c);
    c->request_logged = false;
    c->owner_ops = NULL;
    c->owner = NULL;
    c->requests++;
    if (!c->keep_alive || atomic_load_explicit(&tg_app->stopping, memory_order_relaxed)) {
        conn_close_after_flush(c);
        return;
    }
    /* reset for the next request */
    free(c->head_copy);
    c->head_copy = NULL;
    c->head_len = 0;
    memset(&c->head, 0, sizeof(c->head)); /* its views pointed into head_copy */
    c->path = c->query = NULL;
    c->path_len = c->query_len = 0;
    c->t_head_us = 0;
    evbuffer_drain(c->body, evbuffer_get_length(c->body));
    evbuffer_drain(c->resp_headers, evbuffer_get_length(c->resp_headers));
    memset(&c->chunked, 0, sizeof(c->chunked));
    c->resp_started = c->resp_chunked = c->resp_close_delimited = false;
    c->resp_status = 0;
    c->resp_bytes = 0;
    c->expect_continue = false;
    conn_set_state(c, TG_CONN_READ_HEAD);
    bufferevent_setwatermark(c->bev, EV_READ, 0, 0);
    bufferevent_enable(c->bev, EV_READ);
    conn_arm_timer(c, tg_app->cfg.client_idle_timeout_s);
    if (evbuffer_get_length(bufferevent_get_input(c->bev)) > 0)
        conn_process_input(c);
}

void tg_conn_reply(struct tg_conn *c, int status, const char *content_type, const void *body,
                   size_t len)
{
    if (c->resp_started || c->state != TG_CONN_HANDLING)
        return;
    bool is_head = c->head.method_len == 4 && memcmp(c->head.method, "HEAD", 4) == 0;
    write_head(c, status, content_type, (int64_t)len);
    if (!is_head && len > 0)
        bufferevent_write(c->bev, body, len);
    c->resp_bytes = (int64_t)len;
    conn_request_done(c);
}

void tg_conn_reply_buffer(struct tg_conn *c, int status, const char *content_type,
                          struct evbuffer *body)
{
    if (c->resp_started || c->state != TG_CONN_HANDLING)
        return;
    size_t len = evbuffer_get_length(body);
    write_head(c, status, content_type, (int64_t)len);
    c->resp_bytes = (int64_t)len;
    bufferevent_write_buffer(c->bev, body);
    conn_request_done(c);
}

void tg_conn_reply_start(struct tg_conn *c, int status, const char *content_type)
{
    if (c->resp_started || c->state != TG_CONN_HANDLING)
        return;
    write_head(c, status, content_type, -1);
}

void tg_conn_reply_start_length(struct tg_conn *c, int status, const char *content_type,
                                int64_t length)
{
    if (c->resp_started || c->state != TG_CONN_HANDLING)
        return;
    write_head(c, status, content_type, length);
}

void tg_conn_reply_send(struct tg_conn *c, struct evbuffer *data)
{
    size_t n = evbuffer_get_length(data);
    if (n == 0 || !c->resp_started)
        return;
    struct evbuffer *out = bufferevent_get_output(c->bev);
    if (c->resp_chunked)
        evbuffer_add_printf(out, "%zx\r\n", n);
    if (evbuffer_get_length(out) > 0 && n <= 16384) {
        /* the client is behind: copy into the tail of what waits, so that a stalled stream
         * holds its bytes in few full chains, not in the many part-filled chains of the
         * upstream's small reads */
        char tmp[16384];
        evbuffer_remove(data, tmp, n);
        evbuffer_add(out, tmp, n);
    } else {
        evbuffer_remove_buffer(data, out, n);
    }
    if (c->resp_chunked)
        evbuffer_add(out, "\r\n", 2);
    c->resp_bytes += (int64_t)n;
}

void tg_conn_reply_send_mem(struct tg_conn *c, const void *p, size_t n)
{
    if (n == 0 || !c->resp_started)
        return;
    struct evbuffer *out = bufferevent_get_output(c->bev);
    if (c->resp_chunked)
        evbuffer_add_printf(out, "%zx\r\n", n);
    evbuffer_add(out, p, n);
    if (c->resp_chunked)
        evbuffer_add(out, "\r\n", 2);
    c->resp_bytes += (int64_t)n;
}

void tg_conn_reply_end(struct tg_conn *c)
{
    if (!c->resp_started || c->state != TG_CONN_HANDLING)
        return;
    if (c->resp_chunked)
        bufferevent_write(c->bev, "0\r\n\r\n", 5);
    if (c->resp_close_delimited)
        c->keep_alive = false;
    conn_request_done(c);
}

void tg_conn_reply_abort(struct tg_conn *c)
{
    if (c->state != TG_CONN_HANDLING)
        return;
    if (!c->request_logged)
        access_log(c);
    c->owner_ops = NULL;
    c->owner = NULL;
    c->keep_alive = false;
    conn_close_after_flush(c);
}

size_t tg_conn_out_pending(const struct tg_conn *c)
{
    return evbuffer_get_length(bufferevent_get_output(c->bev));
}

void tg_conn_set_owner(struct tg_conn *c, const struct tg_conn_owner_ops *ops, void *owner)
{
    c->owner_ops = ops;
    c->owner = owner;
}

const struct tg_http_header *tg_conn_header(const struct tg_conn *c, const char *name)
{
    return tg_http_find_header(c->head.headers, c->head.num_headers, name);
}

static int hexv(char ch)
{
    if (ch >= '0' && ch <= '9')
        return ch - '0';
    if (ch >= 'a' && ch <= 'f')
        return ch - 'a' + 10;
    if (ch >= 'A' && ch <= 'F')
        return ch - 'A' + 10;
    return -1;
}

ssize_t tg_conn_query_param(const struct tg_conn *c, const char *name, char *dst, size_t cap)
{
    size_t nl = strlen(name);
    const char *p = c->query, *end = c->query + c->query_len;
    while (p < end) {
        const char *amp = memchr(p, '&', (size_t)(end - p));
        const char *pe = amp ? amp : end;
        const char *eq = memchr(p, '=', (size_t)(pe - p));
        const char *ke = eq ? eq : pe;
        if ((size_t)(ke - p) == nl && memcmp(p, name, nl) == 0) {
            size_t o = 0;
            const char *v = eq ? eq + 1 : pe;
            while (v < pe) {
                char ch = *v;
                if (ch == '+') {
                    ch = ' ';
                    v++;
                } else if (ch == '%' && pe - v >= 3 && hexv(v[1]) >= 0 && hexv(v[2]) >= 0) {
                    ch = (char)(hexv(v[1]) * 16 + hexv(v[2]));
                    v += 3;
                } else {
                    v++;
                }
                if (o + 1 >= cap)
                    return -1;
                dst[o++] = ch;
            }
            dst[o] = '\0';
            return (ssize_t)o;
        }
        p = amp ? amp + 1 : end;
    }
    return -1;
}

/* An error before any handler ran (bad head, too large body): OpenAI-shaped and close. */
static void conn_fail(struct tg_conn *c, int status, const char *message, const char *code)
{
    conn_set_state(c, TG_CONN_HANDLING);
    c->keep_alive = false;
    if (c->head_copy == NULL)
        c->head.minor_version = 1;
    tg_reply_error(c, status, message, status >= 500 ? "server_error" : "invalid_request_error",
                   code, NULL);
    if (c->state == TG_CONN_HANDLING)
        conn_close_after_flush(c);
}

/* A credential that overflowed the head: 401 as for any invalid credential (SPEC §2), with
 * WWW-Authenticate: Bearer; the rest of the head is never read, so the connection closes. */
static void conn_fail_auth(struct tg_conn *c)
{
    conn_set_state(c, TG_CONN_HANDLING);
    c->keep_alive = false;
    if (c->head_copy == NULL)
        c->head.minor_version = 1;
    tg_reply_error(c, 401, "Invalid credentials.", "authentication_error", "invalid_api_key", NULL);
    if (c->state == TG_CONN_HANDLING)
        conn_close_after_flush(c);
}

/* ---- reading requests -------------------------------------------------------------------- */

static void split_target(struct tg_conn *c)
{
    const char *t = c->head.target;
    size_t n = c->head.target_len;
    const char *q = memchr(t, '?', n);
    c->path = t;
    c->path_len = q ? (size_t)(q - t) : n;
    c->query = q ? q + 1 : t + n;
    c->query_len = q ? (size_t)(t + n - (q + 1)) : 0;
}

/* The head is parsed: decide how the body is framed. Returns false when the connection was
 * failed. */
static bool conn_head_done(struct tg_conn *c)
{
    c->t_head_us = mono_us();
    split_target(c);
    const struct tg_http_header *te = tg_conn_header(c, "transfer-encoding");
    const struct tg_http_header *cl = tg_conn_header(c, "content-length");
    const struct tg_http_header *conn = tg_conn_header(c, "connection");
    c->keep_alive = c->head.minor_version >= 1;
    if (conn != NULL) {
        if (tg_http_has_token(conn->value, conn->value_len, "close"))
            c->keep_alive = false;
        else if (tg_http_has_token(conn->value, conn->value_len, "keep-alive"))
            c->keep_alive = true;
    }
    if (te != NULL) {
        if (cl != NULL || !tg_http_has_token(te->value, te->value_len, "chunked") ||
            c->head.minor_version == 0) {
            conn_fail(c, 400, "Unsupported or ambiguous Transfer-Encoding.", "bad_request");
            return false;
        }
        c->body_expected = -1;
    } else if (cl != NULL) {
        int64_t len;
        /* several Content-Length headers must agree */
        for (size_t i = 0; i < c->head.num_headers; i++) {
            const struct tg_http_header *h = &c->head.headers[i];
            if (h->name_len == 14 && strncasecmp(h->name, "content-length", 14) == 0 &&
                (h->value_len != cl->value_len || memcmp(h->value, cl->value, h->value_len))) {
                conn_fail(c, 400, "Conflicting Content-Length headers.", "bad_request");
                return false;
            }
        }
        if (tg_http_parse_content_length(cl->value, cl->value_len, &len) != 0) {
            conn_fail(c, 400, "Invalid Content-Length.", "bad_request");
            return false;
        }
        if (len > tg_app->cfg.max_body_bytes) {
            char msg[160];
            snprintf(msg, sizeof(msg),
                     "Request body too large: %lld bytes; the limit is %lld bytes.", (long long)len,
                     (long long)tg_app->cfg.max_body_bytes);
            conn_fail(c, 413, msg, "request_too_large");
            return false;
        }
        c->body_expected = len;
    } else {
        c->body_expected = 0;
    }
    const struct tg_http_header *ex = tg_conn_header(c, "expect");
    if (ex != NULL) {
        if (ex->value_len == 12 && strncasecmp(ex->value, "100-continue", 12) == 0) {
            c->expect_continue = true;
        } else {
            conn_fail(c, 417, "Unsupported Expect header.", "bad_request");
            return false;
        }
    }
    if (c->expect_continue && c->body_expected != 0 && c->head.minor_version >= 1)
        bufferevent_write(c->bev, "HTTP/1.1 100 Continue\r\n\r\n", 25);
    conn_set_state(c, TG_CONN_READ_BODY);
    conn_arm_timer(c, tg_app->cfg.client_header_timeout_s);
    return true;
}

/* Moves body bytes from the input; returns 1 when complete, 0 need more, -1 failed. */
static int conn_read_body(struct tg_conn *c)
{
    struct evbuffer *in = bufferevent_get_input(c->bev);
    if (c->body_expected >= 0) {
        size_t have = evbuffer_get_length(c->body);
        size_t want = (size_t)c->body_expected - have;
        size_t avail = evbuffer_get_length(in);
        if (want > 0 && avail > 0)
            evbuffer_remove_buffer(in, c->body, TG_MIN(want, avail));
        return evbuffer_get_length(c->body) == (size_t)c->body_expected ? 1 : 0;
    }
    for (;;) {
        size_t avail = evbuffer_get_length(in);
        if (avail == 0)
            return 0;
        struct evbuffer_iovec v;
        if (evbuffer_peek(in, -1, NULL, &v, 1) < 1)
            return 0;
        size_t skip, data;
        enum tg_chunk_rc rc = tg_chunked_next(&c->chunked, v.iov_base, v.iov_len, &skip, &data);
        if (rc == TG_CHUNK_ERROR) {
            conn_fail(c, 400, "Malformed chunked request body.", "bad_request");
            return -1;
        }
        evbuffer_drain(in, skip);
        if (rc == TG_CHUNK_DATA) {
            if ((int64_t)(evbuffer_get_length(c->body) + data) > tg_app->cfg.max_body_bytes) {
                char msg[160];
                snprintf(msg, sizeof(msg), "Request body too large; the limit is %lld bytes.",
                         (long long)tg_app->cfg.max_body_bytes);
                conn_fail(c, 413, msg, "request_too_large");
                return -1;
            }
            evbuffer_remove_buffer(in, c->body, data);
            continue;
        }
        if (rc == TG_CHUNK_DONE)
            return 1;
        /* need more: everything in this segment was framing */
        if (skip == 0 && v.iov_len > 0)
            return 0;
    }
}

static void conn_dispatch(struct tg_conn *c)
{
    event_del(c->timer);
    conn_set_state(c, TG_CONN_HANDLING);
    /* keep reading while the handler works, to notice a client that leaves; bound what a
     * pipelining client can make us buffer */
    bufferevent_setwatermark(c->bev, EV_READ, 0, MAX_PIPELINED);
    tg_router_dispatch(c);
}

static void conn_process_input(struct tg_conn *c)
{
    struct evbuffer *in = bufferevent_get_input(c->bev);
    if (c->state == TG_CONN_READ_HEAD) {
        size_t avail = evbuffer_get_length(in);
        if (avail == 0)
            return;
        size_t look = TG_MIN(avail, (size_t)MAX_HEAD_BYTES);
        const char *p = (const char *)evbuffer_pullup(in, (ssize_t)look);
        struct tg_http_request_head h;
        int st = 400;
        ssize_t n = tg_http_parse_request(p, look, &h, &st);
        if (n == TG_HTTP_NEED_MORE) {
            if (avail >= MAX_HEAD_BYTES &&
                tg_http_unfinished_credential(p, look) > TG_MAX_CREDENTIAL_BYTES)
                conn_fail_auth(c); /* a credential this long is not one: as any bad one */
            else if (avail >= MAX_HEAD_BYTES)
                conn_fail(c, 431, "Request head too large.", "request_header_too_large");
            else if (c->requests > 0 || avail > 0)
                conn_arm_timer(c, tg_app->cfg.client_header_timeout_s);
            return;
        }
        if (n < 0) {
            conn_fail(c, st, st == 431 ? "Too many request headers." : "Malformed HTTP request.",
                      "bad_request");
            return;
        }
        /* keep our own copy of the head: the views must survive evbuffer changes */
        free(c->head_copy);
        c->head_copy = malloc((size_t)n);
        if (c->head_copy == NULL) {
            conn_close(c);
            return;
        }
        evbuffer_remove(in, c->head_copy, (size_t)n);
        c->head_len = (size_t)n;
        st = 400;
        if (tg_http_parse_request(c->head_copy, c->head_len, &c->head, &st) != n) {
            conn_close(c);
            return;
        }
        if (!conn_head_done(c))
            return;
    }
    if (c->state == TG_CONN_READ_BODY) {
        int rc = conn_read_body(c);
        if (rc == 1)
            conn_dispatch(c);
    }
}

static void conn_read_cb(struct bufferevent *bev, void *arg)
{
    (void)bev;
    struct tg_conn *c = arg;
    if (c->state == TG_CONN_READ_HEAD || c->state == TG_CONN_READ_BODY)
        conn_process_input(c);
    /* HANDLING: pipelined bytes wait in the input buffer; CLOSING: ignored */
}

static void conn_write_cb(struct bufferevent *bev, void *arg)
{
    (void)bev;
    struct tg_conn *c = arg;
    if (c->state == TG_CONN_CLOSING) {
        if (evbuffer_get_length(bufferevent_get_output(c->bev)) == 0)
            conn_close(c);
        return;
    }
    if (c->state == TG_CONN_HANDLING && c->owner_ops != NULL && c->owner_ops->on_writable)
        c->owner_ops->on_writable(c->owner);
}

static void conn_event_cb(struct bufferevent *bev, short what, void *arg)
{
    (void)bev;
    struct tg_conn *c = arg;
    if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR | BEV_EVENT_TIMEOUT)) {
        /* EOF while handling means the client went away (clients do not half-close while
         * waiting for an answer); a write time-out means it stopped reading. */
        conn_close(c);
    }
}

static void conn_timer_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct tg_conn *c = arg;
    switch (c->state) {
    case TG_CONN_READ_HEAD:
        if (evbuffer_get_length(bufferevent_get_input(c->bev)) == 0) {
            conn_close(c); /* idle keep-alive connection */
            return;
        }
        conn_fail(c, 408, "Request head not received in time.", "request_timeout");
        return;
    case TG_CONN_READ_BODY:
        conn_fail(c, 408, "Request body not received in time.", "request_timeout");
        return;
    case TG_CONN_CLOSING:
        conn_close(c);
        return;
    case TG_CONN_HANDLING:
        return;
    }
}

static void accept_cb(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa,
                      int socklen, void *arg)
{
    (void)l;
    (void)socklen;
    struct tg_worker *w = arg;
    if (!w->accepting) {
        evutil_closesocket(fd);
        return;
    }
    struct tg_conn *c = calloc(1, sizeof(*c));
    if (c == NULL) {
        evutil_closesocket(fd);
        return;
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    c->w = w;
    c->bev = bufferevent_socket_new(w->base, fd, BEV_OPT_CLOSE_ON_FREE);
    c->body = evbuffer_new();
    c->resp_headers = evbuffer_new();
    c->timer = evtimer_new(w->base, conn_timer_cb, c);
    if (c->bev == NULL || c->body == NULL || c->resp_headers == NULL || c->timer == NULL) {
        if (c->bev == NULL)
            evutil_closesocket(fd);
        conn_free_cb(-1, 0, c);
        return;
    }
    if (sa->sa_family == AF_INET) {
        struct sockaddr_in *a = (struct sockaddr_in *)sa;
        char ip[INET_ADDRSTRLEN];
        inet_ntop(AF_INET, &a->sin_addr, ip, sizeof(ip));
        snprintf(c->peer, sizeof(c->peer), "%s:%u", ip, ntohs(a->sin_port));
    } else if (sa->sa_family == AF_INET6) {
        struct sockaddr_in6 *a = (struct sockaddr_in6 *)sa;
        char ip[INET6_ADDRSTRLEN];
        inet_ntop(AF_INET6, &a->sin6_addr, ip, sizeof(ip));
        snprintf(c->peer, sizeof(c->peer), "[%s]:%u", ip, ntohs(a->sin6_port));
    }
    TAILQ_INSERT_TAIL(&w->conns, c, link);
    w->nconns++;
    atomic_fetch_add_explicit(&w->metrics.open_conns, 1, memory_order_relaxed);
    conn_set_state(c, TG_CONN_READ_HEAD);
    bufferevent_setcb(c->bev, conn_read_cb, conn_write_cb, conn_event_cb, c);
    bufferevent_setwatermark(c->bev, EV_WRITE, TG_CONN_LOW_WATERMARK, 0);
    struct timeval wt = {tg_app->cfg.upstream_idle_timeout_s, 0};
    bufferevent_set_timeouts(c->bev, NULL, &wt);
    bufferevent_enable(c->bev, EV_READ | EV_WRITE);
    conn_arm_timer(c, tg_app->cfg.client_idle_timeout_s);
}

static int make_listen_socket(bool reuseport, char *err, size_t errlen)
{
    const struct tg_config *cfg = &tg_app->cfg;
    int fd = socket(cfg->listen_addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        snprintf(err, errlen, "TOLLGATE_LISTEN: cannot create socket: %s", strerror(errno));
        return -1;
    }
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (reuseport && setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) != 0) {
        snprintf(err, errlen, "TOLLGATE_LISTEN: SO_REUSEPORT: %s", strerror(errno));
        close(fd);
        return -1;
    }
    if (bind(fd, (const struct sockaddr *)&cfg->listen_addr, cfg->listen_addr_len) != 0 ||
        listen(fd, 4096) != 0) {
        snprintf(err, errlen, "TOLLGATE_LISTEN: cannot listen on %s: %s", cfg->listen,
                 strerror(errno));
        close(fd);
        return -1;
    }
    return fd;
}

int tg_server_probe_listen(char *err, size_t errlen)
{
    int fd = make_listen_socket(false, err, errlen);
    if (fd < 0)
        return -1;
    /* with port 0 the kernel picked a port: keep using it */
    struct tg_config *cfg = &tg_app->cfg;
    struct sockaddr_storage ss;
    socklen_t len = sizeof(ss);
    if (getsockname(fd, (struct sockaddr *)&ss, &len) == 0) {
        cfg->listen_addr = ss;
        cfg->listen_addr_len = len;
    }
    close(fd);
    return 0;
}

int tg_server_listen(struct tg_worker *w, char *err, size_t errlen)
{
    int fd = make_listen_socket(true, err, errlen);
    if (fd < 0)
        return -1;
    w->listener = evconnlistener_new(w->base, accept_cb, w, LEV_OPT_CLOSE_ON_FREE, -1, fd);
    if (w->listener == NULL) {
        close(fd);
        snprintf(err, errlen, "TOLLGATE_LISTEN: cannot watch the listening socket");
        return -1;
    }
    w->accepting = true;
    return 0;
}

void tg_server_stop_accepting(struct tg_worker *w)
{
    w->accepting = false;
    if (w->listener != NULL) {
        evconnlistener_free(w->listener);
        w->listener = NULL;
    }
    struct tg_conn *c, *next;
    for (c = TAILQ_FIRST(&w->conns); c != NULL; c = next) {
        next = TAILQ_NEXT(c, link);
        if (c->state == TG_CONN_READ_HEAD &&
            evbuffer_get_length(bufferevent_get_input(c->bev)) == 0)
            conn_close(c);
        else
            c->keep_alive = false;
    }
}

void tg_server_close_all(struct tg_worker *w)
{
    struct tg_conn *c, *next;
    for (c = TAILQ_FIRST(&w->conns); c != NULL; c = next) {
        next = TAILQ_NEXT(c, link);
        conn_close(c);
    }
}
