/* streams.c: opens many streamed requests at once through a proxy, keeps them open while they
 * run (reading normally or slowly) and samples the proxy's memory from /proc/PID/status. */
#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <fcntl.h>
#include <getopt.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "bench_cli.h"
#include "bench_http.h"

#define MAX_HEADERS 32
#define DONE_MARK   "data: [DONE]"

enum stream_state {
    S_CONNECTING,
    S_WAITING, /* request sent, no response head yet */
    S_STREAMING,
    S_OK,
    S_FAILED,
};

struct run;

struct stream {
    struct run *run;
    struct bufferevent *bev;
    struct event *resume; /* slow reading: re-enables reading */
    enum stream_state state;
    struct tg_bench_resp resp;
    int64_t t_start_us, t_head_us, t_end_us;
    uint64_t events;
    bool saw_done;
    char tail[sizeof(DONE_MARK)]; /* the last bytes of the body, to find the mark across reads */
    size_t tail_len;
    char last; /* last body byte, to count "\n\n" across reads */
};

struct mem {
    long vmrss_kb, vmhwm_kb, anon_kb, file_kb, shmem_kb;
};

struct run {
    struct event_base *base;
    struct event *sampler;
    struct event *deadline;
    struct tg_bench_request rq; /* stream i uses header line rq.rot[i % rq.nrot] */

    struct stream *streams;
    int n;
    int connected_now, open_now, finished;
    int max_connected, max_open;
    int64_t read_pause_ms;
    int rcvbuf;
    int expect_status;

    int pid;
    int64_t sample_ms;
    FILE *samples;
    int64_t t0_us;
    struct mem before, peak, at_peak_open, last;
    int open_at_peak;
    int first_bad_status;
};

static void die(const char *msg)
{
    fprintf(stderr, "streams: %s\n", msg);
    exit(2);
}

/* ---- /proc sampling ------------------------------------------------------------------------ */

static int read_mem(int pid, struct mem *m)
{
    char path[64], line[256];
    snprintf(path, sizeof(path), "/proc/%d/status", pid);
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return -1;
    memset(m, 0, sizeof(*m));
    while (fgets(line, sizeof(line), f) != NULL) {
        long v;
        if (sscanf(line, "VmRSS: %ld", &v) == 1)
            m->vmrss_kb = v;
        else if (sscanf(line, "VmHWM: %ld", &v) == 1)
            m->vmhwm_kb = v;
        else if (sscanf(line, "RssAnon: %ld", &v) == 1)
            m->anon_kb = v;
        else if (sscanf(line, "RssFile: %ld", &v) == 1)
            m->file_kb = v;
        else if (sscanf(line, "RssShmem: %ld", &v) == 1)
            m->shmem_kb = v;
    }
    fclose(f);
    return 0;
}

static void sample(struct run *run)
{
    struct mem m;
    if (run->pid <= 0 || read_mem(run->pid, &m) != 0)
        return;
    run->last = m;
    if (m.vmrss_kb > run->peak.vmrss_kb) {
        run->peak.vmrss_kb = m.vmrss_kb;
        run->at_peak_open = m;
        run->open_at_peak = run->open_now;
    }
    if (m.anon_kb > run->peak.anon_kb)
        run->peak.anon_kb = m.anon_kb;
    if (m.file_kb > run->peak.file_kb)
        run->peak.file_kb = m.file_kb;
    if (m.shmem_kb > run->peak.shmem_kb)
        run->peak.shmem_kb = m.shmem_kb;
    if (m.vmhwm_kb > run->peak.vmhwm_kb)
        run->peak.vmhwm_kb = m.vmhwm_kb;
    if (run->samples != NULL)
        fprintf(run->samples, "%.3f,%d,%d,%ld,%ld,%ld,%ld,%ld\n",
                (double)(tg_bench_mono_us() - run->t0_us) / 1e6, run->connected_now, run->open_now,
                m.vmrss_kb, m.vmhwm_kb, m.anon_kb, m.file_kb, m.shmem_kb);
}

static void on_sample(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    sample(arg);
}

/* ---- streams --------------------------------------------------------------------------------- */

static void finish(struct stream *s, bool ok)
{
    struct run *run = s->run;
    if (s->state == S_OK || s->state == S_FAILED)
        return;
    if (s->state == S_STREAMING)
        run->open_now--;
    if (s->state != S_CONNECTING)
        run->connected_now--;
    s->state = ok ? S_OK : S_FAILED;
    s->t_end_us = tg_bench_mono_us();
    if (s->bev != NULL)
        bufferevent_free(s->bev);
    s->bev = NULL;
    if (s->resume != NULL)
        event_del(s->resume);
    run->finished++;
    if (run->finished == run->n)
        event_base_loopbreak(run->base);
}

static void on_body(void *arg, const char *p, size_t n)
{
    struct stream *s = arg;
    for (size_t i = 0; i < n; i++) {
        if (p[i] == '\n' && s->last == '\n')
            s->events++;
        s->last = p[i];
    }
    /* keep the last sizeof(DONE_MARK)-1 bytes joined with the new ones to find the mark */
    const size_t keep = sizeof(DONE_MARK) - 1;
    char win[2 * sizeof(DONE_MARK)];
    size_t head = n < keep ? n : keep;
    memcpy(win, s->tail, s->tail_len);
    memcpy(win + s->tail_len, p, head);
    if (memmem(win, s->tail_len + head, DONE_MARK, keep) != NULL ||
        memmem(p, n, DONE_MARK, keep) != NULL)
        s->saw_done = true;
    if (n >= keep) {
        memcpy(s->tail, p + n - keep, keep);
        s->tail_len = keep;
    } else {
        size_t total = s->tail_len + n;
        size_t drop = total > keep ? total - keep : 0;
        memmove(s->tail, s->tail + drop, s->tail_len - drop);
        memcpy(s->tail + s->tail_len - drop, p, n);
        s->tail_len = total - drop;
    }
}

static void on_resume(evutil_socket_t fd, short what, void *arg)
{
    struct stream *s = arg;
    (void)fd;
    (void)what;
    if (s->bev != NULL)
        bufferevent_enable(s->bev, EV_READ);
}

static void on_read(struct bufferevent *bev, void *arg)
{
    struct stream *s = arg;
    struct run *run = s->run;
    struct evbuffer *in = bufferevent_get_input(bev);
    while (s->bev != NULL && evbuffer_get_length(in) > 0) {
        struct evbuffer_iovec v;
        if (evbuffer_peek(in, -1, NULL, &v, 1) < 1)
            break;
        size_t used = 0;
        int rc = tg_bench_resp_feed(&s->resp, v.iov_base, v.iov_len, &used);
        evbuffer_drain(in, used);
        if (s->state == S_WAITING && s->resp.is_head_done) {
            s->t_head_us = tg_bench_mono_us();
            bool good =
                run->expect_status ? s->resp.status == run->expect_status : s->resp.status == 200;
            if (!good) {
                if (run->first_bad_status == 0)
                    run->first_bad_status = s->resp.status;
                finish(s, false);
                return;
            }
            s->state = S_STREAMING;
            run->open_now++;
            if (run->open_now > run->max_open)
                run->max_open = run->open_now;
        }
        if (rc == TG_BENCH_RESP_ERROR) {
            finish(s, false);
            return;
        }
        if (rc == TG_BENCH_RESP_DONE) {
            finish(s, s->saw_done);
            return;
        }
    }
    if (s->bev != NULL && run->read_pause_ms > 0) {
        bufferevent_disable(s->bev, EV_READ);
        struct timeval tv = {(time_t)(run->read_pause_ms / 1000),
                             (suseconds_t)(run->read_pause_ms % 1000) * 1000};
        event_add(s->resume, &tv);
    }
}

static void on_event(struct bufferevent *bev, short what, void *arg)
{
    struct stream *s = arg;
    struct run *run = s->run;
    (void)bev;
    if (what & BEV_EVENT_CONNECTED) {
        int fd = bufferevent_getfd(s->bev);
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        s->state = S_WAITING;
        run->connected_now++;
        if (run->connected_now > run->max_connected)
            run->max_connected = run->connected_now;
        return;
    }
    if ((what & BEV_EVENT_EOF) && tg_bench_resp_eof(&s->resp) == TG_BENCH_RESP_DONE) {
        finish(s, s->saw_done);
        return;
    }
    finish(s, false);
}

static void stream_start(struct run *run, struct stream *s, size_t idx)
{
    s->run = run;
    s->resp.on_body = on_body;
    s->resp.body_arg = s;
    tg_bench_resp_init(&s->resp);
    s->state = S_CONNECTING;
    s->t_start_us = tg_bench_mono_us();
    s->resume = event_new(run->base, -1, 0, on_resume, s);
    int fd = socket(run->rq.addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0 || s->resume == NULL)
        die("socket() failed (raise ulimit -n)");
    if (run->rcvbuf > 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &run->rcvbuf, sizeof(run->rcvbuf));
    s->bev = bufferevent_socket_new(run->base, fd, BEV_OPT_CLOSE_ON_FREE);
    if (s->bev == NULL)
        die("bufferevent_socket_new failed");
    bufferevent_setcb(s->bev, on_read, NULL, on_event, s);
    bufferevent_enable(s->bev, EV_READ | EV_WRITE);
    struct evbuffer *out = bufferevent_get_output(s->bev);
    evbuffer_add(out, run->rq.prefix, run->rq.prefix_len);
    if (run->rq.nrot > 0) {
        const char *h = run->rq.rot[idx % run->rq.nrot];
        evbuffer_add(out, h, strlen(h));
        evbuffer_add(out, "\r\n", 2);
    }
    evbuffer_add(out, run->rq.suffix, run->rq.suffix_len);
    if (bufferevent_socket_connect(s->bev, (struct sockaddr *)&run->rq.addr,
                                   (int)run->rq.addr_len) != 0)
        finish(s, false);
}

static void on_deadline(evutil_socket_t fd, short what, void *arg)
{
    struct run *run = arg;
    (void)fd;
    (void)what;
    event_base_loopbreak(run->base);
}

/* ---- set-up and report --------------------------------------------------------------------- */

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

static int64_t pct_of(int64_t *v, size_t n, double pct)
{
    if (n == 0)
        return 0;
    size_t k = (size_t)(pct / 100.0 * (double)n);
    if (k >= n)
        k = n - 1;
    return v[k];
}

static void usage(FILE *f)
{
    fprintf(f, "usage: streams --url http://HOST:PORT/PATH --streams N [options]\n"
               "  --streams N          streamed requests opened at once\n"
               "  --body TEXT | --body-file FILE   (POSTed as application/json)\n"
               "  --header 'Name: value'   (repeatable)\n"
               "  --header-file FILE   one header line each, one per stream round robin\n"
               "  --pid PID            sample this process's /proc/PID/status (VmRSS, VmHWM, ...)\n"
               "  --sample-ms MS       sampling period (default 50)\n"
               "  --samples-file FILE  write every sample as CSV\n"
               "  --read-pause-ms MS   slow reader: after each read, stop reading for MS\n"
               "  --rcvbuf BYTES       SO_RCVBUF of each client socket (small = backpressure)\n"
               "  --expect-status S    (default 200)\n"
               "  --timeout-s S        give up after S seconds (default 120)\n"
               "A stream is ok when its reply is 200, complete and carries data: [DONE].\n");
}

int main(int argc, char **argv)
{
    static struct run run_s;
    struct run *run = &run_s;
    const char *url = NULL, *body = NULL, *body_file = NULL, *hfile = NULL, *samples = NULL;
    const char *headers[MAX_HEADERS];
    int nheaders = 0;
    int64_t timeout_s = 120;
    run->sample_ms = 50;
    enum {
        O_URL = 1,
        O_N,
        O_BODY,
        O_BODYF,
        O_HDR,
        O_HFILE,
        O_PID,
        O_SAMPLE,
        O_SAMPLES,
        O_PAUSE,
        O_RCVBUF,
        O_EXPECT,
        O_TIMEOUT,
        O_HELP
    };
    static const struct option opts[] = {
        {"url", required_argument, NULL, O_URL},
        {"streams", required_argument, NULL, O_N},
        {"body", required_argument, NULL, O_BODY},
        {"body-file", required_argument, NULL, O_BODYF},
        {"header", required_argument, NULL, O_HDR},
        {"header-file", required_argument, NULL, O_HFILE},
        {"pid", required_argument, NULL, O_PID},
        {"sample-ms", required_argument, NULL, O_SAMPLE},
        {"samples-file", required_argument, NULL, O_SAMPLES},
        {"read-pause-ms", required_argument, NULL, O_PAUSE},
        {"rcvbuf", required_argument, NULL, O_RCVBUF},
        {"expect-status", required_argument, NULL, O_EXPECT},
        {"timeout-s", required_argument, NULL, O_TIMEOUT},
        {"help", no_argument, NULL, O_HELP},
        {NULL, 0, NULL, 0},
    };
    int o;
    while ((o = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (o) {
        case O_URL:
            url = optarg;
            break;
        case O_N:
            run->n = atoi(optarg);
            break;
        case O_BODY:
            body = optarg;
            break;
        case O_BODYF:
            body_file = optarg;
            break;
        case O_HDR:
            if (nheaders == MAX_HEADERS)
                die("too many --header");
            headers[nheaders++] = optarg;
            break;
        case O_HFILE:
            hfile = optarg;
            break;
        case O_PID:
            run->pid = atoi(optarg);
            break;
        case O_SAMPLE:
            run->sample_ms = atoll(optarg);
            break;
        case O_SAMPLES:
            samples = optarg;
            break;
        case O_PAUSE:
            run->read_pause_ms = atoll(optarg);
            break;
        case O_RCVBUF:
            run->rcvbuf = atoi(optarg);
            break;
        case O_EXPECT:
            run->expect_status = atoi(optarg);
            break;
        case O_TIMEOUT:
            timeout_s = atoll(optarg);
            break;
        case O_HELP:
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    if (url == NULL || run->n < 1 || run->sample_ms < 1 || timeout_s < 1 ||
        run->read_pause_ms < 0) {
        usage(stderr);
        return 2;
    }
    const char *err;
    if (tg_bench_request_init(&run->rq, url, NULL, body, body_file, headers, nheaders, hfile,
                              &err) != 0) {
        fprintf(stderr, "streams: %s\n", err);
        return 2;
    }

    if (samples != NULL) {
        run->samples = fopen(samples, "w");
        if (run->samples == NULL)
            die("cannot write --samples-file");
        fprintf(run->samples, "t_s,connected,open,vmrss_kb,vmhwm_kb,rss_anon_kb,rss_file_kb,"
                              "rss_shmem_kb\n");
    }
    signal(SIGPIPE, SIG_IGN);
    run->base = event_base_new();
    run->streams = calloc((size_t)run->n, sizeof(*run->streams));
    if (run->base == NULL || run->streams == NULL)
        die("out of memory");
    run->t0_us = tg_bench_mono_us();
    if (run->pid > 0) {
        /* reset the peak (VmHWM) so it tells this run's peak; needs the same user or root */
        char cr[64];
        snprintf(cr, sizeof(cr), "/proc/%d/clear_refs", run->pid);
        int fd = open(cr, O_WRONLY);
        if (fd >= 0) {
            if (write(fd, "5", 1) != 1)
                fprintf(stderr, "streams: could not reset VmHWM of %d\n", run->pid);
            close(fd);
        }
        if (read_mem(run->pid, &run->before) != 0)
            die("cannot read /proc/PID/status of --pid");
        sample(run);
    }
    run->sampler = event_new(run->base, -1, EV_PERSIST, on_sample, run);
    struct timeval stv = {(time_t)(run->sample_ms / 1000),
                          (suseconds_t)(run->sample_ms % 1000) * 1000};
    event_add(run->sampler, &stv);
    run->deadline = event_new(run->base, -1, 0, on_deadline, run);
    struct timeval dtv = {(time_t)timeout_s, 0};
    event_add(run->deadline, &dtv);

    for (int i = 0; i < run->n; i++)
        stream_start(run, &run->streams[i], (size_t)i);
    if (run->finished < run->n)
        event_base_dispatch(run->base);
    sample(run);
    double wall_s = (double)(tg_bench_mono_us() - run->t0_us) / 1e6;

    int ok = 0, failed = 0, unfinished = 0;
    uint64_t events_min = UINT64_MAX, events_sum = 0;
    int64_t *ttfb = calloc((size_t)run->n, sizeof(int64_t));
    int64_t *dur = calloc((size_t)run->n, sizeof(int64_t));
    size_t nt = 0, nd = 0;
    if (ttfb == NULL || dur == NULL)
        die("out of memory");
    for (int i = 0; i < run->n; i++) {
        struct stream *s = &run->streams[i];
        if (s->state == S_OK) {
            ok++;
            dur[nd++] = s->t_end_us - s->t_start_us;
            events_sum += s->events;
            if (s->events < events_min)
                events_min = s->events;
        } else if (s->state == S_FAILED) {
            failed++;
        } else {
            unfinished++;
        }
        if (s->t_head_us > 0)
            ttfb[nt++] = s->t_head_us - s->t_start_us;
    }
    qsort(ttfb, nt, sizeof(int64_t), cmp_i64);
    qsort(dur, nd, sizeof(int64_t), cmp_i64);
    if (ok == 0)
        events_min = 0;
    printf("streams: %d requested to %s: %d ok, %d failed (first bad status %d), %d unfinished; "
           "max %d connected, max %d streaming at once; %.1f s\n",
           run->n, url, ok, failed, run->first_bad_status, unfinished, run->max_connected,
           run->max_open, wall_s);
    printf("  head after p50 %.1f ms, p99 %.1f ms, max %.1f ms; stream length p50 %.2f s, max "
           "%.2f s; events per ok stream min %llu, mean %.1f\n",
           (double)pct_of(ttfb, nt, 50) / 1e3, (double)pct_of(ttfb, nt, 99) / 1e3,
           nt ? (double)ttfb[nt - 1] / 1e3 : 0.0, (double)pct_of(dur, nd, 50) / 1e6,
           nd ? (double)dur[nd - 1] / 1e6 : 0.0, (unsigned long long)events_min,
           ok ? (double)events_sum / ok : 0.0);
    long per_stream_kb = 0;
    if (run->pid > 0) {
        /* memory freed by a finished stream mostly stays in the allocator, so the peak is
         * reached late: divide by the most streams ever open at once */
        if (run->max_open > 0)
            per_stream_kb = (run->peak.vmrss_kb - run->before.vmrss_kb) / run->max_open;
        printf("  pid %d: VmRSS before %.1f MiB, peak %.1f MiB (first reached with %d streams "
               "open; RssAnon %.1f, RssFile %.1f, RssShmem %.1f MiB), VmHWM %.1f MiB, after "
               "%.1f MiB; %ld KiB per stream (peak - before) / max open\n",
               run->pid, run->before.vmrss_kb / 1024.0, run->peak.vmrss_kb / 1024.0,
               run->open_at_peak, run->at_peak_open.anon_kb / 1024.0,
               run->at_peak_open.file_kb / 1024.0, run->at_peak_open.shmem_kb / 1024.0,
               run->peak.vmhwm_kb / 1024.0, run->last.vmrss_kb / 1024.0, per_stream_kb);
    }
    printf("RESULT ok=%d failed=%d unfinished=%d max_connected=%d max_open=%d "
           "ttfb_p50_ms=%.1f ttfb_p99_ms=%.1f dur_p50_s=%.2f rss_before_kb=%ld rss_peak_kb=%ld "
           "open_at_peak=%d anon_at_peak_kb=%ld file_at_peak_kb=%ld shmem_at_peak_kb=%ld "
           "hwm_kb=%ld rss_after_kb=%ld per_stream_kb=%ld\n",
           ok, failed, unfinished, run->max_connected, run->max_open,
           (double)pct_of(ttfb, nt, 50) / 1e3, (double)pct_of(ttfb, nt, 99) / 1e3,
           (double)pct_of(dur, nd, 50) / 1e6, run->before.vmrss_kb, run->peak.vmrss_kb,
           run->open_at_peak, run->at_peak_open.anon_kb, run->at_peak_open.file_kb,
           run->at_peak_open.shmem_kb, run->peak.vmhwm_kb, run->last.vmrss_kb, per_stream_kb);
    fflush(stdout);
    for (int i = 0; i < run->n; i++) {
        if (run->streams[i].bev != NULL)
            bufferevent_free(run->streams[i].bev);
        if (run->streams[i].resume != NULL)
            event_free(run->streams[i].resume);
    }
    if (run->samples != NULL)
        fclose(run->samples);
    tg_bench_request_free(&run->rq);
    free(ttfb);
    free(dur);
    free(run->streams);
    event_free(run->sampler);
    event_free(run->deadline);
    event_base_free(run->base);
    return (ok == run->n) ? 0 : 1;
}
