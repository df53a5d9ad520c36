/* spool.c: fsync'd spool segments (write, ordered replay, torn-record detection, dir lock). */
#include "ledger/spool.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ledger/ledger_row.h"

#define READ_BUF_BYTES (1024 * 1024)
#define FRAME_MAX      (TG_LEDGER_FRAME_HEADER_BYTES + TG_LEDGER_FRAME_MAX_PAYLOAD)

struct segment {
    uint64_t seq;
    uint64_t end;     /* bytes that are complete and durable (file size for old segments) */
    uint64_t scanned; /* tears before this offset have been reported already */
    bool torn;        /* an unreadable stretch was found: keep the file as .torn */
};

struct tg_spool {
    char *dir; /* owned */
    int dir_fd;
    size_t segment_bytes;
    struct segment *segs; /* oldest first */
    size_t nseg, capseg;
    uint64_t next_seq;
    uint64_t bytes;
    int wfd;           /* the newest segment, open for appending; -1 when none */
    uint64_t roff;     /* committed read offset in segs[0] */
    size_t pend_seg;   /* where the last read stopped: segment index ... */
    uint64_t pend_off; /* ... and offset */
    bool has_pend;
    int rfd; /* segment open for reading */
    uint64_t rfd_seq;
    uint8_t *buf; /* read window */
    uint64_t buf_seq, buf_off;
    size_t buf_len;
};

static void fmt_err(char *err, size_t errlen, const char *what, const char *path, int e)
{
    if (err != NULL && errlen > 0)
        snprintf(err, errlen, "spool: %s %s: %s", what, path, strerror(e));
}

static void seg_path(const struct tg_spool *s, uint64_t seq, char *out, size_t cap)
{
    snprintf(out, cap, "%s/spool-%016llu.log", s->dir, (unsigned long long)seq);
}

static int mkdir_p(const char *dir)
{
    char tmp[4096];
    size_t n = strlen(dir);
    if (n == 0 || n >= sizeof(tmp)) {
        errno = ENAMETOOLONG;
        return -1;
    }
    memcpy(tmp, dir, n + 1);
    for (size_t i = 1; i <= n; i++) {
        if (tmp[i] == '/' || tmp[i] == '\0') {
            char c = tmp[i];
            tmp[i] = '\0';
            if (mkdir(tmp, 0700) != 0 && errno != EEXIST)
                return -1;
            tmp[i] = c;
        }
    }
    return 0;
}

/* Parses "spool-<16 digits>.log"; returns true and sets *seq. */
static bool parse_name(const char *name, uint64_t *seq)
{
    if (strncmp(name, "spool-", 6) != 0 || strlen(name) != 6 + 16 + 4 ||
        strcmp(name + 22, ".log") != 0)
        return false;
    uint64_t v = 0;
    for (int i = 6; i < 22; i++) {
        if (name[i] < '0' || name[i] > '9')
            return false;
        v = v * 10 + (uint64_t)(name[i] - '0');
    }
    *seq = v;
    return true;
}

static int push_seg(struct tg_spool *s, uint64_t seq, uint64_t end)
{
    if (s->nseg == s->capseg) {
        size_t cap = s->capseg ? s->capseg * 2 : 16;
        struct segment *p = realloc(s->segs, cap * sizeof(*p));
        if (p == NULL)
            return -1;
        s->segs = p;
        s->capseg = cap;
    }
    s->segs[s->nseg++] = (struct segment){.seq = seq, .end = end};
    return 0;
}

static int cmp_seg(const void *a, const void *b)
{
    uint64_t x = ((const struct segment *)a)->seq, y = ((const struct segment *)b)->seq;
    return x < y ? -1 : x > y;
}

struct tg_spool *tg_spool_open(const char *dir, size_t segment_bytes, char *err, size_t errlen)
{
    struct tg_spool *s = calloc(1, sizeof(*s));
    DIR *d = NULL;
    if (s == NULL) {
        fmt_err(err, errlen, "calloc for", dir, ENOMEM);
        return NULL;
    }
    s->dir_fd = s->wfd = s->rfd = -1;
    s->segment_bytes = segment_bytes ? segment_bytes : TG_SPOOL_DEFAULT_SEGMENT_BYTES;
    s->next_seq = 1;
    s->dir = strdup(dir);
    s->buf = malloc(READ_BUF_BYTES);
    if (s->dir == NULL || s->buf == NULL) {
        fmt_err(err, errlen, "allocation for", dir, ENOMEM);
        goto fail;
    }
    if (mkdir_p(dir) != 0) {
        fmt_err(err, errlen, "cannot create directory", dir, errno);
        goto fail;
    }
    s->dir_fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (s->dir_fd < 0) {
        fmt_err(err, errlen, "cannot open directory", dir, errno);
        goto fail;
    }
    if (flock(s->dir_fd, LOCK_EX | LOCK_NB) != 0) {
        if (errno == EWOULDBLOCK) {
            if (err != NULL && errlen > 0)
                snprintf(err, errlen,
                         "spool directory %s is in use by another process (flock held); "
                         "each tollgate instance needs its own LEDGER_SPOOL_DIR",
                         dir);
        } else {
            fmt_err(err, errlen, "flock of", dir, errno);
        }
        goto fail;
    }
    d = opendir(dir);
    if (d == NULL) {
        fmt_err(err, errlen, "cannot list", dir, errno);
        goto fail;
    }
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        uint64_t seq;
        if (!parse_name(de->d_name, &seq))
            continue;
        struct stat st;
        if (fstatat(s->dir_fd, de->d_name, &st, 0) != 0) {
            fmt_err(err, errlen, "stat of segment in", dir, errno);
            goto fail;
        }
        if (push_seg(s, seq, (uint64_t)st.st_size) != 0) {
            fmt_err(err, errlen, "allocation for", dir, ENOMEM);
            goto fail;
        }
        s->bytes += (uint64_t)st.st_size;
        if (seq >= s->next_seq)
            s->next_seq = seq + 1;
    }
    closedir(d);
    if (s->nseg > 1)
        qsort(s->segs, s->nseg, sizeof(*s->segs), cmp_seg);
    return s;
fail:
    if (d != NULL)
        closedir(d);
    tg_spool_close(s);
    return NULL;
}

void tg_spool_close(struct tg_spool *s)
{
    if (s == NULL)
        return;
    if (s->wfd >= 0)
        close(s->wfd);
    if (s->rfd >= 0)
        close(s->rfd);
    if (s->dir_fd >= 0)
        close(s->dir_fd); /* releases the flock */
    free(s->segs);
    free(s->buf);
    free(s->dir);
    free(s);
}

const char *tg_spool_dir(const struct tg_spool *s)
{
    return s->dir;
}

static int write_all(int fd, const uint8_t *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

int tg_spool_write(struct tg_spool *s, const void *frames, size_t len, char *err, size_t errlen)
{
    char path[4200];
    if (s->wfd >= 0) {
        struct segment *last = &s->segs[s->nseg - 1];
        if (last->end > 0 && last->end + len > s->segment_bytes) {
            close(s->wfd);
            s->wfd = -1;
        }
    }
    if (s->wfd < 0) {
        uint64_t seq = s->next_seq;
        seg_path(s, seq, path, sizeof(path));
        int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_APPEND | O_CLOEXEC, 0600);
        if (fd < 0) {
            fmt_err(err, errlen, "cannot create", path, errno);
            return -1;
        }
        if (fsync(s->dir_fd) != 0 || push_seg(s, seq, 0) != 0) {
            int e = errno;
            close(fd);
            unlink(path);
            fmt_err(err, errlen, "fsync of the directory for", path, e);
            return -1;
        }
        s->next_seq = seq + 1;
        s->wfd = fd;
    }
    struct segment *seg = &s->segs[s->nseg - 1];
    if (write_all(s->wfd, frames, len) != 0 || fsync(s->wfd) != 0) {
        int e = errno;
        seg_path(s, seg->seq, path, sizeof(path));
        fmt_err(err, errlen, "write/fsync of", path, e);
        /* After a failed fsync the page cache state is unknown: cut the file back to what
         * was durable and never write to it again. */
        if (ftruncate(s->wfd, (off_t)seg->end) != 0)
            seg->torn = true;
        close(s->wfd);
        s->wfd = -1;
        return -1;
    }
    seg->end += len;
    s->bytes += len;
    return 0;
}

/* Makes [off, off + min(FRAME_MAX, end - off)) of seg available; sets *p and *avail.
 * Returns 0, -1 on an I/O error, -2 when the segment file no longer exists. */
static int window(struct tg_spool *s, const struct segment *seg, uint64_t off, const uint8_t **p,
                  size_t *avail, char *err, size_t errlen)
{
    uint64_t want = TG_MIN(seg->end - off, (uint64_t)FRAME_MAX);
    if (!(s->buf_seq == seg->seq && s->buf_len > 0 && off >= s->buf_off &&
          off + want <= s->buf_off + s->buf_len)) {
        char path[4200];
        seg_path(s, seg->seq, path, sizeof(path));
        if (s->rfd < 0 || s->rfd_seq != seg->seq) {
            if (s->rfd >= 0)
                close(s->rfd);
            s->rfd = open(path, O_RDONLY | O_CLOEXEC);
            if (s->rfd < 0) {
                int e = errno;
                fmt_err(err, errlen, "cannot open", path, e);
                return e == ENOENT ? -2 : -1;
            }
            s->rfd_seq = seg->seq;
        }
        size_t n = (size_t)TG_MIN(seg->end - off, (uint64_t)READ_BUF_BYTES);
        size_t got = 0;
        while (got < n) {
            ssize_t r = pread(s->rfd, s->buf + got, n - got, (off_t)(off + got));
            if (r < 0 && errno == EINTR)
                continue;
            if (r <= 0) {
                fmt_err(err, errlen, "read of", path, r < 0 ? errno : EIO);
                s->buf_len = 0;
                return -1;
            }
            got += (size_t)r;
        }
        s->buf_seq = seg->seq;
        s->buf_off = off;
        s->buf_len = n;
    }
    *p = s->buf + (off - s->buf_off);
    *avail = (size_t)(s->buf_off + s->buf_len - off);
    return 0;
}

/* The next offset after `from` where a plausible, checksummed record starts, or seg->end. */
static int resync(struct tg_spool *s, const struct segment *seg, uint64_t from, uint64_t *next,
                  char *err, size_t errlen)
{
    for (uint64_t o = from + 1; o + TG_LEDGER_FRAME_HEADER_BYTES < seg->end; o++) {
        const uint8_t *p, *payload;
        size_t avail, fbytes;
        uint32_t len;
        if (window(s, seg, o, &p, &avail, err, errlen) != 0)
            return -1;
        uint32_t l =
            (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
        if (l < TG_LEDGER_ROW_FIXED_BYTES || l > TG_LEDGER_FRAME_MAX_PAYLOAD)
            continue;
        if (tg_ledger_frame_parse(p, avail, &payload, &len, &fbytes) == TG_LEDGER_FRAME_OK &&
            payload[0] == TG_LEDGER_ROW_VERSION) {
            *next = o;
            return 0;
        }
    }
    *next = seg->end;
    return 0;
}

int tg_spool_read(struct tg_spool *s, unsigned max_records,
                  void (*on_record)(void *arg, const uint8_t *payload, uint32_t len),
                  void (*on_tear)(void *arg, const struct tg_spool_tear *tear), void *arg,
                  char *err, size_t errlen)
{
    size_t si = 0;
    uint64_t off = s->roff;
    int count = 0;
    s->has_pend = false;
    while (s->nseg > 0 && (unsigned)count < max_records) {
        struct segment *seg = &s->segs[si];
        if (off >= seg->end) {
            if (si + 1 >= s->nseg)
                break;
            si++;
            off = 0;
            continue;
        }
        const uint8_t *p, *payload;
        size_t avail, fbytes;
        uint32_t len;
        int wrc = window(s, seg, off, &p, &avail, err, errlen);
        if (wrc == -2) {
            /* Deleted behind our back: report what it held and go on with the next one. */
            if (s->wfd >= 0 && si == s->nseg - 1) {
                close(s->wfd);
                s->wfd = -1;
            }
            seg->torn = true;
            if (off >= seg->scanned && on_tear != NULL) {
                struct tg_spool_tear t = {.seq = seg->seq,
                                          .offset = off,
                                          .bytes = seg->end - off,
                                          .at_tail = true,
                                          .missing = true};
                seg_path(s, seg->seq, t.path, sizeof(t.path));
                on_tear(arg, &t);
            }
            off = seg->scanned = seg->end;
            continue;
        }
        if (wrc != 0)
            return -1;
        enum tg_ledger_frame_result fr = tg_ledger_frame_parse(p, avail, &payload, &len, &fbytes);
        if (fr == TG_LEDGER_FRAME_OK) {
            on_record(arg, payload, len);
            count++;
            off += fbytes;
        } else {
            uint64_t next = seg->end;
            if (fr == TG_LEDGER_FRAME_CORRUPT && resync(s, seg, off, &next, err, errlen) != 0)
                return -1;
            seg->torn = true;
            if (off >= seg->scanned && on_tear != NULL) {
                struct tg_spool_tear t = {.seq = seg->seq,
                                          .offset = off,
                                          .bytes = next - off,
                                          .at_tail = next == seg->end};
                seg_path(s, seg->seq, t.path, sizeof(t.path));
                on_tear(arg, &t);
            }
            off = next;
        }
        if (off > seg->scanned)
            seg->scanned = off;
    }
    s->pend_seg = si;
    s->pend_off = off;
    s->has_pend = true;
    return count;
}

static void remove_seg(struct tg_spool *s, const struct segment *seg)
{
    char path[4200], torn[4300];
    seg_path(s, seg->seq, path, sizeof(path));
    if (s->rfd >= 0 && s->rfd_seq == seg->seq) {
        close(s->rfd);
        s->rfd = -1;
    }
    if (s->buf_seq == seg->seq)
        s->buf_len = 0;
    if (seg->torn) {
        snprintf(torn, sizeof(torn), "%s.torn", path);
        if (rename(path, torn) == 0)
            goto done;
    }
    unlink(path);
done:
    s->bytes -= seg->end;
}

void tg_spool_commit(struct tg_spool *s)
{
    if (!s->has_pend || s->nseg == 0)
        return;
    s->has_pend = false;
    size_t drop = s->pend_seg; /* segments before it were read to their end */
    bool last_done = s->pend_off >= s->segs[s->pend_seg].end;
    if (last_done) {
        if (s->wfd >= 0 && s->pend_seg == s->nseg - 1) {
            /* The segment being written has been replayed to its end: the spool is empty. */
            close(s->wfd);
            s->wfd = -1;
        }
        drop++;
    }
    for (size_t i = 0; i < drop; i++)
        remove_seg(s, &s->segs[i]);
    memmove(s->segs, s->segs + drop, (s->nseg - drop) * sizeof(*s->segs));
    s->nseg -= drop;
    s->roff = last_done ? 0 : s->pend_off;
}

bool tg_spool_is_empty(const struct tg_spool *s)
{
    return s->nseg == 0;
}

uint64_t tg_spool_bytes(const struct tg_spool *s)
{
    return s->bytes;
}

uint64_t tg_spool_files(const struct tg_spool *s)
{
    return s->nseg;
}
