/* ledger_driver.c: drives the ledger writer for the integration tests: K producer threads append
 * deterministic rows at a given rate, then the ledger is stopped and its counters printed. */
#include <errno.h>
#include <getopt.h>
#include <libpq-fe.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "ledger/ledger.h"

struct opts {
    const char *conninfo;
    const char *spool_dir;
    unsigned producers;
    uint64_t rows;      /* per producer */
    uint64_t seq_start; /* first row number */
    double rate;        /* rows/s over all producers; 0 = as fast as possible */
    unsigned run_id;    /* 0..4095 */
    int64_t start_ms;
    int64_t step_ms;
    unsigned batch, flush_ms, retry_ms, query_timeout_ms;
    size_t ring_bytes, segment_bytes;
    int stop_timeout_ms;
    bool recover_only;
    int64_t wait_drained_ms;
    char *models[16];
    unsigned nmodels;
    bool status_cycle;
    unsigned bad_every;
    int64_t progress_ms;
    bool check_flush;
    const char *junk_path;
};

static struct opts o = {
    .producers = 2,
    .rows = 1000,
    .run_id = 1,
    .step_ms = 1,
    .stop_timeout_ms = 30000,
};

static struct tg_ledger *ledger;
static _Atomic uint64_t done_rows[TG_LEDGER_MAX_PRODUCERS];
static _Atomic int append_failures;

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* The row the tests expect for producer p, row number i. The test SQL recomputes every
 * column from client_request_id "<run>-<p>-<i>" with the same formulas. */
static void make_row(struct tg_ledger_row *r, unsigned p, uint64_t i)
{
    memset(r, 0, sizeof(*r));
    int64_t ms = o.start_ms + (int64_t)i * o.step_ms;
    for (int k = 0; k < 6; k++)
        r->request_id[k] = (uint8_t)(ms >> (8 * (5 - k)));
    r->request_id[6] = (uint8_t)(0x70 | ((o.run_id >> 8) & 0x0F));
    r->request_id[7] = (uint8_t)o.run_id;
    r->request_id[8] = 0x80;
    r->request_id[9] = (uint8_t)p;
    for (int k = 10; k < 16; k++)
        r->request_id[k] = (uint8_t)(i >> (8 * (15 - k)));
    r->started_at_ms = ms;
    r->finished_at_us = ms * 1000 + 1500000 + (int64_t)(i % 1000);
    r->route = (enum tg_route)(TG_ROUTE_CHAT + i % 5);
    r->status = TG_LEDGER_STATUS_OK;
    if (o.status_cycle)
        r->status = (enum tg_ledger_status)(i % 4);
    r->count_source = i % 2 ? TG_LEDGER_COUNT_ESTIMATED : TG_LEDGER_COUNT_UPSTREAM;
    r->prompt_tokens = 100 + (int64_t)((i * 7 + p * 13) % 1000);
    r->cached_tokens = r->prompt_tokens / 4;
    r->completion_tokens = 20 + (int64_t)((i * 11 + p * 3) % 500);
    r->reasoning_tokens = r->completion_tokens / 5;
    r->upstream_status = 200;
    r->ttfb_ms = 100 + (int32_t)(i % 50);
    r->latency_ms = 1500;
    if (r->status == TG_LEDGER_STATUS_BLOCKED) {
        r->prompt_tokens = r->cached_tokens = r->completion_tokens = r->reasoning_tokens = 0;
        r->upstream_status = 0;
        r->ttfb_ms = -1;
    }
    if (o.bad_every > 0 && i % o.bad_every == o.bad_every - 1)
        r->cached_tokens = r->prompt_tokens + 1; /* violates the CHECK */
    r->total_tokens = r->prompt_tokens + r->completion_tokens;
    if (i % 1000 == 0)
        /* Every COPY escape, a control byte, DEL, UTF-8, and an invalid byte (-> U+FFFD). */
        snprintf(r->user_id, sizeof(r->user_id), "w\t\n\\\r\b\f\v|\xC3\xA9|\x01\x7F|\xFF|%llu",
                 (unsigned long long)i);
    else
        snprintf(r->user_id, sizeof(r->user_id), "u%u-%llu", p, (unsigned long long)(i % 10));
    if (i % 3 != 0)
        snprintf(r->team_id, sizeof(r->team_id), "team-%llu", (unsigned long long)(i % 3));
    snprintf(r->model, sizeof(r->model), "%s", o.nmodels ? o.models[i % o.nmodels] : "gpt-test");
    snprintf(r->upstream_call_id, sizeof(r->upstream_call_id), "call-%u-%u-%llu", o.run_id, p,
             (unsigned long long)i);
    snprintf(r->client_request_id, sizeof(r->client_request_id), "%u-%u-%llu", o.run_id, p,
             (unsigned long long)i);
}

static void *producer(void *arg)
{
    unsigned p = (unsigned)(uintptr_t)arg;
    double period_ns = o.rate > 0 ? 1e9 * o.producers / o.rate : 0;
    struct timespec next;
    clock_gettime(CLOCK_MONOTONIC, &next);
    double carry = 0;
    for (uint64_t n = 0; n < o.rows; n++) {
        struct tg_ledger_row row;
        make_row(&row, p, o.seq_start + n);
        if (tg_ledger_append(ledger, p, &row) != 0)
            atomic_fetch_add(&append_failures, 1);
        atomic_store(&done_rows[p], n + 1);
        if (period_ns > 0) {
            carry += period_ns;
            long add = (long)carry;
            carry -= (double)add;
            next.tv_nsec += add;
            while (next.tv_nsec >= 1000000000) {
                next.tv_sec++;
                next.tv_nsec -= 1000000000;
            }
            while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &next, NULL) == EINTR)
                ;
        }
    }
    return NULL;
}

struct flush_check {
    pthread_mutex_t mu;
    pthread_cond_t cond;
    bool done;
    long long count;
    bool had_conn;
};

static void on_flushed(void *conn, void *arg)
{
    struct flush_check *fc = arg;
    long long count = -1;
    if (conn != NULL) {
        char sql[128];
        snprintf(sql, sizeof(sql),
                 "SELECT count(*) FROM ledger WHERE client_request_id LIKE '%u-%%'", o.run_id);
        PGresult *res = PQexec(conn, sql);
        if (PQresultStatus(res) == PGRES_TUPLES_OK)
            count = atoll(PQgetvalue(res, 0, 0));
        PQclear(res);
    }
    pthread_mutex_lock(&fc->mu);
    fc->done = true;
    fc->count = count;
    fc->had_conn = conn != NULL;
    pthread_cond_signal(&fc->cond);
    pthread_mutex_unlock(&fc->mu);
}

static void print_stats(const char *tag)
{
    struct tg_ledger_stats s;
    tg_ledger_get_stats(ledger, &s);
    printf("%s appended=%llu committed=%llu spooled=%llu replayed=%llu duplicates=%llu "
           "unpriced=%llu torn=%llu overflow=%llu recovered=%llu rejected=%llu invalid=%llu "
           "batches=%llu queue_depth=%llu spool_files=%llu spool_bytes=%llu pg_up=%d\n",
           tag, (unsigned long long)s.appended, (unsigned long long)s.committed,
           (unsigned long long)s.spooled, (unsigned long long)s.replayed,
           (unsigned long long)s.duplicates, (unsigned long long)s.unpriced,
           (unsigned long long)s.torn_records, (unsigned long long)s.overflow,
           (unsigned long long)s.recovered, (unsigned long long)s.rejected,
           (unsigned long long)s.invalid, (unsigned long long)s.batches,
           (unsigned long long)s.queue_depth, (unsigned long long)s.spool_files,
           (unsigned long long)s.spool_bytes, s.pg_up ? 1 : 0);
    fflush(stdout);
}

/* Appends to a spool segment a frame whose checksum is right but whose payload is not a row
 * (record version 0x7F): the ledger must report it, keep its bytes and go on. */
static int append_junk_record(const char *path)
{
    uint8_t payload[TG_LEDGER_ROW_FIXED_BYTES];
    memset(payload, 0xAB, sizeof(payload));
    payload[0] = 0x7F;
    uint8_t frame[sizeof(payload) + TG_LEDGER_FRAME_HEADER_BYTES];
    tg_ledger_frame_write(frame, payload, sizeof(payload));
    FILE *f = fopen(path, "ab");
    if (f == NULL || fwrite(frame, 1, sizeof(frame), f) != sizeof(frame) || fclose(f) != 0) {
        fprintf(stderr, "ledger_driver: cannot append to %s: %s\n", path, strerror(errno));
        return 1;
    }
    return 0;
}

static void usage(void)
{
    fprintf(stderr,
            "usage: ledger_driver --conninfo STR --spool-dir DIR [--producers K] [--rows N]\n"
            "  [--seq-start N] [--rate ROWS_PER_S] [--run-id ID] [--start-ms MS] [--step-ms MS]\n"
            "  [--batch N] [--flush-ms N] [--retry-ms N] [--query-timeout-ms N]\n"
            "  [--ring-bytes N] [--segment-bytes N] [--stop-timeout-ms N] [--models a,b,..]\n"
            "  [--status-cycle] [--bad-every N] [--progress-ms N] [--check-flush]\n"
            "  [--recover-only] [--wait-drained-ms N]\n"
            "       ledger_driver --append-junk-record SPOOL_SEGMENT\n");
    exit(2);
}

static void parse(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"conninfo", 1, 0, 'c'},
        {"spool-dir", 1, 0, 'd'},
        {"producers", 1, 0, 'k'},
        {"rows", 1, 0, 'n'},
        {"seq-start", 1, 0, 'S'},
        {"rate", 1, 0, 'r'},
        {"run-id", 1, 0, 'i'},
        {"start-ms", 1, 0, 's'},
        {"step-ms", 1, 0, 't'},
        {"batch", 1, 0, 'b'},
        {"flush-ms", 1, 0, 'f'},
        {"retry-ms", 1, 0, 'R'},
        {"query-timeout-ms", 1, 0, 'q'},
        {"ring-bytes", 1, 0, 'B'},
        {"segment-bytes", 1, 0, 'G'},
        {"stop-timeout-ms", 1, 0, 'T'},
        {"models", 1, 0, 'm'},
        {"status-cycle", 0, 0, 'C'},
        {"bad-every", 1, 0, 'x'},
        {"progress-ms", 1, 0, 'P'},
        {"check-flush", 0, 0, 'F'},
        {"recover-only", 0, 0, 'O'},
        {"wait-drained-ms", 1, 0, 'W'},
        {"append-junk-record", 1, 0, 'J'},
        {0, 0, 0, 0},
    };
    int c;
    while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        switch (c) {
        case 'c':
            o.conninfo = optarg;
            break;
        case 'd':
            o.spool_dir = optarg;
            break;
        case 'k':
            o.producers = (unsigned)atoi(optarg);
            break;
        case 'n':
            o.rows = strtoull(optarg, NULL, 10);
            break;
        case 'S':
            o.seq_start = strtoull(optarg, NULL, 10);
            break;
        case 'r':
            o.rate = atof(optarg);
            break;
        case 'i':
            o.run_id = (unsigned)atoi(optarg) & 0xFFF;
            break;
        case 's':
            o.start_ms = strtoll(optarg, NULL, 10);
            break;
        case 't':
            o.step_ms = strtoll(optarg, NULL, 10);
            break;
        case 'b':
            o.batch = (unsigned)atoi(optarg);
            break;
        case 'f':
            o.flush_ms = (unsigned)atoi(optarg);
            break;
        case 'R':
            o.retry_ms = (unsigned)atoi(optarg);
            break;
        case 'q':
            o.query_timeout_ms = (unsigned)atoi(optarg);
            break;
        case 'B':
            o.ring_bytes = strtoull(optarg, NULL, 10);
            break;
        case 'G':
            o.segment_bytes = strtoull(optarg, NULL, 10);
            break;
        case 'T':
            o.stop_timeout_ms = atoi(optarg);
            break;
        case 'm':
            for (char *tok = strtok(optarg, ","); tok && o.nmodels < 16; tok = strtok(NULL, ","))
                o.models[o.nmodels++] = tok;
            break;
        case 'C':
            o.status_cycle = true;
            break;
        case 'x':
            o.bad_every = (unsigned)atoi(optarg);
            break;
        case 'P':
            o.progress_ms = strtoll(optarg, NULL, 10);
            break;
        case 'F':
            o.check_flush = true;
            break;
        case 'O':
            o.recover_only = true;
            break;
        case 'W':
            o.wait_drained_ms = strtoll(optarg, NULL, 10);
            break;
        case 'J':
            o.junk_path = optarg;
            break;
        default:
            usage();
        }
    }
    if (o.junk_path != NULL)
        exit(append_junk_record(o.junk_path));
    if (o.conninfo == NULL || o.spool_dir == NULL || o.producers == 0 ||
        o.producers > TG_LEDGER_MAX_PRODUCERS)
        usage();
    if (o.start_ms == 0)
        o.start_ms = now_ms();
}

int main(int argc, char **argv)
{
    parse(argc, argv);
    setvbuf(stdout, NULL, _IOLBF, 0);
    struct tg_ledger_config cfg = {
        .conninfo = o.conninfo,
        .spool_dir = o.spool_dir,
        .producers = o.producers,
        .ring_bytes = o.ring_bytes,
        .batch_max_rows = o.batch,
        .flush_interval_ms = o.flush_ms,
        .retry_interval_ms = o.retry_ms,
        .query_timeout_ms = o.query_timeout_ms,
        .spool_segment_bytes = o.segment_bytes,
    };
    char err[512];
    ledger = tg_ledger_create(&cfg, err, sizeof(err));
    if (ledger == NULL) {
        fprintf(stderr, "ledger_driver: %s\n", err);
        return 2;
    }
    print_stats("opened");
    if (tg_ledger_start(ledger) != 0) {
        fprintf(stderr, "ledger_driver: cannot start the ledger thread\n");
        return 1;
    }
    pthread_t threads[TG_LEDGER_MAX_PRODUCERS];
    unsigned nthreads = o.recover_only ? 0 : o.producers;
    for (unsigned p = 0; p < nthreads; p++)
        pthread_create(&threads[p], NULL, producer, (void *)(uintptr_t)p);
    if (o.progress_ms > 0) {
        for (;;) {
            bool all = true;
            for (unsigned p = 0; p < nthreads; p++) {
                uint64_t d = atomic_load(&done_rows[p]);
                printf("progress p=%u n=%llu\n", p, (unsigned long long)d);
                all = all && d == o.rows;
            }
            fflush(stdout);
            if (all)
                break;
            usleep((useconds_t)o.progress_ms * 1000);
        }
    }
    for (unsigned p = 0; p < nthreads; p++)
        pthread_join(threads[p], NULL);
    for (unsigned p = 0; p < nthreads; p++)
        printf("appended producer=%u rows=%llu\n", p, (unsigned long long)o.rows);
    if (o.wait_drained_ms > 0) {
        int64_t deadline = now_ms() + o.wait_drained_ms;
        for (;;) {
            struct tg_ledger_stats s;
            tg_ledger_get_stats(ledger, &s);
            if ((s.queue_depth == 0 && s.spool_files == 0) || now_ms() >= deadline)
                break;
            usleep(20000);
        }
    }
    if (o.check_flush) {
        struct flush_check fc = {.mu = PTHREAD_MUTEX_INITIALIZER, .cond = PTHREAD_COND_INITIALIZER};
        if (tg_ledger_run_after_flush(ledger, on_flushed, &fc) != 0) {
            fprintf(stderr, "ledger_driver: run_after_flush failed\n");
            return 1;
        }
        pthread_mutex_lock(&fc.mu);
        while (!fc.done)
            pthread_cond_wait(&fc.cond, &fc.mu);
        pthread_mutex_unlock(&fc.mu);
        printf("flush conn=%d count=%lld\n", fc.had_conn ? 1 : 0, fc.count);
    }
    tg_ledger_stop(ledger, o.stop_timeout_ms);
    print_stats("stopped");
    tg_ledger_destroy(ledger);
    int failures = atomic_load(&append_failures);
    if (failures > 0 && o.bad_every == 0) {
        fprintf(stderr, "ledger_driver: %d appends failed\n", failures);
        return 1;
    }
    return 0;
}
