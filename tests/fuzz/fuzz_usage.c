/* Fuzz target `usage`: JSON usage mapping, event classification and the incremental body
 * scanner (whole vs split) on arbitrary bytes. Input: one control byte, then the JSON. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "meter/body_scan.h"
#include "meter/usage.h"

#define CHECK(c)                                                                                   \
    do {                                                                                           \
        if (!(c))                                                                                  \
            abort();                                                                               \
    } while (0)

static const enum tg_route routes[] = {
    TG_ROUTE_NONE,      TG_ROUTE_CHAT,     TG_ROUTE_COMPLETIONS, TG_ROUTE_EMBEDDINGS,
    TG_ROUTE_RESPONSES, TG_ROUTE_MESSAGES, TG_ROUTE_MODELS};
#define NROUTES (sizeof(routes) / sizeof(routes[0]))

static const char *const names[] = {"",
                                    "error",
                                    "ping",
                                    "message_start",
                                    "message_delta",
                                    "message_stop",
                                    "content_block_delta",
                                    "response.completed",
                                    "response.failed",
                                    "response.output_text.delta"};

static void check_usage(const struct tg_usage *u, enum tg_route route)
{
    CHECK(u->prompt_tokens >= 0 && u->completion_tokens >= 0);
    CHECK(u->cached_tokens >= 0 && u->cached_tokens <= u->prompt_tokens);
    CHECK(u->reasoning_tokens >= 0 && u->reasoning_tokens <= u->completion_tokens);
    CHECK(u->total_tokens == u->prompt_tokens + u->completion_tokens);
    CHECK(route != TG_ROUTE_EMBEDDINGS || u->completion_tokens == 0);
}

static void text_sink(void *arg, const char *p, size_t n)
{
    CHECK(n > 0);
    volatile char c = p[n - 1]; /* the piece must be readable */
    (void)c;
    *(uint64_t *)arg += n;
}

static void scan(const char *in, size_t len, size_t cut, struct tg_body_scan *s)
{
    tg_body_scan_init(s);
    tg_body_scan_feed(s, in, cut);
    tg_body_scan_feed(s, in + cut, len - cut);
    CHECK(s->usage.raw.len <= TG_BODY_SCAN_MAX_VALUE_BYTES);
    CHECK(s->error.raw.len <= TG_BODY_SCAN_MAX_VALUE_BYTES);
    CHECK(memchr(s->id, 0, sizeof(s->id)) != NULL);
    CHECK(memchr(s->model, 0, sizeof(s->model)) != NULL);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1 || size > (1u << 20))
        return 0;
    uint8_t ctl = data[0];
    const char *in = (const char *)data + 1;
    size_t len = size - 1;

    for (size_t i = 0; i < NROUTES; i++) {
        struct tg_usage u;
        if (tg_usage_from_json(routes[i], in, len, &u) == 0) {
            CHECK(u.has_usage);
            check_usage(&u, routes[i]);
        } else {
            CHECK(!u.has_usage && u.prompt_tokens == 0 && u.total_tokens == 0);
        }
        const char *name = names[(ctl + i) % (sizeof(names) / sizeof(names[0]))];
        struct tg_stream_meter m;
        uint64_t seen = 0;
        tg_stream_meter_init(&m, routes[i]);
        m.on_text = text_sink;
        m.text_arg = &seen;
        enum tg_ev_kind k = tg_stream_meter_event(&m, name, strlen(name), in, len);
        CHECK(k <= TG_EV_INVALID);
        /* a second identical event must not change a completed usage figure's shape */
        (void)tg_stream_meter_event(&m, name, strlen(name), in, len);
        CHECK(seen == m.text_bytes);
        CHECK(m.events == 2 && m.saw_any);
        check_usage(&m.usage, routes[i]);
        CHECK(memchr(m.finish_reason, 0, sizeof(m.finish_reason)) != NULL);
        CHECK(memchr(m.chunk_id, 0, sizeof(m.chunk_id)) != NULL);
        CHECK(memchr(m.model, 0, sizeof(m.model)) != NULL);
    }
    (void)tg_usage_chunk_has_content(in, len);

    static struct tg_body_scan a, b;
    scan(in, len, 0, &a);
    scan(in, len, len * ctl / 256, &b);
    CHECK(tg_body_scan_is_complete(&a) == tg_body_scan_is_complete(&b));
    CHECK(strcmp(a.id, b.id) == 0 && strcmp(a.model, b.model) == 0);
    for (size_t i = 0; i < NROUTES; i++) {
        struct tg_usage ua, ub;
        bool oka = tg_body_scan_usage(&a, routes[i], &ua);
        bool okb = tg_body_scan_usage(&b, routes[i], &ub);
        CHECK(oka == okb && memcmp(&ua, &ub, sizeof(ua)) == 0);
        if (oka)
            check_usage(&ua, routes[i]);
    }
    const char *ea, *eb;
    size_t la, lb;
    bool ha = tg_body_scan_error(&a, &ea, &la), hb = tg_body_scan_error(&b, &eb, &lb);
    CHECK(ha == hb && la == lb && (!ha || memcmp(ea, eb, la) == 0));
    tg_body_scan_cleanup(&a);
    tg_body_scan_cleanup(&b);
    return 0;
}
