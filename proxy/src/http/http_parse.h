/* http_parse.h: pure HTTP/1.1 parsing: request and response heads, chunked bodies. */
#ifndef TG_HTTP_PARSE_H
#define TG_HTTP_PARSE_H

#include <sys/types.h>

#include "core/common.h"

#define TG_HTTP_MAX_HEADERS 128

/* Header views point into the caller's buffer. */
struct tg_http_header {
    const char *name;
    size_t name_len;
    const char *value; /* leading and trailing whitespace removed */
    size_t value_len;
};

struct tg_http_request_head {
    const char *method;
    size_t method_len;
    const char *target;
    size_t target_len;
    int minor_version; /* HTTP/1.<minor>: 0 or 1 */
    struct tg_http_header headers[TG_HTTP_MAX_HEADERS];
    size_t num_headers;
};

struct tg_http_response_head {
    int minor_version;
    int status;
    const char *reason;
    size_t reason_len;
    struct tg_http_header headers[TG_HTTP_MAX_HEADERS];
    size_t num_headers;
};

#define TG_HTTP_NEED_MORE (-2)
#define TG_HTTP_ERROR     (-1)

/* Parses a request head from buf[0..len) (which starts at the request line; leading empty
 * lines are skipped). Returns the head's length including the blank line when complete,
 * TG_HTTP_NEED_MORE, or TG_HTTP_ERROR with *err_status set to the status to answer
 * (400 malformed, 431 too many headers, 505 version). Views point into buf. */
ssize_t tg_http_parse_request(const char *buf, size_t len, struct tg_http_request_head *h,
                              int *err_status);

/* When buf[0..len) (an incomplete request head) ends inside a credential header line
 * (Authorization, X-Api-Key or Api-Key, no line end yet), the bytes of that line's value so
 * far; else 0. Tells a credential too long to be valid from any other oversized head. */
size_t tg_http_unfinished_credential(const char *buf, size_t len);

/* Parses a response head; same return convention (no err_status). */
ssize_t tg_http_parse_response(const char *buf, size_t len, struct tg_http_response_head *h);

/* Case-insensitive header lookup: the first header named `name`, or NULL. */
const struct tg_http_header *tg_http_find_header(const struct tg_http_header *hs, size_t n,
                                                 const char *name);
/* True when a comma-separated header value contains `token` (case-insensitive). */
bool tg_http_has_token(const char *value, size_t len, const char *token);
/* True for hop-by-hop headers that a proxy must not forward (RFC 9110 §7.6.1). */
bool tg_http_is_hop_by_hop(const char *name, size_t len);
/* Parses a Content-Length value: 0 or -1 (not a plain non-negative decimal). */
TG_MUST_CHECK int tg_http_parse_content_length(const char *v, size_t n, int64_t *out);

/* Incremental chunked-body decoder, valid when zero-filled. */
struct tg_chunked {
    int state;
    uint64_t remaining; /* payload bytes left in the current chunk */
    unsigned digits;    /* hex digits seen in the size line */
    size_t line_bytes;  /* bytes of the current framing line (bounded) */
};

enum tg_chunk_rc {
    TG_CHUNK_NEED_MORE, /* framing consumed as far as possible; more input needed */
    TG_CHUNK_DATA,      /* after `skip` framing bytes, `data` payload bytes follow */
    TG_CHUNK_DONE,      /* after `skip` bytes the body (with trailers) is complete */
    TG_CHUNK_ERROR,     /* malformed */
};

/* Looks at the next unparsed input p[0..n). The caller drops `*skip` bytes and then, for
 * TG_CHUNK_DATA, takes `*data` (> 0) payload bytes before calling again. */
enum tg_chunk_rc tg_chunked_next(struct tg_chunked *c, const char *p, size_t n, size_t *skip,
                                 size_t *data);

#endif
