/* Unit tests for ledger/ledger_row.c and ledger/crc32c.c */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ledger/crc32c.h"
#include "ledger/ledger_row.h"

/* A valid row: UUIDv7 for `ms` with `seq` in the random bits. */
static void make_row(struct tg_ledger_row *r, int64_t ms, uint64_t seq)
{
    memset(r, 0, sizeof(*r));
    for (int i = 0; i < 6; i++)
        r->request_id[i] = (uint8_t)(ms >> (8 * (5 - i)));
    r->request_id[6] = 0x70;
    r->request_id[7] = 0x01;
    r->request_id[8] = 0x80;
    for (int i = 9; i < 16; i++)
        r->request_id[i] = (uint8_t)(seq >> (8 * (15 - i)));
    r->started_at_ms = ms;
    r->finished_at_us = ms * 1000 + 1234;
    r->route = TG_ROUTE_CHAT;
    r->status = TG_LEDGER_STATUS_OK;
    r->count_source = TG_LEDGER_COUNT_UPSTREAM;
    r->prompt_tokens = 100;
    r->completion_tokens = 50;
    r->cached_tokens = 10;
    r->reasoning_tokens = 5;
    r->total_tokens = 150;
    r->upstream_status = 200;
    r->ttfb_ms = 12;
    r->latency_ms = 345;
    strcpy(r->user_id, "alice");
    strcpy(r->team_id, "red");
    strcpy(r->model, "gpt-4o-mini");
    strcpy(r->upstream_call_id, "call-1");
    strcpy(r->client_request_id, "client-1");
}

static void assert_rows_equal(const struct tg_ledger_row *a, const struct tg_ledger_row *b)
{
    assert_memory_equal(a->request_id, b->request_id, 16);
    assert_int_equal(a->started_at_ms, b->started_at_ms);
    assert_int_equal(a->finished_at_us, b->finished_at_us);
    assert_int_equal(a->route, b->route);
    assert_int_equal(a->status, b->status);
    assert_int_equal(a->count_source, b->count_source);
    assert_int_equal(a->prompt_tokens, b->prompt_tokens);
    assert_int_equal(a->completion_tokens, b->completion_tokens);
    assert_int_equal(a->cached_tokens, b->cached_tokens);
    assert_int_equal(a->reasoning_tokens, b->reasoning_tokens);
    assert_int_equal(a->total_tokens, b->total_tokens);
    assert_int_equal(a->upstream_status, b->upstream_status);
    assert_int_equal(a->ttfb_ms, b->ttfb_ms);
    assert_int_equal(a->latency_ms, b->latency_ms);
    assert_string_equal(a->user_id, b->user_id);
    assert_string_equal(a->team_id, b->team_id);
    assert_string_equal(a->model, b->model);
    assert_string_equal(a->upstream_call_id, b->upstream_call_id);
    assert_string_equal(a->client_request_id, b->client_request_id);
}

/* ---------------------------------------------------------------- CRC32C */

static void test_crc32c_vectors(void **state)
{
    (void)state;
    uint8_t zeros[32], ones[32], inc[32], dec[32];
    memset(zeros, 0, sizeof(zeros));
    memset(ones, 0xFF, sizeof(ones));
    for (int i = 0; i < 32; i++) {
        inc[i] = (uint8_t)i;
        dec[i] = (uint8_t)(31 - i);
    }
    /* RFC 3720 (iSCSI) B.4 test vectors plus the classic check value. */
    static const uint8_t iscsi_read[48] = {
        0x01, 0xc0, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
        0x00, 0x00, 0x00, 0x00, 0x14, 0x00, 0x00, 0x00, 0x00, 0x00, 0x04, 0x00,
        0x00, 0x00, 0x00, 0x14, 0x00, 0x00, 0x00, 0x18, 0x28, 0x00, 0x00, 0x00,
        0x00, 0x00, 0x00, 0x00, 0x02, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00};
    const struct {
        int line;
        const void *p;
        size_t n;
        uint32_t crc;
    } rows[] = {
        {__LINE__, "", 0, 0x00000000u},          {__LINE__, "a", 1, 0xC1D04330u},
        {__LINE__, "123456789", 9, 0xE3069283u}, {__LINE__, zeros, 32, 0x8A9136AAu},
        {__LINE__, ones, 32, 0x62A8AB43u},       {__LINE__, inc, 32, 0x46DD794Eu},
        {__LINE__, dec, 32, 0x113FDB5Cu},        {__LINE__, iscsi_read, 48, 0xD9963A56u},
    };
    for (size_t i = 0; i < TG_ARRAY_LEN(rows); i++) {
        uint32_t hw = tg_crc32c(0, rows[i].p, rows[i].n);
        uint32_t sw = tg_crc32c_sw(0, rows[i].p, rows[i].n);
        if (hw != rows[i].crc || sw != rows[i].crc)
            fail_msg("line %d: got hw %08x sw %08x want %08x", rows[i].line, hw, sw, rows[i].crc);
        /* Incremental at every split point gives the same value. */
        for (size_t k = 0; k <= rows[i].n; k++) {
            const uint8_t *b = rows[i].p;
            assert_int_equal(tg_crc32c(tg_crc32c(0, b, k), b + k, rows[i].n - k), rows[i].crc);
            assert_int_equal(tg_crc32c_sw(tg_crc32c_sw(0, b, k), b + k, rows[i].n - k),
                             rows[i].crc);
        }
    }
    /* Hardware and software agree on random data of every length and alignment. */
    uint8_t buf[600];
    srand(7);
    for (size_t i = 0; i < sizeof(buf); i++)
        buf[i] = (uint8_t)rand();
    for (size_t off = 0; off < 9; off++)
        for (size_t n = 0; n + off <= sizeof(buf); n += 7)
            assert_int_equal(tg_crc32c(0, buf + off, n), tg_crc32c_sw(0, buf + off, n));
    print_message("crc32c: hardware path %s\n", tg_crc32c_is_hw() ? "used" : "not available");
}

/* ---------------------------------------------------------------- encode / decode */

static void test_round_trip(void **state)
{
    (void)state;
    struct tg_ledger_row rows[8];
    make_row(&rows[0], 1700000000123, 1);
    make_row(&rows[1], 0, 0);
    rows[1].finished_at_us = 0;
    rows[1].user_id[0] = rows[1].team_id[0] = rows[1].model[0] = '\0';
    rows[1].upstream_call_id[0] = rows[1].client_request_id[0] = '\0';
    make_row(&rows[2], TG_LEDGER_MAX_MS, UINT64_MAX);
    rows[2].finished_at_us = TG_LEDGER_MAX_US;
    memset(rows[2].user_id, 'u', TG_LEDGER_USER_ID_MAX);
    memset(rows[2].team_id, 't', TG_LEDGER_TEAM_ID_MAX);
    memset(rows[2].model, 'm', TG_LEDGER_MODEL_MAX);
    memset(rows[2].upstream_call_id, 'c', TG_LEDGER_UPSTREAM_CALL_ID_MAX);
    memset(rows[2].client_request_id, 'r', TG_LEDGER_CLIENT_REQUEST_ID_MAX);
    rows[2].prompt_tokens = INT64_MAX;
    rows[2].completion_tokens = INT64_MIN; /* format carries it; PostgreSQL's CHECK refuses */
    rows[2].upstream_status = 999;
    rows[2].ttfb_ms = INT32_MAX;
    rows[2].latency_ms = INT32_MAX;
    make_row(&rows[3], 1700000000000, 3);
    rows[3].route = TG_ROUTE_MESSAGES;
    rows[3].status = TG_LEDGER_STATUS_BLOCKED;
    rows[3].count_source = TG_LEDGER_COUNT_ESTIMATED;
    rows[3].upstream_status = 0;
    rows[3].ttfb_ms = -1;
    make_row(&rows[4], 1700000000000, 4);
    rows[4].route = TG_ROUTE_COMPLETIONS;
    rows[4].status = TG_LEDGER_STATUS_UPSTREAM_ERROR;
    strcpy(rows[4].user_id, "tab\there\nnew\\line \xC3\xA9 \xFF");
    make_row(&rows[5], 1700000000000, 5);
    rows[5].route = TG_ROUTE_EMBEDDINGS;
    rows[5].status = TG_LEDGER_STATUS_CLIENT_ABORTED;
    make_row(&rows[6], 1700000000000, 6);
    rows[6].route = TG_ROUTE_RESPONSES;
    make_row(&rows[7], 1, 7);
    for (size_t i = 0; i < TG_ARRAY_LEN(rows); i++) {
        uint8_t enc[TG_LEDGER_ROW_ENCODED_MAX];
        size_t n = tg_ledger_row_encode(&rows[i], enc, sizeof(enc));
        assert_true(n >= TG_LEDGER_ROW_FIXED_BYTES && n <= TG_LEDGER_ROW_ENCODED_MAX);
        struct tg_ledger_row back;
        assert_int_equal(tg_ledger_row_decode(enc, n, &back), 0);
        assert_rows_equal(&rows[i], &back);
        /* A buffer one byte short is refused. */
        assert_int_equal(tg_ledger_row_encode(&rows[i], enc, n - 1), 0);
    }
    uint8_t enc[TG_LEDGER_ROW_ENCODED_MAX];
    assert_int_equal(tg_ledger_row_encode(&rows[2], enc, sizeof(enc)), TG_LEDGER_ROW_ENCODED_MAX);
}

static void test_encode_refuses(void **state)
{
    (void)state;
    const struct {
        int line;
        int field;
    } rows[] = {
        {__LINE__, 0},  {__LINE__, 1},  {__LINE__, 2},  {__LINE__, 3},  {__LINE__, 4},
        {__LINE__, 5},  {__LINE__, 6},  {__LINE__, 7},  {__LINE__, 8},  {__LINE__, 9},
        {__LINE__, 10}, {__LINE__, 11}, {__LINE__, 12}, {__LINE__, 13}, {__LINE__, 14},
        {__LINE__, 15}, {__LINE__, 16}, {__LINE__, 17}, {__LINE__, 18}, {__LINE__, 19},
    };
    for (size_t i = 0; i < TG_ARRAY_LEN(rows); i++) {
        struct tg_ledger_row r;
        make_row(&r, 1700000000000, 9);
        switch (rows[i].field) {
        case 0:
            r.route = TG_ROUTE_NONE;
            break;
        case 1:
            r.route = TG_ROUTE_MODELS;
            break;
        case 2:
            r.status = (enum tg_ledger_status)4;
            break;
        case 3:
            r.count_source = (enum tg_ledger_count_source)2;
            break;
        case 4:
            r.request_id[6] = 0x40; /* UUIDv4 */
            break;
        case 5:
            r.request_id[8] = 0xC0; /* wrong variant */
            break;
        case 6:
            r.started_at_ms++;
            break;
        case 7:
            r.finished_at_us = -1;
            break;
        case 8:
            r.finished_at_us = TG_LEDGER_MAX_US + 1;
            break;
        case 9:
            r.upstream_status = -1;
            break;
        case 10:
            r.upstream_status = 1000;
            break;
        case 11:
            r.ttfb_ms = -2;
            break;
        case 12:
            r.latency_ms = -1;
            break;
        case 13:
            memset(r.user_id, 'x', sizeof(r.user_id));
            break;
        case 14:
            memset(r.team_id, 'x', sizeof(r.team_id));
            break;
        case 15:
            memset(r.model, 'x', sizeof(r.model));
            break;
        case 16:
            memset(r.upstream_call_id, 'x', sizeof(r.upstream_call_id));
            break;
        case 17:
            memset(r.client_request_id, 'x', sizeof(r.client_request_id));
            break;
        case 18:
            r.route = (enum tg_route)200;
            break;
        case 19:
            make_row(&r, TG_LEDGER_MAX_MS + 1, 1);
            break;
        }
        uint8_t enc[TG_LEDGER_ROW_ENCODED_MAX];
        char err[128] = "";
        if (tg_ledger_row_encode(&r, enc, sizeof(enc)) != 0 ||
            tg_ledger_row_check(&r, err, sizeof(err)) == 0)
            fail_msg("line %d: row accepted", rows[i].line);
        assert_true(strncmp(err, "ledger row: ", 12) == 0);
        struct tg_buf b = {0};
        assert_int_equal(tg_ledger_row_copy_line(&r, &b), -1);
        assert_int_equal(b.len, 0);
        tg_buf_cleanup(&b);
    }
}

static size_t encode_ok(const struct tg_ledger_row *r, uint8_t *enc)
{
    size_t n = tg_ledger_row_encode(r, enc, TG_LEDGER_ROW_ENCODED_MAX);
    assert_true(n > 0);
    return n;
}

static void test_decode_malformed(void **state)
{
    (void)state;
    struct tg_ledger_row r, out;
    make_row(&r, 1700000000000, 42);
    uint8_t enc[TG_LEDGER_ROW_ENCODED_MAX + 8];
    size_t n = encode_ok(&r, enc);
    /* Every truncation, read from a buffer of exactly that size (ASan catches overreads). */
    for (size_t k = 0; k < n; k++) {
        uint8_t *copy = malloc(k ? k : 1);
        memcpy(copy, enc, k);
        assert_int_equal(tg_ledger_row_decode(copy, k, &out), -1);
        free(copy);
    }
    /* Trailing bytes. */
    enc[n] = 'x';
    assert_int_equal(tg_ledger_row_decode(enc, n + 1, &out), -1);

    /* Field-level corruptions: offset, new byte value. Offsets: 0 version, 1 route,
     * 2 status, 3 count_source, 10 UUID version byte, 12 variant, 68..71 upstream_status,
     * 72..75 ttfb, 76..79 latency, 80..84 string lengths, 85.. string bytes. */
    const struct {
        int line;
        size_t off;
        uint8_t val;
    } rows[] = {
        {__LINE__, 0, 0},     {__LINE__, 0, 2},     {__LINE__, 1, 0},     {__LINE__, 1, 6},
        {__LINE__, 1, 255},   {__LINE__, 2, 4},     {__LINE__, 3, 2},     {__LINE__, 10, 0x40},
        {__LINE__, 12, 0x00}, {__LINE__, 71, 0x80}, {__LINE__, 69, 0x04}, {__LINE__, 75, 0xFF},
        {__LINE__, 1, 7},     {__LINE__, 79, 0x80}, {__LINE__, 80, 129},  {__LINE__, 80, 255},
        {__LINE__, 81, 129},  {__LINE__, 83, 129},  {__LINE__, 84, 129},  {__LINE__, 80, 6},
        {__LINE__, 80, 4},    {__LINE__, 85, 0},    {__LINE__, 89, 0},    {__LINE__, 27, 0xFF},
    };
    for (size_t i = 0; i < TG_ARRAY_LEN(rows); i++) {
        uint8_t bad[TG_LEDGER_ROW_ENCODED_MAX];
        memcpy(bad, enc, n);
        assert_true(rows[i].off < n);
        bad[rows[i].off] = rows[i].val;
        if (tg_ledger_row_decode(bad, n, &out) != -1)
            fail_msg("line %d: malformed record decoded", rows[i].line);
    }
    /* The model length may reach 255, the others stop at 128. */
    struct tg_ledger_row big;
    make_row(&big, 1700000000000, 1);
    memset(big.model, 'm', TG_LEDGER_MODEL_MAX);
    n = encode_ok(&big, enc);
    assert_int_equal(tg_ledger_row_decode(enc, n, &out), 0);
    assert_int_equal(strlen(out.model), TG_LEDGER_MODEL_MAX);

    /* Random mutations never crash; whatever decodes re-encodes to the same bytes. */
    srand(1234);
    make_row(&r, 1700000000000, 42);
    n = encode_ok(&r, enc);
    for (int iter = 0; iter < 200000; iter++) {
        uint8_t m[TG_LEDGER_ROW_ENCODED_MAX];
        size_t mn = n;
        memcpy(m, enc, n);
        int flips = 1 + rand() % 3;
        for (int f = 0; f < flips; f++)
            m[(size_t)rand() % mn] ^= (uint8_t)(1u << (rand() % 8));
        if (rand() % 4 == 0)
            mn = (size_t)rand() % n + 1;
        uint8_t *heap = malloc(mn);
        memcpy(heap, m, mn);
        if (tg_ledger_row_decode(heap, mn, &out) == 0) {
            uint8_t again[TG_LEDGER_ROW_ENCODED_MAX];
            size_t an = tg_ledger_row_encode(&out, again, sizeof(again));
            assert_int_equal(an, mn);
            assert_memory_equal(again, heap, mn);
        }
        free(heap);
    }
}

/* ---------------------------------------------------------------- framing */

static void test_frames(void **state)
{
    (void)state;
    struct tg_ledger_row r;
    make_row(&r, 1700000000000, 1);
    uint8_t enc[TG_LEDGER_ROW_ENCODED_MAX];
    size_t n = encode_ok(&r, enc);
    uint8_t frame[TG_LEDGER_ROW_ENCODED_MAX + TG_LEDGER_FRAME_HEADER_BYTES];
    tg_ledger_frame_write(frame, enc, (uint32_t)n);
    size_t fn = tg_ledger_frame_size(n);
    const uint8_t *payload;
    uint32_t len;
    size_t fbytes;
    assert_int_equal(tg_ledger_frame_parse(frame, fn, &payload, &len, &fbytes), TG_LEDGER_FRAME_OK);
    assert_int_equal(len, n);
    assert_int_equal(fbytes, fn);
    assert_ptr_equal(payload, frame + 8);
    for (size_t k = 0; k < fn; k++)
        assert_int_equal(tg_ledger_frame_parse(frame, k, &payload, &len, &fbytes),
                         TG_LEDGER_FRAME_NEED_MORE);
    /* Any single bit flip anywhere in the frame is detected (length, CRC or payload). */
    for (size_t k = 0; k < fn; k++) {
        for (int bit = 0; bit < 8; bit++) {
            frame[k] ^= (uint8_t)(1u << bit);
            enum tg_ledger_frame_result fr =
                tg_ledger_frame_parse(frame, fn, &payload, &len, &fbytes);
            if (fr == TG_LEDGER_FRAME_OK)
                fail_msg("bit %d of byte %zu flipped undetected", bit, k);
            frame[k] ^= (uint8_t)(1u << bit);
        }
    }
    /* Impossible lengths are corrupt as soon as the length is readable. */
    const uint8_t zero_len[4] = {0, 0, 0, 0};
    const uint8_t huge_len[4] = {0xFF, 0xFF, 0, 0};
    assert_int_equal(tg_ledger_frame_parse(zero_len, 4, &payload, &len, &fbytes),
                     TG_LEDGER_FRAME_CORRUPT);
    assert_int_equal(tg_ledger_frame_parse(huge_len, 4, &payload, &len, &fbytes),
                     TG_LEDGER_FRAME_CORRUPT);
}

/* ---------------------------------------------------------------- COPY text */

static void test_timestamps(void **state)
{
    (void)state;
    const struct {
        int line;
        int64_t us;
        const char *want;
    } rows[] = {
        {__LINE__, 0, "1970-01-01 00:00:00.000000+00"},
        {__LINE__, 1, "1970-01-01 00:00:00.000001+00"},
        {__LINE__, 951782400000000, "2000-02-29 00:00:00.000000+00"},
        {__LINE__, 1709251199999999, "2024-02-29 23:59:59.999999+00"},
        {__LINE__, 1709251200000000, "2024-03-01 00:00:00.000000+00"},
        {__LINE__, 1735689599123456, "2024-12-31 23:59:59.123456+00"},
        {__LINE__, 4107542400000000, "2100-03-01 00:00:00.000000+00"},
        {__LINE__, TG_LEDGER_MAX_US, "9999-12-31 23:59:59.999999+00"},
        {__LINE__, -1, NULL},
        {__LINE__, TG_LEDGER_MAX_US + 1, NULL},
    };
    for (size_t i = 0; i < TG_ARRAY_LEN(rows); i++) {
        char out[64];
        size_t n = tg_ledger_format_timestamp(rows[i].us, out, sizeof(out));
        if (rows[i].want == NULL) {
            if (n != 0)
                fail_msg("line %d: formatted an out-of-range time", rows[i].line);
            continue;
        }
        if (n != strlen(rows[i].want) || strcmp(out, rows[i].want) != 0)
            fail_msg("line %d: got %s want %s", rows[i].line, out, rows[i].want);
    }
    /* Agrees with gmtime_r on random instants. */
    srand(99);
    for (int i = 0; i < 100000; i++) {
        int64_t us = ((int64_t)rand() << 31 | rand()) % TG_LEDGER_MAX_US;
        char out[64], want[64];
        assert_true(tg_ledger_format_timestamp(us, out, sizeof(out)) > 0);
        time_t t = (time_t)(us / 1000000);
        struct tm tm;
        gmtime_r(&t, &tm);
        snprintf(want, sizeof(want), "%04d-%02d-%02d %02d:%02d:%02d.%06d+00", tm.tm_year + 1900,
                 tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (int)(us % 1000000));
        assert_string_equal(out, want);
        assert_int_equal(tg_ledger_month_index(us / 1000),
                         (int64_t)(tm.tm_year + 1900) * 12 + tm.tm_mon);
    }
    char small[32];
    assert_int_equal(tg_ledger_format_timestamp(0, small, sizeof(small)), 0);
}

static void test_copy_lines(void **state)
{
    (void)state;
    const struct {
        int line;
        const char *user_id;
        const char *team_id;
        int status;
        int32_t upstream_status, ttfb_ms;
        const char *want; /* from the user_id column to the end */
    } rows[] = {
        {__LINE__, "alice", "red", 0, 200, 12,
         "alice\tred\tgpt-4o-mini\t/v1/chat/completions\tok\t100\t50\t10\t5\t150\tupstream\t200\t"
         "2023-11-14 22:13:20.000000+00\t2023-11-14 22:13:20.001234+00\t12\t345\tcall-1\t"
         "client-1\n"},
        {__LINE__, "", "", 3, 0, -1,
         "\t\\N\tgpt-4o-mini\t/v1/chat/completions\tblocked\t100\t50\t10\t5\t150\tupstream\t\\N\t"
         "2023-11-14 22:13:20.000000+00\t2023-11-14 22:13:20.001234+00\t\\N\t345\tcall-1\t"
         "client-1\n"},
        {__LINE__, "a\tb\nc\\d\re\bf\fg\vh", "x", 1, 502, 0,
         "a\\tb\\nc\\\\d\\re\\bf\\fg\\vh\tx\tgpt-4o-mini\t/v1/chat/completions\tupstream_error\t"
         "100\t50\t10\t5\t150\tupstream\t502\t2023-11-14 22:13:20.000000+00\t"
         "2023-11-14 22:13:20.001234+00\t0\t345\tcall-1\tclient-1\n"},
        {__LINE__, "\x01\x1f\x7f.", "\\N", 2, 200, 5,
         "\\x01\\x1F\\x7F.\t\\\\N\tgpt-4o-mini\t/v1/chat/completions\tclient_aborted\t100\t50\t10\t"
         "5\t150\tupstream\t200\t2023-11-14 22:13:20.000000+00\t2023-11-14 22:13:20.001234+00\t"
         "5\t345\tcall-1\tclient-1\n"},
        /* Valid UTF-8 passes; invalid bytes, overlongs, surrogates, truncations become U+FFFD. */
        {__LINE__, "\xC3\xA9\xF0\x9F\x98\x80|\xFF|\xC0\x80|\xED\xA0\x80|\xE2\x82", "t", 0, 200, 1,
         "\xC3\xA9\xF0\x9F\x98\x80|\xEF\xBF\xBD|\xEF\xBF\xBD\xEF\xBF\xBD|"
         "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD|\xEF\xBF\xBD\xEF\xBF\xBD\tt\tgpt-4o-mini\t"
         "/v1/chat/completions\tok\t100\t50\t10\t5\t150\tupstream\t200\t"
         "2023-11-14 22:13:20.000000+00\t2023-11-14 22:13:20.001234+00\t1\t345\tcall-1\t"
         "client-1\n"},
        {__LINE__, "\xF4\x90\x80\x80", "t", 0, 200, 1,
         "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD\tt\tgpt-4o-mini\t/v1/chat/completions\t"
         "ok\t100\t50\t10\t5\t150\tupstream\t200\t2023-11-14 22:13:20.000000+00\t"
         "2023-11-14 22:13:20.001234+00\t1\t345\tcall-1\tclient-1\n"},
    };
    for (size_t i = 0; i < TG_ARRAY_LEN(rows); i++) {
        struct tg_ledger_row r;
        make_row(&r, 1700000000000, 0x0102030405060708ull);
        strcpy(r.user_id, rows[i].user_id);
        strcpy(r.team_id, rows[i].team_id);
        r.status = (enum tg_ledger_status)rows[i].status;
        r.upstream_status = rows[i].upstream_status;
        r.ttfb_ms = rows[i].ttfb_ms;
        struct tg_buf b = {0};
        assert_int_equal(tg_buf_puts(&b, "prefix|"), 0);
        assert_int_equal(tg_ledger_row_copy_line(&r, &b), 0);
        const char *uuid = "018bcfe5-6800-7001-8002-030405060708\t";
        char want[2048];
        snprintf(want, sizeof(want), "prefix|%s%s", uuid, rows[i].want);
        if (strcmp(b.data, want) != 0)
            fail_msg("line %d:\n got  %s\n want %s", rows[i].line, b.data, want);
        tg_buf_cleanup(&b);
    }
    /* Empty optional columns are NULL; model is NOT NULL and stays ''. */
    struct tg_ledger_row r;
    make_row(&r, 1700000000000, 1);
    r.model[0] = r.upstream_call_id[0] = r.client_request_id[0] = '\0';
    struct tg_buf b = {0};
    assert_int_equal(tg_ledger_row_copy_line(&r, &b), 0);
    const char *tail = "\t345\t\\N\t\\N\n";
    assert_int_equal(strcmp(b.data + b.len - strlen(tail), tail), 0);
    assert_non_null(strstr(b.data, "\tred\t\t/v1/chat/completions\t"));
    tg_buf_cleanup(&b);
}

static void test_names_and_uuid(void **state)
{
    (void)state;
    const struct {
        int line;
        int route;
        const char *want;
    } routes[] = {
        {__LINE__, TG_ROUTE_NONE, NULL},
        {__LINE__, TG_ROUTE_CHAT, "/v1/chat/completions"},
        {__LINE__, TG_ROUTE_COMPLETIONS, "/v1/completions"},
        {__LINE__, TG_ROUTE_EMBEDDINGS, "/v1/embeddings"},
        {__LINE__, TG_ROUTE_RESPONSES, "/v1/responses"},
        {__LINE__, TG_ROUTE_MESSAGES, "/v1/messages"},
        {__LINE__, TG_ROUTE_MODELS, NULL},
        {__LINE__, 99, NULL},
    };
    for (size_t i = 0; i < TG_ARRAY_LEN(routes); i++) {
        const char *got = tg_ledger_route_name((enum tg_route)routes[i].route);
        if ((got == NULL) != (routes[i].want == NULL) ||
            (got != NULL && strcmp(got, routes[i].want) != 0))
            fail_msg("line %d", routes[i].line);
    }
    assert_string_equal(tg_ledger_status_name(TG_LEDGER_STATUS_CLIENT_ABORTED), "client_aborted");
    assert_null(tg_ledger_status_name((enum tg_ledger_status)9));
    assert_string_equal(tg_ledger_count_source_name(TG_LEDGER_COUNT_ESTIMATED), "estimated");
    assert_null(tg_ledger_count_source_name((enum tg_ledger_count_source)2));
    struct tg_ledger_row r;
    make_row(&r, 0x0123456789AB, 0xFEDCBA9876543210ull);
    assert_int_equal(tg_ledger_uuid7_ms(r.request_id), 0x0123456789AB);
    char u[37];
    tg_ledger_format_uuid(r.request_id, u);
    assert_string_equal(u, "01234567-89ab-7001-80dc-ba9876543210");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_crc32c_vectors), cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_encode_refuses), cmocka_unit_test(test_decode_malformed),
        cmocka_unit_test(test_frames),         cmocka_unit_test(test_timestamps),
        cmocka_unit_test(test_copy_lines),     cmocka_unit_test(test_names_and_uuid),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
