/* redis_async.c: hiredis async + libevent with exactly-once callbacks, time-outs, reconnect. */
#include "quota/redis_async.h"

#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/event.h>
#include <hiredis/async.h>
#include <hiredis/adapters/libevent.h>

/*
 * Exactly once. hiredis calls every reply callback once: with the reply, or with NULL when the
 * context is freed (by us, or by hiredis itself after an I/O error). We add:
 *  - commands issued while not ready are queued on `failq` and failed from `fail_ev` on the
 *    next loop turn (never inside the issuing call);
 *  - time-outs: one timer for the oldest command in flight (replies come in order, so the head
 *    of `inflight` always has the earliest deadline). On expiry the context is freed, which
 *    fails every command in flight, as h2o's redis client does;
 *  - the struct is freed only when it is being destroyed, no callback chain of ours is running
 *    (depth == 0) and hiredis holds no callback of ours (nrefs == 0), like hiredis' own
 *    REDIS_IN_CALLBACK / REDIS_FREEING and pgbouncer's JUSTFREE.
 * Never free a context from onConnect/onDisconnect (hiredis 0.14 touches it afterwards): a
 * failure there is turned into an immediate time-out of the handshake instead.
 */

enum conn_state {
    ST_IDLE,        /* no context; reconnect timer pending */
    ST_CONNECTING,  /* TCP connect, AUTH, SELECT, PING */
    ST_SUBSCRIBING, /* subscriber: SUBSCRIBE sent, confirmation pending */
    ST_READY,
};

struct cmd {
    struct cmd *prev, *next; /* in inflight or failq */
    struct tg_redis *r;
    tg_redis_cb cb;
    void *arg;
    int64_t deadline_ms;
    enum tg_redis_status fail_status;     /* reported with a NULL reply */
    const struct tg_redis_script *script; /* EVALSHA that may be resent as EVAL */
    char *evalsha;                        /* its formatted command, kept for the resend */
    size_t evalsha_len;
    bool retried;
};

struct cmd_list {
    struct cmd *head, *tail;
};

struct tg_redis {
    struct event_base *base; /* borrowed */
    char *host, *password, *channel;
    int port, db, timeout_ms, backoff_min_ms, backoff_max_ms, backoff_ms;
    tg_redis_state_cb on_state;
    void *state_arg;
    tg_redis_message_cb on_message;
    tg_redis_subscribed_cb on_subscribed;
    void *sub_arg;

    redisAsyncContext *ac; /* current context; NULL when idle; its data points back here */
    enum conn_state state;
    int64_t handshake_deadline_ms;
    struct cmd_list inflight; /* sent, in order */
    struct cmd_list failq;    /* to fail on the next loop turn */
    struct event *timer, *reconnect, *fail_ev;
    int depth;      /* callback chains of ours running */
    unsigned nrefs; /* callbacks of ours that hiredis still holds */
    bool destroying;
    char last_error[160];
    struct tg_redis_stats stats;
};

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void list_push(struct cmd_list *l, struct cmd *c)
{
    c->next = NULL;
    c->prev = l->tail;
    if (l->tail)
        l->tail->next = c;
    else
        l->head = c;
    l->tail = c;
}

static void list_unlink(struct cmd_list *l, struct cmd *c)
{
    if (c->prev)
        c->prev->next = c->next;
    else
        l->head = c->next;
    if (c->next)
        c->next->prev = c->prev;
    else
        l->tail = c->prev;
    c->prev = c->next = NULL;
}

static void set_error(struct tg_redis *r, const char *fmt, ...) TG_PRINTF(2, 3);
static void set_error(struct tg_redis *r, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(r->last_error, sizeof(r->last_error), fmt, ap);
    va_end(ap);
}

const char *tg_redis_status_name(enum tg_redis_status st)
{
    switch (st) {
    case TG_REDIS_OK:
        return "ok";
    case TG_REDIS_TIMEOUT:
        return "timeout";
    case TG_REDIS_DISCONNECTED:
        return "disconnected";
    case TG_REDIS_NOT_CONNECTED:
        return "not connected";
    case TG_REDIS_SHUTDOWN:
        return "shutdown";
    }
    return "unknown";
}

static void cmd_free(struct cmd *c)
{
    free(c->evalsha); /* from tg_redis_format_argv */
    free(c);
}

static struct cmd *cmd_new(struct tg_redis *r, tg_redis_cb cb, void *arg)
{
    struct cmd *c = calloc(1, sizeof(*c));
    if (c == NULL)
        return NULL;
    c->r = r;
    c->cb = cb;
    c->arg = arg;
    c->fail_status = TG_REDIS_DISCONNECTED;
    return c;
}

/* Calls the callback and frees the command. The caller holds r->depth. */
static void deliver(struct cmd *c, const redisReply *reply, enum tg_redis_status st)
{
    c->cb(c->arg, reply, st);
    cmd_free(c);
}

static void free_client(struct tg_redis *r)
{
    if (r->timer)
        event_free(r->timer);
    if (r->reconnect)
        event_free(r->reconnect);
    if (r->fail_ev)
        event_free(r->fail_ev);
    free(r->host);
    free(r->password);
    free(r->channel);
    free(r);
}

/* Frees r once it is being destroyed and nothing can reach it any more. Must be the last
 * thing an entry point does with r. */
static void maybe_free(struct tg_redis *r)
{
    if (!r->destroying || r->depth > 0)
        return;
    r->depth++;
    struct cmd *c;
    while ((c = r->failq.head) != NULL) {
        list_unlink(&r->failq, c);
        deliver(c, NULL, c->fail_status);
    }
    r->depth--;
    if (r->nrefs > 0)
        return;
    free_client(r);
}

static void fail_later(struct tg_redis *r, struct cmd *c, enum tg_redis_status st)
{
    c->fail_status = st;
    if (st == TG_REDIS_NOT_CONNECTED)
        r->stats.failed_fast++;
    list_push(&r->failq, c);
    event_active(r->fail_ev, EV_TIMEOUT, 0);
}

static void on_fail_ev(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct tg_redis *r = arg;
    struct cmd *c;
    r->depth++;
    while ((c = r->failq.head) != NULL) {
        list_unlink(&r->failq, c);
        deliver(c, NULL, c->fail_status);
    }
    r->depth--;
    maybe_free(r);
}

static void arm_timer(struct tg_redis *r, bool force)
{
    if (r->destroying)
        return;
    int64_t at = INT64_MAX;
    if (r->ac && (r->state == ST_CONNECTING || r->state == ST_SUBSCRIBING))
        at = r->handshake_deadline_ms;
    if (r->inflight.head && r->inflight.head->deadline_ms < at)
        at = r->inflight.head->deadline_ms;
    if (at == INT64_MAX)
        return;
    /* Deadlines only grow (one timeout for all), so a pending timer is never late. */
    if (!force && evtimer_pending(r->timer, NULL))
        return;
    int64_t d = at - now_ms();
    if (d < 0)
        d = 0;
    struct timeval tv = {.tv_sec = (time_t)(d / 1000), .tv_usec = (suseconds_t)(d % 1000) * 1000};
    evtimer_add(r->timer, &tv);
}

static void notify_state(struct tg_redis *r, bool ready)
{
    if (r->on_state && !r->destroying)
        r->on_state(r->state_arg, ready);
}

static void schedule_reconnect(struct tg_redis *r)
{
    if (r->destroying)
        return;
    int delay = r->backoff_ms;
    r->backoff_ms = r->backoff_ms > r->backoff_max_ms / 2 ? r->backoff_max_ms : r->backoff_ms * 2;
    struct timeval tv = {.tv_sec = delay / 1000, .tv_usec = (delay % 1000) * 1000};
    evtimer_add(r->reconnect, &tv);
}

/* hiredis is tearing r->ac down by itself (I/O error, EOF, failed connect). */
static void lost(struct tg_redis *r, const char *why)
{
    redisAsyncContext *ac = r->ac;
    bool was_ready = r->state == ST_READY;
    set_error(r, "%s%s%s", why, ac && ac->c.errstr[0] ? ": " : "", ac ? ac->c.errstr : "");
    if (ac)
        ac->data = NULL;
    r->ac = NULL;
    r->state = ST_IDLE;
    schedule_reconnect(r);
    if (was_ready) {
        r->stats.disconnects++;
        notify_state(r, false);
    }
}

/* We drop r->ac: every command in flight fails with st. */
static void drop(struct tg_redis *r, enum tg_redis_status st)
{
    redisAsyncContext *ac = r->ac;
    if (ac == NULL)
        return;
    for (struct cmd *c = r->inflight.head; c; c = c->next)
        c->fail_status = st;
    bool was_ready = r->state == ST_READY;
    ac->data = NULL;
    r->ac = NULL;
    r->state = ST_IDLE;
    schedule_reconnect(r);
    if (was_ready)
        r->stats.disconnects++;
    redisAsyncFree(ac); /* runs the NULL callbacks now, or when hiredis' callback returns */
    if (was_ready)
        notify_state(r, false);
}

static void on_reply(redisAsyncContext *ac, void *reply, void *privdata);

/* Sends a formatted command on the current context; the command joins `inflight`. */
static bool send_formatted(struct tg_redis *r, struct cmd *c, const char *buf, size_t len)
{
    if (r->ac == NULL || redisAsyncFormattedCommand(r->ac, on_reply, c, buf, len) != REDIS_OK)
        return false;
    c->deadline_ms = now_ms() + r->timeout_ms;
    list_push(&r->inflight, c);
    r->nrefs++;
    arm_timer(r, false);
    return true;
}

/* EVAL <source> + the numkeys/keys/args of the EVALSHA command (they follow its 5th CRLF). */
static bool resend_as_eval(struct tg_redis *r, struct cmd *c)
{
    const char *p = c->evalsha, *end = c->evalsha + c->evalsha_len;
    int argc = atoi(p + 1);
    for (int crlf = 0; crlf < 5; crlf++) {
        p = memchr(p, '\n', (size_t)(end - p));
        if (p == NULL)
            return false;
        p++;
    }
    size_t rest = (size_t)(end - p), src = c->script->source_len;
    size_t cap = rest + src + 64;
    char *buf = malloc(cap);
    if (buf == NULL)
        return false;
    int n = snprintf(buf, cap, "*%d\r\n$4\r\nEVAL\r\n$%zu\r\n", argc, src);
    memcpy(buf + n, c->script->source, src);
    memcpy(buf + n + src, "\r\n", 2);
    memcpy(buf + n + src + 2, p, rest);
    c->retried = true;
    r->stats.noscript++;
    bool ok = send_formatted(r, c, buf, (size_t)n + src + 2 + rest);
    free(buf);
    return ok;
}

static void on_reply(redisAsyncContext *ac, void *reply, void *privdata)
{
    struct cmd *c = privdata;
    struct tg_redis *r = c->r;
    redisReply *rep = reply;
    r->depth++;
    r->nrefs--;
    list_unlink(&r->inflight, c);
    if (rep == NULL) {
        if (ac == r->ac)
            lost(r, "connection lost");
        deliver(c, NULL, c->fail_status);
    } else if (c->script && !c->retried && rep->type == REDIS_REPLY_ERROR &&
               strncmp(rep->str, "NOSCRIPT", 8) == 0 && ac == r->ac && r->state == ST_READY) {
        if (!resend_as_eval(r, c))
            deliver(c, NULL, TG_REDIS_DISCONNECTED);
    } else {
        deliver(c, rep, TG_REDIS_OK);
    }
    r->depth--;
    maybe_free(r);
}

/* ---- connection and handshake ---- */

static void on_sub(redisAsyncContext *ac, void *reply, void *privdata);

static bool send_internal(struct tg_redis *r, tg_redis_cb cb, const char *fmt, ...)
{
    char *buf = NULL;
    va_list ap;
    va_start(ap, fmt);
    int len = redisvFormatCommand(&buf, fmt, ap);
    va_end(ap);
    if (len < 0)
        return false;
    struct cmd *c = cmd_new(r, cb, r);
    bool ok = c != NULL && send_formatted(r, c, buf, (size_t)len);
    if (!ok)
        free(c);
    redisFreeCommand(buf);
    return ok;
}

static void become_ready(struct tg_redis *r)
{
    r->state = ST_READY;
    r->backoff_ms = r->backoff_min_ms;
    r->last_error[0] = '\0';
    r->stats.connects++;
    notify_state(r, true);
}

static bool handshake_failed(struct tg_redis *r, const redisReply *reply, enum tg_redis_status st,
                             const char *step)
{
    if (st != TG_REDIS_OK)
        return true; /* the connection is already going away */
    if (reply->type == REDIS_REPLY_ERROR) {
        set_error(r, "%s: %s", step, reply->str);
        drop(r, TG_REDIS_DISCONNECTED);
        return true;
    }
    return false;
}

static void on_auth(void *arg, const redisReply *reply, enum tg_redis_status st)
{
    handshake_failed(arg, reply, st, "AUTH");
}

static void on_select(void *arg, const redisReply *reply, enum tg_redis_status st)
{
    handshake_failed(arg, reply, st, "SELECT");
}

static void on_ping(void *arg, const redisReply *reply, enum tg_redis_status st)
{
    struct tg_redis *r = arg;
    if (handshake_failed(r, reply, st, "PING"))
        return;
    if (r->channel == NULL) {
        become_ready(r);
        return;
    }
    if (redisAsyncCommand(r->ac, on_sub, r, "SUBSCRIBE %s", r->channel) != REDIS_OK) {
        set_error(r, "SUBSCRIBE could not be sent");
        drop(r, TG_REDIS_DISCONNECTED);
        return;
    }
    r->nrefs++;
    r->state = ST_SUBSCRIBING;
    r->handshake_deadline_ms = now_ms() + r->timeout_ms;
    arm_timer(r, false);
}

static void on_sub(redisAsyncContext *ac, void *reply, void *privdata)
{
    struct tg_redis *r = privdata;
    redisReply *rep = reply;
    r->depth++;
    if (rep == NULL) {
        r->nrefs--;
        if (ac == r->ac)
            lost(r, "subscriber connection lost");
    } else if (ac == r->ac && rep->type == REDIS_REPLY_ARRAY && rep->elements >= 3 &&
               rep->element[0]->type == REDIS_REPLY_STRING) {
        const char *kind = rep->element[0]->str;
        if (strcmp(kind, "subscribe") == 0 && r->state == ST_SUBSCRIBING) {
            become_ready(r);
            if (r->on_subscribed && !r->destroying)
                r->on_subscribed(r->sub_arg);
        } else if (strcmp(kind, "message") == 0 && rep->element[2]->type == REDIS_REPLY_STRING &&
                   !r->destroying) {
            r->on_message(r->sub_arg, rep->element[2]->str, rep->element[2]->len);
        }
    }
    r->depth--;
    maybe_free(r);
}

static void on_connect(const redisAsyncContext *cac, int status)
{
    redisAsyncContext *ac = (redisAsyncContext *)cac;
    struct tg_redis *r = ac->data;
    if (r == NULL)
        return;
    r->depth++;
    if (status != REDIS_OK) {
        lost(r, "connect failed");
    } else {
        redisEnableKeepAlive(&ac->c);
        bool ok = true;
        if (r->password)
            ok = send_internal(r, on_auth, "AUTH %s", r->password);
        if (ok && r->db > 0)
            ok = send_internal(r, on_select, "SELECT %d", r->db);
        if (ok)
            ok = send_internal(r, on_ping, "PING");
        if (!ok) {
            /* Freeing the context here is unsafe: let the timer drop it at once. */
            set_error(r, "handshake could not be sent");
            r->handshake_deadline_ms = 0;
            arm_timer(r, true);
        }
    }
    r->depth--;
    maybe_free(r);
}

static void on_disconnect(const redisAsyncContext *cac, int status)
{
    (void)status;
    struct tg_redis *r = cac->data;
    if (r == NULL)
        return;
    r->depth++;
    lost(r, "disconnected");
    r->depth--;
    maybe_free(r);
}

static void connect_start(struct tg_redis *r)
{
    redisAsyncContext *ac = redisAsyncConnect(r->host, r->port);
    if (ac == NULL) {
        set_error(r, "connect: out of memory");
        schedule_reconnect(r);
        return;
    }
    if (ac->err) {
        set_error(r, "connect %s:%d: %s", r->host, r->port, ac->c.errstr);
        redisAsyncFree(ac);
        schedule_reconnect(r);
        return;
    }
    if (redisLibeventAttach(ac, r->base) != REDIS_OK) {
        set_error(r, "connect: cannot attach to the event loop");
        redisAsyncFree(ac);
        schedule_reconnect(r);
        return;
    }
    ac->data = r;
    redisAsyncSetConnectCallback(ac, on_connect);
    redisAsyncSetDisconnectCallback(ac, on_disconnect);
    r->ac = ac;
    r->state = ST_CONNECTING;
    r->handshake_deadline_ms = now_ms() + r->timeout_ms;
    arm_timer(r, false);
}

static void on_reconnect(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct tg_redis *r = arg;
    r->depth++;
    if (r->ac == NULL)
        connect_start(r);
    r->depth--;
    maybe_free(r);
}

static void on_timer(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct tg_redis *r = arg;
    int64_t now = now_ms();
    r->depth++;
    if (r->ac && (r->state == ST_CONNECTING || r->state == ST_SUBSCRIBING) &&
        now >= r->handshake_deadline_ms) {
        if (r->handshake_deadline_ms > 0)
            set_error(r, "connect to %s:%d timed out after %d ms", r->host, r->port, r->timeout_ms);
        r->stats.timeouts++;
        drop(r, TG_REDIS_TIMEOUT);
    } else if (r->inflight.head && now >= r->inflight.head->deadline_ms) {
        set_error(r, "command timed out after %d ms", r->timeout_ms);
        r->stats.timeouts++;
        drop(r, TG_REDIS_TIMEOUT);
    }
    arm_timer(r, true);
    r->depth--;
    maybe_free(r);
}

static char *dup_or_null(const char *s)
{
    return (s && *s) ? strdup(s) : NULL;
}

static struct tg_redis *create(struct event_base *base, const struct tg_redis_opts *o)
{
    if (base == NULL || o == NULL || o->host == NULL || o->host[0] == '\0' || o->port <= 0 ||
        o->port > 65535 || o->timeout_ms <= 0 || o->db < 0 || o->reconnect_min_ms < 0 ||
        o->reconnect_max_ms < 0)
        return NULL;
    struct tg_redis *r = calloc(1, sizeof(*r));
    if (r == NULL)
        return NULL;
    r->base = base;
    r->host = strdup(o->host);
    r->password = dup_or_null(o->password);
    r->port = o->port;
    r->db = o->db;
    r->timeout_ms = o->timeout_ms;
    r->backoff_min_ms = o->reconnect_min_ms > 0 ? o->reconnect_min_ms : 100;
    r->backoff_max_ms = o->reconnect_max_ms > 0 ? o->reconnect_max_ms : 5000;
    if (r->backoff_max_ms < r->backoff_min_ms)
        r->backoff_max_ms = r->backoff_min_ms;
    r->backoff_ms = r->backoff_min_ms;
    r->on_state = o->on_state;
    r->state_arg = o->state_arg;
    r->timer = evtimer_new(base, on_timer, r);
    r->reconnect = evtimer_new(base, on_reconnect, r);
    r->fail_ev = event_new(base, -1, 0, on_fail_ev, r);
    if (r->host == NULL || (o->password && o->password[0] && r->password == NULL) ||
        r->timer == NULL || r->reconnect == NULL || r->fail_ev == NULL) {
        free_client(r);
        return NULL;
    }
    return r;
}

struct tg_redis *tg_redis_create(struct event_base *base, const struct tg_redis_opts *o)
{
    struct tg_redis *r = create(base, o);
    if (r)
        connect_start(r);
    return r;
}

struct tg_redis *tg_redis_subscribe(struct event_base *base, const struct tg_redis_opts *o,
                                    const char *channel, tg_redis_message_cb on_message,
                                    tg_redis_subscribed_cb on_subscribed, void *arg)
{
    if (channel == NULL || channel[0] == '\0' || on_message == NULL)
        return NULL;
    struct tg_redis *r = create(base, o);
    if (r == NULL)
        return NULL;
    r->channel = strdup(channel);
    if (r->channel == NULL) {
        free_client(r);
        return NULL;
    }
    r->on_message = on_message;
    r->on_subscribed = on_subscribed;
    r->sub_arg = arg;
    connect_start(r);
    return r;
}

void tg_redis_destroy(struct tg_redis *r)
{
    if (r == NULL || r->destroying)
        return;
    r->destroying = true;
    r->depth++;
    evtimer_del(r->timer);
    evtimer_del(r->reconnect);
    drop(r, TG_REDIS_SHUTDOWN);
    r->depth--;
    maybe_free(r);
}

bool tg_redis_is_ready(const struct tg_redis *r)
{
    return r->state == ST_READY && r->ac != NULL && !r->destroying;
}

const char *tg_redis_last_error(const struct tg_redis *r)
{
    return r->last_error;
}

void tg_redis_get_stats(const struct tg_redis *r, struct tg_redis_stats *out)
{
    *out = r->stats;
}

/* Sends c (or queues its failure); takes ownership of c. buf stays the caller's. */
static void submit(struct tg_redis *r, struct cmd *c, const char *buf, size_t len)
{
    r->stats.commands++;
    if (r->destroying)
        fail_later(r, c, TG_REDIS_SHUTDOWN);
    else if (r->state != ST_READY)
        fail_later(r, c, TG_REDIS_NOT_CONNECTED);
    else if (!send_formatted(r, c, buf, len))
        fail_later(r, c, TG_REDIS_DISCONNECTED);
}

static int command_formatted(struct tg_redis *r, tg_redis_cb cb, void *arg, char *buf, int len)
{
    if (len < 0)
        return -1;
    struct cmd *c = cmd_new(r, cb, arg);
    if (c == NULL) {
        redisFreeCommand(buf);
        return -1;
    }
    submit(r, c, buf, (size_t)len);
    redisFreeCommand(buf);
    return 0;
}

int tg_redis_command(struct tg_redis *r, tg_redis_cb cb, void *arg, const char *fmt, ...)
{
    if (r == NULL || cb == NULL || fmt == NULL || r->channel != NULL)
        return -1;
    char *buf = NULL;
    va_list ap;
    va_start(ap, fmt);
    int len = redisvFormatCommand(&buf, fmt, ap);
    va_end(ap);
    return command_formatted(r, cb, arg, buf, len);
}

int tg_redis_command_argv(struct tg_redis *r, tg_redis_cb cb, void *arg, int argc,
                          const char **argv, const size_t *argvlen)
{
    if (r == NULL || cb == NULL || argc <= 0 || argv == NULL || r->channel != NULL)
        return -1;
    char *buf = NULL;
    int len = redisFormatCommandArgv(&buf, argc, argv, argvlen);
    return command_formatted(r, cb, arg, buf, len);
}

/* Decimal digits of v into p (no NUL); returns the count. */
static size_t put_uint(char *p, uint64_t v)
{
    char tmp[20];
    size_t n = 0;
    do {
        tmp[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v != 0);
    for (size_t i = 0; i < n; i++)
        p[i] = tmp[n - 1 - i];
    return n;
}

static size_t digits(uint64_t v)
{
    size_t n = 1;
    while (v >= 10) {
        v /= 10;
        n++;
    }
    return n;
}

int tg_redis_format_argv(char **out, int argc, const char **argv, const size_t *argvlen)
{
    *out = NULL;
    if (argc <= 0 || argv == NULL)
        return -1;
    size_t total = 1 + digits((uint64_t)argc) + 2;
    for (int i = 0; i < argc; i++) {
        size_t len = argvlen ? argvlen[i] : strlen(argv[i]);
        if (len > (size_t)INT_MAX)
            return -1;
        total += 1 + digits(len) + 2 + len + 2;
        if (total > (size_t)INT_MAX)
            return -1;
    }
    char *buf = malloc(total + 1);
    if (buf == NULL)
        return -1;
    char *p = buf;
    *p++ = '*';
    p += put_uint(p, (uint64_t)argc);
    *p++ = '\r';
    *p++ = '\n';
    for (int i = 0; i < argc; i++) {
        size_t len = argvlen ? argvlen[i] : strlen(argv[i]);
        *p++ = '$';
        p += put_uint(p, len);
        *p++ = '\r';
        *p++ = '\n';
        if (len > 0)
            memcpy(p, argv[i], len);
        p += len;
        *p++ = '\r';
        *p++ = '\n';
    }
    *p = '\0';
    *out = buf;
    return (int)total;
}

int tg_redis_evalsha(struct tg_redis *r, const struct tg_redis_script *s, int nkeys, int argc,
                     const char **argv, const size_t *argvlen, tg_redis_cb cb, void *arg)
{
    if (r == NULL || s == NULL || cb == NULL || nkeys < 0 || argc < nkeys || argc > 64 ||
        r->channel != NULL)
        return -1;
    const char *v[67];
    size_t vl[67];
    char nk[16];
    v[0] = "EVALSHA";
    vl[0] = 7;
    v[1] = s->sha1;
    vl[1] = strlen(s->sha1);
    vl[2] = put_uint(nk, (uint64_t)nkeys);
    v[2] = nk;
    for (int i = 0; i < argc; i++) {
        v[3 + i] = argv[i];
        vl[3 + i] = argvlen ? argvlen[i] : strlen(argv[i]);
    }
    /* formatted by hand: hiredis' redisFormatCommandArgv sprintf()s every argument's length */
    char *buf = NULL;
    int len = tg_redis_format_argv(&buf, argc + 3, v, vl);
    if (len < 0)
        return -1;
    struct cmd *c = cmd_new(r, cb, arg);
    if (c == NULL) {
        free(buf);
        return -1;
    }
    c->script = s;
    c->evalsha = buf;
    c->evalsha_len = (size_t)len;
    submit(r, c, buf, (size_t)len);
    return 0;
}
