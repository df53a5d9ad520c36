/* test_tokenizer.c: unit tests of the BPE tokenizer (counts hand-checked with tiktoken@1.0.22),
 * the incremental counter at every split point, the model mapping, chat counting and the CLI. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "meter/tokenizer/tok_bpe.h"
#include "meter/tokenizer/tok_unicode.h"
#include "meter/tokenizer/tokenizer.h"

#define S(lit) lit, sizeof(lit) - 1
#define ZWJ    "\xe2\x80\x8d"

/* Text = unit repeated `repeat` times, then tail. Counts from tiktoken encode_ordinary. */
struct known {
    int line;
    const char *unit;
    size_t unit_len;
    int repeat;
    const char *tail;
    int64_t o200k;
    int64_t cl100k;
};

static const struct known known[] = {
    {__LINE__, S(""), 1, "", 0, 0},
    {__LINE__, S("a"), 1, "", 1, 1},
    {__LINE__, S(" "), 1, "", 1, 1},
    {__LINE__, S("\n"), 1, "", 1, 1},
    {__LINE__, S("\0"), 1, "", 1, 1},
    {__LINE__, S("~"), 1, "", 1, 1},
    {__LINE__, S("hello world"), 1, "", 2, 2},
    {__LINE__, S("Hello, world!"), 1, "", 4, 4},
    {__LINE__, S("I'm here"), 1, "", 2, 3},
    {__LINE__, S("you're"), 1, "", 1, 2},
    {__LINE__, S("THEY'LL"), 1, "", 4, 4},
    {__LINE__, S("it's"), 1, "", 1, 2},
    {__LINE__, S("'s'"), 1, "", 2, 2},
    {__LINE__, S("McDonald's"), 1, "", 2, 3},
    {__LINE__, S("don't DON'T"), 1, "", 2, 4},
    {__LINE__, S("we've'd"), 1, "", 3, 3},
    {__LINE__, S("'ll've're"), 1, "", 3, 3},
    {__LINE__, S("1"), 1, "", 1, 1},
    {__LINE__, S("12"), 1, "", 1, 1},
    {__LINE__, S("123"), 1, "", 1, 1},
    {__LINE__, S("1234"), 1, "", 2, 2},
    {__LINE__, S("12345"), 1, "", 2, 2},
    {__LINE__, S("3.14159"), 1, "", 4, 4},
    {__LINE__, S("-42"), 1, "", 2, 2},
    {__LINE__, S("٣٤٥"), 1, "", 3, 6},
    {__LINE__, S("½²Ⅻ"), 1, "", 4, 4},
    {__LINE__, S("\r\n"), 1, "", 1, 1},
    {__LINE__, S("\r\n\r\n\r\n"), 1, "", 1, 1},
    {__LINE__, S("a\r\n\r\nb"), 1, "", 3, 3},
    {__LINE__, S("a\n\n\n  b"), 1, "", 4, 4},
    {__LINE__, S("x  \n  y"), 1, "", 4, 4},
    {__LINE__, S("  \t  "), 1, "", 2, 2},
    {__LINE__, S(" "), 1000, "", 9, 9},
    {__LINE__, S("\n"), 500, "", 32, 17},
    {__LINE__, S("\t"), 300, "x", 20, 20},
    {__LINE__, S(" "), 64, "if", 2, 2},
    {__LINE__, S("\r\n"), 100, "end", 26, 26},
    {__LINE__, S("👨" ZWJ "👩" ZWJ "👧" ZWJ "👦"), 1, "", 11, 18},
    {__LINE__, S("🏳\xef\xb8\x8f" ZWJ "🌈 🇧🇷"), 1, "", 10, 15},
    {__LINE__, S("👩🏿" ZWJ "💻👍🏽"), 1, "", 10, 16},
    {__LINE__, S("中文测试文本，你好！"), 1, "", 6, 9},
    {__LINE__, S("ação não coração"), 1, "", 3, 4},
    {__LINE__,
     S("a\xcc\x81"
       "c\xcc\xa7"
       "a\xcc\x83"
       "o"),
     1, "", 7, 9},
    {__LINE__, S("HelloWORLD"), 1, "", 2, 3},
    {__LINE__, S("iPhone XR"), 1, "", 3, 2},
    {__LINE__, S("ǅemal ᾈ"), 1, "", 8, 7},
    {__LINE__, S("<|endoftext|>"), 1, "", 7, 7},
    {__LINE__, S("int main(void) { return 0; }\n"), 1, "", 10, 10},
    {__LINE__, S("https://example.com/a/b?c=d"), 1, "", 9, 9},
    {__LINE__, S("////\n\n//"), 1, "", 2, 3},
    {__LINE__, S("!!!\r\n"), 1, "", 2, 2},
    {__LINE__, S("ʰʰʰ"), 1, "", 6, 6},
    {__LINE__, S("々々"), 1, "", 2, 4},
    {__LINE__, S("\xc2\xa0\xc2\xa0x"), 1, "", 3, 3},
    {__LINE__, S("\xe3\x80\x80\xe3\x80\x80中"), 1, "", 3, 3},
    {__LINE__,
     S("a\xe2\x80\xa8"
       "b"),
     1, "", 3, 4},
    {__LINE__, S("x\xc2\x85 y"), 1, "", 4, 4},
};

static char *build(const struct known *k, size_t *len)
{
    size_t tail = strlen(k->tail);
    *len = k->unit_len * (size_t)k->repeat + tail;
    char *s = malloc(*len + 1);
    assert_non_null(s);
    for (int i = 0; i < k->repeat; i++)
        memcpy(s + k->unit_len * (size_t)i, k->unit, k->unit_len);
    memcpy(s + *len - tail, k->tail, tail);
    s[*len] = '\0';
    return s;
}

static int64_t count_pieces(enum tg_encoding enc, const char *s, size_t n, const size_t *cuts,
                            size_t ncuts)
{
    struct tg_token_counter c;
    tg_token_counter_init(&c, enc);
    size_t at = 0;
    for (size_t i = 0; i <= ncuts; i++) {
        size_t end = i < ncuts ? cuts[i] : n;
        tg_token_counter_feed(&c, s + at, end - at);
        at = end;
    }
    int64_t got = tg_token_counter_finish(&c);
    tg_token_counter_cleanup(&c);
    return got;
}

/* Whole text, then every single split point, then byte by byte: all equal `want`. */
static void check_all_ways(enum tg_encoding enc, const char *s, size_t n, int64_t want, int line)
{
    int64_t whole = (int64_t)tg_tokens_count(enc, s, n);
    if (whole != want)
        fail_msg("line %d %s: whole count %lld, want %lld", line, tg_encoding_name(enc),
                 (long long)whole, (long long)want);
    for (size_t cut = 0; cut <= n; cut++) {
        int64_t got = count_pieces(enc, s, n, &cut, 1);
        if (got != want)
            fail_msg("line %d %s: split at %zu gives %lld, want %lld", line, tg_encoding_name(enc),
                     cut, (long long)got, (long long)want);
    }
    struct tg_token_counter c;
    tg_token_counter_init(&c, enc);
    for (size_t i = 0; i < n; i++)
        tg_token_counter_feed(&c, s + i, 1);
    int64_t got = tg_token_counter_finish(&c);
    tg_token_counter_cleanup(&c);
    if (got != want)
        fail_msg("line %d %s: byte by byte gives %lld, want %lld", line, tg_encoding_name(enc),
                 (long long)got, (long long)want);
}

static void test_known_counts(void **state)
{
    (void)state;
    for (size_t i = 0; i < TG_ARRAY_LEN(known); i++) {
        size_t n;
        char *s = build(&known[i], &n);
        check_all_ways(TG_ENC_O200K, s, n, known[i].o200k, known[i].line);
        check_all_ways(TG_ENC_CL100K, s, n, known[i].cl100k, known[i].line);
        check_all_ways(TG_ENC_APPROX, s, n, known[i].o200k, known[i].line);
        free(s);
    }
}

static uint64_t rng = 0x2545f4914f6cdd1dull;

static uint64_t rnd(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

/* Random chunkings of mixed texts equal the whole count. */
static void test_random_chunkings(void **state)
{
    (void)state;
    static const char *const pieces[] = {
        "Hello",    " world", "'s",   "'LL",       "  ",           "\n", "\r\n", "\t", "123",
        "4",        "中文",   "ação", "a\xcc\x81", "👍🏽",     ZWJ,  "!!",   "/",  "//",
        "\xc2\xa0", "x",      "Ǆ",    "ʰ",         "\xe2\x80\xa8", "'"};
    char text[4096];
    size_t cuts[64];
    for (int round = 0; round < 300; round++) {
        size_t n = 0;
        for (int k = (int)(rnd() % 80); k > 0; k--) {
            const char *p = pieces[rnd() % TG_ARRAY_LEN(pieces)];
            size_t l = strlen(p);
            if (n + l > sizeof(text))
                break;
            memcpy(text + n, p, l);
            n += l;
        }
        for (int e = 0; e < 2; e++) {
            enum tg_encoding enc = e ? TG_ENC_CL100K : TG_ENC_O200K;
            int64_t want = (int64_t)tg_tokens_count(enc, text, n);
            size_t ncuts = n ? rnd() % TG_ARRAY_LEN(cuts) : 0;
            for (size_t i = 0; i < ncuts; i++)
                cuts[i] = rnd() % (n + 1);
            for (size_t i = 1; i < ncuts; i++) { /* insertion sort */
                size_t v = cuts[i], j = i;
                for (; j > 0 && cuts[j - 1] > v; j--)
                    cuts[j] = cuts[j - 1];
                cuts[j] = v;
            }
            assert_int_equal(count_pieces(enc, text, n, cuts, ncuts), want);
        }
    }
}

/* Invalid UTF-8 is not an input, but must not crash: each invalid byte is a one-byte "other"
 * character, and the incremental counter agrees with the whole count at every split. */
static void test_invalid_utf8(void **state)
{
    (void)state;
    static const struct {
        int line;
        const char *s;
        size_t n;
    } rows[] = {
        {__LINE__, S("\xff")},
        {__LINE__, S("a\xff"
                     "b")},
        {__LINE__, S("\xe2\x82")},
        {__LINE__, S("\xe2\x82"
                     "abc")},
        {__LINE__, S("\xed\xa0\x80")}, /* an encoded surrogate */
        {__LINE__, S("\xc0\xaf")},     /* overlong */
        {__LINE__, S("\xf4\x90\x80\x80")},
        {__LINE__, S("\x80\x80\x80 word \xf0\x9f\x98")},
        {__LINE__, S("don\xe2\x80't \xfe\xfe")},
    };
    for (size_t i = 0; i < TG_ARRAY_LEN(rows); i++) {
        for (int e = 0; e < 2; e++) {
            enum tg_encoding enc = e ? TG_ENC_CL100K : TG_ENC_O200K;
            int64_t whole = (int64_t)tg_tokens_count(enc, rows[i].s, rows[i].n);
            if (whole < 1 || whole > (int64_t)rows[i].n)
                fail_msg("line %d: count %lld", rows[i].line, (long long)whole);
            check_all_ways(enc, rows[i].s, rows[i].n, whole, rows[i].line);
        }
    }
    /* A lone invalid byte is its own byte token; a truncated character is one "punctuation"
     * pre-token whose bytes still merge (E2 82 is a cl100k token). */
    assert_int_equal(tg_tokens_count(TG_ENC_O200K, "\xff", 1), 1);
    assert_int_equal(tg_tokens_count(TG_ENC_CL100K, "\xe2\x82", 2), 1);
    assert_int_equal(tg_tokens_count(TG_ENC_CL100K, "a\xe2\x82", 3), 2);
}

/* The heap merge (long pieces) and tiktoken's linear loop agree, including rank ties. */
static void test_merge_loops_agree(void **state)
{
    (void)state;
    static const char alphabet[] = "aaaabbcde  \n\t.!0123_-ABCé中";
    uint8_t s[TG_TOK_BPE_SMALL];
    void *scratch = NULL;
    size_t cap = 0;
    for (int e = 0; e < 2; e++) {
        const struct tg_tok_table *t = tg_tok_table_get(e ? TG_ENC_CL100K : TG_ENC_O200K);
        for (int round = 0; round < 3000; round++) {
            size_t n = 2 + rnd() % (sizeof(s) - 1);
            for (size_t i = 0; i < n; i++)
                s[i] = round % 3 == 0 ? (uint8_t)rnd()
                                      : (uint8_t)alphabet[rnd() % (sizeof(alphabet) - 1)];
            size_t a = tg_tok_bpe_small(t, s, n);
            size_t b = tg_tok_bpe_heap(t, s, n, &scratch, &cap);
            if (a != b)
                fail_msg("round %d n %zu: linear %zu, heap %zu", round, n, a, b);
        }
    }
    free(scratch);
}

static void test_rank_lookup(void **state)
{
    (void)state;
    const struct tg_tok_table *o = tg_tok_table_get(TG_ENC_O200K);
    const struct tg_tok_table *cl = tg_tok_table_get(TG_ENC_CL100K);
    /* Ranks of single bytes in both encodings: "!" is 0, and both tables are complete. */
    assert_int_equal(tg_tok_rank(o, (const uint8_t *)"!", 1), 0);
    assert_int_equal(tg_tok_rank(cl, (const uint8_t *)"!", 1), 0);
    for (int b = 0; b < 256; b++) {
        uint8_t byte = (uint8_t)b;
        assert_true(tg_tok_rank(o, &byte, 1) < 256);
        assert_true(tg_tok_rank(cl, &byte, 1) < 256);
    }
    assert_int_equal(tg_tok_rank(o, (const uint8_t *)" hello", 6), 40617);
    assert_int_equal(tg_tok_rank(cl, (const uint8_t *)" hello", 6), 24748);
    assert_int_equal(tg_tok_rank(o, (const uint8_t *)"zzqqxx", 6), UINT32_MAX);
    assert_int_equal(tg_tok_table_tokens(TG_ENC_O200K), 199998);
    assert_int_equal(tg_tok_table_tokens(TG_ENC_CL100K), 100256);
    assert_true(tg_tok_table_bytes(TG_ENC_O200K) > tg_tok_table_bytes(TG_ENC_CL100K));
}

static void test_unicode_classes(void **state)
{
    (void)state;
    static const struct {
        int line;
        uint32_t cp;
        enum tg_tok_uclass cls;
    } rows[] = {
        {__LINE__, 'A', TG_TOK_U_UPPER},      {__LINE__, 'z', TG_TOK_U_LOWER},
        {__LINE__, 0x01c5, TG_TOK_U_UPPER},                                        /* Lt */
        {__LINE__, 0x02b0, TG_TOK_U_LETTER},                                       /* Lm */
        {__LINE__, 0x4e2d, TG_TOK_U_LETTER},                                       /* Lo */
        {__LINE__, 0x0301, TG_TOK_U_MARK},    {__LINE__, 0x0903, TG_TOK_U_MARK},   /* Mc */
        {__LINE__, 0x20dd, TG_TOK_U_MARK},                                         /* Me */
        {__LINE__, '7', TG_TOK_U_NUMBER},     {__LINE__, 0x216b, TG_TOK_U_NUMBER}, /* Nl */
        {__LINE__, 0x00bd, TG_TOK_U_NUMBER},                                       /* No */
        {__LINE__, 0x10d41, TG_TOK_U_NUMBER}, /* Garay digit: new in Unicode 16.0 */
        {__LINE__, 0x11de1, TG_TOK_U_OTHER},  /* Tolong Siki digit: Unicode 17.0, not 16.0 */
        {__LINE__, ' ', TG_TOK_U_SPACE},      {__LINE__, 0x0085, TG_TOK_U_SPACE},
        {__LINE__, 0x3000, TG_TOK_U_SPACE},   {__LINE__, 0x000b, TG_TOK_U_SPACE},
        {__LINE__, 0x200b, TG_TOK_U_OTHER}, /* zero width space is not White_Space */
        {__LINE__, 0xfeff, TG_TOK_U_OTHER},   {__LINE__, 0x001c, TG_TOK_U_OTHER},
        {__LINE__, '\'', TG_TOK_U_OTHER},     {__LINE__, 0x10ffff, TG_TOK_U_OTHER},
        {__LINE__, 0x1f600, TG_TOK_U_OTHER},
    };
    for (size_t i = 0; i < TG_ARRAY_LEN(rows); i++) {
        if (tg_tok_uclass_of(rows[i].cp) != rows[i].cls)
            fail_msg("line %d: U+%04X class %d, want %d", rows[i].line, rows[i].cp,
                     tg_tok_uclass_of(rows[i].cp), rows[i].cls);
    }
}

static void test_utf8_decode(void **state)
{
    (void)state;
    static const struct {
        int line;
        const char *s;
        size_t n;
        int want;
        uint32_t cp;
    } rows[] = {
        {__LINE__, S("a"), 1, 'a'},
        {__LINE__, S("\xc3\xa9"), 2, 0xe9},
        {__LINE__, S("\xe4\xb8\xad"), 3, 0x4e2d},
        {__LINE__, S("\xf0\x9f\x98\x80"), 4, 0x1f600},
        {__LINE__, S("\xf4\x8f\xbf\xbf"), 4, 0x10ffff},
        {__LINE__, S("\xc3"), 0, 0},
        {__LINE__, S("\xf0\x9f\x98"), 0, 0},
        {__LINE__, S("\xc1\x81"), -1, 0},
        {__LINE__, S("\xe0\x80\x80"), -1, 0},
        {__LINE__, S("\xed\xa0\x80"), -1, 0},
        {__LINE__, S("\xf4\x90\x80\x80"), -1, 0},
        {__LINE__, S("\xf5"), -1, 0},
        {__LINE__, S("\x80"), -1, 0},
        {__LINE__, S("\xc3(a"), -1, 0},
    };
    for (size_t i = 0; i < TG_ARRAY_LEN(rows); i++) {
        uint32_t cp = 0;
        int got = tg_tok_utf8_decode((const uint8_t *)rows[i].s, rows[i].n, &cp);
        if (got != rows[i].want || (got > 0 && cp != rows[i].cp))
            fail_msg("line %d: got %d U+%04X", rows[i].line, got, cp);
    }
}

static void test_model_mapping(void **state)
{
    (void)state;
    static const struct {
        int line;
        const char *model;
        enum tg_encoding enc;
    } rows[] = {
        {__LINE__, "gpt-4o", TG_ENC_O200K},
        {__LINE__, "gpt-4o-mini-2024-07-18", TG_ENC_O200K},
        {__LINE__, "openai/gpt-4o", TG_ENC_O200K},
        {__LINE__, "azure/gpt-4.1-nano", TG_ENC_O200K},
        {__LINE__, "GPT-4.5-preview", TG_ENC_O200K},
        {__LINE__, "gpt-5", TG_ENC_O200K},
        {__LINE__, "gpt-5.1-codex", TG_ENC_O200K},
        {__LINE__, "o1", TG_ENC_O200K},
        {__LINE__, "o1-mini", TG_ENC_O200K},
        {__LINE__, "o3-pro", TG_ENC_O200K},
        {__LINE__, "o4-mini-2025-04-16", TG_ENC_O200K},
        {__LINE__, "chatgpt-4o-latest", TG_ENC_O200K},
        {__LINE__, "ft:gpt-4o-mini:acme::abc123", TG_ENC_O200K},
        {__LINE__, "openrouter/openai/gpt-oss-120b", TG_ENC_O200K},
        {__LINE__, "gpt-4", TG_ENC_CL100K},
        {__LINE__, "gpt-4-0613", TG_ENC_CL100K},
        {__LINE__, "gpt-4-turbo-2024-04-09", TG_ENC_CL100K},
        {__LINE__, "gpt-4-32k", TG_ENC_CL100K},
        {__LINE__, "azure/gpt-35-turbo", TG_ENC_CL100K},
        {__LINE__, "gpt-3.5-turbo-instruct", TG_ENC_CL100K},
        {__LINE__, "text-embedding-3-small", TG_ENC_CL100K},
        {__LINE__, "text-embedding-ada-002", TG_ENC_CL100K},
        {__LINE__, "ft:gpt-3.5-turbo:acme::x", TG_ENC_CL100K},
        {__LINE__, "claude-3-5-sonnet", TG_ENC_APPROX},
        {__LINE__, "anthropic/claude-sonnet-4", TG_ENC_APPROX},
        {__LINE__, "llama-3.1-70b", TG_ENC_APPROX},
        {__LINE__, "mistral-large", TG_ENC_APPROX},
        {__LINE__, "o100", TG_ENC_APPROX},
        {__LINE__, "gpt-4.7", TG_ENC_APPROX},
        {__LINE__, "", TG_ENC_APPROX},
        {__LINE__, "openai/", TG_ENC_APPROX},
        {__LINE__, NULL, TG_ENC_APPROX},
    };
    for (size_t i = 0; i < TG_ARRAY_LEN(rows); i++) {
        enum tg_encoding got = tg_tokenizer_for_model(rows[i].model);
        if (got != rows[i].enc)
            fail_msg("line %d: %s -> %s", rows[i].line, rows[i].model ? rows[i].model : "NULL",
                     tg_encoding_name(got));
    }
    enum tg_encoding enc;
    assert_string_equal(tg_encoding_name(TG_ENC_O200K), "o200k_base");
    assert_string_equal(tg_encoding_name(TG_ENC_CL100K), "cl100k_base");
    assert_string_equal(tg_encoding_name(TG_ENC_APPROX), "approx");
    assert_int_equal(tg_encoding_parse("cl100k_base", &enc), 0);
    assert_int_equal(enc, TG_ENC_CL100K);
    assert_int_equal(tg_encoding_parse("o200k", &enc), 0);
    assert_int_equal(enc, TG_ENC_O200K);
    assert_int_equal(tg_encoding_parse("p50k_base", &enc), -1);
}

/* Long pieces: no quadratic blow-up, whole == incremental, and the counter's buffer stays
 * proportional to the unfinished pre-token, not to the text. */
static void test_long_pieces_and_memory(void **state)
{
    (void)state;
    size_t n = 200000;
    char *s = malloc(n);
    assert_non_null(s);
    for (int kind = 0; kind < 4; kind++) {
        for (size_t i = 0; i < n; i++) {
            if (kind == 0)
                s[i] = ' ';
            else if (kind == 1)
                s[i] = (char)('a' + rnd() % 26); /* one 200 kB word */
            else if (kind == 2)
                s[i] = "!#$%&*+-/<=>?@^|~"[rnd() % 17];
            else
                s[i] = "the quick brown fox jumps over a lazy dog\n"[i % 42];
        }
        for (int e = 0; e < 2; e++) {
            enum tg_encoding enc = e ? TG_ENC_CL100K : TG_ENC_O200K;
            int64_t whole = (int64_t)tg_tokens_count(enc, s, n);
            assert_true(whole > 0);
            struct tg_token_counter c;
            tg_token_counter_init(&c, enc);
            for (size_t i = 0; i < n; i += 3)
                tg_token_counter_feed(&c, s + i, TG_MIN((size_t)3, n - i));
            size_t cap = c.cap;
            assert_int_equal(tg_token_counter_finish(&c), whole);
            if (kind == 3)
                assert_true(cap <= 1024); /* ordinary text: a small tail only */
            tg_token_counter_cleanup(&c);
        }
    }
    free(s);
}

/* One pre-token longer than TG_TOKEN_COUNTER_MAX_TAIL is cut: memory stays bounded. */
static void test_counter_tail_cap(void **state)
{
    (void)state;
    size_t n = 3 * TG_TOKEN_COUNTER_MAX_TAIL;
    char *s = malloc(n);
    assert_non_null(s);
    memset(s, 'a', n);
    struct tg_token_counter c;
    tg_token_counter_init(&c, TG_ENC_O200K);
    for (size_t i = 0; i < n; i += 4096)
        tg_token_counter_feed(&c, s + i, 4096);
    assert_true(c.cap <= 4 * (size_t)TG_TOKEN_COUNTER_MAX_TAIL);
    int64_t got = tg_token_counter_finish(&c);
    int64_t whole = (int64_t)tg_tokens_count(TG_ENC_O200K, s, n);
    /* Cut pre-tokens may merge differently at the cut: a few tokens either way. */
    assert_true(got > 0 && whole > 0);
    assert_true(llabs(got - whole) <= 8);
    tg_token_counter_cleanup(&c);
    free(s);
}

/* A counter that met long pre-tokens gives their memory back: an open stream holds little. */
static void test_counter_keeps_little(void **state)
{
    (void)state;
    /* what the benchmark's slow streams send: 1 000-byte words, then one of 100 KB */
    size_t n = 20 * 1001 + 100000 + 4, at = 0;
    char *text = malloc(n);
    assert_non_null(text);
    struct tg_token_counter c;
    tg_token_counter_init(&c, TG_ENC_O200K);
    for (int i = 0; i < 20; i++) {
        char *w = text + at;
        memset(w, 'x', 1000);
        memcpy(w, "tok", 3);
        w[1000] = ' ';
        tg_token_counter_feed(&c, w, 1000);     /* one 1 000-byte pre-token ... */
        tg_token_counter_feed(&c, w + 1000, 1); /* ... closed by a space */
        at += 1001;
        assert_true(c.cap <= 4 * 1024);
    }
    memset(text + at, 'q', 100000);
    memcpy(text + at + 100000, " end", 4);
    tg_token_counter_feed(&c, text + at, 100000);
    tg_token_counter_feed(&c, text + at + 100000, 4);
    /* the 100 KB pre-token waits in the tail (rescanned when it doubles, bounded by
     * TG_TOKEN_COUNTER_MAX_TAIL); once counted, its memory is given back */
    assert_int_equal(tg_token_counter_finish(&c), (int64_t)tg_tokens_count(TG_ENC_O200K, text, n));
    assert_true(c.cap <= 4 * 1024);
    tg_token_counter_cleanup(&c);
    free(text);
}

static void test_counter_reuse(void **state)
{
    (void)state;
    struct tg_token_counter c;
    tg_token_counter_init(&c, TG_ENC_CL100K);
    assert_int_equal(tg_token_counter_finish(&c), 0); /* never fed */
    tg_token_counter_feed(&c, "hello wor", 9);
    tg_token_counter_feed(&c, "ld", 2);
    assert_int_equal(tg_token_counter_finish(&c), 2);
    tg_token_counter_feed(&c, "I'm here", 8);
    assert_int_equal(tg_token_counter_finish(&c), 3);
    tg_token_counter_cleanup(&c);
    tg_token_counter_cleanup(&c); /* idempotent */
    tg_token_counter_init(&c, TG_ENC_O200K);
    tg_token_counter_cleanup(&c);
}

static void test_chat(void **state)
{
    (void)state;
    static const struct {
        int line;
        const char *body;
        int rc;
        int64_t o200k;
        int64_t cl100k;
    } rows[] = {
        /* 3 + (3 + user 1 + hello 1) */
        {__LINE__, "{\"messages\":[{\"role\":\"user\",\"content\":\"hello\"}]}", 0, 8, 8},
        {__LINE__,
         "{\"model\":\"gpt-4o\",\"messages\":[{\"role\":\"system\",\"content\":\"You are "
         "helpful.\"},{\"role\":\"user\",\"name\":\"bob\",\"content\":\"Hi\\nthere\"}]}",
         0, 20, 20},
        {__LINE__,
         "{\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":\"What is "
         "this?\"},{\"type\":\"image_url\",\"image_url\":{\"url\":\"https://x/y.png\"}}]}]}",
         0, 11, 11},
        {__LINE__,
         "{\"messages\":[{\"role\":\"assistant\",\"content\":null,\"tool_calls\":[{\"id\":\"c1\","
         "\"type\":\"function\",\"function\":{\"name\":\"get_weather\",\"arguments\":\"{"
         "\\\"city\\\":"
         "\\\"Paris\\\"}\"}}]},{\"role\":\"tool\",\"tool_call_id\":\"c1\",\"content\":\"18C\"}]}",
         0, 22, 22},
        {__LINE__,
         "{\"messages\":[],\"tools\":[{\"type\":\"function\",\"function\":{\"name\":\"f\"}}]}", 0,
         16, 16},
        {__LINE__, "{\"messages\":[]}", 0, 3, 3},
        {__LINE__, "{\"messages\":[1,\"x\"]}", 0, 9, 9},
        {__LINE__, "{\"messages\":{}}", -1, 0, 0},
        {__LINE__, "{\"model\":\"gpt-4o\"}", -1, 0, 0},
        {__LINE__, "[1,2]", -1, 0, 0},
        {__LINE__, "{\"messages\":[", -1, 0, 0},
        {__LINE__, "", -1, 0, 0},
    };
    for (size_t i = 0; i < TG_ARRAY_LEN(rows); i++) {
        for (int e = 0; e < 2; e++) {
            int64_t got = -7;
            int rc = tg_tokens_count_chat(e ? TG_ENC_CL100K : TG_ENC_O200K, rows[i].body,
                                          strlen(rows[i].body), &got);
            if (rc != rows[i].rc)
                fail_msg("line %d: rc %d", rows[i].line, rc);
            if (rc == 0 && got != (e ? rows[i].cl100k : rows[i].o200k))
                fail_msg("line %d %s: %lld", rows[i].line, e ? "cl100k" : "o200k", (long long)got);
        }
    }
}

/* Runs tg_tokens_main with stdin from `input`; returns the exit status, stdout in out. */
static int run_cli(const char *input, char *out, size_t outcap, int argc, ...)
{
    char *argv[8];
    va_list ap;
    va_start(ap, argc);
    for (int i = 0; i < argc; i++)
        argv[i] = va_arg(ap, char *);
    va_end(ap);
    argv[argc] = NULL;

    char in_path[] = "/tmp/tg-tok-in-XXXXXX", out_path[] = "/tmp/tg-tok-out-XXXXXX";
    int in_fd = mkstemp(in_path), out_fd = mkstemp(out_path);
    assert_true(in_fd >= 0 && out_fd >= 0);
    assert_int_equal(write(in_fd, input, strlen(input)), (ssize_t)strlen(input));
    lseek(in_fd, 0, SEEK_SET);
    fflush(stdout);
    int saved_in = dup(STDIN_FILENO), saved_out = dup(STDOUT_FILENO);
    dup2(in_fd, STDIN_FILENO);
    dup2(out_fd, STDOUT_FILENO);
    int rc = tg_tokens_main(argc, argv);
    fflush(stdout);
    dup2(saved_in, STDIN_FILENO);
    dup2(saved_out, STDOUT_FILENO);
    close(saved_in);
    close(saved_out);
    lseek(out_fd, 0, SEEK_SET);
    ssize_t got = read(out_fd, out, outcap - 1);
    out[got > 0 ? got : 0] = '\0';
    close(in_fd);
    close(out_fd);
    unlink(in_path);
    unlink(out_path);
    return rc;
}

static void test_cli(void **state)
{
    (void)state;
    char out[4096];
    const char *chat = "{\"messages\":[{\"role\":\"user\",\"content\":\"hello\"}]}";
    assert_int_equal(run_cli("I'm here", out, sizeof(out), 3, "tokens", "--model", "gpt-4o"), 0);
    assert_string_equal(out, "2\n");
    assert_int_equal(run_cli("I'm here", out, sizeof(out), 3, "tokens", "--model", "gpt-4"), 0);
    assert_string_equal(out, "3\n");
    assert_int_equal(run_cli("I'm here", out, sizeof(out), 2, "tokens", "--model=claude-3"), 0);
    assert_string_equal(out, "2\n");
    assert_int_equal(run_cli("I'm here", out, sizeof(out), 4, "tokens", "--model", "gpt-4o",
                             "--encoding=cl100k_base"),
                     0);
    assert_string_equal(out, "3\n");
    assert_int_equal(run_cli("", out, sizeof(out), 3, "tokens", "--encoding", "o200k_base"), 0);
    assert_string_equal(out, "0\n");
    assert_int_equal(
        run_cli(chat, out, sizeof(out), 4, "tokens", "--messages", "--model", "gpt-4o"), 0);
    assert_string_equal(out, "8\n");
    assert_int_equal(run_cli("", out, sizeof(out), 2, "tokens", "--help"), 0);
    assert_non_null(strstr(out, "usage: tollgate tokens"));
    /* Errors: exit 2, nothing on stdout. */
    assert_int_equal(run_cli("x", out, sizeof(out), 1, "tokens"), 2);
    assert_string_equal(out, "");
    assert_int_equal(run_cli("x", out, sizeof(out), 3, "tokens", "--encoding", "p50k"), 2);
    assert_int_equal(run_cli("x", out, sizeof(out), 2, "tokens", "--model"), 2);
    assert_int_equal(run_cli("x", out, sizeof(out), 3, "tokens", "--bogus", "1"), 2);
    assert_int_equal(
        run_cli("not json", out, sizeof(out), 4, "tokens", "--messages", "--model", "gpt-4o"), 2);
    assert_string_equal(out, "");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_known_counts),
        cmocka_unit_test(test_random_chunkings),
        cmocka_unit_test(test_invalid_utf8),
        cmocka_unit_test(test_merge_loops_agree),
        cmocka_unit_test(test_rank_lookup),
        cmocka_unit_test(test_unicode_classes),
        cmocka_unit_test(test_utf8_decode),
        cmocka_unit_test(test_model_mapping),
        cmocka_unit_test(test_long_pieces_and_memory),
        cmocka_unit_test(test_counter_tail_cap),
        cmocka_unit_test(test_counter_keeps_little),
        cmocka_unit_test(test_counter_reuse),
        cmocka_unit_test(test_chat),
        cmocka_unit_test(test_cli),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
