/* tokenizer_bench.c: single-core throughput of the BPE tokenizer on a mixed corpus, per
 * encoding (whole-text and streamed in 64-byte pieces), plus the memory of the rank tables.
 * Usage: tokenizer_bench [MEGABYTES (default 16)] [ROUNDS (default 3)] */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "meter/tokenizer/tok_bpe.h"
#include "meter/tokenizer/tokenizer.h"

static uint64_t rng = 0x853c49e6748fea9bull;

static uint32_t rnd(uint32_t n)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (uint32_t)(rng % n);
}

static const char *const english[] = {
    "the",        "of",        "and",    "to",   "in",       "is",      "you",         "that",
    "it",         "was",       "for",    "on",   "are",      "with",    "they",        "be",
    "this",       "have",      "from",   "or",   "one",      "had",     "by",          "word",
    "but",        "not",       "what",   "all",  "were",     "when",    "your",        "can't",
    "said",       "there",     "it's",   "I'm",  "gateway",  "quota",   "request",     "streaming",
    "completion", "tokens",    "OpenAI", "JSON", "Tollgate", "billing", "reservation", "upstream",
    "latency",    "throughput"};
static const char *const portuguese[] = {"ação",       "não",  "coração", "você",
                                         "informação", "é",    "também",  "São",
                                         "Paulo",      "três", "número",  "função"};
static const char *const chinese[] = {"的", "一", "是", "在", "不",   "了",   "有",  "和",
                                      "人", "这", "中", "大", "为",   "上",   "个",  "国",
                                      "我", "以", "，", "。", "计费", "令牌", "网关"};
static const char *const emoji[] = {"😀",  "👍🏽",           "🚀",      "✅",
                                    "🇧🇷", "👨‍👩‍👧", "❤️", "🔥"};
static const char *const code[] = {
    "    if (n < 0) {\n        return -1;\n    }\n",
    "for (size_t i = 0; i < len; i++) sum += buf[i];\n",
    "const res = await fetch(`/v1/chat/completions`, { method: 'POST' });\n",
    "def count(xs):\n    return sum(1 for x in xs if x % 2 == 0)\n",
    "{\"role\": \"assistant\", \"content\": \"Hello!\", \"index\": 0}\n",
    "\t\tcase TG_REQ_STREAM: return on_chunk(r, data, len);\r\n"};

static size_t append(char *dst, size_t at, size_t cap, const char *s)
{
    size_t n = strlen(s);
    if (at + n > cap)
        return at;
    memcpy(dst + at, s, n);
    return at + n;
}

/* ~55% English, 15% code, 10% Portuguese, 10% Chinese, 5% numbers, 5% emoji. */
static size_t make_corpus(char *buf, size_t cap)
{
    size_t n = 0;
    char num[32];
    while (n + 256 < cap) {
        uint32_t x = rnd(100);
        if (x < 55) {
            for (int k = 5 + (int)rnd(20); k > 0; k--) {
                n = append(buf, n, cap, english[rnd(TG_ARRAY_LEN(english))]);
                n = append(buf, n, cap, rnd(10) == 0 ? ", " : " ");
            }
            n = append(buf, n, cap, rnd(4) == 0 ? ".\n\n" : ". ");
        } else if (x < 70) {
            n = append(buf, n, cap, code[rnd(TG_ARRAY_LEN(code))]);
        } else if (x < 80) {
            for (int k = 5 + (int)rnd(15); k > 0; k--) {
                n = append(buf, n, cap, portuguese[rnd(TG_ARRAY_LEN(portuguese))]);
                n = append(buf, n, cap, " ");
            }
        } else if (x < 90) {
            for (int k = 10 + (int)rnd(30); k > 0; k--)
                n = append(buf, n, cap, chinese[rnd(TG_ARRAY_LEN(chinese))]);
        } else if (x < 95) {
            snprintf(num, sizeof(num), "%u.%02u, ", rnd(1000000), rnd(100));
            n = append(buf, n, cap, num);
        } else {
            n = append(buf, n, cap, emoji[rnd(TG_ARRAY_LEN(emoji))]);
            n = append(buf, n, cap, " ");
        }
    }
    return n;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static long rss_kb(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    long kb = -1;
    if (f == NULL)
        return -1;
    while (fgets(line, sizeof(line), f) != NULL) {
        if (strncmp(line, "VmRSS:", 6) == 0)
            kb = strtol(line + 6, NULL, 10);
    }
    fclose(f);
    return kb;
}

int main(int argc, char **argv)
{
    size_t mb = argc > 1 ? (size_t)atoi(argv[1]) : 16;
    int rounds = argc > 2 ? atoi(argv[2]) : 3;
    if (mb == 0 || rounds <= 0) {
        fprintf(stderr, "usage: tokenizer_bench [MEGABYTES] [ROUNDS]\n");
        return 2;
    }
    char *buf = malloc(mb << 20);
    if (buf == NULL)
        return 1;
    size_t len = make_corpus(buf, mb << 20);
    printf("corpus: %.1f MB mixed text (English, code, Portuguese, Chinese, numbers, emoji)\n",
           (double)len / 1e6);

    static const enum tg_encoding encs[] = {TG_ENC_O200K, TG_ENC_CL100K};
    long rss_total = 0;
    for (size_t e = 0; e < TG_ARRAY_LEN(encs); e++) {
        long before = rss_kb();
        double t0 = now_s();
        (void)tg_tokens_count(encs[e], "x", 1); /* loads the table */
        double load_ms = (now_s() - t0) * 1e3;
        long grew = rss_kb() - before;
        rss_total += grew;
        printf("%-11s table: %zu tokens, %.1f MiB (embedded data + index), RSS +%.1f MiB, "
               "loaded in %.0f ms\n",
               tg_encoding_name(encs[e]), tg_tok_table_tokens(encs[e]),
               (double)tg_tok_table_bytes(encs[e]) / (1 << 20), (double)grew / 1024, load_ms);
    }
    printf("both tables: %.1f MiB (RSS +%.1f MiB)\n",
           (double)(tg_tok_table_bytes(TG_ENC_O200K) + tg_tok_table_bytes(TG_ENC_CL100K)) /
               (1 << 20),
           (double)rss_total / 1024);

    for (size_t e = 0; e < TG_ARRAY_LEN(encs); e++) {
        double best = 1e30, best_stream = 1e30;
        size_t tokens = 0;
        for (int r = 0; r < rounds; r++) {
            double t0 = now_s();
            tokens = tg_tokens_count(encs[e], buf, len);
            double t1 = now_s();
            struct tg_token_counter c;
            tg_token_counter_init(&c, encs[e]);
            for (size_t i = 0; i < len; i += 64)
                tg_token_counter_feed(&c, buf + i, len - i < 64 ? len - i : 64);
            int64_t streamed = tg_token_counter_finish(&c);
            tg_token_counter_cleanup(&c);
            double t2 = now_s();
            if (streamed != (int64_t)tokens) {
                fprintf(stderr, "streamed count %lld != whole count %zu\n", (long long)streamed,
                        tokens);
                return 1;
            }
            best = t1 - t0 < best ? t1 - t0 : best;
            best_stream = t2 - t1 < best_stream ? t2 - t1 : best_stream;
        }
        printf("%-11s %zu tokens (%.2f bytes/token): whole %.1f MB/s, streamed in 64-byte "
               "pieces %.1f MB/s (best of %d)\n",
               tg_encoding_name(encs[e]), tokens, (double)len / (double)tokens,
               (double)len / 1e6 / best, (double)len / 1e6 / best_stream, rounds);
    }
    free(buf);
    return 0;
}
