/* log.c: structured log lines (JSON objects or key=value text), one write(2) each. */
#include "core/log.h"

#include "core/json_scan.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static enum tg_log_level log_level = TG_LOG_INFO;
static enum tg_log_format log_format = TG_LOGF_JSON;
static int log_fd = 2;
/* per-thread state, freed when the thread exits */
struct thread_log {
    struct tg_buf line;    /* the line being built */
    struct tg_buf pending; /* finished lines not yet written (buffered threads) */
    void (*arm)(void *);
    void *arm_arg;
    /* "YYYY-MM-DDTHH:MM:SS" of ts_sec (UTC): gmtime_r runs once a second, not once a line */
    time_t ts_sec;
    bool ts_valid;
    char ts_prefix[32];
    size_t ts_prefix_len;
};

static pthread_key_t buf_key;
static pthread_once_t buf_once = PTHREAD_ONCE_INIT;
/* this thread's state once allocated (pthread_getspecific is the authority; this saves the
 * pthread_once + lookup on every call); cleared by buf_free when the thread exits */
static __thread struct thread_log *cached_log;

static void write_all(const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(log_fd, p, n);
        if (w <= 0)
            break;
        p += w;
        n -= (size_t)w;
    }
}

static void buf_free(void *p)
{
    struct thread_log *t = p;
    cached_log = NULL;
    if (t->pending.len > 0)
        write_all(t->pending.data, t->pending.len);
    tg_buf_cleanup(&t->line);
    tg_buf_cleanup(&t->pending);
    free(t);
}

static void buf_key_init(void)
{
    pthread_key_create(&buf_key, buf_free);
}

static struct thread_log *thread_log(void)
{
    static struct thread_log fallback; /* only if allocation fails */
    if (cached_log != NULL)
        return cached_log;
    pthread_once(&buf_once, buf_key_init);
    struct thread_log *t = pthread_getspecific(buf_key);
    if (t == NULL) {
        t = calloc(1, sizeof(*t));
        if (t == NULL || pthread_setspecific(buf_key, t) != 0) {
            free(t);
            return &fallback;
        }
    }
    cached_log = t;
    return t;
}

void tg_log_set_thread_buffered(void (*arm)(void *arg), void *arg)
{
    struct thread_log *t = thread_log();
    t->arm = arm;
    t->arm_arg = arg;
}

void tg_log_flush_thread(void)
{
    struct thread_log *t = thread_log();
    if (t->pending.len == 0)
        return;
    write_all(t->pending.data, t->pending.len);
    tg_buf_reset(&t->pending);
    if (t->pending.cap > 262144)
        tg_buf_cleanup(&t->pending);
}

static const char *level_names[] = {"debug", "info", "warn", "error"};

void tg_log_setup(enum tg_log_level level, enum tg_log_format format, int fd)
{
    log_level = level;
    log_format = format;
    log_fd = fd;
}

bool tg_log_enabled(enum tg_log_level level)
{
    return level >= log_level;
}

/* Appends the n bytes at p; the caller has reserved room (tg_buf_reserve). */
static void put_reserved(struct tg_buf *b, const char *p, size_t n)
{
    memcpy(b->data + b->len, p, n);
    b->len += n;
    b->data[b->len] = '\0';
}

/* The formatting below is written out by hand (no printf family): one request line was ~20
 * vsnprintf calls. Allocation failures leave the line short, as the tg_buf calls did. */

static void put_bytes(struct tg_buf *b, const char *p, size_t n)
{
    if (tg_buf_reserve(b, n) == 0)
        put_reserved(b, p, n);
}

static void put_str(struct tg_buf *b, const char *s)
{
    put_bytes(b, s, strlen(s));
}

/* "2026-11-22T06:57:33.123Z": the date and time of day are cached per second and thread. */
static void put_ts(struct tg_buf *b)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    struct thread_log *t = thread_log();
    if (!t->ts_valid || t->ts_sec != ts.tv_sec) {
        struct tm tm;
        gmtime_r(&ts.tv_sec, &tm);
        int n = snprintf(t->ts_prefix, sizeof(t->ts_prefix), "%04d-%02d-%02dT%02d:%02d:%02d",
                         tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
                         tm.tm_sec);
        t->ts_prefix_len = n > 0 && (size_t)n < sizeof(t->ts_prefix) ? (size_t)n : 0;
        t->ts_sec = ts.tv_sec;
        t->ts_valid = true;
    }
    int ms = (int)(ts.tv_nsec / 1000000) % 1000;
    char frac[5] = {'.', (char)('0' + ms / 100), (char)('0' + ms / 10 % 10), (char)('0' + ms % 10),
                    'Z'};
    if (tg_buf_reserve(b, t->ts_prefix_len + sizeof(frac)) != 0)
        return;
    put_reserved(b, t->ts_prefix, t->ts_prefix_len);
    put_reserved(b, frac, sizeof(frac));
}

/* Decimal of v (as "%lld"), into out[24]; returns its length. */
static size_t fmt_i64(char out[24], int64_t v)
{
    char tmp[24];
    size_t n = 0;
    uint64_t u = v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v;
    do {
        tmp[n++] = (char)('0' + u % 10);
        u /= 10;
    } while (u != 0);
    size_t len = 0;
    if (v < 0)
        out[len++] = '-';
    while (n > 0)
        out[len++] = tmp[--n];
    return len;
}

/* A JSON string: printable ASCII without '"' and '\\' is copied in one piece (every value of a
 * request line); anything else goes through tg_json_escape, which gives the same bytes for
 * such a string. */
static void put_json_string(struct tg_buf *b, const char *val, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)val[i];
        if (c < 0x20 || c >= 0x7F || c == '"' || c == '\\') {
            (void)!tg_json_escape(b, val, n);
            return;
        }
    }
    if (tg_buf_reserve(b, n + 2) != 0)
        return;
    b->data[b->len++] = '"';
    if (n > 0)
        memcpy(b->data + b->len, val, n);
    b->len += n;
    b->data[b->len++] = '"';
    b->data[b->len] = '\0';
}

static void put_text_value(struct tg_buf *b, const char *val, size_t n)
{
    bool quote = n == 0 || memchr(val, ' ', n) || memchr(val, '"', n) || memchr(val, '=', n);
    if (quote)
        (void)!tg_json_escape(b, val, n);
    else
        (void)!tg_buf_append(b, val, n);
}

static void put_key(struct tg_logline *l, const char *key)
{
    size_t n = strlen(key);
    if (tg_buf_reserve(l->b, n + 4) != 0)
        return;
    if (log_format == TG_LOGF_JSON) {
        put_reserved(l->b, ",\"", 2);
        put_reserved(l->b, key, n);
        put_reserved(l->b, "\":", 2);
    } else {
        put_reserved(l->b, " ", 1);
        put_reserved(l->b, key, n);
        put_reserved(l->b, "=", 1);
    }
}

void tg_logline_begin(struct tg_logline *l, enum tg_log_level level, const char *msg)
{
    l->active = tg_log_enabled(level);
    l->b = NULL;
    if (!l->active)
        return;
    l->b = &thread_log()->line;
    tg_buf_reset(l->b);
    if (log_format == TG_LOGF_JSON) {
        put_str(l->b, "{\"ts\":\"");
        put_ts(l->b);
        put_str(l->b, "\",\"level\":\"");
        put_str(l->b, level_names[level]);
        put_str(l->b, "\",\"msg\":");
        put_json_string(l->b, msg, strlen(msg));
    } else {
        put_ts(l->b);
        /* " %-5s " */
        const char *name = level_names[level];
        size_t n = strlen(name);
        char lv[16] = "       ";
        if (n > sizeof(lv) - 2)
            n = sizeof(lv) - 2;
        memcpy(lv + 1, name, n);
        put_bytes(l->b, lv, n < 5 ? 7 : n + 2);
        put_str(l->b, msg);
    }
}

void tg_logline_strn(struct tg_logline *l, const char *key, const char *val, size_t n)
{
    if (!l->active)
        return;
    put_key(l, key);
    if (log_format == TG_LOGF_JSON)
        put_json_string(l->b, val, n);
    else
        put_text_value(l->b, val, n);
}

void tg_logline_str(struct tg_logline *l, const char *key, const char *val)
{
    if (val == NULL) {
        if (!l->active)
            return;
        put_key(l, key);
        put_bytes(l->b, "null", 4);
        return;
    }
    tg_logline_strn(l, key, val, strlen(val));
}

void tg_logline_int(struct tg_logline *l, const char *key, int64_t val)
{
    if (!l->active)
        return;
    put_key(l, key);
    char d[24];
    put_bytes(l->b, d, fmt_i64(d, val));
}

void tg_logline_bool(struct tg_logline *l, const char *key, bool val)
{
    if (!l->active)
        return;
    put_key(l, key);
    put_str(l->b, val ? "true" : "false");
}

void tg_logline_raw(struct tg_logline *l, const char *key, const char *json, size_t n)
{
    if (!l->active)
        return;
    put_key(l, key);
    put_bytes(l->b, json, n);
}

void tg_logline_end(struct tg_logline *l)
{
    if (!l->active)
        return;
    put_str(l->b, log_format == TG_LOGF_JSON ? "}\n" : "\n");
    struct thread_log *t = thread_log();
    if (t->arm != NULL && tg_buf_append(&t->pending, l->b->data, l->b->len) == 0) {
        if (t->pending.len > 32768)
            tg_log_flush_thread();
        else if (t->pending.len == l->b->len)
            t->arm(t->arm_arg);
    } else {
        write_all(l->b->data, l->b->len);
    }
    if (l->b->cap > 65536)
        tg_buf_cleanup(l->b);
    l->active = false;
}

void tg_log(enum tg_log_level level, const char *fmt, ...)
{
    if (!tg_log_enabled(level))
        return;
    char msg[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    struct tg_logline l;
    tg_logline_begin(&l, level, msg);
    tg_logline_end(&l);
}
