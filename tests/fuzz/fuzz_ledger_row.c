/* Fuzz target: ledger record framing and row decoding (what a torn or corrupt spool holds). */
#include <stdint.h>
#include <string.h>

#include "core/buf.h"
#include "ledger/ledger_row.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct tg_ledger_row row;
    if (tg_ledger_row_decode(data, size, &row) == 0) {
        /* what decodes must encode back and decode to the same row */
        uint8_t buf[TG_LEDGER_ROW_ENCODED_MAX];
        size_t n = tg_ledger_row_encode(&row, buf, sizeof(buf));
        struct tg_ledger_row again;
        if (n == 0 || tg_ledger_row_decode(buf, n, &again) != 0 ||
            memcmp(&row.request_id, &again.request_id, sizeof(row.request_id)) != 0 ||
            row.prompt_tokens != again.prompt_tokens || strcmp(row.user_id, again.user_id) != 0)
            __builtin_trap();
        struct tg_buf line = {0};
        (void)!tg_ledger_row_copy_line(&row, &line);
        tg_buf_cleanup(&line);
    }
    const uint8_t *payload;
    uint32_t len;
    size_t frame_bytes;
    size_t off = 0;
    while (off < size) {
        enum tg_ledger_frame_result fr =
            tg_ledger_frame_parse(data + off, size - off, &payload, &len, &frame_bytes);
        if (fr != TG_LEDGER_FRAME_OK)
            break;
        if (frame_bytes == 0 || frame_bytes > size - off)
            __builtin_trap();
        (void)!tg_ledger_row_decode(payload, len, &row);
        off += frame_bytes;
    }
    return 0;
}
