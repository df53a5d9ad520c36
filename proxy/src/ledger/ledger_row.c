/* ledger_row.c: ledger row checks, binary record encoding, framing and COPY text lines. */
#include "ledger/ledger_row.h"

#include <stdio.h>
#include <string.h>

#include "ledger/crc32c.h"

static const char *const route_names[] = {
    [TG_ROUTE_CHAT] = "/v1/chat/completions", [TG_ROUTE_COMPLETIONS] = "/v1/completions",
    [TG_ROUTE_EMBEDDINGS] = "/v1/embeddings", [TG_ROUTE_RESPONSES] = "/v1/responses",
    [TG_ROUTE_MESSAGES] = "/v1/messages",
};

static const char *const status_names[] = {
    [TG_LEDGER_STATUS_OK] = "ok",
    [TG_LEDGER_STATUS_UPSTREAM_ERROR] = "upstream_error",
    [TG_LEDGER_STATUS_CLIENT_ABORTED] = "client_aborted",
    [TG_LEDGER_STATUS_BLOCKED] = "blocked",
};

static const char *const source_names[] = {
    [TG_LEDGER_COUNT_UPSTREAM] = "upstream",
    [TG_LEDGER_COUNT_ESTIMATED] = "estimated",
};

const char *tg_ledger_route_name(enum tg_route route)
{
    if ((unsigned)route >= TG_ARRAY_LEN(route_names))
        return NULL;
    return route_names[route];
}

const char *tg_ledger_status_name(enum tg_ledger_status status)
{
    if ((unsigned)status >= TG_ARRAY_LEN(status_names))
        return NULL;
    return status_names[status];
}

const char *tg_ledger_count_source_name(enum tg_ledger_count_source source)
{
    if ((unsigned)source >= TG_ARRAY_LEN(source_names))
        return NULL;
    return source_names[source];
}

int64_t tg_ledger_uuid7_ms(const uint8_t id[16])
{
    int64_t ms = 0;
    for (int i = 0; i < 6; i++)
        ms = (ms << 8) | id[i];
    return ms;
}

/* Length of a NUL-terminated string held in a field of `size` bytes, or -1 if unterminated. */
static int field_len(const char *s, size_t size)
{
    const char *nul = memchr(s, '\0', size);
    return nul ? (int)(nul - s) : -1;
}

int tg_ledger_row_check(const struct tg_ledger_row *row, char *err, size_t errlen)
{
    const char *what = NULL;
    if (tg_ledger_route_name(row->route) == NULL)
        what = "route is not a metered route";
    else if (tg_ledger_status_name(row->status) == NULL)
        what = "status out of range";
    else if (tg_ledger_count_source_name(row->count_source) == NULL)
        what = "count_source out of range";
    else if ((row->request_id[6] >> 4) != 7 || (row->request_id[8] & 0xC0) != 0x80)
        what = "request_id is not a UUIDv7";
    else if (row->started_at_ms != tg_ledger_uuid7_ms(row->request_id))
        what = "started_at_ms differs from the request_id timestamp";
    else if (row->started_at_ms < 0 || row->started_at_ms > TG_LEDGER_MAX_MS)
        what = "started_at_ms out of range";
    else if (row->finished_at_us < 0 || row->finished_at_us > TG_LEDGER_MAX_US)
        what = "finished_at_us out of range";
    else if (row->upstream_status < 0 || row->upstream_status > 999)
        what = "upstream_status out of range";
    else if (row->ttfb_ms < -1)
        what = "ttfb_ms below -1";
    else if (row->latency_ms < 0)
        what = "latency_ms negative";
    else if (field_len(row->user_id, sizeof(row->user_id)) < 0)
        what = "user_id too long";
    else if (field_len(row->team_id, sizeof(row->team_id)) < 0)
        what = "team_id too long";
    else if (field_len(row->model, sizeof(row->model)) < 0)
        what = "model too long";
    else if (field_len(row->upstream_call_id, sizeof(row->upstream_call_id)) < 0)
        what = "upstream_call_id too long";
    else if (field_len(row->client_request_id, sizeof(row->client_request_id)) < 0)
        what = "client_request_id too long";
    if (what == NULL)
        return 0;
    if (err != NULL && errlen > 0)
        snprintf(err, errlen, "ledger row: %s", what);
    return -1;
}

static uint8_t *put_u32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        *p++ = (uint8_t)(v >> (8 * i));
    return p;
}

static uint8_t *put_u64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        *p++ = (uint8_t)(v >> (8 * i));
    return p;
}

static uint32_t get_u32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t get_u64(const uint8_t *p)
{
    return (uint64_t)get_u32(p) | (uint64_t)get_u32(p + 4) << 32;
}

static uint8_t *put_str(uint8_t *p, const char *s, size_t len)
{
    memcpy(p, s, len);
    return p + len;
}

size_t tg_ledger_row_encode(const struct tg_ledger_row *row, uint8_t *out, size_t cap)
{
    if (tg_ledger_row_check(row, NULL, 0) != 0)
        return 0;
    const char *strs[5] = {row->user_id, row->team_id, row->model, row->upstream_call_id,
                           row->client_request_id};
    size_t lens[5];
    size_t total = TG_LEDGER_ROW_FIXED_BYTES;
    for (int i = 0; i < 5; i++) {
        lens[i] = strlen(strs[i]);
        total += lens[i];
    }
    if (total > cap)
        return 0;
    uint8_t *p = out;
    *p++ = TG_LEDGER_ROW_VERSION;
    *p++ = (uint8_t)row->route;
    *p++ = (uint8_t)row->status;
    *p++ = (uint8_t)row->count_source;
    memcpy(p, row->request_id, 16);
    p += 16;
    p = put_u64(p, (uint64_t)row->finished_at_us);
    p = put_u64(p, (uint64_t)row->prompt_tokens);
    p = put_u64(p, (uint64_t)row->completion_tokens);
    p = put_u64(p, (uint64_t)row->cached_tokens);
    p = put_u64(p, (uint64_t)row->reasoning_tokens);
    p = put_u64(p, (uint64_t)row->total_tokens);
    p = put_u32(p, (uint32_t)row->upstream_status);
    p = put_u32(p, (uint32_t)row->ttfb_ms);
    p = put_u32(p, (uint32_t)row->latency_ms);
    for (int i = 0; i < 5; i++)
        *p++ = (uint8_t)lens[i];
    for (int i = 0; i < 5; i++)
        p = put_str(p, strs[i], lens[i]);
    return (size_t)(p - out);
}

int tg_ledger_row_decode(const uint8_t *p, size_t n, struct tg_ledger_row *row)
{
    memset(row, 0, sizeof(*row));
    if (n < TG_LEDGER_ROW_FIXED_BYTES || n > TG_LEDGER_ROW_ENCODED_MAX)
        return -1;
    if (p[0] != TG_LEDGER_ROW_VERSION)
        return -1;
    row->route = (enum tg_route)p[1];
    row->status = (enum tg_ledger_status)p[2];
    row->count_source = (enum tg_ledger_count_source)p[3];
    memcpy(row->request_id, p + 4, 16);
    row->started_at_ms = tg_ledger_uuid7_ms(row->request_id);
    const uint8_t *q = p + 20;
    row->finished_at_us = (int64_t)get_u64(q);
    row->prompt_tokens = (int64_t)get_u64(q + 8);
    row->completion_tokens = (int64_t)get_u64(q + 16);
    row->cached_tokens = (int64_t)get_u64(q + 24);
    row->reasoning_tokens = (int64_t)get_u64(q + 32);
    row->total_tokens = (int64_t)get_u64(q + 40);
    row->upstream_status = (int32_t)get_u32(q + 48);
    row->ttfb_ms = (int32_t)get_u32(q + 52);
    row->latency_ms = (int32_t)get_u32(q + 56);
    const uint8_t *lens = q + 60;
    char *dst[5] = {row->user_id, row->team_id, row->model, row->upstream_call_id,
                    row->client_request_id};
    const size_t max[5] = {TG_LEDGER_USER_ID_MAX, TG_LEDGER_TEAM_ID_MAX, TG_LEDGER_MODEL_MAX,
                           TG_LEDGER_UPSTREAM_CALL_ID_MAX, TG_LEDGER_CLIENT_REQUEST_ID_MAX};
    size_t off = TG_LEDGER_ROW_FIXED_BYTES;
    for (int i = 0; i < 5; i++) {
        size_t len = lens[i];
        if (len > max[i] || len > n - off)
            return -1;
        if (memchr(p + off, '\0', len) != NULL)
            return -1;
        memcpy(dst[i], p + off, len);
        dst[i][len] = '\0';
        off += len;
    }
    if (off != n)
        return -1;
    return tg_ledger_row_check(row, NULL, 0);
}

uint32_t tg_ledger_frame_crc(const uint8_t *payload, uint32_t len)
{
    uint8_t lenbytes[4];
    put_u32(lenbytes, len);
    return tg_crc32c(tg_crc32c(0, lenbytes, 4), payload, len);
}

void tg_ledger_frame_write(uint8_t *dst, const uint8_t *payload, uint32_t len)
{
    put_u32(dst, len);
    put_u32(dst + 4, tg_ledger_frame_crc(payload, len));
    memcpy(dst + TG_LEDGER_FRAME_HEADER_BYTES, payload, len);
}

enum tg_ledger_frame_result tg_ledger_frame_parse(const uint8_t *p, size_t n,
                                                  const uint8_t **payload, uint32_t *len,
                                                  size_t *frame_bytes)
{
    if (n < 4)
        return TG_LEDGER_FRAME_NEED_MORE;
    uint32_t l = get_u32(p);
    if (l == 0 || l > TG_LEDGER_FRAME_MAX_PAYLOAD)
        return TG_LEDGER_FRAME_CORRUPT;
    if (n < TG_LEDGER_FRAME_HEADER_BYTES + (size_t)l)
        return TG_LEDGER_FRAME_NEED_MORE;
    const uint8_t *body = p + TG_LEDGER_FRAME_HEADER_BYTES;
    if (get_u32(p + 4) != tg_ledger_frame_crc(body, l))
        return TG_LEDGER_FRAME_CORRUPT;
    *payload = body;
    *len = l;
    *frame_bytes = TG_LEDGER_FRAME_HEADER_BYTES + (size_t)l;
    return TG_LEDGER_FRAME_OK;
}

/* Days since 1970-01-01 -> civil date (Howard Hinnant's algorithm, proleptic Gregorian). */
static void civil_from_days(int64_t z, int64_t *y, unsigned *m, unsigned *d)
{
    z += 719468;
    int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    unsigned doe = (unsigned)(z - era * 146097);
    unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t yy = (int64_t)yoe + era * 400;
    unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    unsigned mp = (5 * doy + 2) / 153;
    *d = doy - (153 * mp + 2) / 5 + 1;
    *m = mp < 10 ? mp + 3 : mp - 9;
    *y = yy + (*m <= 2);
}

int64_t tg_ledger_month_index(int64_t ms)
{
    int64_t y;
    unsigned m, d;
    civil_from_days(ms / 86400000, &y, &m, &d);
    return y * 12 + (int64_t)m - 1;
}

size_t tg_ledger_format_timestamp(int64_t us, char *out, size_t cap)
{
    if (us < 0 || us > TG_LEDGER_MAX_US || cap < 33)
        return 0;
    int64_t secs = us / 1000000;
    unsigned frac = (unsigned)(us % 1000000);
    int64_t days = secs / 86400;
    unsigned sod = (unsigned)(secs % 86400);
    int64_t y;
    unsigned m, d;
    civil_from_days(days, &y, &m, &d);
    int n = snprintf(out, cap, "%04d-%02u-%02u %02u:%02u:%02u.%06u+00", (int)y, m, d, sod / 3600,
                     sod / 60 % 60, sod % 60, frac);
    return n > 0 && (size_t)n < cap ? (size_t)n : 0;
}

void tg_ledger_format_uuid(const uint8_t id[16], char *out)
{
    static const char hex[] = "0123456789abcdef";
    char *p = out;
    for (int i = 0; i < 16; i++) {
        if (i == 4 || i == 6 || i == 8 || i == 10)
            *p++ = '-';
        *p++ = hex[id[i] >> 4];
        *p++ = hex[id[i] & 15];
    }
    *p = '\0';
}

/* Length of the valid UTF-8 sequence at s[0..n), or 0 if the bytes there are not one. */
static size_t utf8_seq(const unsigned char *s, size_t n)
{
    unsigned c = s[0];
    if (c < 0x80)
        return 1;
    size_t len;
    unsigned min;
    if (c >= 0xC2 && c <= 0xDF) {
        len = 2;
        min = 0x80;
    } else if (c >= 0xE0 && c <= 0xEF) {
        len = 3;
        min = 0x800;
    } else if (c >= 0xF0 && c <= 0xF4) {
        len = 4;
        min = 0x10000;
    } else {
        return 0;
    }
    if (n < len)
        return 0;
    unsigned cp = c & (0x7F >> len);
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xC0) != 0x80)
            return 0;
        cp = (cp << 6) | (s[i] & 0x3F);
    }
    if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
        return 0;
    return len;
}

static int put_text(struct tg_buf *b, const char *s)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t n = strlen(s);
    size_t i = 0;
    while (i < n) {
        unsigned c = p[i];
        const char *esc = NULL;
        char hexbuf[5];
        switch (c) {
        case '\\':
            esc = "\\\\";
            break;
        case '\t':
            esc = "\\t";
            break;
        case '\n':
            esc = "\\n";
            break;
        case '\r':
            esc = "\\r";
            break;
        case '\b':
            esc = "\\b";
            break;
        case '\f':
            esc = "\\f";
            break;
        case '\v':
            esc = "\\v";
            break;
        default:
            if (c < 0x20 || c == 0x7F) {
                snprintf(hexbuf, sizeof(hexbuf), "\\x%02X", c);
                esc = hexbuf;
            }
        }
        if (esc != NULL) {
            if (tg_buf_puts(b, esc) != 0)
                return -1;
            i++;
            continue;
        }
        size_t len = utf8_seq(p + i, n - i);
        if (len == 0) {
            if (tg_buf_append(b, "\xEF\xBF\xBD", 3) != 0)
                return -1;
            i++;
            continue;
        }
        if (tg_buf_append(b, p + i, len) != 0)
            return -1;
        i += len;
    }
    return 0;
}

static int put_nullable_text(struct tg_buf *b, const char *s)
{
    return s[0] == '\0' ? tg_buf_puts(b, "\\N") : put_text(b, s);
}

int tg_ledger_row_copy_line(const struct tg_ledger_row *row, struct tg_buf *out)
{
    if (tg_ledger_row_check(row, NULL, 0) != 0)
        return -1;
    size_t old_len = out->len;
    char uuid[37], started[40], finished[40], ups[16], ttfb[16];
    tg_ledger_format_uuid(row->request_id, uuid);
    if (tg_ledger_format_timestamp(row->started_at_ms * 1000, started, sizeof(started)) == 0 ||
        tg_ledger_format_timestamp(row->finished_at_us, finished, sizeof(finished)) == 0)
        return -1;
    if (row->upstream_status == 0)
        snprintf(ups, sizeof(ups), "\\N");
    else
        snprintf(ups, sizeof(ups), "%d", (int)row->upstream_status);
    if (row->ttfb_ms < 0)
        snprintf(ttfb, sizeof(ttfb), "\\N");
    else
        snprintf(ttfb, sizeof(ttfb), "%d", (int)row->ttfb_ms);

    int rc = 0;
    rc |= tg_buf_puts(out, uuid);
    rc |= tg_buf_puts(out, "\t");
    rc |= put_text(out, row->user_id);
    rc |= tg_buf_puts(out, "\t");
    rc |= put_nullable_text(out, row->team_id);
    rc |= tg_buf_puts(out, "\t");
    rc |= put_text(out, row->model);
    rc |=
        tg_buf_printf(out, "\t%s\t%s\t%lld\t%lld\t%lld\t%lld\t%lld\t%s\t%s\t%s\t%s\t%s\t%d\t",
                      tg_ledger_route_name(row->route), tg_ledger_status_name(row->status),
                      (long long)row->prompt_tokens, (long long)row->completion_tokens,
                      (long long)row->cached_tokens, (long long)row->reasoning_tokens,
                      (long long)row->total_tokens, tg_ledger_count_source_name(row->count_source),
                      ups, started, finished, ttfb, (int)row->latency_ms);
    rc |= put_nullable_text(out, row->upstream_call_id);
    rc |= tg_buf_puts(out, "\t");
    rc |= put_nullable_text(out, row->client_request_id);
    rc |= tg_buf_puts(out, "\n");
    if (rc != 0) {
        out->len = old_len;
        if (out->data != NULL)
            out->data[old_len] = '\0';
        return -1;
    }
    return 0;
}
