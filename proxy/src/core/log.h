/* log.h: one log line per event, JSON (default) or text, written with one write(2). */
#ifndef TG_LOG_H
#define TG_LOG_H

#include "core/buf.h"
#include "core/config.h"

/* Process-wide settings; call once before threads start. Lines go to fd (2 = stderr). */
void tg_log_setup(enum tg_log_level level, enum tg_log_format format, int fd);
bool tg_log_enabled(enum tg_log_level level);

/* A line under construction; lives on the caller's stack, uses a per-thread buffer. */
struct tg_logline {
    struct tg_buf *b;
    bool active; /* false when the level is filtered out: every call is then a no-op */
};

void tg_logline_begin(struct tg_logline *l, enum tg_log_level level, const char *msg);
void tg_logline_str(struct tg_logline *l, const char *key, const char *val);
void tg_logline_strn(struct tg_logline *l, const char *key, const char *val, size_t n);
void tg_logline_int(struct tg_logline *l, const char *key, int64_t val);
void tg_logline_bool(struct tg_logline *l, const char *key, bool val);
/* `json` must be valid JSON (an object, array, number...); text format prints it as is. */
void tg_logline_raw(struct tg_logline *l, const char *key, const char *json, size_t n);
/* Terminates and writes the line. */
void tg_logline_end(struct tg_logline *l);

/* Event-loop threads may buffer their lines: `arm(arg)` is called when the thread's buffer
 * goes from empty to non-empty (the loop then calls tg_log_flush_thread() soon, e.g. from a
 * 10 ms timer); a buffer above 32 KiB is written at once. Other threads write every line
 * immediately. */
void tg_log_set_thread_buffered(void (*arm)(void *arg), void *arg);
/* Writes this thread's buffered lines (also at thread exit). */
void tg_log_flush_thread(void);

/* A free-form message: {"ts","level","msg"} */
TG_PRINTF(2, 3) void tg_log(enum tg_log_level level, const char *fmt, ...);

#endif
