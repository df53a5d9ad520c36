/* ring.c: the per-worker mmap ring file (SPSC, C11 atomics, crash-recoverable). */
#include "ledger/ring.h"

#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "ledger/ledger_row.h"

#define RING_MAGIC   0x47524754u /* "TGRG" little-endian */
#define RING_VERSION 1u

_Static_assert(ATOMIC_LLONG_LOCK_FREE == 2, "64-bit atomics must be lock-free in shared memory");

/* The header page as it sits at the start of the file. */
struct ring_header {
    uint32_t magic;
    uint32_t version;
    uint64_t data_bytes;
    uint8_t pad0[48];
    _Atomic uint64_t write_pos; /* producer: release store after the record bytes */
    uint8_t pad1[56];
    _Atomic uint64_t consumed_pos; /* consumer: release store after the records are safe */
    uint8_t pad2[56];
};

_Static_assert(sizeof(struct ring_header) <= TG_RING_HEADER_BYTES, "header fits its page");

struct tg_ring {
    struct ring_header *hdr; /* the mapping (owned) */
    uint8_t *data;           /* hdr + TG_RING_HEADER_BYTES */
    size_t data_bytes;
    size_t map_bytes;
    int fd;
    /* producer side (one thread) */
    _Alignas(64) uint64_t prod_write; /* the producer's copy of write_pos */
    uint64_t prod_consumed;           /* last consumed_pos the producer loaded */
    /* consumer side (one thread) */
    _Alignas(64) uint64_t read_pos;
    bool has_skip;      /* a corrupt region found at open */
    uint64_t skip_from; /* jump from here ... */
    uint64_t skip_to;   /* ... to here (the write position seen at open) */
};

static uint64_t align8(uint64_t v)
{
    return (v + 7) & ~(uint64_t)7;
}

static uint32_t load_u32(const uint8_t *p)
{
    uint32_t v;
    memcpy(&v, p, 4);
#if __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
    v = __builtin_bswap32(v);
#endif
    return v;
}

static void store_u32(uint8_t *p, uint32_t v)
{
#if __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
    v = __builtin_bswap32(v);
#endif
    memcpy(p, &v, 4);
}

/* Validates the record at pos (< w). Returns its padded size, 0 for a wrap marker, or -1. */
static int64_t check_record(const struct tg_ring *r, uint64_t pos, uint64_t w)
{
    uint64_t idx = pos % r->data_bytes;
    uint64_t tail = r->data_bytes - idx;
    uint32_t len = load_u32(r->data + idx);
    if (len == TG_RING_WRAP_MARK)
        return tail <= w - pos ? 0 : -1;
    if (len == 0 || len > TG_LEDGER_FRAME_MAX_PAYLOAD)
        return -1;
    uint64_t padded = align8(tg_ledger_frame_size(len));
    if (padded > tail || padded > w - pos)
        return -1;
    const uint8_t *payload;
    uint32_t plen;
    size_t fbytes;
    if (tg_ledger_frame_parse(r->data + idx, tail, &payload, &plen, &fbytes) != TG_LEDGER_FRAME_OK)
        return -1;
    return (int64_t)padded;
}

static void set_err(char *err, size_t errlen, const char *path, const char *what)
{
    if (err != NULL && errlen > 0)
        snprintf(err, errlen, "ring %s: %s: %s", path, what, strerror(errno));
}

static bool header_valid(const struct ring_header *h, off_t file_bytes)
{
    if (h->magic != RING_MAGIC || h->version != RING_VERSION)
        return false;
    uint64_t d = h->data_bytes;
    if (d < TG_RING_MIN_BYTES || d % 4096 != 0 || (uint64_t)file_bytes != TG_RING_HEADER_BYTES + d)
        return false;
    uint64_t w = atomic_load_explicit(&h->write_pos, memory_order_relaxed);
    uint64_t c = atomic_load_explicit(&h->consumed_pos, memory_order_relaxed);
    return c <= w && w - c <= d && w % 8 == 0 && c % 8 == 0;
}

/* Sizes the file to header + data, allocates its blocks and writes a fresh header. */
static int init_file(int fd, size_t data_bytes)
{
    if (ftruncate(fd, 0) != 0)
        return -1;
    int rc = posix_fallocate(fd, 0, (off_t)(TG_RING_HEADER_BYTES + data_bytes));
    if (rc != 0) {
        errno = rc;
        return -1;
    }
    struct ring_header h;
    memset(&h, 0, sizeof(h));
    h.magic = RING_MAGIC;
    h.version = RING_VERSION;
    h.data_bytes = data_bytes;
    if (pwrite(fd, &h, sizeof(h), 0) != (ssize_t)sizeof(h))
        return -1;
    return fsync(fd);
}

struct tg_ring *tg_ring_open(const char *path, size_t data_bytes, struct tg_ring_recovery *rec,
                             char *err, size_t errlen)
{
    struct tg_ring_recovery dummy;
    if (rec == NULL)
        rec = &dummy;
    memset(rec, 0, sizeof(*rec));
    if (data_bytes < TG_RING_MIN_BYTES || data_bytes % 4096 != 0) {
        errno = EINVAL;
        set_err(err, errlen, path, "size must be a multiple of 4096 and at least 64 KiB");
        return NULL;
    }
    struct tg_ring *r = calloc(1, sizeof(*r));
    if (r == NULL) {
        set_err(err, errlen, path, "calloc");
        return NULL;
    }
    r->fd = -1;
    r->fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (r->fd < 0) {
        set_err(err, errlen, path, "open");
        goto fail;
    }
    struct stat st;
    if (fstat(r->fd, &st) != 0) {
        set_err(err, errlen, path, "fstat");
        goto fail;
    }
    bool fresh = true;
    if (st.st_size > 0) {
        struct ring_header h;
        memset(&h, 0, sizeof(h));
        ssize_t got = pread(r->fd, &h, sizeof(h), 0);
        if (got == (ssize_t)sizeof(h) && header_valid(&h, st.st_size)) {
            rec->existed = true;
            uint64_t w = atomic_load_explicit(&h.write_pos, memory_order_relaxed);
            uint64_t c = atomic_load_explicit(&h.consumed_pos, memory_order_relaxed);
            if (h.data_bytes == data_bytes || w != c) {
                data_bytes = h.data_bytes;
                fresh = false;
            }
        } else {
            /* Keep the unusable file for inspection and start a new one. */
            char bad[4096];
            snprintf(bad, sizeof(bad), "%s.corrupt-%lld", path, (long long)time(NULL));
            close(r->fd);
            r->fd = -1;
            if (rename(path, bad) != 0) {
                set_err(err, errlen, path, "rename of an invalid ring file");
                goto fail;
            }
            rec->header_invalid = true;
            r->fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
            if (r->fd < 0) {
                set_err(err, errlen, path, "open");
                goto fail;
            }
        }
    }
    if (fresh && init_file(r->fd, data_bytes) != 0) {
        set_err(err, errlen, path, "initialise");
        goto fail;
    }
    if (!fresh) {
        int rc = posix_fallocate(r->fd, 0, (off_t)(TG_RING_HEADER_BYTES + data_bytes));
        if (rc != 0) {
            errno = rc;
            set_err(err, errlen, path, "posix_fallocate");
            goto fail;
        }
    }
    r->data_bytes = data_bytes;
    r->map_bytes = TG_RING_HEADER_BYTES + data_bytes;
    void *m = mmap(NULL, r->map_bytes, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, r->fd, 0);
    if (m == MAP_FAILED) {
        set_err(err, errlen, path, "mmap");
        goto fail;
    }
    r->hdr = m;
    r->data = (uint8_t *)m + TG_RING_HEADER_BYTES;
    /* Dirty every data page now so the producer's first touch of a page is not a fault that
     * allocates; the blocks themselves were allocated by posix_fallocate. */
    long page = sysconf(_SC_PAGESIZE);
    for (size_t off = 0; off < data_bytes; off += (size_t)page) {
        volatile uint8_t *b = r->data + off;
        *b = *b;
    }

    uint64_t w = atomic_load_explicit(&r->hdr->write_pos, memory_order_acquire);
    uint64_t c = atomic_load_explicit(&r->hdr->consumed_pos, memory_order_acquire);
    r->prod_write = w;
    r->prod_consumed = c;
    r->read_pos = c;
    rec->data_bytes = data_bytes;
    rec->pending_bytes = w - c;
    for (uint64_t pos = c; pos < w;) {
        int64_t step = check_record(r, pos, w);
        if (step < 0) {
            rec->torn_records = 1;
            rec->torn_offset = TG_RING_HEADER_BYTES + pos % data_bytes;
            rec->lost_bytes = w - pos;
            r->has_skip = true;
            r->skip_from = pos;
            r->skip_to = w;
            break;
        }
        if (step == 0) {
            pos += data_bytes - pos % data_bytes;
        } else {
            rec->pending_records++;
            pos += (uint64_t)step;
        }
    }
    return r;
fail:
    if (r->fd >= 0)
        close(r->fd);
    free(r);
    return NULL;
}

void tg_ring_close(struct tg_ring *r)
{
    if (r == NULL)
        return;
    if (r->hdr != NULL)
        munmap(r->hdr, r->map_bytes);
    if (r->fd >= 0)
        close(r->fd);
    free(r);
}

int tg_ring_append(struct tg_ring *r, const void *payload, uint32_t len)
{
    if (len == 0 || len > TG_LEDGER_FRAME_MAX_PAYLOAD)
        return -1;
    uint64_t size = r->data_bytes;
    uint64_t need = align8(tg_ledger_frame_size(len));
    uint64_t w = r->prod_write;
    uint64_t idx = w % size;
    uint64_t tail = size - idx;
    uint64_t total = need <= tail ? need : tail + need;
    if (w + total - r->prod_consumed > size) {
        r->prod_consumed = atomic_load_explicit(&r->hdr->consumed_pos, memory_order_acquire);
        if (w + total - r->prod_consumed > size)
            return -1;
    }
    if (need > tail) {
        store_u32(r->data + idx, TG_RING_WRAP_MARK);
        w += tail;
        idx = 0;
    }
    tg_ledger_frame_write(r->data + idx, payload, len);
    w += need;
    atomic_store_explicit(&r->hdr->write_pos, w, memory_order_release);
    r->prod_write = w;
    return 0;
}

enum tg_ring_read_result tg_ring_read(struct tg_ring *r, const uint8_t **payload, uint32_t *len,
                                      uint64_t *corrupt_offset)
{
    for (;;) {
        if (r->has_skip && r->read_pos == r->skip_from)
            r->read_pos = r->skip_to;
        uint64_t w = atomic_load_explicit(&r->hdr->write_pos, memory_order_acquire);
        if (r->read_pos >= w)
            return TG_RING_READ_EMPTY;
        int64_t step = check_record(r, r->read_pos, w);
        uint64_t idx = r->read_pos % r->data_bytes;
        if (step < 0) {
            if (corrupt_offset != NULL)
                *corrupt_offset = TG_RING_HEADER_BYTES + idx;
            r->read_pos = w;
            return TG_RING_READ_CORRUPT;
        }
        if (step == 0) {
            r->read_pos += r->data_bytes - idx;
            continue;
        }
        *payload = r->data + idx + TG_LEDGER_FRAME_HEADER_BYTES;
        *len = load_u32(r->data + idx);
        r->read_pos += (uint64_t)step;
        return TG_RING_READ_OK;
    }
}

bool tg_ring_has_data(struct tg_ring *r)
{
    uint64_t pos = r->read_pos;
    if (r->has_skip && pos == r->skip_from)
        pos = r->skip_to;
    return pos < atomic_load_explicit(&r->hdr->write_pos, memory_order_acquire);
}

uint64_t tg_ring_read_pos(const struct tg_ring *r)
{
    return r->read_pos;
}

void tg_ring_commit(struct tg_ring *r, uint64_t pos)
{
    atomic_store_explicit(&r->hdr->consumed_pos, pos, memory_order_release);
    if (r->has_skip && pos >= r->skip_to)
        r->has_skip = false;
}

uint64_t tg_ring_used_bytes(const struct tg_ring *r)
{
    uint64_t c = atomic_load_explicit(&r->hdr->consumed_pos, memory_order_acquire);
    uint64_t w = atomic_load_explicit(&r->hdr->write_pos, memory_order_acquire);
    return w - c;
}

size_t tg_ring_data_bytes(const struct tg_ring *r)
{
    return r->data_bytes;
}
