/* test_tokenizer_ref.c: checks the C tokenizer against reference counts written by
 * tests/tokenizer/compare.mjs (tiktoken@1.0.22): whole-text counts, incremental counts at
 * random chunkings (including splits inside UTF-8 characters), and chat body counts.
 * Usage: test_tokenizer_ref CASEFILE; prints each mismatch with the text escaped, then
 * "N passed, M failed". */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "meter/tokenizer/tokenizer.h"

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;

static uint64_t rnd(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}

static void print_escaped(const uint8_t *p, size_t n)
{
    size_t limit = n > 4000 ? 4000 : n;
    putchar('"');
    for (size_t i = 0; i < limit; i++) {
        uint8_t b = p[i];
        if (b == '"' || b == '\\')
            printf("\\%c", b);
        else if (b == '\n')
            fputs("\\n", stdout);
        else if (b == '\r')
            fputs("\\r", stdout);
        else if (b == '\t')
            fputs("\\t", stdout);
        else if (b < 0x20 || b == 0x7f)
            printf("\\x%02x", b);
        else
            putchar(b);
    }
    putchar('"');
    if (limit < n)
        printf("... (%zu bytes)", n);
    putchar('\n');
}

static int64_t count_chunked(enum tg_encoding enc, const uint8_t *p, size_t n, int mode)
{
    struct tg_token_counter c;
    tg_token_counter_init(&c, enc);
    size_t i = 0;
    while (i < n) {
        size_t k;
        if (mode == 0)
            k = 1 + rnd() % 7; /* tiny pieces: splits inside characters */
        else
            k = 1 + rnd() % 300;
        if (k > n - i)
            k = n - i;
        tg_token_counter_feed(&c, (const char *)p + i, k);
        i += k;
    }
    int64_t got = tg_token_counter_finish(&c);
    tg_token_counter_cleanup(&c);
    return got;
}

static int read_all(const char *path, uint8_t **out, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return -1;
    size_t cap = 1 << 20, n = 0;
    uint8_t *buf = malloc(cap);
    for (;;) {
        if (buf == NULL) {
            fclose(f);
            return -1;
        }
        n += fread(buf + n, 1, cap - n, f);
        if (n < cap)
            break;
        cap *= 2;
        uint8_t *nb = realloc(buf, cap);
        if (nb == NULL)
            free(buf);
        buf = nb;
    }
    fclose(f);
    *out = buf;
    *len = n;
    return 0;
}

int main(int argc, char **argv)
{
    uint8_t *data;
    size_t len, pos = 0;
    int passed = 0, failed = 0, index = 0;
    if (argc != 2 || read_all(argv[1], &data, &len) != 0) {
        fprintf(stderr, "usage: test_tokenizer_ref CASEFILE (written by compare.mjs)\n");
        return 2;
    }
    static const enum tg_encoding encs[] = {TG_ENC_O200K, TG_ENC_CL100K};
    while (pos + 9 <= len) {
        int kind = data[pos];
        uint32_t name_len, text_len;
        memcpy(&name_len, data + pos + 1, 4);
        memcpy(&text_len, data + pos + 5, 4);
        pos += 9;
        if (pos + name_len + text_len + 16 > len) {
            fprintf(stderr, "test_tokenizer_ref: truncated case file\n");
            return 2;
        }
        const char *name = (const char *)data + pos;
        const uint8_t *text = data + pos + name_len;
        int64_t want[2];
        memcpy(&want[0], text + text_len, 8);
        memcpy(&want[1], text + text_len + 8, 8);
        pos += name_len + text_len + 16;

        for (int e = 0; e < 2; e++) {
            int64_t got[3];
            const char *what[3] = {"tg_tokens_count", "counter (1-7 byte pieces)",
                                   "counter (1-300 byte pieces)"};
            int checks = 3;
            if (kind == 1) {
                checks = 1;
                what[0] = "tg_tokens_count_chat";
                if (tg_tokens_count_chat(encs[e], (const char *)text, text_len, &got[0]) != 0)
                    got[0] = -1;
            } else {
                got[0] = (int64_t)tg_tokens_count(encs[e], (const char *)text, text_len);
                got[1] = count_chunked(encs[e], text, text_len, 0);
                got[2] = count_chunked(encs[e], text, text_len, 1);
            }
            for (int k = 0; k < checks; k++) {
                if (got[k] == want[e]) {
                    passed++;
                    continue;
                }
                failed++;
                printf("MISMATCH case %d (%.*s) %s %s: C=%" PRId64 " reference=%" PRId64 " text=",
                       index, (int)name_len, name, tg_encoding_name(encs[e]), what[k], got[k],
                       want[e]);
                print_escaped(text, text_len);
            }
        }
        index++;
    }
    free(data);
    printf("%d cases\n%d passed, %d failed\n", index, passed, failed);
    return failed == 0 && passed > 0 ? 0 : 1;
}
