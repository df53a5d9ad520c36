/* ledger_row.h: one ledger row, its binary record encoding, record framing and COPY text. */
#ifndef TG_LEDGER_ROW_H
#define TG_LEDGER_ROW_H

#include "core/buf.h"
#include "core/common.h"

/* String column limits in bytes (the struct holds one more byte for the NUL). */
#define TG_LEDGER_USER_ID_MAX           128
#define TG_LEDGER_TEAM_ID_MAX           128
#define TG_LEDGER_MODEL_MAX             255
#define TG_LEDGER_UPSTREAM_CALL_ID_MAX  128
#define TG_LEDGER_CLIENT_REQUEST_ID_MAX 128

/* Encoded record: fixed part + five length-prefixed strings. */
#define TG_LEDGER_ROW_FIXED_BYTES 85
#define TG_LEDGER_ROW_ENCODED_MAX                                                                  \
    (TG_LEDGER_ROW_FIXED_BYTES + TG_LEDGER_USER_ID_MAX + TG_LEDGER_TEAM_ID_MAX +                   \
     TG_LEDGER_MODEL_MAX + TG_LEDGER_UPSTREAM_CALL_ID_MAX + TG_LEDGER_CLIENT_REQUEST_ID_MAX)
#define TG_LEDGER_ROW_VERSION 1

/* Frame: [u32 payload length LE][u32 crc32c LE of the length bytes then the payload][payload]. */
#define TG_LEDGER_FRAME_HEADER_BYTES 8
#define TG_LEDGER_FRAME_MAX_PAYLOAD  TG_LEDGER_ROW_ENCODED_MAX

/* Largest timestamps a row may carry: 9999-12-31 23:59:59.999999 UTC. */
#define TG_LEDGER_MAX_MS INT64_C(253402300799999)
#define TG_LEDGER_MAX_US INT64_C(253402300799999999)

enum tg_ledger_status {
    TG_LEDGER_STATUS_OK = 0,
    TG_LEDGER_STATUS_UPSTREAM_ERROR,
    TG_LEDGER_STATUS_CLIENT_ABORTED,
    TG_LEDGER_STATUS_BLOCKED,
};

enum tg_ledger_count_source {
    TG_LEDGER_COUNT_UPSTREAM = 0,
    TG_LEDGER_COUNT_ESTIMATED,
};

/* Every column of the `ledger` table except cost_usd, which PostgreSQL computes. */
struct tg_ledger_row {
    uint8_t request_id[16]; /* UUIDv7, raw bytes (version nibble 7) */
    int64_t started_at_ms;  /* must equal the UUID's 48-bit millisecond timestamp */
    int64_t finished_at_us; /* unix microseconds */
    enum tg_route route;    /* CHAT .. MESSAGES (NONE and MODELS are refused) */
    enum tg_ledger_status status;
    enum tg_ledger_count_source count_source;
    int64_t prompt_tokens;
    int64_t completion_tokens;
    int64_t cached_tokens;    /* part of prompt_tokens */
    int64_t reasoning_tokens; /* part of completion_tokens */
    int64_t total_tokens;     /* prompt + completion (PostgreSQL checks) */
    int32_t upstream_status;  /* HTTP status 1..999; 0 = NULL (no upstream reply) */
    int32_t ttfb_ms;          /* -1 = NULL (no first byte) */
    int32_t latency_ms;       /* >= 0 */
    char user_id[TG_LEDGER_USER_ID_MAX + 1];
    char team_id[TG_LEDGER_TEAM_ID_MAX + 1]; /* "" = NULL */
    char model[TG_LEDGER_MODEL_MAX + 1];
    char upstream_call_id[TG_LEDGER_UPSTREAM_CALL_ID_MAX + 1];   /* "" = NULL */
    char client_request_id[TG_LEDGER_CLIENT_REQUEST_ID_MAX + 1]; /* "" = NULL */
};

/* The 48-bit millisecond timestamp of a UUIDv7 (bytes 0..5, big-endian). */
int64_t tg_ledger_uuid7_ms(const uint8_t id[16]);

/* Months since year 0 of the UTC month containing unix ms `ms` (year * 12 + month - 1),
 * e.g. 2024-03-15 -> 24290. `ms` in [0, TG_LEDGER_MAX_MS]. */
int64_t tg_ledger_month_index(int64_t ms);

/* Canonical names as stored in the ledger ("/v1/chat/completions", "ok", "upstream").
 * Return NULL for a value outside the enum. Static strings. */
const char *tg_ledger_route_name(enum tg_route route);
const char *tg_ledger_status_name(enum tg_ledger_status status);
const char *tg_ledger_count_source_name(enum tg_ledger_count_source source);

/* Checks what the record format itself requires: enums in range, strings NUL-terminated
 * within their limits, request_id a UUIDv7 whose timestamp equals started_at_ms,
 * timestamps in [1970, 9999], upstream_status 0..999, ttfb_ms >= -1, latency_ms >= 0.
 * Token arithmetic is left to PostgreSQL's CHECKs (a violating row is isolated there).
 * Returns 0, or -1 with a message in err. */
TG_MUST_CHECK int tg_ledger_row_check(const struct tg_ledger_row *row, char *err, size_t errlen);

/* Encodes a checked row into out[0..cap). Returns the encoded length (at most
 * TG_LEDGER_ROW_ENCODED_MAX), or 0 when tg_ledger_row_check fails or cap is too small. */
TG_MUST_CHECK size_t tg_ledger_row_encode(const struct tg_ledger_row *row, uint8_t *out,
                                          size_t cap);

/* Decodes exactly p[0..n) into *row (fully overwritten, strings NUL-terminated, started_at_ms
 * derived from the UUID). Validates the version, every enum, every length (the record must
 * end exactly at n), no NUL inside strings and everything tg_ledger_row_check checks.
 * Never reads outside p[0..n). Returns 0, or -1 (row contents then unspecified). */
TG_MUST_CHECK int tg_ledger_row_decode(const uint8_t *p, size_t n, struct tg_ledger_row *row);

/* Frame size for a payload of `len` bytes. */
static inline size_t tg_ledger_frame_size(size_t len)
{
    return TG_LEDGER_FRAME_HEADER_BYTES + len;
}

/* CRC-32C that a frame header carries for `payload` (covers the length bytes too). */
uint32_t tg_ledger_frame_crc(const uint8_t *payload, uint32_t len);

/* Writes header + payload at dst (which has tg_ledger_frame_size(len) bytes). */
void tg_ledger_frame_write(uint8_t *dst, const uint8_t *payload, uint32_t len);

enum tg_ledger_frame_result {
    TG_LEDGER_FRAME_OK = 0,    /* payload and len set; the frame is frame_bytes long */
    TG_LEDGER_FRAME_NEED_MORE, /* p[0..n) is a valid prefix of a frame (or empty) */
    TG_LEDGER_FRAME_CORRUPT,   /* impossible length or checksum mismatch */
};

/* Parses one frame at p[0..n). On OK, *payload points into p (borrowed). A length of 0 or
 * above TG_LEDGER_FRAME_MAX_PAYLOAD is CORRUPT even before the payload has arrived. */
enum tg_ledger_frame_result tg_ledger_frame_parse(const uint8_t *p, size_t n,
                                                  const uint8_t **payload, uint32_t *len,
                                                  size_t *frame_bytes);

/* Columns of a COPY line, in order (comma-separated, for the COPY and INSERT statements). */
#define TG_LEDGER_COPY_COLUMNS                                                                     \
    "request_id, user_id, team_id, model, route, status, prompt_tokens, completion_tokens, "       \
    "cached_tokens, reasoning_tokens, total_tokens, count_source, upstream_status, started_at, "   \
    "finished_at, ttfb_ms, latency_ms, upstream_call_id, client_request_id"

/* Appends one PostgreSQL COPY text-format line (TG_LEDGER_COPY_COLUMNS, tab-separated,
 * newline-terminated) for a checked row to out. Backslash, tab, newline, carriage return,
 * backspace, form feed and vertical tab are escaped; other control bytes as \xHH; invalid
 * UTF-8 becomes U+FFFD so one bad byte cannot make PostgreSQL refuse a billed row. NULL
 * columns are \N; timestamps are 'YYYY-MM-DD HH:MM:SS.ffffff+00'. Returns 0, or -1 when
 * the row fails tg_ledger_row_check or on allocation failure (out keeps its old length). */
TG_MUST_CHECK int tg_ledger_row_copy_line(const struct tg_ledger_row *row, struct tg_buf *out);

/* Formats unix microseconds as 'YYYY-MM-DD HH:MM:SS.ffffff+00' into out (>= 33 bytes).
 * Returns the length, or 0 when us is outside [0, TG_LEDGER_MAX_US]. */
size_t tg_ledger_format_timestamp(int64_t us, char *out, size_t cap);

/* Formats a UUID as 36 lowercase hex characters with dashes plus NUL (out >= 37 bytes). */
void tg_ledger_format_uuid(const uint8_t id[16], char *out);

#endif
