/* Unit tests for ledger/ring.c: wrap-around, full ring, SPSC stress, crash recovery, tears. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <dirent.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "ledger/crc32c.h"
#include "ledger/ledger_row.h"
#include "ledger/ring.h"

static char dir[256];
static char path[300];

static int setup(void **state)
{
    (void)state;
    snprintf(dir, sizeof(dir), "/tmp/test_ring.XXXXXX");
    if (mkdtemp(dir) == NULL)
        return -1;
    snprintf(path, sizeof(path), "%s/ring-0.bin", dir);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    DIR *d = opendir(dir);
    struct dirent *de;
    while (d != NULL && (de = readdir(d)) != NULL) {
        char p[600];
        if (de->d_name[0] == '.')
            continue;
        snprintf(p, sizeof(p), "%s/%s", dir, de->d_name);
        unlink(p);
    }
    if (d != NULL)
        closedir(d);
    rmdir(dir);
    return 0;
}

/* Test payload for record number `seq`: 8-byte seq, then length-dependent filler. */
static uint32_t make_payload(uint64_t seq, uint8_t *out)
{
    uint32_t len = 8 + (uint32_t)((seq * 2654435761u) % 300);
    memcpy(out, &seq, 8);
    for (uint32_t i = 8; i < len; i++)
        out[i] = (uint8_t)(seq * 31 + i);
    return len;
}

static void check_payload(uint64_t seq, const uint8_t *p, uint32_t len)
{
    uint8_t want[400];
    uint32_t wlen = make_payload(seq, want);
    if (len != wlen || memcmp(p, want, len) != 0)
        fail_msg("record %llu differs (len %u want %u)", (unsigned long long)seq, len, wlen);
}

static struct tg_ring *open_ok(size_t bytes, struct tg_ring_recovery *rec)
{
    char err[256] = "";
    struct tg_ring *r = tg_ring_open(path, bytes, rec, err, sizeof(err));
    if (r == NULL)
        fail_msg("open: %s", err);
    return r;
}

static void test_basic_and_full(void **state)
{
    (void)state;
    struct tg_ring_recovery rec;
    struct tg_ring *r = open_ok(TG_RING_MIN_BYTES, &rec);
    assert_false(rec.existed);
    assert_int_equal(rec.pending_records, 0);
    const uint8_t *p;
    uint32_t len;
    uint64_t bad;
    assert_int_equal(tg_ring_read(r, &p, &len, &bad), TG_RING_READ_EMPTY);
    assert_false(tg_ring_has_data(r));

    /* Zero-length and oversized records are refused. */
    uint8_t big[TG_LEDGER_FRAME_MAX_PAYLOAD + 1];
    memset(big, 1, sizeof(big));
    assert_int_equal(tg_ring_append(r, big, 0), -1);
    assert_int_equal(tg_ring_append(r, big, sizeof(big)), -1);

    /* Fill until full; every byte of the ring is accounted for. */
    uint64_t n = 0;
    uint8_t buf[400];
    for (;;) {
        uint32_t l = make_payload(n, buf);
        if (tg_ring_append(r, buf, l) != 0)
            break;
        n++;
    }
    assert_true(n > 100);
    assert_true(tg_ring_used_bytes(r) <= TG_RING_MIN_BYTES);
    assert_true(tg_ring_used_bytes(r) > TG_RING_MIN_BYTES - 400);
    /* Reading does not free space; committing does. */
    for (uint64_t i = 0; i < 10; i++) {
        assert_int_equal(tg_ring_read(r, &p, &len, &bad), TG_RING_READ_OK);
        check_payload(i, p, len);
    }
    uint32_t l = make_payload(n, buf);
    assert_int_equal(tg_ring_append(r, buf, l), -1);
    tg_ring_commit(r, tg_ring_read_pos(r));
    assert_int_equal(tg_ring_append(r, buf, l), 0);
    n++;
    for (uint64_t i = 10; i < n; i++) {
        assert_int_equal(tg_ring_read(r, &p, &len, &bad), TG_RING_READ_OK);
        check_payload(i, p, len);
    }
    assert_int_equal(tg_ring_read(r, &p, &len, &bad), TG_RING_READ_EMPTY);
    tg_ring_commit(r, tg_ring_read_pos(r));
    assert_int_equal(tg_ring_used_bytes(r), 0);
    tg_ring_close(r);

    /* Bad sizes are refused. */
    char err[256];
    assert_null(tg_ring_open(path, TG_RING_MIN_BYTES - 4096, NULL, err, sizeof(err)));
    assert_null(tg_ring_open(path, TG_RING_MIN_BYTES + 100, NULL, err, sizeof(err)));
}

/* Many laps with varying record sizes, committing at varying distances. */
static void test_wrap_around(void **state)
{
    (void)state;
    struct tg_ring *r = open_ok(TG_RING_MIN_BYTES, NULL);
    uint64_t wseq = 0, rseq = 0;
    uint8_t buf[400];
    const uint8_t *p;
    uint32_t len;
    uint64_t bad;
    srand(5);
    for (int round = 0; round < 20000; round++) {
        int appends = rand() % 40;
        for (int i = 0; i < appends; i++) {
            uint32_t l = make_payload(wseq, buf);
            if (tg_ring_append(r, buf, l) != 0)
                break;
            wseq++;
        }
        int reads = rand() % 40;
        for (int i = 0; i < reads; i++) {
            enum tg_ring_read_result rr = tg_ring_read(r, &p, &len, &bad);
            if (rr == TG_RING_READ_EMPTY)
                break;
            assert_int_equal(rr, TG_RING_READ_OK);
            check_payload(rseq, p, len);
            rseq++;
        }
        if (rand() % 3 == 0)
            tg_ring_commit(r, tg_ring_read_pos(r));
    }
    /* Enough data went through for dozens of laps. */
    assert_true(wseq * 150 > 30 * TG_RING_MIN_BYTES);
    while (tg_ring_read(r, &p, &len, &bad) == TG_RING_READ_OK) {
        check_payload(rseq, p, len);
        rseq++;
    }
    assert_int_equal(rseq, wseq);
    tg_ring_close(r);
}

struct stress {
    struct tg_ring *r;
    uint64_t n;
    uint64_t full_spins;
};

static void *producer(void *arg)
{
    struct stress *s = arg;
    uint8_t buf[400];
    for (uint64_t seq = 0; seq < s->n; seq++) {
        uint32_t l = make_payload(seq, buf);
        while (tg_ring_append(s->r, buf, l) != 0) {
            s->full_spins++;
            sched_yield();
        }
    }
    return NULL;
}

static void test_concurrent_stress(void **state)
{
    (void)state;
    struct tg_ring *r = open_ok(TG_RING_MIN_BYTES, NULL);
    const char *env = getenv("TG_RING_STRESS_RECORDS");
    struct stress s = {.r = r, .n = env ? strtoull(env, NULL, 10) : 3000000};
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, producer, &s), 0);
    uint64_t seq = 0, since_commit = 0;
    uint32_t crc = 0, want_crc = 0;
    const uint8_t *p;
    uint32_t len;
    uint64_t bad;
    uint8_t buf[400];
    while (seq < s.n) {
        enum tg_ring_read_result rr = tg_ring_read(r, &p, &len, &bad);
        if (rr == TG_RING_READ_EMPTY) {
            tg_ring_commit(r, tg_ring_read_pos(r));
            since_commit = 0;
            sched_yield();
            continue;
        }
        assert_int_equal(rr, TG_RING_READ_OK);
        uint64_t got;
        memcpy(&got, p, 8);
        if (got != seq)
            fail_msg("out of order: got %llu want %llu", (unsigned long long)got,
                     (unsigned long long)seq);
        crc = tg_crc32c(crc, p, len);
        uint32_t l = make_payload(seq, buf);
        want_crc = tg_crc32c(want_crc, buf, l);
        seq++;
        if (++since_commit == 97) {
            tg_ring_commit(r, tg_ring_read_pos(r));
            since_commit = 0;
        }
    }
    pthread_join(t, NULL);
    assert_int_equal(crc, want_crc);
    assert_int_equal(tg_ring_read(r, &p, &len, &bad), TG_RING_READ_EMPTY);
    print_message("stress: %llu records, producer found the ring full %llu times\n",
                  (unsigned long long)s.n, (unsigned long long)s.full_spins);
    tg_ring_close(r);
}

/* Records appended and not committed are there after a reopen, in order. */
static void test_reopen_pending(void **state)
{
    (void)state;
    struct tg_ring *r = open_ok(TG_RING_MIN_BYTES, NULL);
    uint8_t buf[400];
    const uint8_t *p;
    uint32_t len;
    uint64_t bad;
    /* Push the positions past one lap first so pending records straddle the wrap. */
    uint64_t seq = 0;
    while (tg_ring_used_bytes(r) < TG_RING_MIN_BYTES - 1000) {
        uint32_t l = make_payload(seq++, buf);
        assert_int_equal(tg_ring_append(r, buf, l), 0);
    }
    for (uint64_t i = 0; i < seq - 20; i++)
        assert_int_equal(tg_ring_read(r, &p, &len, &bad), TG_RING_READ_OK);
    tg_ring_commit(r, tg_ring_read_pos(r)); /* 20 left pending */
    for (int i = 0; i < 5; i++)
        assert_int_equal(tg_ring_read(r, &p, &len, &bad),
                         TG_RING_READ_OK); /* read, not committed */
    uint64_t first_pending = seq - 20;
    for (int i = 0; i < 100; i++) {
        uint32_t l = make_payload(seq++, buf);
        assert_int_equal(tg_ring_append(r, buf, l), 0);
    }
    tg_ring_close(r);

    struct tg_ring_recovery rec;
    r = open_ok(TG_RING_MIN_BYTES, &rec);
    assert_true(rec.existed);
    assert_false(rec.header_invalid);
    assert_int_equal(rec.pending_records, 120);
    assert_int_equal(rec.torn_records, 0);
    for (uint64_t i = first_pending; i < seq; i++) {
        assert_int_equal(tg_ring_read(r, &p, &len, &bad), TG_RING_READ_OK);
        check_payload(i, p, len);
    }
    assert_int_equal(tg_ring_read(r, &p, &len, &bad), TG_RING_READ_EMPTY);
    tg_ring_commit(r, tg_ring_read_pos(r));
    tg_ring_close(r);
    r = open_ok(TG_RING_MIN_BYTES, &rec);
    assert_int_equal(rec.pending_records, 0);
    tg_ring_close(r);
}

/* A producer process killed with SIGKILL right after its appends loses none of them. */
static void test_kill9_recovery(void **state)
{
    (void)state;
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        char err[256];
        struct tg_ring *r = tg_ring_open(path, TG_RING_MIN_BYTES, NULL, err, sizeof(err));
        if (r == NULL)
            _exit(3);
        uint8_t buf[400];
        for (uint64_t seq = 0; seq < 150; seq++) {
            uint32_t l = make_payload(seq, buf);
            if (tg_ring_append(r, buf, l) != 0)
                _exit(4);
        }
        raise(SIGKILL);
        _exit(5);
    }
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
    struct tg_ring_recovery rec;
    struct tg_ring *r = open_ok(TG_RING_MIN_BYTES, &rec);
    assert_int_equal(rec.pending_records, 150);
    const uint8_t *p;
    uint32_t len;
    uint64_t bad;
    for (uint64_t i = 0; i < 150; i++) {
        assert_int_equal(tg_ring_read(r, &p, &len, &bad), TG_RING_READ_OK);
        check_payload(i, p, len);
    }
    assert_int_equal(tg_ring_read(r, &p, &len, &bad), TG_RING_READ_EMPTY);
    tg_ring_close(r);
}

static void flip_file_byte(off_t off)
{
    int fd = open(path, O_RDWR);
    assert_true(fd >= 0);
    uint8_t b;
    assert_int_equal(pread(fd, &b, 1, off), 1);
    b ^= 0x5A;
    assert_int_equal(pwrite(fd, &b, 1, off), 1);
    close(fd);
}

/* File offset of record k when records 0..k-1 were appended from position 0 (no wrap). */
static off_t record_offset(uint64_t k)
{
    off_t off = TG_RING_HEADER_BYTES;
    uint8_t buf[400];
    for (uint64_t i = 0; i < k; i++)
        off += (off_t)((tg_ledger_frame_size(make_payload(i, buf)) + 7) & ~(size_t)7);
    return off;
}

static void test_torn_record_on_open(void **state)
{
    (void)state;
    /* Flip a byte in the length, the checksum and the payload of record 6 in turn. */
    const struct {
        int line;
        int where; /* byte offset inside the frame */
    } rows[] = {{__LINE__, 0}, {__LINE__, 2}, {__LINE__, 5}, {__LINE__, 8}, {__LINE__, 20}};
    for (size_t t = 0; t < TG_ARRAY_LEN(rows); t++) {
        unlink(path);
        struct tg_ring *r = open_ok(TG_RING_MIN_BYTES, NULL);
        uint8_t buf[400];
        for (uint64_t seq = 0; seq < 10; seq++)
            assert_int_equal(tg_ring_append(r, buf, make_payload(seq, buf)), 0);
        tg_ring_close(r);
        off_t off = record_offset(6);
        flip_file_byte(off + rows[t].where);

        struct tg_ring_recovery rec;
        r = open_ok(TG_RING_MIN_BYTES, &rec);
        if (rec.pending_records != 6 || rec.torn_records != 1 || rec.torn_offset != (uint64_t)off)
            fail_msg("line %d: pending %llu torn %llu at %llu (want 6, 1, %lld)", rows[t].line,
                     (unsigned long long)rec.pending_records, (unsigned long long)rec.torn_records,
                     (unsigned long long)rec.torn_offset, (long long)off);
        assert_true(rec.lost_bytes > 0);
        const uint8_t *p;
        uint32_t len;
        uint64_t bad;
        for (uint64_t i = 0; i < 6; i++) {
            assert_int_equal(tg_ring_read(r, &p, &len, &bad), TG_RING_READ_OK);
            check_payload(i, p, len);
        }
        assert_int_equal(tg_ring_read(r, &p, &len, &bad), TG_RING_READ_EMPTY);
        /* New records after the tear are read normally. */
        for (uint64_t seq = 100; seq < 103; seq++)
            assert_int_equal(tg_ring_append(r, buf, make_payload(seq, buf)), 0);
        for (uint64_t seq = 100; seq < 103; seq++) {
            assert_int_equal(tg_ring_read(r, &p, &len, &bad), TG_RING_READ_OK);
            check_payload(seq, p, len);
        }
        tg_ring_commit(r, tg_ring_read_pos(r));
        tg_ring_close(r);
        r = open_ok(TG_RING_MIN_BYTES, &rec);
        assert_int_equal(rec.pending_records, 0);
        assert_int_equal(rec.torn_records, 0);
        tg_ring_close(r);
    }
}

static void test_corrupt_while_running(void **state)
{
    (void)state;
    struct tg_ring *r = open_ok(TG_RING_MIN_BYTES, NULL);
    uint8_t buf[400];
    for (uint64_t seq = 0; seq < 5; seq++)
        assert_int_equal(tg_ring_append(r, buf, make_payload(seq, buf)), 0);
    flip_file_byte(record_offset(2) + 12); /* the shared mapping sees it */
    const uint8_t *p;
    uint32_t len;
    uint64_t bad = 0;
    for (uint64_t i = 0; i < 2; i++)
        assert_int_equal(tg_ring_read(r, &p, &len, &bad), TG_RING_READ_OK);
    assert_int_equal(tg_ring_read(r, &p, &len, &bad), TG_RING_READ_CORRUPT);
    assert_int_equal(bad, (uint64_t)record_offset(2));
    assert_int_equal(tg_ring_read(r, &p, &len, &bad), TG_RING_READ_EMPTY);
    assert_int_equal(tg_ring_append(r, buf, make_payload(7, buf)), 0);
    assert_int_equal(tg_ring_read(r, &p, &len, &bad), TG_RING_READ_OK);
    check_payload(7, p, len);
    tg_ring_close(r);
}

static void test_bad_header_and_resize(void **state)
{
    (void)state;
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, "garbage garbage garbage", 23), 23);
    close(fd);
    struct tg_ring_recovery rec;
    struct tg_ring *r = open_ok(TG_RING_MIN_BYTES, &rec);
    assert_true(rec.header_invalid);
    assert_int_equal(rec.pending_records, 0);
    uint8_t buf[400];
    assert_int_equal(tg_ring_append(r, buf, make_payload(1, buf)), 0);
    tg_ring_close(r);
    /* The unusable file was kept aside. */
    DIR *d = opendir(dir);
    struct dirent *de;
    int corrupt = 0;
    while ((de = readdir(d)) != NULL)
        corrupt += strstr(de->d_name, "ring-0.bin.corrupt-") != NULL;
    closedir(d);
    assert_int_equal(corrupt, 1);

    /* A pending record keeps the old size; once drained, the new size applies. */
    r = open_ok(2 * TG_RING_MIN_BYTES, &rec);
    assert_int_equal(rec.data_bytes, TG_RING_MIN_BYTES);
    assert_int_equal(tg_ring_data_bytes(r), TG_RING_MIN_BYTES);
    assert_int_equal(rec.pending_records, 1);
    const uint8_t *p;
    uint32_t len;
    uint64_t bad;
    assert_int_equal(tg_ring_read(r, &p, &len, &bad), TG_RING_READ_OK);
    tg_ring_commit(r, tg_ring_read_pos(r));
    tg_ring_close(r);
    r = open_ok(2 * TG_RING_MIN_BYTES, &rec);
    assert_int_equal(tg_ring_data_bytes(r), 2 * TG_RING_MIN_BYTES);
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_size, TG_RING_HEADER_BYTES + 2 * TG_RING_MIN_BYTES);
    tg_ring_close(r);

    /* Offsets that cannot be (consumed past write) make the header invalid. */
    fd = open(path, O_RDWR);
    uint64_t w = 8, c = 16;
    assert_int_equal(pwrite(fd, &w, 8, 64), 8);
    assert_int_equal(pwrite(fd, &c, 8, 128), 8);
    close(fd);
    r = open_ok(TG_RING_MIN_BYTES, &rec);
    assert_true(rec.header_invalid);
    tg_ring_close(r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_basic_and_full, setup, teardown),
        cmocka_unit_test_setup_teardown(test_wrap_around, setup, teardown),
        cmocka_unit_test_setup_teardown(test_concurrent_stress, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reopen_pending, setup, teardown),
        cmocka_unit_test_setup_teardown(test_kill9_recovery, setup, teardown),
        cmocka_unit_test_setup_teardown(test_torn_record_on_open, setup, teardown),
        cmocka_unit_test_setup_teardown(test_corrupt_while_running, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_header_and_resize, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
