/* crc32c.c: CRC-32C, slicing-by-8 in software and the SSE4.2 instruction when present. */
#include "ledger/crc32c.h"

#include <pthread.h>
#include <string.h>

#define POLY 0x82F63B78u /* reflected Castagnoli polynomial */

static uint32_t table[8][256];
static pthread_once_t table_once = PTHREAD_ONCE_INIT;
static int hw_state; /* 0 = unknown, 1 = software, 2 = hardware */

static void build_table(void)
{
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++)
            c = (c & 1) ? (c >> 1) ^ POLY : c >> 1;
        table[0][i] = c;
    }
    for (uint32_t i = 0; i < 256; i++)
        for (int t = 1; t < 8; t++)
            table[t][i] = (table[t - 1][i] >> 8) ^ table[0][table[t - 1][i] & 0xFF];
}

static void init_once(void)
{
    pthread_once(&table_once, build_table);
}

uint32_t tg_crc32c_sw(uint32_t crc, const void *p, size_t n)
{
    init_once();
    const uint8_t *b = p;
    crc = ~crc;
    while (n >= 8) {
        uint32_t lo, hi;
        memcpy(&lo, b, 4);
        memcpy(&hi, b + 4, 4);
#if __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
        lo = __builtin_bswap32(lo);
        hi = __builtin_bswap32(hi);
#endif
        lo ^= crc;
        crc = table[7][lo & 0xFF] ^ table[6][(lo >> 8) & 0xFF] ^ table[5][(lo >> 16) & 0xFF] ^
              table[4][lo >> 24] ^ table[3][hi & 0xFF] ^ table[2][(hi >> 8) & 0xFF] ^
              table[1][(hi >> 16) & 0xFF] ^ table[0][hi >> 24];
        b += 8;
        n -= 8;
    }
    while (n--)
        crc = (crc >> 8) ^ table[0][(crc ^ *b++) & 0xFF];
    return ~crc;
}

#if defined(__x86_64__)
__attribute__((target("sse4.2"))) static uint32_t crc_hw(uint32_t crc, const void *p, size_t n)
{
    const uint8_t *b = p;
    uint64_t c = ~crc;
    while (n >= 8) {
        uint64_t v;
        memcpy(&v, b, 8);
        c = __builtin_ia32_crc32di(c, v);
        b += 8;
        n -= 8;
    }
    uint32_t c32 = (uint32_t)c;
    while (n--)
        c32 = __builtin_ia32_crc32qi(c32, *b++);
    return ~c32;
}

bool tg_crc32c_is_hw(void)
{
    int s = __atomic_load_n(&hw_state, __ATOMIC_RELAXED);
    if (s == 0) {
        __builtin_cpu_init();
        s = __builtin_cpu_supports("sse4.2") ? 2 : 1;
        __atomic_store_n(&hw_state, s, __ATOMIC_RELAXED);
    }
    return s == 2;
}

uint32_t tg_crc32c(uint32_t crc, const void *p, size_t n)
{
    if (tg_crc32c_is_hw())
        return crc_hw(crc, p, n);
    return tg_crc32c_sw(crc, p, n);
}
#else
bool tg_crc32c_is_hw(void)
{
    (void)hw_state;
    return false;
}

uint32_t tg_crc32c(uint32_t crc, const void *p, size_t n)
{
    return tg_crc32c_sw(crc, p, n);
}
#endif
