/* ring.h: a memory-mapped single-producer/single-consumer ring file of framed ledger records. */
#ifndef TG_RING_H
#define TG_RING_H

#include "core/common.h"

/* File layout: a 4096-byte header page (magic, version, data size, the producer's write
 * position and the consumer's consumed position, each on its own cache line), then
 * `data_bytes` of records. Positions are monotonic 64-bit byte counts; a record sits at
 * position % data_bytes. Each record is a ledger frame (ledger_row.h) padded to 8 bytes;
 * a frame never wraps: the producer writes a wrap marker (length 0xFFFFFFFF) and continues
 * at offset 0. Only the consumed position frees space, so a record stays in the file until
 * the consumer has committed it elsewhere. */
#define TG_RING_HEADER_BYTES  4096
#define TG_RING_MIN_BYTES     (64 * 1024)
#define TG_RING_DEFAULT_BYTES (8u * 1024 * 1024)
#define TG_RING_WRAP_MARK     0xFFFFFFFFu

struct tg_ring;

/* What tg_ring_open found in an existing file. */
struct tg_ring_recovery {
    bool existed;             /* the file was there with a valid header */
    bool header_invalid;      /* the file was there but unusable; kept as <path>.corrupt-<s> */
    uint64_t pending_records; /* valid records between consumed and write positions */
    uint64_t pending_bytes;   /* bytes between consumed and write positions */
    uint64_t torn_records;    /* 1 when a corrupt record cut the pending region short */
    uint64_t torn_offset;     /* file offset of that record */
    uint64_t lost_bytes;      /* bytes from the corrupt record to the write position */
    size_t data_bytes;        /* the data size in use (an existing file keeps its size while
                                 it still holds pending records) */
};

/* Opens or creates the ring file at `path` with `data_bytes` of record space (a multiple of
 * 4096, at least TG_RING_MIN_BYTES). The file is fully allocated (no SIGBUS on a full disk),
 * mapped shared and pre-faulted. Pending records of an existing file are validated and will
 * be returned by tg_ring_read; the result is described in *rec (may be NULL). Returns the
 * ring (owned; tg_ring_close), or NULL with err set. */
TG_MUST_CHECK struct tg_ring *tg_ring_open(const char *path, size_t data_bytes,
                                           struct tg_ring_recovery *rec, char *err, size_t errlen);

/* Unmaps and closes (NULL-safe). Records not committed stay in the file for the next open. */
void tg_ring_close(struct tg_ring *r);

/* Producer: appends one record of `len` bytes (1..TG_LEDGER_FRAME_MAX_PAYLOAD) with a
 * memcpy into the mapping and a release store; never blocks, never makes a system call.
 * Returns 0, or -1 when the ring lacks room (nothing written). */
TG_MUST_CHECK int tg_ring_append(struct tg_ring *r, const void *payload, uint32_t len);

enum tg_ring_read_result {
    TG_RING_READ_OK = 0,  /* *payload, *len set; the payload is valid until tg_ring_commit */
    TG_RING_READ_EMPTY,   /* nothing published past the read position */
    TG_RING_READ_CORRUPT, /* a corrupt record at *corrupt_offset: the read position skipped
                             to the producer's position; report it and go on */
};

/* Consumer: returns the next record after the read position (an in-memory cursor that starts
 * at the consumed position) and advances the read position past it. */
enum tg_ring_read_result tg_ring_read(struct tg_ring *r, const uint8_t **payload, uint32_t *len,
                                      uint64_t *corrupt_offset);

/* Consumer: true when tg_ring_read would return something other than EMPTY. */
bool tg_ring_has_data(struct tg_ring *r);

/* Consumer: the current read position (pass it to tg_ring_commit once the records read so
 * far are safe elsewhere). */
uint64_t tg_ring_read_pos(const struct tg_ring *r);

/* Consumer: publishes `pos` (a read position previously returned) as consumed, freeing the
 * space before it for the producer. Release store. */
void tg_ring_commit(struct tg_ring *r, uint64_t pos);

/* Bytes published by the producer and not yet committed by the consumer (any thread). */
uint64_t tg_ring_used_bytes(const struct tg_ring *r);

/* Record space of the ring. */
size_t tg_ring_data_bytes(const struct tg_ring *r);

#endif
