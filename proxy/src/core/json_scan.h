/* json_scan.h: zero-allocation JSON validation and lookup over byte views.
 *
 * Used on every stream event and request body: it never allocates, never copies
 * (except into caller buffers) and never recurses past TG_JSON_MAX_DEPTH.
 * Views point into the caller's bytes and live as long as those bytes. */
#ifndef TG_JSON_SCAN_H
#define TG_JSON_SCAN_H

#include <sys/types.h>

#include "core/buf.h"
#include "core/common.h"

#define TG_JSON_MAX_DEPTH 512

enum tg_json_type {
    TG_JSON_NONE = 0, /* not found / invalid */
    TG_JSON_OBJECT,
    TG_JSON_ARRAY,
    TG_JSON_STRING, /* the view includes the quotes */
    TG_JSON_NUMBER,
    TG_JSON_TRUE,
    TG_JSON_FALSE,
    TG_JSON_NULL,
};

/* A view of one JSON value: the raw bytes [p, p+n) and its type. */
struct tg_jv {
    const char *p;
    size_t n;
    enum tg_json_type type;
};

/* Validates p[0..n) as exactly one JSON value (RFC 8259) with optional surrounding
 * whitespace. Returns 0 and sets *root, or -1 with *err_off (may be NULL) set to the
 * offset of the first offending byte. UTF-8 inside strings is not validated. */
TG_MUST_CHECK int tg_json_parse(const char *p, size_t n, struct tg_jv *root, size_t *err_off);

/* Iteration over a validated object or array view. */
struct tg_json_iter {
    const char *p;   /* next byte to look at */
    const char *end; /* one past the closing bracket */
};
void tg_json_iter_init(struct tg_json_iter *it, const struct tg_jv *container);
/* Next member of an object: returns false at the end. */
bool tg_json_next_member(struct tg_json_iter *it, struct tg_jv *key, struct tg_jv *value);
/* Next element of an array: returns false at the end. */
bool tg_json_next_elem(struct tg_json_iter *it, struct tg_jv *value);

/* True when the string view `s` decodes to exactly lit[0..litlen). */
bool tg_json_string_eq(const struct tg_jv *s, const char *lit, size_t litlen);
/* Shorthand for a NUL-terminated literal. */
bool tg_json_key_is(const struct tg_jv *key, const char *lit);

/* Value of `key` in object `obj` (the last occurrence, as Python and jansson do).
 * Returns false (and out->type = TG_JSON_NONE) when obj is not an object or has no such key. */
bool tg_json_get(const struct tg_jv *obj, const char *key, struct tg_jv *out);
/* Element `index` of an array. */
bool tg_json_at(const struct tg_jv *arr, size_t index, struct tg_jv *out);
/* Dotted path: "usage.prompt_tokens_details.cached_tokens", "choices.0.delta".
 * A segment of digits indexes an array. */
bool tg_json_path(const struct tg_jv *root, const char *path, struct tg_jv *out);

/* An integer number (a fraction of zeros like 12.0 is accepted; exponents are not).
 * Returns 0 or -1 (not a number, not integral, or out of int64 range). */
TG_MUST_CHECK int tg_json_int64(const struct tg_jv *v, int64_t *out);
/* True only for the literal `true`. */
bool tg_json_is_true(const struct tg_jv *v);

/* Decodes a string view, handing decoded UTF-8 pieces to `emit` (in order, possibly
 * many small pieces). Escaped lone surrogates become U+FFFD. */
typedef void (*tg_json_emit_fn)(const char *p, size_t n, void *arg);
void tg_json_string_decode(const struct tg_jv *s, tg_json_emit_fn emit, void *arg);
/* Decodes a string view into dst (not NUL-terminated). Returns the decoded length,
 * or -1 when it does not fit in cap (dst then holds a prefix) or s is not a string. */
ssize_t tg_json_string_copy(const struct tg_jv *s, char *dst, size_t cap);
/* Decoded length of a string view, without copying. */
size_t tg_json_string_len(const struct tg_jv *s);

/* Appends s[0..n) as a quoted JSON string. Control characters, '"' and '\\' are
 * escaped; valid UTF-8 passes through; each invalid UTF-8 byte becomes U+FFFD.
 * Returns 0 or -1 (allocation failure). */
TG_MUST_CHECK int tg_json_escape(struct tg_buf *b, const char *s, size_t n);

#endif
