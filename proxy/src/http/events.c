/* events.c: fan-out of live events to SSE subscribers on any worker, with bounded buffers. */
#include "http/events.h"

#include <event2/buffer.h>
#include <event2/event.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "http/server.h"
#include "http/worker.h"

struct sub {
    struct tg_conn *conn; /* NULL once the client is gone */
    struct tg_worker *w;
    struct evbuffer *pending; /* written by publishers under mu, drained by the worker */
    bool posted;              /* a flush is queued on the worker */
    bool overflow;            /* fell behind: to be dropped */
    bool gone;
    int refs; /* the list + a queued flush */
    struct sub *next;
    struct event *ping;
};

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static struct sub *subs;
static atomic_int nsubs;
static atomic_uint_fast64_t dropped;

bool tg_events_has_listeners(void)
{
    return atomic_load_explicit(&nsubs, memory_order_relaxed) > 0;
}

uint64_t tg_events_dropped(void)
{
    return atomic_load(&dropped);
}

/* mu held */
static void unref_locked(struct sub *s)
{
    if (--s->refs > 0)
        return;
    evbuffer_free(s->pending);
    free(s);
}

static void unlink_locked(struct sub *s)
{
    for (struct sub **pp = &subs; *pp; pp = &(*pp)->next) {
        if (*pp == s) {
            *pp = s->next;
            atomic_fetch_sub(&nsubs, 1);
            unref_locked(s);
            return;
        }
    }
}

static void sub_close(struct sub *s, bool drop_client)
{
    /* worker thread of s */
    if (s->ping != NULL) {
        event_free(s->ping);
        s->ping = NULL;
    }
    struct tg_conn *c = s->conn;
    s->conn = NULL;
    pthread_mutex_lock(&mu);
    if (!s->gone) {
        s->gone = true;
        unlink_locked(s);
    }
    pthread_mutex_unlock(&mu);
    if (c != NULL) {
        tg_conn_set_owner(c, NULL, NULL);
        if (drop_client)
            tg_conn_reply_abort(c);
        else
            tg_conn_reply_end(c);
    }
}

static void flush_cb(void *arg)
{
    struct sub *s = arg;
    pthread_mutex_lock(&mu);
    s->posted = false;
    bool overflow = s->overflow;
    struct evbuffer *tmp = evbuffer_new();
    if (tmp != NULL)
        evbuffer_add_buffer(tmp, s->pending);
    bool gone = s->gone;
    pthread_mutex_unlock(&mu);
    if (!gone && s->conn != NULL) {
        if (overflow || tg_conn_out_pending(s->conn) > TG_EVENTS_MAX_BACKLOG) {
            atomic_fetch_add(&dropped, 1);
            tg_log(TG_LOG_WARN, "events: dropping a subscriber that stopped reading (%s)",
                   s->conn->peer);
            sub_close(s, true);
        } else if (tmp != NULL) {
            tg_conn_reply_send(s->conn, tmp);
        }
    }
    if (tmp != NULL)
        evbuffer_free(tmp);
    pthread_mutex_lock(&mu);
    unref_locked(s);
    pthread_mutex_unlock(&mu);
}

void tg_events_publish(const char *type, const char *json, size_t len)
{
    if (!tg_events_has_listeners())
        return;
    pthread_mutex_lock(&mu);
    for (struct sub *s = subs; s != NULL; s = s->next) {
        if (s->overflow)
            continue;
        if (evbuffer_get_length(s->pending) + len + 64 > TG_EVENTS_MAX_BACKLOG) {
            s->overflow = true;
        } else {
            evbuffer_add_printf(s->pending, "event: %s\ndata: ", type);
            evbuffer_add(s->pending, json, len);
            evbuffer_add(s->pending, "\n\n", 2);
        }
        if (!s->posted) {
            s->refs++;
            if (tg_worker_post(s->w, flush_cb, s) == 0)
                s->posted = true;
            else
                s->refs--;
        }
    }
    pthread_mutex_unlock(&mu);
}

static void on_gone(void *arg)
{
    struct sub *s = arg;
    s->conn = NULL;
    sub_close(s, false);
}

static void on_writable(void *arg)
{
    (void)arg;
}

static const struct tg_conn_owner_ops ops = {on_writable, on_gone};

static void ping_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct sub *s = arg;
    if (s->conn == NULL)
        return;
    if (tg_conn_out_pending(s->conn) > TG_EVENTS_MAX_BACKLOG) {
        atomic_fetch_add(&dropped, 1);
        sub_close(s, true);
        return;
    }
    tg_conn_reply_send_mem(s->conn, ": keep-alive\n\n", 14);
}

void tg_events_subscribe(struct tg_conn *c)
{
    struct sub *s = calloc(1, sizeof(*s));
    if (s == NULL || (s->pending = evbuffer_new()) == NULL) {
        free(s);
        tg_conn_reply(c, 503, "application/json", "{}", 2);
        return;
    }
    s->conn = c;
    s->w = c->w;
    s->refs = 1;
    tg_conn_set_owner(c, &ops, s);
    tg_conn_add_header(c, "Cache-Control", "no-cache");
    tg_conn_add_header(c, "X-Accel-Buffering", "no");
    tg_conn_reply_start(c, 200, "text/event-stream");
    tg_conn_reply_send_mem(c, ": tollgate events\n\n", 19);
    s->ping = event_new(c->w->base, -1, EV_PERSIST, ping_cb, s);
    struct timeval tv = {15, 0};
    if (s->ping != NULL)
        event_add(s->ping, &tv);
    pthread_mutex_lock(&mu);
    s->next = subs;
    subs = s;
    atomic_fetch_add(&nsubs, 1);
    pthread_mutex_unlock(&mu);
}
