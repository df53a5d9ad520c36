/* fake_http.h: pure HTTP/1.x request-head parser and chunked-body decoder of the fake upstream. */
#ifndef TG_FAKE_HTTP_H
#define TG_FAKE_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/common.h"

#define TG_FAKE_MAX_HEADERS 100

/* Return codes of the incremental parsers (picohttpparser style). */
#define TG_FAKE_NEED_MORE (-2)
#define TG_FAKE_ERROR     (-1)

struct tg_fake_header {
    const char *name; /* view into the parsed buffer; not NUL-terminated */
    size_t name_len;
    const char *value; /* view, surrounding whitespace removed */
    size_t value_len;
};

struct tg_fake_head {
    const char *method; /* views into the parsed buffer */
    size_t method_len;
    const char *target;
    size_t target_len;
    int minor_version; /* HTTP/1.<minor_version>: 0 or 1 */
    size_t num_headers;
    struct tg_fake_header headers[TG_FAKE_MAX_HEADERS];
};

/*
 * Parses a request head (request line + header lines + blank line) at the start of buf[0..len).
 * Leading empty lines are skipped. Lines may end in CRLF or a bare LF.
 * Returns the length of the head (> 0) including the blank line, TG_FAKE_NEED_MORE when the
 * blank line has not arrived yet, or TG_FAKE_ERROR on a malformed head (also when there are
 * more than TG_FAKE_MAX_HEADERS headers). The views in `head` point into `buf` (borrowed).
 */
TG_MUST_CHECK int tg_fake_http_parse_head(const char *buf, size_t len, struct tg_fake_head *head);

/* Finds a header by case-insensitive name; returns NULL when absent (borrowed from `head`). */
const struct tg_fake_header *tg_fake_http_find(const struct tg_fake_head *head, const char *name);

/* Does the comma-separated header value contain `token` (case-insensitive)? */
bool tg_fake_http_has_token(const char *value, size_t value_len, const char *token);

/* Incremental decoder of a Transfer-Encoding: chunked body. Valid when zero-filled. */
struct tg_fake_chunked {
    int state;          /* internal state number */
    uint64_t remaining; /* data bytes left in the current chunk, or the size being read */
    unsigned digits;    /* hex digits read in the current size line */
};

/* Receives a run of decoded body bytes (a view into the fed input, borrowed). Returns 0, or
 * -1 to stop decoding with TG_FAKE_ERROR. */
typedef int (*tg_fake_chunk_data_fn)(void *arg, const char *data, size_t len);

/*
 * Feeds in[0..len) to the decoder; decoded data goes to `on_data`. Trailers are skipped.
 * Returns the number of bytes consumed (>= 0) when the body ended inside the input (bytes after
 * it belong to the next request), TG_FAKE_NEED_MORE when all input was consumed and the body
 * continues, or TG_FAKE_ERROR on malformed framing or a chunk size above 2^60.
 */
TG_MUST_CHECK long tg_fake_chunked_feed(struct tg_fake_chunked *d, const char *in, size_t len,
                                        tg_fake_chunk_data_fn on_data, void *arg);

#endif
