/* ledger_bench.c: ledger writer throughput and latency into a real PostgreSQL.
 *
 * K producer threads append rows (realistic sizes, UUIDv7 ids, a priced model) at an offered
 * rate, or as fast as the writer takes them (--rate 0: producers back off while more than
 * --max-queue rows wait). Every --probe-ms a run_after_flush probe measures how long rows
 * appended at that instant take to be committed. Prints one key=value line. */
#include <errno.h>
#include <getopt.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/uuid7.h"
#include "ledger/ledger.h"

static struct {
    const char *conninfo, *spool_dir, *model;
    unsigned producers, batch, flush_ms;
    double rate, seconds;
    uint64_t rows, max_queue;
    int64_t probe_ms;
} o = {.producers = 2, .rows = 500000, .max_queue = 200000, .probe_ms = 50, .model = "gpt-4o-mini"};

static struct tg_ledger *ledger;
static _Atomic uint64_t appended_total;

static int64_t mono_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static int64_t wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static uint64_t queue_depth(void)
{
    struct tg_ledger_stats s;
    tg_ledger_get_stats(ledger, &s);
    return s.queue_depth;
}

static void *producer(void *arg)
{
    unsigned p = (unsigned)(uintptr_t)arg;
    struct tg_uuid7_gen gen;
    tg_uuid7_init_seed(&gen, 1000 + p);
    uint64_t mine = o.rows / o.producers;
    double period_us = o.rate > 0 ? 1e6 * o.producers / o.rate : 0;
    int64_t t0 = mono_us();
    for (uint64_t i = 0; i < mine; i++) {
        if (period_us > 0) {
            int64_t due = t0 + (int64_t)(period_us * (double)i);
            int64_t now = mono_us();
            if (due > now + 200)
                usleep((useconds_t)(due - now));
        } else if (i % 1024 == 0) {
            while (queue_depth() > o.max_queue)
                usleep(500);
        }
        struct tg_ledger_row r;
        memset(&r, 0, sizeof(r));
        r.started_at_ms = tg_uuid7_next(&gen, wall_ms(), r.request_id);
        r.finished_at_us = r.started_at_ms * 1000 + 1234567;
        r.route = TG_ROUTE_CHAT;
        r.status = TG_LEDGER_STATUS_OK;
        r.count_source = TG_LEDGER_COUNT_UPSTREAM;
        r.prompt_tokens = 1000 + (int64_t)(i % 4000);
        r.cached_tokens = r.prompt_tokens / 3;
        r.completion_tokens = 200 + (int64_t)(i % 800);
        r.reasoning_tokens = 0;
        r.total_tokens = r.prompt_tokens + r.completion_tokens;
        r.upstream_status = 200;
        r.ttfb_ms = 350;
        r.latency_ms = 2100;
        snprintf(r.user_id, sizeof(r.user_id), "user-%05llu@example.com",
                 (unsigned long long)(i % 5000));
        snprintf(r.team_id, sizeof(r.team_id), "team-%llu", (unsigned long long)(i % 40));
        snprintf(r.model, sizeof(r.model), "%s", o.model);
        tg_uuid_format(r.request_id, r.upstream_call_id);
        snprintf(r.client_request_id, sizeof(r.client_request_id), "req-%u-%llu", p,
                 (unsigned long long)i);
        if (tg_ledger_append(ledger, p, &r) != 0) {
            fprintf(stderr, "ledger_bench: append refused\n");
            exit(1);
        }
        atomic_fetch_add_explicit(&appended_total, 1, memory_order_relaxed);
    }
    return NULL;
}

/* run_after_flush probes: latency from registration to commit. */
static pthread_mutex_t probe_mu = PTHREAD_MUTEX_INITIALIZER;
static int64_t *probe_lat_us;
static size_t nprobes, capprobes, probes_pending, probes_null;

static void on_probe(void *conn, void *arg)
{
    int64_t t0 = *(int64_t *)arg;
    free(arg);
    pthread_mutex_lock(&probe_mu);
    if (conn == NULL) {
        probes_null++;
    } else if (nprobes < capprobes) {
        probe_lat_us[nprobes++] = mono_us() - t0;
    }
    probes_pending--;
    pthread_mutex_unlock(&probe_mu);
}

static int cmp64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

static double pct(double q)
{
    if (nprobes == 0)
        return 0;
    size_t i = (size_t)(q * (double)(nprobes - 1) + 0.5);
    return (double)probe_lat_us[i] / 1000.0;
}

static void usage(void)
{
    fprintf(stderr,
            "usage: ledger_bench --conninfo STR --spool-dir DIR [--producers K] [--rows N]\n"
            "  [--rate ROWS_PER_S (0 = max)] [--batch N] [--flush-ms N] [--probe-ms N]\n"
            "  [--max-queue N] [--model NAME]\n");
    exit(2);
}

int main(int argc, char **argv)
{
    static const struct option lo[] = {
        {"conninfo", 1, 0, 'c'},
        {"spool-dir", 1, 0, 'd'},
        {"producers", 1, 0, 'k'},
        {"rows", 1, 0, 'n'},
        {"rate", 1, 0, 'r'},
        {"batch", 1, 0, 'b'},
        {"flush-ms", 1, 0, 'f'},
        {"probe-ms", 1, 0, 'p'},
        {"max-queue", 1, 0, 'q'},
        {"model", 1, 0, 'm'},
        {0, 0, 0, 0},
    };
    int c;
    while ((c = getopt_long(argc, argv, "", lo, NULL)) != -1) {
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
        case 'r':
            o.rate = atof(optarg);
            break;
        case 'b':
            o.batch = (unsigned)atoi(optarg);
            break;
        case 'f':
            o.flush_ms = (unsigned)atoi(optarg);
            break;
        case 'p':
            o.probe_ms = atoll(optarg);
            break;
        case 'q':
            o.max_queue = strtoull(optarg, NULL, 10);
            break;
        case 'm':
            o.model = optarg;
            break;
        default:
            usage();
        }
    }
    if (o.conninfo == NULL || o.spool_dir == NULL || o.producers == 0 ||
        o.producers > TG_LEDGER_MAX_PRODUCERS || o.probe_ms <= 0)
        usage();
    struct tg_ledger_config cfg = {.conninfo = o.conninfo,
                                   .spool_dir = o.spool_dir,
                                   .producers = o.producers,
                                   .batch_max_rows = o.batch,
                                   .flush_interval_ms = o.flush_ms};
    char err[512];
    ledger = tg_ledger_create(&cfg, err, sizeof(err));
    if (ledger == NULL) {
        fprintf(stderr, "ledger_bench: %s\n", err);
        return 2;
    }
    if (tg_ledger_start(ledger) != 0)
        return 1;
    /* Wait until PostgreSQL is connected so connection set-up is not measured. */
    for (int i = 0; i < 500; i++) {
        struct tg_ledger_stats s;
        tg_ledger_get_stats(ledger, &s);
        if (s.pg_up)
            break;
        usleep(10000);
    }
    capprobes = 1 << 20;
    probe_lat_us = calloc(capprobes, sizeof(*probe_lat_us));
    pthread_t th[TG_LEDGER_MAX_PRODUCERS];
    int64_t t0 = mono_us();
    for (unsigned p = 0; p < o.producers; p++)
        pthread_create(&th[p], NULL, producer, (void *)(uintptr_t)p);
    uint64_t total = o.rows / o.producers * o.producers;
    uint64_t max_depth = 0;
    int64_t next_probe = mono_us();
    for (;;) {
        struct tg_ledger_stats s;
        tg_ledger_get_stats(ledger, &s);
        if (s.queue_depth > max_depth)
            max_depth = s.queue_depth;
        if (s.committed + s.duplicates + s.rejected >= total)
            break;
        int64_t now = mono_us();
        if (now >= next_probe && atomic_load(&appended_total) < total) {
            int64_t *arg = malloc(sizeof(*arg));
            *arg = now;
            pthread_mutex_lock(&probe_mu);
            probes_pending++;
            pthread_mutex_unlock(&probe_mu);
            if (tg_ledger_run_after_flush(ledger, on_probe, arg) != 0) {
                free(arg);
                pthread_mutex_lock(&probe_mu);
                probes_pending--;
                pthread_mutex_unlock(&probe_mu);
            }
            next_probe += o.probe_ms * 1000;
        }
        usleep(1000);
    }
    int64_t t1 = mono_us();
    for (unsigned p = 0; p < o.producers; p++)
        pthread_join(th[p], NULL);
    for (;;) {
        pthread_mutex_lock(&probe_mu);
        size_t pending = probes_pending;
        pthread_mutex_unlock(&probe_mu);
        if (pending == 0)
            break;
        usleep(1000);
    }
    struct tg_ledger_stats s;
    tg_ledger_get_stats(ledger, &s);
    tg_ledger_stop(ledger, 30000);
    tg_ledger_destroy(ledger);
    qsort(probe_lat_us, nprobes, sizeof(*probe_lat_us), cmp64);
    double secs = (double)(t1 - t0) / 1e6;
    char offered[32] = "max";
    if (o.rate > 0)
        snprintf(offered, sizeof(offered), "%.0f", o.rate);
    printf("batch=%u flush_ms=%u producers=%u offered=%s rows=%llu seconds=%.2f rows_per_s=%.0f "
           "batches=%llu rows_per_batch=%.0f commit_ms_avg=%.2f commit_ms_max=%.2f "
           "latency_ms_p50=%.1f latency_ms_p99=%.1f latency_ms_max=%.1f probes=%zu "
           "max_queue_depth=%llu overflow=%llu spooled=%llu\n",
           cfg.batch_max_rows ? cfg.batch_max_rows : TG_LEDGER_DEFAULT_BATCH_ROWS,
           cfg.flush_interval_ms ? cfg.flush_interval_ms : TG_LEDGER_DEFAULT_FLUSH_MS, o.producers,
           offered, (unsigned long long)total, secs, (double)total / secs,
           (unsigned long long)s.batches, s.batches ? (double)total / (double)s.batches : 0,
           s.batches ? (double)s.commit_us_sum / (double)s.batches / 1000.0 : 0,
           (double)s.commit_us_max / 1000.0, pct(0.5), pct(0.99),
           nprobes ? (double)probe_lat_us[nprobes - 1] / 1000.0 : 0, nprobes,
           (unsigned long long)max_depth, (unsigned long long)s.overflow,
           (unsigned long long)s.spooled);
    free(probe_lat_us);
    return probes_null > 0 ? 1 : 0;
}
