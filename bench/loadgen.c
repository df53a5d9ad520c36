/* loadgen.c: open-loop HTTP/1.1 load generator: requests start at a constant rate whatever the
 * server does, over a set of keep-alive connections, and every request's latency (from the
 * moment it was due, so a stall is not hidden) goes into a microsecond histogram. */
#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
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

#include "bench_cli.h"
#include "bench_http.h"

#define MAX_HEADERS 32

struct lg;

struct conn {
    struct lg *lg;
    struct bufferevent *bev; /* NULL while reconnecting */
    bool is_connected;
    bool is_busy;     /* a request is in flight */
    int64_t sched_us; /* when the request in flight was due */
    int64_t sent_us;  /* when it was written */
    bool is_measured; /* its latency is recorded (due after the warm-up) */
    struct tg_bench_resp resp;
};

struct lg {
    struct event_base *base;
    struct event *tick;
    struct event *stop_timer;
    struct tg_bench_request rq; /* its header lines (rq.rot) used round robin */
    size_t rot_next;

    double rate_per_s;
    int64_t t_start_us;   /* first request due */
    int64_t t_measure_us; /* requests due from here on are recorded */
    int64_t t_end_us;     /* no request is due from here on */
    int64_t timeout_us;   /* after t_end, how long in-flight requests may take */
    uint64_t scheduled;   /* requests made due so far */
    bool is_all_due;      /* every request of the run has been made due */

    /* due requests waiting for a free connection (their due times) */
    int64_t *queue;
    size_t qcap, qhead, qlen;

    struct conn *conns;
    int nconns;
    int *idle; /* stack of idle connected connections */
    int nidle;
    int inflight;

    int expect_status; /* 0 = any 2xx */
    bool is_stopping;

    /* results */
    struct tg_bench_hist *lat; /* from due time */
    struct tg_bench_hist *svc; /* from the write */
    uint64_t ok, errors, bad_status, conn_errors, reconnects, measured_sent;
    int first_bad_status;
    int64_t max_queue_wait_us;
    size_t max_qlen;
};

static void die(const char *msg)
{
    fprintf(stderr, "loadgen: %s\n", msg);
    exit(2);
}

static void conn_open(struct conn *c);
static void dispatch(struct lg *lg);
static void maybe_finish(struct lg *lg);

static void push_idle(struct lg *lg, struct conn *c)
{
    lg->idle[lg->nidle++] = (int)(c - lg->conns);
}

static void send_request(struct conn *c, int64_t due_us)
{
    struct lg *lg = c->lg;
    struct evbuffer *out = bufferevent_get_output(c->bev);
    evbuffer_add(out, lg->rq.prefix, lg->rq.prefix_len);
    if (lg->rq.nrot > 0) {
        const char *h = lg->rq.rot[lg->rot_next];
        lg->rot_next = (lg->rot_next + 1) % lg->rq.nrot;
        evbuffer_add(out, h, strlen(h));
        evbuffer_add(out, "\r\n", 2);
    }
    evbuffer_add(out, lg->rq.suffix, lg->rq.suffix_len);
    c->is_busy = true;
    c->sched_us = due_us;
    c->sent_us = tg_bench_mono_us();
    c->is_measured = due_us >= lg->t_measure_us;
    if (c->is_measured)
        lg->measured_sent++;
    if (c->sent_us - due_us > lg->max_queue_wait_us)
        lg->max_queue_wait_us = c->sent_us - due_us;
    lg->inflight++;
    tg_bench_resp_init(&c->resp);
}

static void dispatch(struct lg *lg)
{
    while (lg->qlen > 0 && lg->nidle > 0) {
        struct conn *c = &lg->conns[lg->idle[--lg->nidle]];
        int64_t due = lg->queue[lg->qhead];
        lg->qhead = (lg->qhead + 1) % lg->qcap;
        lg->qlen--;
        send_request(c, due);
    }
}

static void enqueue(struct lg *lg, int64_t due_us)
{
    if (lg->qlen == lg->qcap)
        die("the target cannot keep up: more than the queue's capacity of requests are due "
            "and no connection is free (raise --connections or lower --rate)");
    lg->queue[(lg->qhead + lg->qlen) % lg->qcap] = due_us;
    lg->qlen++;
    if (lg->qlen > lg->max_qlen)
        lg->max_qlen = lg->qlen;
}

static void request_done(struct conn *c, bool ok, int status)
{
    struct lg *lg = c->lg;
    int64_t now = tg_bench_mono_us();
    c->is_busy = false;
    lg->inflight--;
    if (!c->is_measured)
        return;
    if (!ok) {
        lg->errors++;
        return;
    }
    bool good = lg->expect_status ? status == lg->expect_status : status >= 200 && status < 300;
    if (!good) {
        lg->bad_status++;
        if (lg->first_bad_status == 0)
            lg->first_bad_status = status;
        return;
    }
    lg->ok++;
    tg_bench_hist_record(lg->lat, (uint64_t)(now - c->sched_us));
    tg_bench_hist_record(lg->svc, (uint64_t)(now - c->sent_us));
}

static void conn_drop(struct conn *c)
{
    struct lg *lg = c->lg;
    if (c->is_busy)
        request_done(c, false, 0);
    if (c->is_connected) {
        /* remove from the idle stack if it is there */
        int idx = (int)(c - lg->conns);
        for (int i = 0; i < lg->nidle; i++) {
            if (lg->idle[i] == idx) {
                lg->idle[i] = lg->idle[--lg->nidle];
                break;
            }
        }
    }
    if (c->bev != NULL)
        bufferevent_free(c->bev);
    c->bev = NULL;
    bool was_connected = c->is_connected;
    c->is_connected = false;
    /* a connection that never came up is retried by the next tick, not in a tight loop */
    if (!lg->is_stopping && was_connected) {
        lg->reconnects++;
        conn_open(c);
    }
    maybe_finish(lg);
}

static void on_read(struct bufferevent *bev, void *arg)
{
    struct conn *c = arg;
    struct evbuffer *in = bufferevent_get_input(bev);
    while (evbuffer_get_length(in) > 0) {
        struct evbuffer_iovec v;
        if (evbuffer_peek(in, -1, NULL, &v, 1) < 1)
            break;
        if (!c->is_busy) {
            /* bytes nobody asked for */
            c->lg->conn_errors++;
            conn_drop(c);
            return;
        }
        size_t used = 0;
        int rc = tg_bench_resp_feed(&c->resp, v.iov_base, v.iov_len, &used);
        evbuffer_drain(in, used);
        if (rc == TG_BENCH_RESP_ERROR) {
            c->lg->conn_errors++;
            conn_drop(c);
            return;
        }
        if (rc == TG_BENCH_RESP_DONE) {
            bool close_it = c->resp.should_close;
            request_done(c, true, c->resp.status);
            if (close_it) {
                conn_drop(c);
                return;
            }
            push_idle(c->lg, c);
            dispatch(c->lg);
            maybe_finish(c->lg);
        }
    }
}

static void on_event(struct bufferevent *bev, short what, void *arg)
{
    struct conn *c = arg;
    (void)bev;
    if (what & BEV_EVENT_CONNECTED) {
        int one = 1;
        setsockopt(bufferevent_getfd(c->bev), IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        c->is_connected = true;
        push_idle(c->lg, c);
        dispatch(c->lg);
        return;
    }
    if (what & BEV_EVENT_EOF && c->is_busy && tg_bench_resp_eof(&c->resp) == TG_BENCH_RESP_DONE) {
        request_done(c, true, c->resp.status);
    } else if (c->is_busy || !(what & BEV_EVENT_EOF)) {
        c->lg->conn_errors++;
    }
    conn_drop(c);
}

static void conn_open(struct conn *c)
{
    struct lg *lg = c->lg;
    c->bev = bufferevent_socket_new(lg->base, -1, BEV_OPT_CLOSE_ON_FREE);
    if (c->bev == NULL)
        die("bufferevent_socket_new failed");
    bufferevent_setcb(c->bev, on_read, NULL, on_event, c);
    bufferevent_enable(c->bev, EV_READ | EV_WRITE);
    if (bufferevent_socket_connect(c->bev, (struct sockaddr *)&lg->rq.addr, (int)lg->rq.addr_len) !=
        0) {
        /* an immediate failure (e.g. out of ports): count it and retry on the next tick */
        lg->conn_errors++;
        bufferevent_free(c->bev);
        c->bev = NULL;
    }
}

static void maybe_finish(struct lg *lg)
{
    if (lg->is_all_due && lg->inflight == 0 && lg->qlen == 0)
        event_base_loopbreak(lg->base);
}

static void on_tick(evutil_socket_t fd, short what, void *arg)
{
    struct lg *lg = arg;
    (void)fd;
    (void)what;
    int64_t now = tg_bench_mono_us();
    /* reopen connections whose connect failed at once */
    for (int i = 0; i < lg->nconns; i++)
        if (lg->conns[i].bev == NULL && !lg->is_stopping)
            conn_open(&lg->conns[i]);
    double period_us = 1e6 / lg->rate_per_s;
    for (;;) {
        int64_t due = lg->t_start_us + (int64_t)((double)lg->scheduled * period_us);
        if (due >= lg->t_end_us || due > now)
            break;
        enqueue(lg, due);
        lg->scheduled++;
    }
    dispatch(lg);
    int64_t next = lg->t_start_us + (int64_t)((double)lg->scheduled * period_us);
    if (next < lg->t_end_us) {
        int64_t wait = next - tg_bench_mono_us();
        if (wait < 0)
            wait = 0;
        struct timeval tv = {(time_t)(wait / 1000000), (suseconds_t)(wait % 1000000)};
        event_add(lg->tick, &tv);
    } else {
        lg->is_all_due = true;
        maybe_finish(lg);
    }
}

static void on_stop(evutil_socket_t fd, short what, void *arg)
{
    struct lg *lg = arg;
    (void)fd;
    (void)what;
    lg->is_stopping = true;
    event_base_loopbreak(lg->base);
}

static void usage(FILE *f)
{
    fprintf(f, "usage: loadgen --url http://HOST:PORT/PATH --rate N [options]\n"
               "  --rate N            requests started per second (open loop)\n"
               "  --duration S        measured seconds (default 10)\n"
               "  --warmup S          seconds sent first and not recorded (default 2)\n"
               "  --connections N     keep-alive connections (default 64)\n"
               "  --method M          default POST when a body is given, else GET\n"
               "  --body TEXT | --body-file FILE\n"
               "  --header 'Name: value'   (repeatable)\n"
               "  --header-file FILE  one header line each, used round robin per request\n"
               "  --expect-status S   count other statuses as errors (default: any 2xx)\n"
               "  --timeout-ms T      after the last request is due, how long to wait (default "
               "10000)\n"
               "Prints the latency from each request's due time (and the service time from its\n"
               "write) at p50/p90/p99/p99.9/max in microseconds, then one RESULT line.\n");
}

static void print_row(const char *name, const struct tg_bench_hist *h)
{
    printf("%-8s %8llu %8llu %8llu %8llu %8llu %8llu\n", name,
           (unsigned long long)tg_bench_hist_percentile(h, 50),
           (unsigned long long)tg_bench_hist_percentile(h, 90),
           (unsigned long long)tg_bench_hist_percentile(h, 99),
           (unsigned long long)tg_bench_hist_percentile(h, 99.9), (unsigned long long)h->max_us,
           (unsigned long long)(h->count ? h->sum_us / h->count : 0));
}

int main(int argc, char **argv)
{
    static struct lg lg_s;
    struct lg *lg = &lg_s;
    const char *url = NULL, *method = NULL, *body = NULL, *body_file = NULL, *hfile = NULL;
    const char *headers[MAX_HEADERS];
    int nheaders = 0;
    double duration_s = 10, warmup_s = 2;
    int64_t timeout_ms = 10000;
    lg->nconns = 64;
    enum {
        O_URL = 1,
        O_RATE,
        O_DUR,
        O_WARM,
        O_CONNS,
        O_METHOD,
        O_BODY,
        O_BODYF,
        O_HDR,
        O_HFILE,
        O_EXPECT,
        O_TIMEOUT,
        O_HELP
    };
    static const struct option opts[] = {
        {"url", required_argument, NULL, O_URL},
        {"rate", required_argument, NULL, O_RATE},
        {"duration", required_argument, NULL, O_DUR},
        {"warmup", required_argument, NULL, O_WARM},
        {"connections", required_argument, NULL, O_CONNS},
        {"method", required_argument, NULL, O_METHOD},
        {"body", required_argument, NULL, O_BODY},
        {"body-file", required_argument, NULL, O_BODYF},
        {"header", required_argument, NULL, O_HDR},
        {"header-file", required_argument, NULL, O_HFILE},
        {"expect-status", required_argument, NULL, O_EXPECT},
        {"timeout-ms", required_argument, NULL, O_TIMEOUT},
        {"help", no_argument, NULL, O_HELP},
        {NULL, 0, NULL, 0},
    };
    int o;
    while ((o = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (o) {
        case O_URL:
            url = optarg;
            break;
        case O_RATE:
            lg->rate_per_s = atof(optarg);
            break;
        case O_DUR:
            duration_s = atof(optarg);
            break;
        case O_WARM:
            warmup_s = atof(optarg);
            break;
        case O_CONNS:
            lg->nconns = atoi(optarg);
            break;
        case O_METHOD:
            method = optarg;
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
        case O_EXPECT:
            lg->expect_status = atoi(optarg);
            break;
        case O_TIMEOUT:
            timeout_ms = atoll(optarg);
            break;
        case O_HELP:
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    if (url == NULL || lg->rate_per_s <= 0 || duration_s <= 0 || warmup_s < 0 || lg->nconns < 1 ||
        timeout_ms < 0) {
        usage(stderr);
        return 2;
    }
    const char *err;
    if (tg_bench_request_init(&lg->rq, url, method, body, body_file, headers, nheaders, hfile,
                              &err) != 0) {
        fprintf(stderr, "loadgen: %s\n", err);
        return 2;
    }

    signal(SIGPIPE, SIG_IGN);
    struct event_config *ecfg = event_config_new();
    event_config_set_flag(ecfg, EVENT_BASE_FLAG_PRECISE_TIMER);
    lg->base = event_base_new_with_config(ecfg);
    event_config_free(ecfg);
    if (lg->base == NULL)
        die("event_base_new failed");
    lg->lat = calloc(1, sizeof(*lg->lat));
    lg->svc = calloc(1, sizeof(*lg->svc));
    lg->conns = calloc((size_t)lg->nconns, sizeof(*lg->conns));
    lg->idle = calloc((size_t)lg->nconns, sizeof(int));
    lg->qcap = (size_t)(lg->rate_per_s * 30) + 100000;
    lg->queue = calloc(lg->qcap, sizeof(int64_t));
    if (!lg->lat || !lg->svc || !lg->conns || !lg->idle || !lg->queue)
        die("out of memory");

    /* connect everything first, so connection set-up is not measured */
    for (int i = 0; i < lg->nconns; i++) {
        lg->conns[i].lg = lg;
        conn_open(&lg->conns[i]);
    }
    int64_t connect_deadline = tg_bench_mono_us() + 10 * 1000000;
    while (lg->nidle < lg->nconns && tg_bench_mono_us() < connect_deadline)
        event_base_loop(lg->base, EVLOOP_ONCE);
    if (lg->nidle == 0)
        die("could not connect to the target");
    int connected = lg->nidle;

    lg->t_start_us = tg_bench_mono_us() + 1000;
    lg->t_measure_us = lg->t_start_us + (int64_t)(warmup_s * 1e6);
    lg->t_end_us = lg->t_measure_us + (int64_t)(duration_s * 1e6);
    lg->timeout_us = timeout_ms * 1000;
    lg->tick = event_new(lg->base, -1, 0, on_tick, lg);
    lg->stop_timer = event_new(lg->base, -1, 0, on_stop, lg);
    struct timeval tv0 = {0, 1000};
    event_add(lg->tick, &tv0);
    int64_t hard_stop = lg->t_end_us + lg->timeout_us - tg_bench_mono_us();
    struct timeval tvs = {(time_t)(hard_stop / 1000000), (suseconds_t)(hard_stop % 1000000)};
    event_add(lg->stop_timer, &tvs);
    event_base_dispatch(lg->base);
    lg->is_stopping = true;

    uint64_t unanswered = 0;
    for (int i = 0; i < lg->nconns; i++)
        if (lg->conns[i].is_busy && lg->conns[i].is_measured)
            unanswered++;
    uint64_t queued_never_sent = lg->qlen;
    double achieved = (double)lg->ok / duration_s;
    printf("loadgen: %s %s, target %.0f req/s, %d connections (%d connected at start), "
           "%.1f s warm-up + %.1f s measured\n",
           method, url, lg->rate_per_s, lg->nconns, connected, warmup_s, duration_s);
    printf("  %llu ok (%.1f/s), %llu errors, %llu unexpected status (first %d), %llu unanswered "
           "at the end, %llu never sent, %llu reconnects, max queue %zu, max start delay %lld "
           "us\n",
           (unsigned long long)lg->ok, achieved, (unsigned long long)lg->errors,
           (unsigned long long)lg->bad_status, lg->first_bad_status, (unsigned long long)unanswered,
           (unsigned long long)queued_never_sent, (unsigned long long)lg->reconnects, lg->max_qlen,
           (long long)lg->max_queue_wait_us);
    printf("%-8s %8s %8s %8s %8s %8s %8s   (microseconds)\n", "", "p50", "p90", "p99", "p99.9",
           "max", "mean");
    print_row("latency", lg->lat);
    print_row("service", lg->svc);
    printf("RESULT ok=%llu errors=%llu bad_status=%llu unanswered=%llu rate=%.1f p50_us=%llu "
           "p90_us=%llu p99_us=%llu p999_us=%llu max_us=%llu mean_us=%llu svc_p50_us=%llu "
           "svc_p99_us=%llu max_start_delay_us=%lld\n",
           (unsigned long long)lg->ok, (unsigned long long)lg->errors,
           (unsigned long long)lg->bad_status, (unsigned long long)unanswered, achieved,
           (unsigned long long)tg_bench_hist_percentile(lg->lat, 50),
           (unsigned long long)tg_bench_hist_percentile(lg->lat, 90),
           (unsigned long long)tg_bench_hist_percentile(lg->lat, 99),
           (unsigned long long)tg_bench_hist_percentile(lg->lat, 99.9),
           (unsigned long long)lg->lat->max_us,
           (unsigned long long)(lg->lat->count ? lg->lat->sum_us / lg->lat->count : 0),
           (unsigned long long)tg_bench_hist_percentile(lg->svc, 50),
           (unsigned long long)tg_bench_hist_percentile(lg->svc, 99),
           (long long)lg->max_queue_wait_us);
    fflush(stdout);
    int rc = (lg->errors || lg->bad_status || unanswered || queued_never_sent) ? 1 : 0;
    for (int i = 0; i < lg->nconns; i++)
        if (lg->conns[i].bev != NULL)
            bufferevent_free(lg->conns[i].bev);
    tg_bench_request_free(&lg->rq);
    free(lg->conns);
    free(lg->idle);
    free(lg->queue);
    free(lg->lat);
    free(lg->svc);
    event_free(lg->tick);
    event_free(lg->stop_timer);
    event_base_free(lg->base);
    return rc;
}
