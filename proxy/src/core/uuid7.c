/* uuid7.c: UUIDv7 generation (monotonic per generator) and formatting. */
#include "core/uuid7.h"

#include <string.h>
#include <sys/random.h>

static uint64_t rotl(uint64_t x, int k)
{
    return (x << k) | (x >> (64 - k));
}

static uint64_t next64(struct tg_uuid7_gen *g)
{
    uint64_t *s = g->s;
    uint64_t result = rotl(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return result;
}

static uint64_t splitmix(uint64_t *x)
{
    uint64_t z = (*x += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

void tg_uuid7_init_seed(struct tg_uuid7_gen *g, uint64_t seed)
{
    memset(g, 0, sizeof(*g));
    for (int i = 0; i < 4; i++)
        g->s[i] = splitmix(&seed);
    g->last_ms = -1;
}

int tg_uuid7_init(struct tg_uuid7_gen *g)
{
    uint64_t seed[4];
    if (getrandom(seed, sizeof(seed), 0) != (ssize_t)sizeof(seed))
        return -1;
    tg_uuid7_init_seed(g, seed[0]);
    for (int i = 0; i < 4; i++)
        g->s[i] ^= seed[i];
    if ((g->s[0] | g->s[1] | g->s[2] | g->s[3]) == 0)
        g->s[0] = 1;
    return 0;
}

int64_t tg_uuid7_next(struct tg_uuid7_gen *g, int64_t now_ms, uint8_t out[16])
{
    int64_t ms = now_ms;
    if (ms <= g->last_ms) {
        ms = g->last_ms;
        if (++g->counter > 0xFFF) {
            ms++;
            g->counter = (uint32_t)(next64(g) & 0x3FF);
        }
    } else {
        /* a random start in the lower quarter leaves room for ~3000 more ids in this ms */
        g->counter = (uint32_t)(next64(g) & 0x3FF);
    }
    g->last_ms = ms;
    uint64_t r = next64(g);
    uint64_t ts = (uint64_t)ms;
    out[0] = (uint8_t)(ts >> 40);
    out[1] = (uint8_t)(ts >> 32);
    out[2] = (uint8_t)(ts >> 24);
    out[3] = (uint8_t)(ts >> 16);
    out[4] = (uint8_t)(ts >> 8);
    out[5] = (uint8_t)ts;
    out[6] = (uint8_t)(0x70 | ((g->counter >> 8) & 0x0F));
    out[7] = (uint8_t)(g->counter & 0xFF);
    out[8] = (uint8_t)(0x80 | ((r >> 56) & 0x3F));
    for (int i = 9; i < 16; i++)
        out[i] = (uint8_t)(r >> (8 * (15 - i)));
    return ms;
}

int64_t tg_uuid7_ms(const uint8_t id[16])
{
    uint64_t ts = 0;
    for (int i = 0; i < 6; i++)
        ts = (ts << 8) | id[i];
    return (int64_t)ts;
}

void tg_uuid_format(const uint8_t id[16], char out[37])
{
    static const char hex[] = "0123456789abcdef";
    size_t o = 0;
    for (int i = 0; i < 16; i++) {
        if (i == 4 || i == 6 || i == 8 || i == 10)
            out[o++] = '-';
        out[o++] = hex[id[i] >> 4];
        out[o++] = hex[id[i] & 0xF];
    }
    out[o] = '\0';
}

static int hexdigit(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

int tg_uuid_parse(const char *s, size_t n, uint8_t out[16])
{
    if (n != 36)
        return -1;
    size_t o = 0;
    for (size_t i = 0; i < 36;) {
        if (i == 8 || i == 13 || i == 18 || i == 23) {
            if (s[i] != '-')
                return -1;
            i++;
            continue;
        }
        int hi = hexdigit(s[i]), lo = hexdigit(s[i + 1]);
        if (hi < 0 || lo < 0)
            return -1;
        out[o++] = (uint8_t)(hi << 4 | lo);
        i += 2;
    }
    return 0;
}
