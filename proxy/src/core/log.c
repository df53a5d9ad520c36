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
};

static pthread_key_t buf_key;
static pthread_once_t buf_once = PTHREAD_ONCE_INIT;

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
    pthread_once(&buf_once, buf_key_init);
    struct thread_log *t = pthread_getspecific(buf_key);
    if (t == NULL) {
        t = calloc(1, sizeof(*t));
        if (t == NULL || pthread_setspecific(buf_key, t) != 0) {
            free(t);
            return &fallback;
        }
    }
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

static void put_ts(struct tg_buf *b)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    struct tm tm;
    gmtime_r(&ts.tv_sec, &tm);
    char out[80];
    snprintf(out, sizeof(out), "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
             tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
             (int)(ts.tv_nsec / 1000000) % 1000);
    (void)!tg_buf_puts(b, out);
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
    if (log_format == TG_LOGF_JSON) {
        (void)!tg_buf_puts(l->b, ",\"");
        (void)!tg_buf_puts(l->b, key);
        (void)!tg_buf_puts(l->b, "\":");
    } else {
        (void)!tg_buf_puts(l->b, " ");
        (void)!tg_buf_puts(l->b, key);
        (void)!tg_buf_puts(l->b, "=");
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
        (void)!tg_buf_puts(l->b, "{\"ts\":\"");
        put_ts(l->b);
        (void)!tg_buf_printf(l->b, "\",\"level\":\"%s\",\"msg\":", level_names[level]);
        (void)!tg_json_escape(l->b, msg, strlen(msg));
    } else {
        put_ts(l->b);
        (void)!tg_buf_printf(l->b, " %-5s ", level_names[level]);
        (void)!tg_buf_puts(l->b, msg);
    }
}

void tg_logline_strn(struct tg_logline *l, const char *key, const char *val, size_t n)
{
    if (!l->active)
        return;
    put_key(l, key);
    if (log_format == TG_LOGF_JSON)
        (void)!tg_json_escape(l->b, val, n);
    else
        put_text_value(l->b, val, n);
}

void tg_logline_str(struct tg_logline *l, const char *key, const char *val)
{
    if (val == NULL) {
        if (!l->active)
            return;
        put_key(l, key);
        (void)!tg_buf_puts(l->b, "null");
        return;
    }
    tg_logline_strn(l, key, val, strlen(val));
}

void tg_logline_int(struct tg_logline *l, const char *key, int64_t val)
{
    if (!l->active)
        return;
    put_key(l, key);
    (void)!tg_buf_printf(l->b, "%lld", (long long)val);
}

void tg_logline_bool(struct tg_logline *l, const char *key, bool val)
{
    if (!l->active)
        return;
    put_key(l, key);
    (void)!tg_buf_puts(l->b, val ? "true" : "false");
}

void tg_logline_raw(struct tg_logline *l, const char *key, const char *json, size_t n)
{
    if (!l->active)
        return;
    put_key(l, key);
    (void)!tg_buf_append(l->b, json, n);
}

void tg_logline_end(struct tg_logline *l)
{
    if (!l->active)
        return;
    (void)!tg_buf_puts(l->b, log_format == TG_LOGF_JSON ? "}\n" : "\n");
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
