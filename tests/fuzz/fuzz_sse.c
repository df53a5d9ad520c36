/* Fuzz target `sse`: the incremental SSE parser against a whole-buffer reference parser,
 * split-invariance with callback stops, and every event through the meter of each route.
 * Input: one control byte (split point, size limit), then the stream bytes. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "meter/sse.h"
#include "meter/usage.h"

#define CHECK(c)                                                                                   \
    do {                                                                                           \
        if (!(c))                                                                                  \
            abort();                                                                               \
    } while (0)

#define MAX_EVENTS 4096

struct ev {
    size_t name_off, name_len, data_off, data_len; /* into the run's byte pool */
    uint64_t end;
};

static const enum tg_route routes[] = {TG_ROUTE_CHAT, TG_ROUTE_COMPLETIONS, TG_ROUTE_EMBEDDINGS,
                                       TG_ROUTE_RESPONSES, TG_ROUTE_MESSAGES};
#define NROUTES (sizeof(routes) / sizeof(routes[0]))

struct run {
    struct ev ev[MAX_EVENTS];
    size_t n;
    char *pool; /* names and data of all events, back to back */
    size_t pool_len, pool_cap;
    struct tg_stream_meter meters[NROUTES];
    enum tg_ev_kind kinds[MAX_EVENTS][NROUTES];
    uint64_t base;
    size_t buf_len;
    uint64_t total;
    bool in_finish;
    bool stop;
    size_t last_end;
};

static size_t pool_put(struct run *r, const char *p, size_t n)
{
    if (r->pool == NULL || r->pool_len + n > r->pool_cap) {
        size_t cap = r->pool_cap ? r->pool_cap : 256;
        while (cap < r->pool_len + n)
            cap *= 2;
        r->pool = realloc(r->pool, cap);
        CHECK(r->pool != NULL);
        r->pool_cap = cap;
    }
    if (n > 0)
        memcpy(r->pool + r->pool_len, p, n);
    r->pool_len += n;
    return r->pool_len - n;
}

static void record(struct run *r, const char *name, size_t name_len, const char *data,
                   size_t data_len, uint64_t end)
{
    CHECK(r->n < MAX_EVENTS);
    struct ev *e = &r->ev[r->n];
    e->name_off = pool_put(r, name, name_len);
    e->name_len = name_len;
    e->data_off = pool_put(r, data, data_len);
    e->data_len = data_len;
    e->end = end;
    r->n++;
}

static void check_meter(const struct tg_stream_meter *m)
{
    const struct tg_usage *u = &m->usage;
    CHECK(u->prompt_tokens >= 0 && u->completion_tokens >= 0);
    CHECK(u->cached_tokens >= 0 && u->cached_tokens <= u->prompt_tokens);
    CHECK(u->reasoning_tokens >= 0 && u->reasoning_tokens <= u->completion_tokens);
    CHECK(u->total_tokens == u->prompt_tokens + u->completion_tokens);
    CHECK(u->has_usage || (u->prompt_tokens == 0 && u->completion_tokens == 0));
    CHECK(memchr(m->finish_reason, 0, sizeof(m->finish_reason)) != NULL);
    CHECK(memchr(m->chunk_id, 0, sizeof(m->chunk_id)) != NULL);
    CHECK(memchr(m->model, 0, sizeof(m->model)) != NULL);
    CHECK(m->route != TG_ROUTE_EMBEDDINGS || u->completion_tokens == 0);
}

static int on_event(const struct tg_sse_event *ev, void *arg)
{
    struct run *r = arg;
    CHECK(ev->event != NULL && ev->data != NULL);
    if (r->in_finish)
        CHECK(ev->end_offset == 0);
    else
        CHECK(ev->end_offset <= r->buf_len);
    uint64_t end = r->in_finish ? r->total : r->base + ev->end_offset;
    CHECK(r->n == 0 || end > r->ev[r->n - 1].end);
    CHECK(memchr(ev->event, '\n', ev->event_len) == NULL);
    CHECK(memchr(ev->event, '\r', ev->event_len) == NULL);
    CHECK(memchr(ev->data, '\r', ev->data_len) == NULL);
    for (size_t i = 0; i < NROUTES; i++) {
        r->kinds[r->n][i] =
            tg_stream_meter_event(&r->meters[i], ev->event, ev->event_len, ev->data, ev->data_len);
        check_meter(&r->meters[i]);
    }
    record(r, ev->event, ev->event_len, ev->data, ev->data_len, end);
    r->last_end = ev->end_offset;
    return r->stop ? 5 : 0;
}

/* Feeds in[] in pieces ending at cuts[] (then len), resuming after each callback stop. */
static int drive(struct run *r, const char *in, size_t len, const size_t *cuts, size_t ncuts,
                 size_t max, bool stop)
{
    memset(r, 0, sizeof(*r));
    for (size_t i = 0; i < NROUTES; i++)
        tg_stream_meter_init(&r->meters[i], routes[i]);
    r->stop = stop;
    struct tg_sse_parser p;
    memset(&p, 0, sizeof(p));
    p.max_event_bytes = max;
    size_t start = 0;
    int rc = 0;
    for (size_t c = 0; c <= ncuts && rc == 0; c++) {
        size_t end = c < ncuts ? cuts[c] : len;
        const char *buf = in + start;
        size_t blen = end - start;
        for (;;) {
            r->base = (uint64_t)(buf - in);
            r->buf_len = blen;
            r->total = r->base + blen;
            rc = tg_sse_feed(&p, buf, blen, on_event, r);
            if (rc != 5)
                break;
            rc = 0;
            buf += r->last_end;
            blen -= r->last_end;
        }
        start = end;
    }
    if (rc == 0) {
        r->in_finish = true;
        r->total = len;
        do
            rc = tg_sse_finish(&p, on_event, r);
        while (rc == 5);
    }
    CHECK(rc == 0 || rc == TG_SSE_ERR_TOO_BIG);
    tg_sse_cleanup(&p);
    return rc;
}

/* Whole-buffer reference: WHATWG line handling, openai-node dispatch rule, EOF flush. */
static void reference(struct run *r, const char *in, size_t len)
{
    memset(r, 0, sizeof(*r));
    size_t pos = 0;
    if (len >= 3 && memcmp(in, "\xEF\xBB\xBF", 3) == 0)
        pos = 3;
    char *data = malloc(len + 1), *name = malloc(len + 1);
    CHECK(data != NULL && name != NULL);
    size_t data_len = 0, name_len = 0;
    bool has_data = false;
    while (pos < len) {
        size_t e = pos;
        while (e < len && in[e] != '\r' && in[e] != '\n')
            e++;
        size_t term = e == len ? 0 : (in[e] == '\r' && e + 1 < len && in[e + 1] == '\n') ? 2 : 1;
        const char *line = in + pos;
        size_t line_len = e - pos;
        if (line_len == 0) {
            if (has_data || name_len > 0)
                record(r, name, name_len, data, data_len, e + term);
            data_len = name_len = 0;
            has_data = false;
        } else if (line[0] != ':') {
            const char *colon = memchr(line, ':', line_len);
            size_t flen = colon ? (size_t)(colon - line) : line_len;
            const char *v = colon ? colon + 1 : line + line_len;
            size_t vlen = (size_t)(line + line_len - v);
            if (vlen > 0 && v[0] == ' ') {
                v++;
                vlen--;
            }
            if (flen == 4 && memcmp(line, "data", 4) == 0) {
                if (has_data)
                    data[data_len++] = '\n';
                memcpy(data + data_len, v, vlen);
                data_len += vlen;
                has_data = true;
            } else if (flen == 5 && memcmp(line, "event", 5) == 0) {
                memcpy(name, v, vlen);
                name_len = vlen;
            }
        }
        pos = e + term;
    }
    if (has_data || name_len > 0)
        record(r, name, name_len, data, data_len, len);
    free(data);
    free(name);
}

static void same_events(const struct run *a, const struct run *b)
{
    CHECK(a->n == b->n);
    for (size_t i = 0; i < a->n; i++) {
        const struct ev *x = &a->ev[i], *y = &b->ev[i];
        CHECK(x->end == y->end && x->name_len == y->name_len && x->data_len == y->data_len);
        CHECK(memcmp(a->pool + x->name_off, b->pool + y->name_off, x->name_len) == 0);
        CHECK(memcmp(a->pool + x->data_off, b->pool + y->data_off, x->data_len) == 0);
    }
}

static void same_meters(const struct run *a, const struct run *b)
{
    for (size_t i = 0; i < NROUTES; i++) {
        const struct tg_stream_meter *x = &a->meters[i], *y = &b->meters[i];
        CHECK(memcmp(&x->usage, &y->usage, sizeof(x->usage)) == 0);
        CHECK(x->text_bytes == y->text_bytes && x->events == y->events);
        CHECK(strcmp(x->finish_reason, y->finish_reason) == 0);
        CHECK(x->saw_done == y->saw_done && x->saw_error == y->saw_error &&
              x->saw_terminal == y->saw_terminal);
        CHECK(strcmp(x->chunk_id, y->chunk_id) == 0 && strcmp(x->model, y->model) == 0);
    }
    for (size_t e = 0; e < a->n; e++)
        CHECK(memcmp(a->kinds[e], b->kinds[e], sizeof(a->kinds[e])) == 0);
}

static void free_run(struct run *r)
{
    free(r->pool);
    r->pool = NULL;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* at most MAX_EVENTS events fit: the smallest event, "data\n\n", is 6 bytes */
    if (size < 1 || size > 6 * (MAX_EVENTS - 2))
        return 0;
    uint8_t ctl = data[0];
    const char *in = (const char *)data + 1;
    size_t len = size - 1;
    size_t max = (ctl & 1) ? 8 + (size_t)(ctl >> 1) : 0;

    static struct run whole, split, ref;
    int rc = drive(&whole, in, len, NULL, 0, max, false);

    /* two cuts derived from the control byte; stop in the callback at every event */
    size_t cuts[2] = {len * (ctl >> 4) / 16, len * (ctl & 15) / 16};
    if (cuts[0] > cuts[1]) {
        size_t t = cuts[0];
        cuts[0] = cuts[1];
        cuts[1] = t;
    }
    CHECK(drive(&split, in, len, cuts, 2, max, true) == rc);
    same_events(&whole, &split);
    same_meters(&whole, &split);
    free_run(&split);

    if (rc == 0 && max == 0) {
        reference(&ref, in, len);
        same_events(&whole, &ref);
        free_run(&ref);
    }
    free_run(&whole);
    return 0;
}
