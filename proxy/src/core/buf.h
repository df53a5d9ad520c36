/* buf.h: a growable byte buffer for pure modules (no libevent). */
#ifndef TG_BUF_H
#define TG_BUF_H

#include "core/common.h"

struct tg_buf {
    char *data; /* owned; NUL-terminated when len < cap */
    size_t len;
    size_t cap;
};

/* Zero-filled is a valid empty buffer. tg_buf_cleanup frees and re-zeroes (NULL-safe). */
void tg_buf_cleanup(struct tg_buf *b);
/* Ensures room for `more` bytes plus a NUL; returns 0 or -1 on allocation failure. */
TG_MUST_CHECK int tg_buf_reserve(struct tg_buf *b, size_t more);
/* Append bytes / a C string / formatted text. Return 0 or -1 (buffer unchanged on failure). */
TG_MUST_CHECK int tg_buf_append(struct tg_buf *b, const void *p, size_t n);
TG_MUST_CHECK int tg_buf_puts(struct tg_buf *b, const char *s);
TG_MUST_CHECK TG_PRINTF(2, 3) int tg_buf_printf(struct tg_buf *b, const char *fmt, ...);
/* Forget the contents, keep the memory. */
void tg_buf_reset(struct tg_buf *b);

#endif
