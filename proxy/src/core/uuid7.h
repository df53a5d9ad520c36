/* uuid7.h: time-ordered request ids (RFC 9562 UUID version 7). */
#ifndef TG_UUID7_H
#define TG_UUID7_H

#include "core/common.h"

/* One generator per thread; ids from one generator are strictly increasing. */
struct tg_uuid7_gen {
    int64_t last_ms;
    uint32_t counter; /* 12-bit rand_a used as a sequence within one millisecond */
    uint64_t s[4];    /* xoshiro256** state */
};

/* Seeds from getrandom(2). Returns 0 or -1. */
TG_MUST_CHECK int tg_uuid7_init(struct tg_uuid7_gen *g);
/* Seeds deterministically (tests). */
void tg_uuid7_init_seed(struct tg_uuid7_gen *g, uint64_t seed);
/* Writes a new id for time now_ms; returns the millisecond timestamp embedded in it (which
 * may be later than now_ms when more than 4096 ids were made in one millisecond). */
int64_t tg_uuid7_next(struct tg_uuid7_gen *g, int64_t now_ms, uint8_t out[16]);
/* The embedded millisecond timestamp. */
int64_t tg_uuid7_ms(const uint8_t id[16]);
/* Canonical 36-character form plus NUL. */
void tg_uuid_format(const uint8_t id[16], char out[37]);
/* Parses the canonical form; returns 0 or -1. */
TG_MUST_CHECK int tg_uuid_parse(const char *s, size_t n, uint8_t out[16]);

#endif
