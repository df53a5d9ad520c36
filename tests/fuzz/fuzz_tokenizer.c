/* fuzz_tokenizer.c: whole-text and incremental counts agree on arbitrary bytes, at a split point
 * and a chunk size derived from the input; chat counting never crashes. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "meter/tokenizer/tokenizer.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2)
        return 0;
    enum tg_encoding enc = (data[0] & 1) ? TG_ENC_CL100K : TG_ENC_O200K;
    size_t chunk = 1 + (data[0] >> 1) % 9;
    const char *text = (const char *)data + 2;
    size_t n = size - 2;
    size_t split = n ? ((size_t)data[1] * 257 + (size_t)data[0]) % (n + 1) : 0;

    int64_t whole = (int64_t)tg_tokens_count(enc, text, n);

    struct tg_token_counter c;
    tg_token_counter_init(&c, enc);
    tg_token_counter_feed(&c, text, split);
    tg_token_counter_feed(&c, text + split, n - split);
    int64_t two = tg_token_counter_finish(&c);
    for (size_t i = 0; i < n; i += chunk)
        tg_token_counter_feed(&c, text + i, n - i < chunk ? n - i : chunk);
    int64_t chunked = tg_token_counter_finish(&c);
    tg_token_counter_cleanup(&c);

    if (whole != two || whole != chunked || whole > (int64_t)n) {
        fprintf(stderr, "fuzz_tokenizer: %s whole=%lld split@%zu=%lld chunk%zu=%lld n=%zu\n",
                tg_encoding_name(enc), (long long)whole, split, (long long)two, chunk,
                (long long)chunked, n);
        abort();
    }
    int64_t chat = 0;
    if (tg_tokens_count_chat(enc, text, n, &chat) == 0 && chat < 3)
        abort();
    return 0;
}
