/* spool.h: append-only, fsync'd spool segment files of framed ledger records, replayed in order. */
#ifndef TG_SPOOL_H
#define TG_SPOOL_H

#include "core/common.h"

/* A spool directory holds segments spool-<seq>.log (seq zero-padded to 16 digits) made of
 * ledger frames (ledger_row.h) back to back, no file header. Segments are written by one
 * thread, in sequence order, and replayed oldest first. */
#define TG_SPOOL_DEFAULT_SEGMENT_BYTES (64u * 1024 * 1024)

struct tg_spool;

/* A stretch of a segment that could not be parsed: a torn tail (a crash in the middle of a
 * write) or corrupt bytes. Records before it were returned; the reader resumes at the next
 * offset where a valid frame starts, if any. */
struct tg_spool_tear {
    uint64_t seq;    /* segment number */
    uint64_t offset; /* byte offset in the segment where parsing failed */
    uint64_t bytes;  /* bytes skipped */
    bool at_tail;    /* no valid frame after it (a torn last record) */
    bool missing;    /* the segment file vanished (deleted by hand): bytes = unreplayed */
    char path[4096]; /* segment file */
};

/* Creates `dir` if missing (0700), takes an exclusive flock on it and lists the segments
 * present. A second tg_spool_open of the same directory (this or another process) fails
 * with "spool directory ... is in use by another process". segment_bytes: a segment is
 * closed and a new one started once it holds this many bytes (0 = default). Returns the
 * spool (owned; tg_spool_close), or NULL with err set. */
TG_MUST_CHECK struct tg_spool *tg_spool_open(const char *dir, size_t segment_bytes, char *err,
                                             size_t errlen);

/* Closes files and releases the lock (NULL-safe). */
void tg_spool_close(struct tg_spool *s);

/* The directory path (borrowed; valid until tg_spool_close). */
const char *tg_spool_dir(const struct tg_spool *s);

/* Appends `len` bytes of complete frames to the newest segment (creating it, and fsyncing
 * the directory, when needed), then fsyncs it. On any failure the segment is truncated
 * back, abandoned for writing, and -1 is returned with err set: the caller still owns the
 * records. Returns 0 once the bytes are durable. */
TG_MUST_CHECK int tg_spool_write(struct tg_spool *s, const void *frames, size_t len, char *err,
                                 size_t errlen);

/* Reads up to max_records records, oldest first, starting at the committed read position,
 * calling on_record(arg, payload, len) for each (payload borrowed for the call) and on_tear
 * (arg, tear) once per unreadable stretch. Nothing is consumed until tg_spool_commit: a
 * second read without commit returns the same records again. Returns the number of records
 * passed to on_record, or -1 with err set on an I/O error. */
TG_MUST_CHECK int tg_spool_read(struct tg_spool *s, unsigned max_records,
                                void (*on_record)(void *arg, const uint8_t *payload, uint32_t len),
                                void (*on_tear)(void *arg, const struct tg_spool_tear *tear),
                                void *arg, char *err, size_t errlen);

/* Marks everything the last tg_spool_read returned (and skipped) as consumed, deleting the
 * segments it finished (a segment with a tear is renamed to spool-<seq>.log.torn instead). */
void tg_spool_commit(struct tg_spool *s);

/* True when every spooled record has been committed (no segment left). */
bool tg_spool_is_empty(const struct tg_spool *s);

/* Bytes and files of the segments not yet deleted. */
uint64_t tg_spool_bytes(const struct tg_spool *s);
uint64_t tg_spool_files(const struct tg_spool *s);

#endif
