/* Unit tests for ledger/spool.c: ordered replay, segment deletion, lock, torn and corrupt records.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "ledger/ledger_row.h"
#include "ledger/spool.h"

static char dir[256];

static void rm_dir_files(void)
{
    DIR *d = opendir(dir);
    struct dirent *de;
    while (d != NULL && (de = readdir(d)) != NULL) {
        char p[600];
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
            continue;
        snprintf(p, sizeof(p), "%s/%s", dir, de->d_name);
        unlink(p);
    }
    if (d != NULL)
        closedir(d);
}

static int setup(void **state)
{
    (void)state;
    snprintf(dir, sizeof(dir), "/tmp/test_spool.XXXXXX");
    return mkdtemp(dir) == NULL ? -1 : 0;
}

static int teardown(void **state)
{
    (void)state;
    rm_dir_files();
    rmdir(dir);
    return 0;
}

/* Records are encoded ledger rows so that resynchronisation (which wants a row version
 * byte) is exercised as in production; the row number sits in prompt_tokens. */
static size_t make_frame(uint64_t seq, uint8_t *out)
{
    struct tg_ledger_row r;
    memset(&r, 0, sizeof(r));
    int64_t ms = 1700000000000 + (int64_t)seq;
    for (int i = 0; i < 6; i++)
        r.request_id[i] = (uint8_t)(ms >> (8 * (5 - i)));
    r.request_id[6] = 0x70;
    r.request_id[8] = 0x80;
    r.started_at_ms = ms;
    r.finished_at_us = ms * 1000;
    r.route = TG_ROUTE_CHAT;
    r.prompt_tokens = (int64_t)seq;
    snprintf(r.user_id, sizeof(r.user_id), "user-%llu", (unsigned long long)(seq % 977));
    snprintf(r.model, sizeof(r.model), "model-%.*s", (int)(seq % 50),
             "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx");
    uint8_t enc[TG_LEDGER_ROW_ENCODED_MAX];
    size_t n = tg_ledger_row_encode(&r, enc, sizeof(enc));
    assert_true(n > 0);
    tg_ledger_frame_write(out, enc, (uint32_t)n);
    return tg_ledger_frame_size(n);
}

static size_t write_records(struct tg_spool *s, uint64_t from, uint64_t to)
{
    static uint8_t buf[1 << 20];
    size_t len = 0, total = 0;
    for (uint64_t i = from; i < to; i++) {
        len += make_frame(i, buf + len);
        if (len > 8000) {
            char err[256];
            assert_int_equal(tg_spool_write(s, buf, len, err, sizeof(err)), 0);
            total += len;
            len = 0;
        }
    }
    if (len > 0) {
        char err[256];
        assert_int_equal(tg_spool_write(s, buf, len, err, sizeof(err)), 0);
        total += len;
    }
    return total;
}

struct got {
    uint64_t seqs[200000];
    size_t n;
    struct tg_spool_tear tears[16];
    size_t ntears;
};

static void on_record(void *arg, const uint8_t *payload, uint32_t len)
{
    struct got *g = arg;
    struct tg_ledger_row r;
    assert_int_equal(tg_ledger_row_decode(payload, len, &r), 0);
    g->seqs[g->n++] = (uint64_t)r.prompt_tokens;
}

static void on_tear(void *arg, const struct tg_spool_tear *t)
{
    struct got *g = arg;
    assert_true(g->ntears < TG_ARRAY_LEN(g->tears));
    g->tears[g->ntears++] = *t;
}

static struct got *got_new(void)
{
    struct got *g = calloc(1, sizeof(*g));
    assert_non_null(g);
    return g;
}

static int read_ok(struct tg_spool *s, unsigned max, struct got *g)
{
    char err[256] = "";
    int n = tg_spool_read(s, max, on_record, on_tear, g, err, sizeof(err));
    if (n < 0)
        fail_msg("read: %s", err);
    return n;
}

static struct tg_spool *open_ok(size_t seg_bytes)
{
    char err[256] = "";
    struct tg_spool *s = tg_spool_open(dir, seg_bytes, err, sizeof(err));
    if (s == NULL)
        fail_msg("open: %s", err);
    return s;
}

static unsigned count_files(const char *suffix)
{
    DIR *d = opendir(dir);
    struct dirent *de;
    unsigned n = 0;
    while ((de = readdir(d)) != NULL) {
        size_t l = strlen(de->d_name), sl = strlen(suffix);
        if (strncmp(de->d_name, "spool-", 6) == 0 && l > sl &&
            strcmp(de->d_name + l - sl, suffix) == 0)
            n++;
    }
    closedir(d);
    return n;
}

static void test_ordered_replay_and_deletion(void **state)
{
    (void)state;
    struct tg_spool *s = open_ok(64 * 1024);
    assert_true(tg_spool_is_empty(s));
    size_t bytes = write_records(s, 0, 5000);
    assert_false(tg_spool_is_empty(s));
    assert_int_equal(tg_spool_bytes(s), bytes);
    unsigned files = (unsigned)tg_spool_files(s);
    assert_true(files > 3);
    assert_int_equal(count_files(".log"), files);

    struct got *g = got_new();
    /* Without a commit the same records come back. */
    assert_int_equal(read_ok(s, 700, g), 700);
    g->n = 0;
    assert_int_equal(read_ok(s, 700, g), 700);
    for (size_t i = 0; i < 700; i++)
        assert_int_equal(g->seqs[i], i);
    tg_spool_commit(s);
    assert_true(tg_spool_files(s) < files);
    assert_int_equal(count_files(".log"), tg_spool_files(s));

    /* Writes while replaying land after everything already spooled. */
    write_records(s, 5000, 5100);
    uint64_t want = 700;
    for (;;) {
        g->n = 0;
        int n = read_ok(s, 333, g);
        for (int i = 0; i < n; i++)
            assert_int_equal(g->seqs[i], want++);
        tg_spool_commit(s);
        if (n == 0)
            break;
    }
    assert_int_equal(want, 5100);
    assert_true(tg_spool_is_empty(s));
    assert_int_equal(tg_spool_bytes(s), 0);
    assert_int_equal(count_files(".log"), 0);
    assert_int_equal(g->ntears, 0);

    /* After the spool emptied, a new segment gets a higher number. */
    write_records(s, 1, 2);
    tg_spool_close(s);
    s = open_ok(64 * 1024);
    g->n = 0;
    assert_int_equal(read_ok(s, 10, g), 1);
    tg_spool_commit(s);
    assert_true(tg_spool_is_empty(s));
    tg_spool_close(s);
    free(g);
}

static void test_reopen_replays_everything(void **state)
{
    (void)state;
    struct tg_spool *s = open_ok(32 * 1024);
    write_records(s, 0, 1000);
    struct got *g = got_new();
    assert_int_equal(read_ok(s, 300, g), 300);
    tg_spool_commit(s);
    assert_int_equal(read_ok(s, 100, g), 100); /* read but never committed: replayed again */
    tg_spool_close(s);

    s = open_ok(32 * 1024);
    g->n = 0;
    while (read_ok(s, 1000, g) > 0)
        tg_spool_commit(s);
    tg_spool_commit(s);
    /* Records of the partly committed first segment come again (the ledger's primary key
     * drops them); nothing is missing and the order holds. */
    assert_true(g->n >= 700);
    assert_true(g->seqs[0] <= 300);
    for (size_t i = 1; i < g->n; i++)
        assert_int_equal(g->seqs[i], g->seqs[i - 1] + 1);
    assert_int_equal(g->seqs[g->n - 1], 999);
    assert_true(tg_spool_is_empty(s));
    tg_spool_close(s);
    free(g);
}

static void test_lock(void **state)
{
    (void)state;
    struct tg_spool *s = open_ok(0);
    char err[256] = "";
    assert_null(tg_spool_open(dir, 0, err, sizeof(err)));
    assert_non_null(strstr(err, "is in use by another process"));
    /* Another process is refused too. */
    pid_t pid = fork();
    if (pid == 0) {
        char e[256];
        struct tg_spool *o = tg_spool_open(dir, 0, e, sizeof(e));
        _exit(o == NULL && strstr(e, "in use") != NULL ? 0 : 1);
    }
    int st;
    assert_int_equal(waitpid(pid, &st, 0), pid);
    assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    tg_spool_close(s);
    s = open_ok(0);
    tg_spool_close(s);
    /* A directory that does not exist yet is created. */
    char sub[400];
    snprintf(sub, sizeof(sub), "%s/a/b", dir);
    s = tg_spool_open(sub, 0, err, sizeof(err));
    assert_non_null(s);
    tg_spool_close(s);
    rmdir(sub);
    snprintf(sub, sizeof(sub), "%s/a", dir);
    rmdir(sub);
}

static void segment_path(char *out, size_t cap)
{
    DIR *d = opendir(dir);
    struct dirent *de;
    out[0] = '\0';
    while ((de = readdir(d)) != NULL)
        if (strncmp(de->d_name, "spool-", 6) == 0 && strstr(de->d_name, ".log") != NULL &&
            strstr(de->d_name, ".torn") == NULL)
            snprintf(out, cap, "%s/%s", dir, de->d_name);
    closedir(d);
}

/* Truncating the single segment anywhere inside its last record. */
static void test_torn_tail_every_cut(void **state)
{
    (void)state;
    uint8_t frame[1024];
    size_t last = make_frame(19, frame);
    for (size_t cut = 1; cut < last; cut++) {
        rm_dir_files();
        struct tg_spool *s = open_ok(0);
        size_t total = write_records(s, 0, 20);
        tg_spool_close(s);
        char seg[600];
        segment_path(seg, sizeof(seg));
        assert_int_equal(truncate(seg, (off_t)(total - last + cut)), 0);

        s = open_ok(0);
        struct got *g = got_new();
        assert_int_equal(read_ok(s, 100, g), 19);
        for (size_t i = 0; i < 19; i++)
            assert_int_equal(g->seqs[i], i);
        if (g->ntears != 1 || !g->tears[0].at_tail || g->tears[0].offset != total - last ||
            g->tears[0].bytes != cut)
            fail_msg("cut %zu: %zu tears, offset %llu bytes %llu", cut, g->ntears,
                     (unsigned long long)g->tears[0].offset, (unsigned long long)g->tears[0].bytes);
        assert_string_equal(g->tears[0].path, seg);
        /* Reading again (no commit) does not report the tear twice. */
        g->n = 0;
        assert_int_equal(read_ok(s, 100, g), 19);
        assert_int_equal(g->ntears, 1);
        tg_spool_commit(s);
        assert_true(tg_spool_is_empty(s));
        /* The segment with the tear is kept as .torn, not deleted. */
        assert_int_equal(count_files(".log.torn"), 1);
        assert_int_equal(count_files(".log"), 0);
        tg_spool_close(s);
        free(g);
    }
}

static void flip(const char *p, off_t off)
{
    int fd = open(p, O_RDWR);
    assert_true(fd >= 0);
    uint8_t b;
    assert_int_equal(pread(fd, &b, 1, off), 1);
    b ^= 0x21;
    assert_int_equal(pwrite(fd, &b, 1, off), 1);
    close(fd);
}

/* A flipped byte in record 10 of 30: records 0..9 and 11..29 are replayed, one tear. */
static void test_corrupt_middle_record(void **state)
{
    (void)state;
    uint8_t frame[1024];
    off_t rec10 = 0;
    for (uint64_t i = 0; i < 10; i++)
        rec10 += (off_t)make_frame(i, frame);
    size_t len10 = make_frame(10, frame);
    const struct {
        int line;
        off_t where;
    } rows[] = {
        {__LINE__, 0}, {__LINE__, 1}, {__LINE__, 3},  {__LINE__, 4},
        {__LINE__, 7}, {__LINE__, 8}, {__LINE__, 40}, {__LINE__, (off_t)len10 - 1},
    };
    for (size_t t = 0; t < TG_ARRAY_LEN(rows); t++) {
        rm_dir_files();
        struct tg_spool *s = open_ok(0);
        write_records(s, 0, 30);
        tg_spool_close(s);
        char seg[600];
        segment_path(seg, sizeof(seg));
        flip(seg, rec10 + rows[t].where);
        s = open_ok(0);
        struct got *g = got_new();
        int n = read_ok(s, 100, g);
        if (n != 29 || g->ntears != 1 || g->tears[0].offset != (uint64_t)rec10 ||
            g->tears[0].bytes != len10 || g->tears[0].at_tail)
            fail_msg("line %d: %d records, %zu tears", rows[t].line, n, g->ntears);
        for (size_t i = 0; i < 29; i++)
            assert_int_equal(g->seqs[i], i < 10 ? i : i + 1);
        tg_spool_commit(s);
        assert_true(tg_spool_is_empty(s));
        tg_spool_close(s);
        free(g);
    }
}

/* A torn segment in the middle of several: later segments still replay, in order. */
static void test_tear_then_more_segments(void **state)
{
    (void)state;
    struct tg_spool *s = open_ok(0);
    size_t a = write_records(s, 0, 10);
    tg_spool_close(s);
    char seg[600];
    segment_path(seg, sizeof(seg));
    assert_int_equal(truncate(seg, (off_t)a - 5), 0);
    s = open_ok(0); /* a new process writes to a new segment */
    write_records(s, 10, 20);
    /* An empty segment (a crash right after creating it) is harmless. */
    tg_spool_close(s);
    char empty[600];
    snprintf(empty, sizeof(empty), "%s/spool-%016d.log", dir, 99);
    int fd = open(empty, O_CREAT | O_WRONLY, 0600);
    close(fd);
    /* Files that are not segments are ignored. */
    char other[600];
    snprintf(other, sizeof(other), "%s/spool-1.log", dir);
    fd = open(other, O_CREAT | O_WRONLY, 0600);
    assert_int_equal(write(fd, "x", 1), 1);
    close(fd);

    s = open_ok(0);
    assert_int_equal(tg_spool_files(s), 3);
    struct got *g = got_new();
    assert_int_equal(read_ok(s, 100, g), 19);
    for (size_t i = 0; i < 19; i++)
        assert_int_equal(g->seqs[i], i < 9 ? i : i + 1);
    assert_int_equal(g->ntears, 1);
    assert_true(g->tears[0].at_tail);
    tg_spool_commit(s);
    assert_true(tg_spool_is_empty(s));
    assert_int_equal(access(other, F_OK), 0);
    assert_int_equal(access(empty, F_OK), -1);
    tg_spool_close(s);
    free(g);
}

/* A segment deleted by hand (or the newest, still open for writing) is reported as missing
 * with the bytes it still held, and replay goes on with the next segment. */
static void test_vanished_segment(void **state)
{
    (void)state;
    struct tg_spool *s = open_ok(16 * 1024);
    write_records(s, 0, 600);
    assert_true(tg_spool_files(s) >= 3);
    struct got *g = got_new();
    assert_int_equal(read_ok(s, 50, g), 50);
    tg_spool_commit(s);
    char second[600];
    snprintf(second, sizeof(second), "%s/spool-%016d.log", dir, 2);
    struct stat st;
    assert_int_equal(stat(second, &st), 0);
    assert_int_equal(unlink(second), 0);
    g->n = 0;
    int n = read_ok(s, 100000, g);
    assert_int_equal(g->ntears, 1);
    assert_true(g->tears[0].missing);
    assert_int_equal(g->tears[0].seq, 2);
    assert_int_equal(g->tears[0].offset, 0);
    assert_int_equal(g->tears[0].bytes, (uint64_t)st.st_size);
    /* Rows 50..599 minus those of segment 2: one gap, order kept. */
    assert_int_equal(g->seqs[0], 50);
    assert_int_equal(g->seqs[n - 1], 599);
    int gaps = 0;
    for (int i = 1; i < n; i++) {
        assert_true(g->seqs[i] > g->seqs[i - 1]);
        gaps += g->seqs[i] != g->seqs[i - 1] + 1;
    }
    assert_int_equal(gaps, 1);
    assert_true(n < 550);
    tg_spool_commit(s);
    assert_true(tg_spool_is_empty(s));
    /* The newest segment, open for writing, deleted: same, and writing starts a new one. */
    write_records(s, 1000, 1010);
    char newest[600] = "";
    DIR *d = opendir(dir);
    struct dirent *de;
    while ((de = readdir(d)) != NULL)
        if (strncmp(de->d_name, "spool-", 6) == 0 && strstr(de->d_name, ".log") &&
            !strstr(de->d_name, ".torn"))
            snprintf(newest, sizeof(newest), "%s/%s", dir, de->d_name);
    closedir(d);
    assert_int_equal(unlink(newest), 0);
    g->n = g->ntears = 0;
    assert_int_equal(read_ok(s, 100, g), 0);
    assert_int_equal(g->ntears, 1);
    assert_true(g->tears[0].missing);
    tg_spool_commit(s);
    assert_true(tg_spool_is_empty(s));
    write_records(s, 2000, 2005);
    g->n = 0;
    assert_int_equal(read_ok(s, 100, g), 5);
    assert_int_equal(g->seqs[0], 2000);
    tg_spool_commit(s);
    tg_spool_close(s);
    free(g);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_ordered_replay_and_deletion, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reopen_replays_everything, setup, teardown),
        cmocka_unit_test_setup_teardown(test_lock, setup, teardown),
        cmocka_unit_test_setup_teardown(test_torn_tail_every_cut, setup, teardown),
        cmocka_unit_test_setup_teardown(test_corrupt_middle_record, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tear_then_more_segments, setup, teardown),
        cmocka_unit_test_setup_teardown(test_vanished_segment, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
