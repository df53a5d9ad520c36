/* body_scan.h: incremental scanner that captures top-level usage/error/id/model of a JSON reply. */
#ifndef TG_BODY_SCAN_H
#define TG_BODY_SCAN_H

#include "core/buf.h"
#include "core/common.h"

/* Largest raw value captured for "usage" and "error"; larger ones are marked truncated. */
#define TG_BODY_SCAN_MAX_VALUE_BYTES  (64 * 1024)
/* Largest raw (still escaped) "id" / "model" string considered. */
#define TG_BODY_SCAN_MAX_STRING_BYTES 512

/* One captured top-level value (the last occurrence of its key wins). */
struct tg_body_value {
    struct tg_buf raw; /* owned: the value's raw JSON bytes */
    bool seen;         /* the key occurred at the top level */
    bool complete;     /* the value ended inside the body fed so far */
    bool truncated;    /* larger than TG_BODY_SCAN_MAX_VALUE_BYTES (raw holds a prefix) */
};

/* Scanner state. Valid when zero-filled (tg_body_scan_init does that). Only the documented
 * result fields and accessors are for callers; the rest is private to body_scan.c. */
struct tg_body_scan {
    struct tg_body_value usage; /* top-level "usage" */
    struct tg_body_value error; /* top-level "error" */
    char id[128];               /* decoded top-level "id" string; "" if absent/too long */
    char model[256];            /* decoded top-level "model" string; "" if absent/too long */
    /* private */
    uint8_t phase;  /* before root / in root object / done / not an object */
    uint8_t top;    /* position in the root object's member syntax */
    uint8_t target; /* which capture the current member value goes to */
    uint8_t vkind;  /* string, container or scalar */
    bool in_str;    /* inside a string of the current value */
    bool esc;       /* the previous byte was a backslash inside a string */
    bool key_long;  /* the current key is longer than key[] (never one we capture) */
    uint8_t key_len;
    char key[24];                            /* raw key bytes, quotes included */
    size_t depth;                            /* bracket depth inside a container value */
    size_t str_len;                          /* bytes in str[] */
    bool str_long;                           /* the id/model string exceeded str[] */
    char str[TG_BODY_SCAN_MAX_STRING_BYTES]; /* raw id/model string, quotes included */
};

/* Zero-fills s. */
void tg_body_scan_init(struct tg_body_scan *s);

/* Feeds the next n bytes of the reply body (any split). Never fails: malformed JSON
 * simply stops the capture at the first byte that breaks the top-level structure. */
void tg_body_scan_feed(struct tg_body_scan *s, const char *p, size_t n);

/* True once the root object's closing brace was seen. */
bool tg_body_scan_is_complete(const struct tg_body_scan *s);

/* Usage from the captured top-level "usage" object, mapped for `route` with
 * tg_usage_from_json. Returns true and fills *out when a complete, untruncated usage
 * object with token counts was captured; otherwise false and *out zeroed. */
bool tg_body_scan_usage(const struct tg_body_scan *s, enum tg_route route, struct tg_usage *out);

/* Raw JSON of the top-level "error" value (borrowed; valid until the next feed or cleanup).
 * Returns true when one was captured complete and untruncated (it may still be null). */
bool tg_body_scan_error(const struct tg_body_scan *s, const char **json, size_t *len);

/* Frees the captures and zero-fills s. NULL-safe. */
void tg_body_scan_cleanup(struct tg_body_scan *s);

#endif
