/* lru.c: chained hash table + doubly linked recency list. */
#include "core/lru.h"

#include <stdlib.h>
#include <string.h>

struct entry {
    struct entry *hnext;       /* bucket chain */
    struct entry *prev, *next; /* recency list: head = most recent */
    uint64_t hash;
    int64_t expires_ms;
    size_t klen;
    unsigned char key[TG_LRU_MAX_KEY];
    unsigned char value[];
};

struct tg_lru {
    size_t capacity, count, value_size, nbuckets;
    struct entry **buckets;
    struct entry *head, *tail;
};

static uint64_t hash_bytes(const void *p, size_t n)
{
    const unsigned char *s = p;
    uint64_t h = 0xcbf29ce484222325ULL;
    for (size_t i = 0; i < n; i++) {
        h ^= s[i];
        h *= 0x100000001b3ULL;
    }
    return h ^ (h >> 29);
}

struct tg_lru *tg_lru_create(size_t capacity, size_t value_size)
{
    struct tg_lru *c = calloc(1, sizeof(*c));
    if (c == NULL)
        return NULL;
    c->capacity = capacity ? capacity : 1;
    c->value_size = value_size;
    c->nbuckets = 16;
    while (c->nbuckets < c->capacity)
        c->nbuckets *= 2;
    c->buckets = calloc(c->nbuckets, sizeof(*c->buckets));
    if (c->buckets == NULL) {
        free(c);
        return NULL;
    }
    return c;
}

static void list_unlink(struct tg_lru *c, struct entry *e)
{
    if (e->prev)
        e->prev->next = e->next;
    else
        c->head = e->next;
    if (e->next)
        e->next->prev = e->prev;
    else
        c->tail = e->prev;
    e->prev = e->next = NULL;
}

static void list_push_front(struct tg_lru *c, struct entry *e)
{
    e->prev = NULL;
    e->next = c->head;
    if (c->head)
        c->head->prev = e;
    c->head = e;
    if (c->tail == NULL)
        c->tail = e;
}

static void remove_entry(struct tg_lru *c, struct entry *e)
{
    struct entry **pp = &c->buckets[e->hash & (c->nbuckets - 1)];
    while (*pp != e)
        pp = &(*pp)->hnext;
    *pp = e->hnext;
    list_unlink(c, e);
    c->count--;
    free(e);
}

static struct entry *find(struct tg_lru *c, const void *key, size_t klen, uint64_t h)
{
    for (struct entry *e = c->buckets[h & (c->nbuckets - 1)]; e; e = e->hnext)
        if (e->hash == h && e->klen == klen && memcmp(e->key, key, klen) == 0)
            return e;
    return NULL;
}

void *tg_lru_get(struct tg_lru *c, const void *key, size_t klen, int64_t now_ms)
{
    if (klen > TG_LRU_MAX_KEY)
        return NULL;
    uint64_t h = hash_bytes(key, klen);
    struct entry *e = find(c, key, klen, h);
    if (e == NULL)
        return NULL;
    if (e->expires_ms <= now_ms) {
        remove_entry(c, e);
        return NULL;
    }
    list_unlink(c, e);
    list_push_front(c, e);
    return e->value;
}

void *tg_lru_put(struct tg_lru *c, const void *key, size_t klen, int64_t expires_ms)
{
    if (klen > TG_LRU_MAX_KEY)
        return NULL;
    uint64_t h = hash_bytes(key, klen);
    struct entry *e = find(c, key, klen, h);
    if (e != NULL)
        remove_entry(c, e);
    if (c->count >= c->capacity && c->tail != NULL)
        remove_entry(c, c->tail);
    e = calloc(1, sizeof(*e) + c->value_size);
    if (e == NULL)
        return NULL;
    e->hash = h;
    e->klen = klen;
    memcpy(e->key, key, klen);
    e->expires_ms = expires_ms;
    struct entry **b = &c->buckets[h & (c->nbuckets - 1)];
    e->hnext = *b;
    *b = e;
    list_push_front(c, e);
    c->count++;
    return e->value;
}

void tg_lru_del(struct tg_lru *c, const void *key, size_t klen)
{
    if (klen > TG_LRU_MAX_KEY)
        return;
    struct entry *e = find(c, key, klen, hash_bytes(key, klen));
    if (e != NULL)
        remove_entry(c, e);
}

void tg_lru_del_if(struct tg_lru *c, bool (*pred)(const void *value, void *arg), void *arg)
{
    struct entry *e = c->head;
    while (e != NULL) {
        struct entry *next = e->next;
        if (pred(e->value, arg))
            remove_entry(c, e);
        e = next;
    }
}

void tg_lru_clear(struct tg_lru *c)
{
    while (c->head != NULL)
        remove_entry(c, c->head);
}

size_t tg_lru_count(const struct tg_lru *c)
{
    return c->count;
}

void tg_lru_destroy(struct tg_lru *c)
{
    if (c == NULL)
        return;
    tg_lru_clear(c);
    free(c->buckets);
    free(c);
}
