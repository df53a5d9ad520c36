/* log_bench.c: the cost of one request log line (core/log.c), formatted as log_request() in
 * http/request.c does and written the way an event-loop thread writes it (buffered, flushed in
 * 32 KiB pieces) to /dev/null or a file (appended, as LOG_FILE / a redirected stderr is).
 * Prints nanoseconds of CPU per line (the thread's CPU clock, so the write(2)s count).
 *
 *   log_bench [--lines N] [--text] [--out FILE]
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/log.h"

static void no_arm(void *arg)
{
    (void)arg; /* the benchmark flushes by size only (above 32 KiB the line is written at once) */
}

static int64_t cpu_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* The fields of a metered, non-streamed chat request, as in log_request(). */
static void one_line(int64_t i)
{
    struct tg_logline l;
    tg_logline_begin(&l, TG_LOG_INFO, "request");
    tg_logline_str(&l, "request_id", "019a8a4e-7b1c-7e2a-9c3d-0123456789ab");
    tg_logline_str(&l, "user", "bench-user-42");
    tg_logline_str(&l, "auth", "jwt");
    tg_logline_str(&l, "model", "gpt-4o-mini");
    tg_logline_str(&l, "route", "/v1/chat/completions");
    tg_logline_bool(&l, "stream", false);
    tg_logline_int(&l, "status", 200);
    tg_logline_int(&l, "upstream_status", 200);
    tg_logline_str(&l, "ledger_status", "ok");
    tg_logline_str(&l, "count_source", "upstream");
    tg_logline_int(&l, "prompt_tokens", 27 + i % 5);
    tg_logline_int(&l, "completion_tokens", 16);
    tg_logline_int(&l, "cached_tokens", 0);
    tg_logline_int(&l, "reasoning_tokens", 0);
    tg_logline_int(&l, "total_tokens", 43 + i % 5);
    tg_logline_str(&l, "quota_state", "ok");
    tg_logline_int(&l, "ttfb_ms", 1);
    tg_logline_int(&l, "latency_ms", 2);
    tg_logline_int(&l, "upstream_conn", 1000 + i % 64);
    tg_logline_bool(&l, "upstream_reused", true);
    tg_logline_end(&l);
}

int main(int argc, char **argv)
{
    long lines = 1000000;
    enum tg_log_format fmt = TG_LOGF_JSON;
    const char *out = "/dev/null";
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--lines") == 0 && i + 1 < argc) {
            lines = atol(argv[++i]);
        } else if (strcmp(argv[i], "--out") == 0 && i + 1 < argc) {
            out = argv[++i];
        } else if (strcmp(argv[i], "--text") == 0) {
            fmt = TG_LOGF_TEXT;
        } else {
            fprintf(stderr, "usage: log_bench [--lines N] [--text] [--out FILE]\n");
            return 2;
        }
    }
    if (lines <= 0)
        lines = 1;
    int fd = open(out, O_WRONLY | O_CREAT | O_APPEND, 0644);
    if (fd < 0) {
        perror(out);
        return 1;
    }
    tg_log_setup(TG_LOG_INFO, fmt, fd);
    tg_log_set_thread_buffered(no_arm, NULL);
    for (long i = 0; i < lines / 10; i++) /* warm-up */
        one_line(i);
    int64_t t0 = cpu_ns();
    for (long i = 0; i < lines; i++)
        one_line(i);
    tg_log_flush_thread();
    int64_t t1 = cpu_ns();
    printf("RESULT lines=%ld format=%s ns_per_line=%.1f\n", lines,
           fmt == TG_LOGF_JSON ? "json" : "text", (double)(t1 - t0) / (double)lines);
    close(fd);
    return 0;
}
