/* Fuzz target: request/response heads and the chunked decoder. */
#include <stdint.h>
#include <string.h>

#include "http/http_parse.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *p = (const char *)data;
    struct tg_http_request_head rq;
    struct tg_http_response_head rs;
    int st;
    ssize_t n = tg_http_parse_request(p, size, &rq, &st);
    if (n > 0 && (size_t)n > size)
        __builtin_trap();
    n = tg_http_parse_response(p, size, &rs);
    if (n > 0 && (size_t)n > size)
        __builtin_trap();
    /* chunked: whole, then split at a point taken from the first byte */
    size_t split = size ? data[0] % (size + 1) : 0;
    struct tg_chunked c;
    memset(&c, 0, sizeof(c));
    size_t off = 0, total = 0;
    const size_t parts[2] = {split, size};
    for (int k = 0; k < 2; k++) {
        size_t end = parts[k];
        while (off < end) {
            size_t skip, dat;
            enum tg_chunk_rc rc = tg_chunked_next(&c, p + off, end - off, &skip, &dat);
            if (skip + dat > end - off)
                __builtin_trap();
            off += skip + dat;
            total += dat;
            if (rc == TG_CHUNK_ERROR || rc == TG_CHUNK_DONE)
                return 0;
            if (rc == TG_CHUNK_NEED_MORE)
                break;
        }
    }
    (void)total;
    return 0;
}
