/* tok_bpe.c: the rank tables of o200k_base and cl100k_base and byte-pair merging by rank. */
#include "meter/tokenizer/tok_bpe.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "meter/tokenizer/tok_ranks_data.h"

/* Sizes of the committed rank files (their SHA-256 is checked when CMake configures). */
#define O200K_TOKENS  199998u
#define O200K_SLOTS   (1u << 19)
#define CL100K_TOKENS 100256u
#define CL100K_SLOTS  (1u << 18)
#define NO_RANK       UINT32_MAX

struct tg_tok_table {
    const uint8_t *lens;  /* length of each rank's bytes (embedded data) */
    const uint8_t *bytes; /* all tokens' bytes in rank order (embedded data) */
    uint32_t *off;        /* start of each rank in bytes */
    uint64_t *slots;      /* open addressing: hash high 32 bits << 32 | (rank + 1); 0 = empty */
    uint32_t count;       /* number of ranks */
    uint32_t mask;        /* slots - 1 */
    uint32_t max_len;     /* longest token */
    size_t data_bytes;    /* size of the embedded file */
};

/* Built once, then read-only; in .bss so that loading cannot fail. */
static uint32_t o200k_off[O200K_TOKENS];
static uint64_t o200k_slots[O200K_SLOTS];
static uint32_t cl100k_off[CL100K_TOKENS];
static uint64_t cl100k_slots[CL100K_SLOTS];
static struct tg_tok_table o200k_table = {.off = o200k_off, .slots = o200k_slots};
static struct tg_tok_table cl100k_table = {.off = cl100k_off, .slots = cl100k_slots};
static pthread_once_t o200k_once = PTHREAD_ONCE_INIT;
static pthread_once_t cl100k_once = PTHREAD_ONCE_INIT;

#define K0 0xa0761d6478bd642full
#define K1 0xe7037ed1a0b428dbull
#define K2 0x8ebc6af09c88c6e3ull

static inline uint64_t rd64(const uint8_t *p)
{
    uint64_t v;
    memcpy(&v, p, sizeof(v));
    return v;
}

static inline uint64_t rd32(const uint8_t *p)
{
    uint32_t v;
    memcpy(&v, p, sizeof(v));
    return v;
}

static inline uint64_t mix(uint64_t a, uint64_t b)
{
    unsigned __int128 r = (unsigned __int128)a * b;
    return (uint64_t)r ^ (uint64_t)(r >> 64);
}

/* wyhash-style: a few multiplies, no loop for the short keys that dominate. */
static inline uint64_t hash_bytes(const uint8_t *p, size_t n)
{
    uint64_t a, b, seed = K0 ^ n;
    if (n <= 16) {
        if (n >= 4) {
            size_t d = (n >> 3) << 2;
            a = (rd32(p) << 32) | rd32(p + d);
            b = (rd32(p + n - 4) << 32) | rd32(p + n - 4 - d);
        } else if (n > 0) {
            a = ((uint64_t)p[0] << 16) | ((uint64_t)p[n >> 1] << 8) | p[n - 1];
            b = 0;
        } else {
            a = b = 0;
        }
    } else {
        size_t i = n;
        while (i > 16) {
            seed = mix(rd64(p) ^ K1, rd64(p + 8) ^ seed);
            p += 16;
            i -= 16;
        }
        a = rd64(p + i - 16);
        b = rd64(p + i - 8);
    }
    return mix(K1 ^ n, mix(a ^ K1, b ^ seed ^ K2));
}

static void load(struct tg_tok_table *t, const uint8_t *data, const uint8_t *end, uint32_t tokens,
                 uint32_t slots)
{
    size_t size = (size_t)(end - data);
    uint32_t count = 0, total = 0;
    if (size >= 16) {
        memcpy(&count, data + 8, 4);
        memcpy(&total, data + 12, 4);
    }
    /* The files are pinned by SHA-256 at configure time: a mismatch is a build error. */
    if (size < 16 || memcmp(data, "TGBPE\x01\0\0", 8) != 0 || count != tokens ||
        (size_t)16 + count + total != size) {
        fprintf(stderr, "tokenizer: embedded rank data is corrupt\n");
        abort();
    }
    t->lens = data + 16;
    t->bytes = data + 16 + count;
    t->count = count;
    t->mask = slots - 1;
    t->data_bytes = size;
    uint32_t off = 0, max_len = 0;
    for (uint32_t r = 0; r < count; r++) {
        uint32_t n = t->lens[r];
        t->off[r] = off;
        if (n > max_len)
            max_len = n;
        uint64_t h = hash_bytes(t->bytes + off, n);
        size_t i = (size_t)h & t->mask;
        while (t->slots[i] != 0)
            i = (i + 1) & t->mask;
        t->slots[i] = (h & 0xffffffff00000000ull) | (uint64_t)(r + 1);
        off += n;
    }
    t->max_len = max_len;
}

static void load_o200k(void)
{
    load(&o200k_table, tg_tok_o200k_bin, tg_tok_o200k_bin_end, O200K_TOKENS, O200K_SLOTS);
}

static void load_cl100k(void)
{
    load(&cl100k_table, tg_tok_cl100k_bin, tg_tok_cl100k_bin_end, CL100K_TOKENS, CL100K_SLOTS);
}

const struct tg_tok_table *tg_tok_table_get(enum tg_encoding enc)
{
    if (enc == TG_ENC_CL100K) {
        pthread_once(&cl100k_once, load_cl100k);
        return &cl100k_table;
    }
    pthread_once(&o200k_once, load_o200k);
    return &o200k_table;
}

size_t tg_tok_table_bytes(enum tg_encoding enc)
{
    const struct tg_tok_table *t = tg_tok_table_get(enc);
    return t->data_bytes + (size_t)t->count * sizeof(uint32_t) +
           ((size_t)t->mask + 1) * sizeof(uint64_t);
}

size_t tg_tok_table_tokens(enum tg_encoding enc)
{
    return tg_tok_table_get(enc)->count;
}

uint32_t tg_tok_rank(const struct tg_tok_table *t, const uint8_t *p, size_t n)
{
    if (n == 0 || n > t->max_len)
        return NO_RANK;
    uint64_t h = hash_bytes(p, n);
    uint64_t tag = h & 0xffffffff00000000ull;
    size_t i = (size_t)h & t->mask;
    for (;;) {
        uint64_t s = t->slots[i];
        if (s == 0)
            return NO_RANK;
        if ((s & 0xffffffff00000000ull) == tag) {
            uint32_t r = (uint32_t)s - 1;
            if (t->lens[r] == n && memcmp(t->bytes + t->off[r], p, n) == 0)
                return r;
        }
        i = (i + 1) & t->mask;
    }
}

/* tiktoken's _byte_pair_merge: repeatedly merge the lowest-ranked adjacent pair (leftmost on
 * ties) until no pair is a token; the count is the number of parts left. */
size_t tg_tok_bpe_small(const struct tg_tok_table *t, const uint8_t *p, size_t n)
{
    uint8_t start[TG_TOK_BPE_SMALL + 1];
    uint32_t rk[TG_TOK_BPE_SMALL];
    size_t m = n;
    for (size_t k = 0; k <= n; k++)
        start[k] = (uint8_t)k;
    for (size_t k = 0; k + 1 < m; k++)
        rk[k] = tg_tok_rank(t, p + k, 2);
    while (m > 1) {
        uint32_t best = NO_RANK;
        size_t at = 0;
        for (size_t k = 0; k + 1 < m; k++) {
            if (rk[k] < best) {
                best = rk[k];
                at = k;
            }
        }
        if (best == NO_RANK)
            break;
        /* Parts at and at+1 become one: drop boundary at+1. */
        memmove(start + at + 1, start + at + 2, m - at - 1);
        if (at + 3 < m)
            memmove(rk + at + 1, rk + at + 2, (m - at - 3) * sizeof(rk[0]));
        m--;
        if (at + 1 < m)
            rk[at] = tg_tok_rank(t, p + start[at], (size_t)start[at + 2] - start[at]);
        else
            rk[at] = NO_RANK;
        if (at > 0)
            rk[at - 1] = tg_tok_rank(t, p + start[at - 1], (size_t)start[at + 1] - start[at - 1]);
    }
    return m;
}

static void heap_push(uint64_t *h, size_t *len, uint64_t v)
{
    size_t i = (*len)++;
    while (i > 0) {
        size_t parent = (i - 1) / 2;
        if (h[parent] <= v)
            break;
        h[i] = h[parent];
        i = parent;
    }
    h[i] = v;
}

static uint64_t heap_pop(uint64_t *h, size_t *len)
{
    uint64_t top = h[0];
    uint64_t v = h[--(*len)];
    size_t i = 0, n = *len;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= n)
            break;
        if (c + 1 < n && h[c + 1] < h[c])
            c++;
        if (v <= h[c])
            break;
        h[i] = h[c];
        i = c;
    }
    if (n > 0)
        h[i] = v;
    return top;
}

#define DEAD UINT32_MAX

/* Same result as tg_tok_bpe_small, in O(n log n): parts are a linked list of start offsets,
 * candidate pairs sit in a min-heap keyed (rank, start) — the same "lowest rank, leftmost"
 * order — and stale entries are skipped when popped. */
size_t tg_tok_bpe_heap(const struct tg_tok_table *t, const uint8_t *p, size_t n, void **scratch,
                       size_t *scratch_cap)
{
    /* nxt[n + 1], prv[n], rk[n] (uint32) and the heap (at most n + 2 * merges < 3n). */
    size_t need = (3 * n + 1) * sizeof(uint32_t) + 3 * n * sizeof(uint64_t) + sizeof(uint64_t);
    if (*scratch_cap < need) {
        size_t cap = need + need / 2;
        void *mem = realloc(*scratch, cap);
        if (mem == NULL)
            return SIZE_MAX;
        *scratch = mem;
        *scratch_cap = cap;
    }
    uint64_t *heap = *scratch;
    uint32_t *nxt = (uint32_t *)(heap + 3 * n);
    uint32_t *prv = nxt + n + 1;
    uint32_t *rk = prv + n;
    size_t hlen = 0, parts = n;

    for (size_t i = 0; i < n; i++) {
        nxt[i] = (uint32_t)(i + 1);
        prv[i] = i == 0 ? DEAD : (uint32_t)(i - 1);
        rk[i] = i + 1 < n ? tg_tok_rank(t, p + i, 2) : NO_RANK;
        if (rk[i] != NO_RANK)
            heap_push(heap, &hlen, ((uint64_t)rk[i] << 32) | i);
    }
    nxt[n] = (uint32_t)n;
    /* A part is alive when it is the first one or its prv is not DEAD; part 0 never dies. */
    while (hlen > 0) {
        uint64_t top = heap_pop(heap, &hlen);
        uint32_t r = (uint32_t)(top >> 32), i = (uint32_t)top;
        if ((i != 0 && prv[i] == DEAD) || rk[i] != r)
            continue;
        uint32_t j = nxt[i];
        uint32_t k = nxt[j];
        prv[j] = DEAD;
        nxt[i] = k;
        if (k < n)
            prv[k] = i;
        parts--;
        rk[i] = k < n ? tg_tok_rank(t, p + i, (size_t)nxt[k] - i) : NO_RANK;
        if (rk[i] != NO_RANK)
            heap_push(heap, &hlen, ((uint64_t)rk[i] << 32) | i);
        if (i != 0) {
            uint32_t h = prv[i];
            rk[h] = tg_tok_rank(t, p + h, (size_t)k - h);
            if (rk[h] != NO_RANK)
                heap_push(heap, &hlen, ((uint64_t)rk[h] << 32) | h);
        }
    }
    return parts;
}

size_t tg_tok_bpe_count(const struct tg_tok_table *t, const uint8_t *p, size_t n, void **scratch,
                        size_t *scratch_cap)
{
    if (n > TG_TOK_BPE_MAX_PIECE) {
        size_t total = 0;
        for (size_t at = 0; at < n; at += TG_TOK_BPE_MAX_PIECE) {
            size_t part = TG_MIN(n - at, (size_t)TG_TOK_BPE_MAX_PIECE);
            size_t c = tg_tok_bpe_count(t, p + at, part, scratch, scratch_cap);
            if (c == SIZE_MAX)
                return SIZE_MAX;
            total += c;
        }
        return total;
    }
    if (n <= 1)
        return n;
    if (tg_tok_rank(t, p, n) != NO_RANK)
        return 1;
    if (n <= TG_TOK_BPE_SMALL)
        return tg_tok_bpe_small(t, p, n);
    return tg_tok_bpe_heap(t, p, n, scratch, scratch_cap);
}
