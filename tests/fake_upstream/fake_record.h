/* fake_record.h: the fake upstream's log of received requests (/_fake/requests, --record). */
#ifndef TG_FAKE_RECORD_H
#define TG_FAKE_RECORD_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include <jansson.h>

#include "core/common.h"

#include "fake_http.h"

/* One received request and how its reply went. Reference counted: the store and the
 * connection replying to it each hold a reference. */
struct tg_fake_record {
    unsigned refs;
    uint64_t seq;           /* 1, 2, ... in order of arrival */
    uint64_t connection_id; /* same for every request of one TCP connection */
    char *head;             /* owned copy of the request head; the views below point into it */
    size_t head_len;
    const char *method; /* view into head */
    size_t method_len;
    const char *target; /* view into head: path and query as received */
    size_t target_len;
    struct tg_fake_header *headers; /* owned array; names lowercased in place */
    size_t num_headers;
    char *body; /* owned, NUL-terminated, body_len bytes (decoded when chunked) */
    size_t body_len;
    int64_t received_at_ms; /* wall clock when the whole request had arrived */
    int64_t closed_at_ms;   /* wall clock when the reply ended; -1 while in progress */
    long chunks_sent;       /* content chunks queued for the client */
    int status;             /* HTTP status replied; 0 before the head is sent */
    bool is_finished;       /* the whole reply was queued */
    bool is_client_closed;  /* the peer closed before the reply was finished */
    bool is_dropped;        /* x-fake-drop-after closed the connection */
    bool is_logged;         /* already written to the --record file */
    char call_id[40];       /* x-litellm-call-id of the reply */
};

/*
 * Creates a record from a parsed head: copies head_len bytes of `raw` (which `head` views)
 * and lowercases the header names. The body starts empty. Returns NULL on OOM.
 * The caller owns the single reference.
 */
TG_MUST_CHECK struct tg_fake_record *tg_fake_record_create(const char *raw, size_t head_len,
                                                           const struct tg_fake_head *head);

/* Drops one reference; frees at zero. NULL-safe. */
void tg_fake_record_release(struct tg_fake_record *r);

/* Header value by lowercase name, or NULL (borrowed view; sets *len). */
const char *tg_fake_record_header(const struct tg_fake_record *r, const char *name, size_t *len);

/* The record as a JSON object (new reference), with body_json parsed from the body. */
json_t *tg_fake_record_to_json(const struct tg_fake_record *r);

/* The last `capacity` records (newest last), bounded also in bytes. */
struct tg_fake_store {
    struct tg_fake_record **ring; /* owned array of `capacity` slots, each holding a reference */
    size_t capacity;
    size_t start; /* index of the oldest record */
    size_t count;
    size_t bytes;     /* head + body bytes of the stored records */
    size_t max_bytes; /* evict the oldest beyond this */
    FILE *file;       /* --record output, owned, or NULL */
};

/* Initialises the store. Returns 0, or -1 on OOM. `file` (may be NULL) becomes owned. */
TG_MUST_CHECK int tg_fake_store_init(struct tg_fake_store *st, size_t capacity, size_t max_bytes,
                                     FILE *file);

/* Releases every record and closes the file. */
void tg_fake_store_cleanup(struct tg_fake_store *st);

/* Adds a record (the store takes its own reference), evicting the oldest when full. */
void tg_fake_store_add(struct tg_fake_store *st, struct tg_fake_record *r);

/* Forgets all records; returns how many there were. */
size_t tg_fake_store_clear(struct tg_fake_store *st);

/* The stored records as a JSON array text (malloc'd, caller frees), or NULL on OOM. */
TG_MUST_CHECK char *tg_fake_store_dump(const struct tg_fake_store *st);

/* Writes the record as one JSON line to the --record file once (no-op without a file). */
void tg_fake_store_log(struct tg_fake_store *st, struct tg_fake_record *r);

#endif
