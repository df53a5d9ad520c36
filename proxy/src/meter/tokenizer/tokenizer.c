/* tokenizer.c: tiktoken's pre-tokenisers as hand-written matchers, whole-text and incremental
 * counting, and the model -> encoding mapping. */
#include "meter/tokenizer/tokenizer.h"

#include <assert.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "meter/tokenizer/tok_bpe.h"
#include "meter/tokenizer/tok_unicode.h"

/* The patterns, exactly as in tiktoken@1.0.22 (encoders/<enc>.json "pat_str"):
 *
 * cl100k_base:
 *   (?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*
 *   |\s*[\r\n]+|\s+(?!\S)|\s+
 * o200k_base:
 *   [^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?
 *   |[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?
 *   |\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+
 *
 * find_iter semantics (leftmost-first alternation, greedy backtracking) are reproduced by the
 * matchers below. Each matcher reads characters only through ch(); reading at or past the end
 * of the available bytes sets hit_end, so a match found without hit_end cannot change whatever
 * text follows — this is what lets the incremental counter close pre-tokens early. */

#define C_END (-1)

struct scan {
    const uint8_t *s;
    size_t n;
    bool is_final; /* the text ends at n (else more may follow) */
    bool hit_end;  /* the current match looked at position n */
};

/* Class of the character at pos (C_END past the end), its code point and length. An invalid
 * byte is a one-byte character of class OTHER with code point UINT32_MAX. */
static inline int ch(struct scan *sc, size_t pos, uint32_t *cp, size_t *len)
{
    if (pos >= sc->n) {
        sc->hit_end = true;
        return C_END;
    }
    uint8_t b = sc->s[pos];
    if (b < 0x80) {
        *cp = b;
        *len = 1;
        return (int)tg_tok_uclass_of(b);
    }
    int l = tg_tok_utf8_decode(sc->s + pos, sc->n - pos, cp);
    if (l > 0) {
        *len = (size_t)l;
        return (int)tg_tok_uclass_of(*cp);
    }
    if (l == 0 && !sc->is_final) {
        sc->hit_end = true; /* a character split by the end of the buffer */
        return C_END;
    }
    *cp = UINT32_MAX;
    *len = 1;
    return TG_TOK_U_OTHER;
}

static inline bool is_l(int c) /* \p{L} */
{
    return c == TG_TOK_U_UPPER || c == TG_TOK_U_LOWER || c == TG_TOK_U_LETTER;
}

static inline bool is_u(int c) /* [\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}] */
{
    return c == TG_TOK_U_UPPER || c == TG_TOK_U_LETTER || c == TG_TOK_U_MARK;
}

static inline bool is_lo(int c) /* [\p{Ll}\p{Lm}\p{Lo}\p{M}] */
{
    return c == TG_TOK_U_LOWER || c == TG_TOK_U_LETTER || c == TG_TOK_U_MARK;
}

static inline bool is_punct(int c) /* [^\s\p{L}\p{N}] */
{
    return c == TG_TOK_U_OTHER || c == TG_TOK_U_MARK;
}

static inline bool is_nl(uint32_t cp)
{
    return cp == '\r' || cp == '\n';
}

/* [^\r\n\p{L}\p{N}] */
static inline bool is_prefix(int c, uint32_t cp)
{
    return c != C_END && !is_l(c) && c != TG_TOK_U_NUMBER && !is_nl(cp);
}

/* ASCII letter folded to lower case; U+017F LATIN SMALL LETTER LONG S folds to 's' under
 * Unicode simple case folding, as Rust regex's (?i) does. */
static inline uint32_t fold(uint32_t cp)
{
    if (cp >= 'A' && cp <= 'Z')
        return cp + 32;
    if (cp == 0x17f)
        return 's';
    return cp;
}

/* (?i:'s|'t|'re|'ve|'m|'ll|'d) at pos: end of the match, or 0. */
static size_t contraction(struct scan *sc, size_t pos)
{
    uint32_t cp;
    size_t l;
    if (ch(sc, pos, &cp, &l) == C_END || cp != '\'')
        return 0;
    pos += l;
    if (ch(sc, pos, &cp, &l) == C_END)
        return 0;
    pos += l;
    uint32_t second;
    switch (fold(cp)) {
    case 's':
    case 't':
    case 'm':
    case 'd':
        return pos;
    case 'r':
    case 'v':
        second = 'e';
        break;
    case 'l':
        second = 'l';
        break;
    default:
        return 0;
    }
    if (ch(sc, pos, &cp, &l) == C_END || fold(cp) != second)
        return 0;
    return pos + l;
}

static inline size_t contraction_opt(struct scan *sc, size_t pos)
{
    size_t e = contraction(sc, pos);
    return e ? e : pos;
}

static size_t run_letters(struct scan *sc, size_t pos)
{
    uint32_t cp;
    size_t l;
    while (is_l(ch(sc, pos, &cp, &l)))
        pos += l;
    return pos;
}

static size_t run_lower(struct scan *sc, size_t pos)
{
    uint32_t cp;
    size_t l;
    while (is_lo(ch(sc, pos, &cp, &l)))
        pos += l;
    return pos;
}

/* \p{N}{1,3} after a first number of length l0. */
static size_t numbers(struct scan *sc, size_t pos)
{
    uint32_t cp;
    size_t l;
    for (int k = 1; k < 3; k++) {
        if (ch(sc, pos, &cp, &l) != TG_TOK_U_NUMBER)
            break;
        pos += l;
    }
    return pos;
}

/* [^\s\p{L}\p{N}]+ from pos (known to match once), then [\r\n]* or [\r\n/]*. */
static size_t punct(struct scan *sc, size_t pos, bool slash)
{
    uint32_t cp;
    size_t l;
    while (is_punct(ch(sc, pos, &cp, &l)))
        pos += l;
    for (;;) {
        int c = ch(sc, pos, &cp, &l);
        if (c == C_END || !(is_nl(cp) || (slash && cp == '/')))
            break;
        pos += l;
    }
    return pos;
}

/* \s*[\r\n]+ | \s+(?!\S) | \s+ at i, where the character at i is whitespace. */
static size_t spaces(struct scan *sc, size_t i)
{
    uint32_t cp;
    size_t l, pos = i, last = i, nl_end = 0, chars = 0;
    int c;
    while ((c = ch(sc, pos, &cp, &l)) == TG_TOK_U_SPACE) {
        if (is_nl(cp))
            nl_end = pos + l;
        last = pos;
        pos += l;
        chars++;
    }
    if (nl_end)
        return nl_end; /* \s* backtracks to the last newline of the run */
    if (c == C_END || chars < 2)
        return pos;
    return last; /* (?!\S): give the last space back to the next pre-token */
}

static size_t match_cl100k(struct scan *sc, size_t i)
{
    uint32_t cp0, cp1;
    size_t l0, l1;
    int c0 = ch(sc, i, &cp0, &l0);
    if (c0 == C_END)
        return 0;
    if (cp0 == '\'') {
        size_t e = contraction(sc, i);
        if (e)
            return e;
    }
    if (is_l(c0))
        return run_letters(sc, i + l0);
    if (is_prefix(c0, cp0) && is_l(ch(sc, i + l0, &cp1, &l1)))
        return run_letters(sc, i + l0 + l1);
    if (c0 == TG_TOK_U_NUMBER)
        return numbers(sc, i + l0);
    if (is_punct(c0))
        return punct(sc, i + l0, false);
    if (cp0 == ' ' && is_punct(ch(sc, i + 1, &cp1, &l1)))
        return punct(sc, i + 1 + l1, false);
    return spaces(sc, i);
}

/* [\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?i:...)? from s: end or 0. */
static size_t o200k_lower_word(struct scan *sc, size_t s)
{
    uint32_t cp;
    size_t l, pos = s, last_lower_end = 0;
    int c;
    while (is_u(c = ch(sc, pos, &cp, &l))) {
        if (is_lo(c))
            last_lower_end = pos + l;
        pos += l;
    }
    if (is_lo(c))
        return contraction_opt(sc, run_lower(sc, pos + l));
    if (last_lower_end == 0)
        return 0;
    /* U* gives back characters until L+ can match: the last lower-set one of the run. */
    return contraction_opt(sc, last_lower_end);
}

/* [\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?i:...)? from s: end or 0. */
static size_t o200k_upper_word(struct scan *sc, size_t s)
{
    uint32_t cp;
    size_t l, pos = s;
    while (is_u(ch(sc, pos, &cp, &l)))
        pos += l;
    if (pos == s)
        return 0;
    return contraction_opt(sc, run_lower(sc, pos));
}

static size_t match_o200k(struct scan *sc, size_t i)
{
    uint32_t cp0, cp1;
    size_t l0, l1, e;
    int c0 = ch(sc, i, &cp0, &l0);
    if (c0 == C_END)
        return 0;
    bool pre = is_prefix(c0, cp0);
    if (pre && (e = o200k_lower_word(sc, i + l0)) != 0)
        return e;
    if ((e = o200k_lower_word(sc, i)) != 0)
        return e;
    if (pre && (e = o200k_upper_word(sc, i + l0)) != 0)
        return e;
    if ((e = o200k_upper_word(sc, i)) != 0)
        return e;
    if (c0 == TG_TOK_U_NUMBER)
        return numbers(sc, i + l0);
    if (is_punct(c0))
        return punct(sc, i + l0, true);
    if (cp0 == ' ' && is_punct(ch(sc, i + 1, &cp1, &l1)))
        return punct(sc, i + 1 + l1, true);
    return spaces(sc, i);
}

struct work {
    const struct tg_tok_table *table;
    bool is_cl100k;
    void **scratch;
    size_t *scratch_cap;
};

/* Counts the pre-tokens of s[0..n). Unless is_final, stops before the first pre-token that
 * more text could change. Sets *done to the bytes consumed; returns tokens or -1 (no memory). */
static int64_t scan_text(const struct work *w, const uint8_t *s, size_t n, bool is_final,
                         size_t *done)
{
    struct scan sc = {.s = s, .n = n, .is_final = is_final};
    size_t i = 0;
    int64_t total = 0;
    while (i < n) {
        sc.hit_end = false;
        size_t e = w->is_cl100k ? match_cl100k(&sc, i) : match_o200k(&sc, i);
        if (!is_final && sc.hit_end)
            break;
        assert(e > i && e <= n);
        size_t c = tg_tok_bpe_count(w->table, s + i, e - i, w->scratch, w->scratch_cap);
        if (c == SIZE_MAX) {
            *done = i;
            return -1;
        }
        total += (int64_t)c;
        i = e;
    }
    *done = i;
    return total;
}

static void work_init(struct work *w, enum tg_encoding enc, void **scratch, size_t *scratch_cap)
{
    w->table = tg_tok_table_get(enc);
    w->is_cl100k = enc == TG_ENC_CL100K;
    w->scratch = scratch;
    w->scratch_cap = scratch_cap;
}

/* The BPE work area (36 bytes per byte of the pre-token being merged) is one per thread,
 * shared by every count and counter on it: counting is synchronous, so one is enough, and a
 * worker with 1 000 open streams keeps one area, not 1 000, and allocates nothing per piece.
 * Kept up to KEEP_SCRATCH (pre-tokens of ~7 KB), given back after a longer one; freed when
 * the thread exits. */
#define KEEP_SCRATCH (256 * 1024)

struct thread_scratch {
    void *p;
    size_t cap;
};

static __thread struct thread_scratch tl_scratch;
static __thread bool tl_scratch_registered;
static pthread_key_t scratch_key;
static pthread_once_t scratch_once = PTHREAD_ONCE_INIT;

static void scratch_release(void *arg)
{
    struct thread_scratch *s = arg;
    free(s->p);
    s->p = NULL;
    s->cap = 0;
}

static void scratch_key_create(void)
{
    if (pthread_key_create(&scratch_key, scratch_release) != 0)
        abort();
}

static struct thread_scratch *thread_scratch(void)
{
    if (!tl_scratch_registered) {
        pthread_once(&scratch_once, scratch_key_create);
        pthread_setspecific(scratch_key, &tl_scratch); /* the destructor frees it */
        tl_scratch_registered = true;
    }
    return &tl_scratch;
}

static void scratch_trim(struct thread_scratch *s)
{
    if (s->cap > KEEP_SCRATCH)
        scratch_release(s);
}

size_t tg_tokens_count(enum tg_encoding enc, const char *text, size_t len)
{
    struct thread_scratch *s = thread_scratch();
    size_t done;
    struct work w;
    work_init(&w, enc, &s->p, &s->cap);
    int64_t n = scan_text(&w, (const uint8_t *)text, len, true, &done);
    scratch_trim(s);
    return n < 0 ? SIZE_MAX : (size_t)n;
}

void tg_token_counter_init(struct tg_token_counter *c, enum tg_encoding enc)
{
    memset(c, 0, sizeof(*c));
    c->enc = enc;
}

static bool reserve(struct tg_token_counter *c, size_t need)
{
    if (need <= c->cap)
        return true;
    size_t cap = c->cap ? c->cap : 256;
    while (cap < need)
        cap *= 2;
    char *b = realloc(c->buf, cap);
    if (b == NULL) {
        c->failed = true;
        return false;
    }
    c->buf = b;
    c->cap = cap;
    return true;
}

/* A counter's tail buffer holds the unfinished pre-token, as long as itself; above KEEP_BUF it
 * is given back once emptied, so an open stream that once met a long pre-token (a URL, base64,
 * a run of one letter) does not keep its size. Ordinary text never needs more. */
#define KEEP_BUF (4 * 1024)

static void trim(struct tg_token_counter *c)
{
    if (c->cap > KEEP_BUF && c->len <= KEEP_BUF / 2) {
        char *b = c->len == 0 ? NULL : realloc(c->buf, KEEP_BUF);
        if (c->len == 0) {
            free(c->buf);
            c->buf = NULL;
            c->cap = 0;
        } else if (b != NULL) {
            c->buf = b;
            c->cap = KEEP_BUF;
        }
    }
}

/* Scans the buffer (final or not) and keeps the unconsumed tail at its start. */
static void scan_buf(struct tg_token_counter *c, bool is_final)
{
    struct work w;
    size_t done = 0;
    struct thread_scratch *s = thread_scratch();
    work_init(&w, c->enc, &s->p, &s->cap);
    int64_t n = scan_text(&w, (const uint8_t *)c->buf, c->len, is_final, &done);
    scratch_trim(s);
    if (n < 0) {
        c->failed = true;
        c->len = 0;
        return;
    }
    c->total += n;
    memmove(c->buf, c->buf + done, c->len - done);
    c->len -= done;
    trim(c);
}

/* Next rescan once the tail has doubled (at least 256 more bytes): a pre-token that keeps
 * growing is rescanned O(log n) times, not once per feed. */
static void plan_scan(struct tg_token_counter *c)
{
    size_t grow = c->len < 256 ? 256 : c->len;
    c->scan_at = c->len + TG_MIN(grow, (size_t)TG_TOKEN_COUNTER_MAX_TAIL);
    if (c->len > TG_TOKEN_COUNTER_MAX_TAIL) {
        /* One pre-token of more than 1 MiB: count it as if the text ended here. */
        scan_buf(c, true);
        c->scan_at = 0;
    }
}

void tg_token_counter_feed(struct tg_token_counter *c, const char *p, size_t n)
{
    if (c->failed || n == 0)
        return;
    if (c->len == 0) {
        /* Nothing pending: scan the caller's bytes in place and keep only the tail. */
        struct work w;
        size_t done = 0;
        struct thread_scratch *s = thread_scratch();
        work_init(&w, c->enc, &s->p, &s->cap);
        int64_t got = scan_text(&w, (const uint8_t *)p, n, false, &done);
        scratch_trim(s);
        if (got < 0) {
            c->failed = true;
            return;
        }
        c->total += got;
        trim(c);
        if (done == n)
            return;
        if (!reserve(c, n - done))
            return;
        memcpy(c->buf, p + done, n - done);
        c->len = n - done;
        plan_scan(c);
        return;
    }
    if (!reserve(c, c->len + n))
        return;
    memcpy(c->buf + c->len, p, n);
    c->len += n;
    if (c->len >= c->scan_at) {
        scan_buf(c, false);
        plan_scan(c);
    }
}

int64_t tg_token_counter_finish(struct tg_token_counter *c)
{
    if (!c->failed && c->len > 0)
        scan_buf(c, true);
    int64_t total = c->failed ? -1 : c->total;
    c->total = 0;
    c->len = 0;
    c->scan_at = 0;
    c->failed = false;
    return total;
}

void tg_token_counter_cleanup(struct tg_token_counter *c)
{
    free(c->buf);
    c->buf = NULL;
    c->len = c->cap = c->scan_at = 0;
    c->total = 0;
    c->failed = false;
}

const char *tg_encoding_name(enum tg_encoding enc)
{
    switch (enc) {
    case TG_ENC_O200K:
        return "o200k_base";
    case TG_ENC_CL100K:
        return "cl100k_base";
    case TG_ENC_APPROX:
        return "approx";
    }
    return "approx";
}

int tg_encoding_parse(const char *name, enum tg_encoding *out)
{
    if (name == NULL)
        return -1;
    if (strcmp(name, "o200k_base") == 0 || strcmp(name, "o200k") == 0) {
        *out = TG_ENC_O200K;
        return 0;
    }
    if (strcmp(name, "cl100k_base") == 0 || strcmp(name, "cl100k") == 0) {
        *out = TG_ENC_CL100K;
        return 0;
    }
    return -1;
}

/* s starts with prefix (any case) and the name part ends there: "o1-mini" has "o1", "o100" not. */
static bool has_prefix(const char *s, const char *prefix)
{
    size_t n = strlen(prefix);
    if (strncasecmp(s, prefix, n) != 0)
        return false;
    unsigned char next = (unsigned char)s[n];
    return !((next >= '0' && next <= '9') || (next >= 'a' && next <= 'z') ||
             (next >= 'A' && next <= 'Z'));
}

enum tg_encoding tg_tokenizer_for_model(const char *model)
{
    static const char *const o200k[] = {"gpt-4o", "gpt-4.1", "gpt-4.5",    "gpt-5",   "o1",
                                        "o3",     "o4",      "chatgpt-4o", "gpt-oss", "codex-mini"};
    static const char *const cl100k[] = {"gpt-3.5",          "gpt-35",
                                         "text-embedding-3", "text-embedding-ada-002",
                                         "davinci-002",      "babbage-002"};
    if (model == NULL)
        return TG_ENC_APPROX;
    const char *slash = strrchr(model, '/');
    if (slash != NULL)
        model = slash + 1;
    if (strncasecmp(model, "ft:", 3) == 0)
        model += 3;
    for (size_t k = 0; k < TG_ARRAY_LEN(o200k); k++) {
        if (has_prefix(model, o200k[k]))
            return TG_ENC_O200K;
    }
    for (size_t k = 0; k < TG_ARRAY_LEN(cl100k); k++) {
        if (has_prefix(model, cl100k[k]))
            return TG_ENC_CL100K;
    }
    /* gpt-4, gpt-4-turbo, gpt-4-0613, gpt-4-32k (gpt-4o / gpt-4.1 / gpt-4.5 matched above). */
    if (has_prefix(model, "gpt-4") && model[5] != '.')
        return TG_ENC_CL100K;
    return TG_ENC_APPROX;
}
