/* lru.h: a bounded key -> fixed-size value cache with expiry and LRU eviction. Not
 * thread-safe: each worker owns its own. */
#ifndef TG_LRU_H
#define TG_LRU_H

#include "core/common.h"

#define TG_LRU_MAX_KEY 160

struct tg_lru;

/* capacity >= 1 entries of value_size bytes each. */
struct tg_lru *tg_lru_create(size_t capacity, size_t value_size);
void tg_lru_destroy(struct tg_lru *c);
/* The value for key, or NULL when absent or expired at now_ms (expired entries are dropped).
 * A hit becomes the most recently used. The pointer is valid until the next call. */
void *tg_lru_get(struct tg_lru *c, const void *key, size_t klen, int64_t now_ms);
/* Inserts or replaces key; returns the value slot (zeroed) to fill, or NULL when klen is too
 * long or memory is short. Evicts the least recently used entry when full. */
void *tg_lru_put(struct tg_lru *c, const void *key, size_t klen, int64_t expires_ms);
void tg_lru_del(struct tg_lru *c, const void *key, size_t klen);
/* Drops every entry for which pred(value, arg) is true. */
void tg_lru_del_if(struct tg_lru *c, bool (*pred)(const void *value, void *arg), void *arg);
void tg_lru_clear(struct tg_lru *c);
size_t tg_lru_count(const struct tg_lru *c);

#endif
