/* Fuzz target `reply_text`: the text extractor of non-streamed replies on arbitrary bytes.
 * Input: one control byte (route, cut point), then the body. Checks: the text is the same
 * whether the body comes whole, cut in two, or one byte at a time; no piece is empty; the text
 * is never longer than the body (an escape decodes to fewer bytes than it takes). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "meter/reply_text.h"

#define CHECK(c)                                                                                   \
    do {                                                                                           \
        if (!(c))                                                                                  \
            abort();                                                                               \
    } while (0)

static const enum tg_route routes[] = {TG_ROUTE_CHAT, TG_ROUTE_COMPLETIONS, TG_ROUTE_RESPONSES,
                                       TG_ROUTE_MESSAGES, TG_ROUTE_EMBEDDINGS};

struct digest {
    uint64_t len;
    uint64_t hash; /* FNV-1a of the text */
};

static void sink(void *arg, const char *p, size_t n)
{
    struct digest *d = arg;
    CHECK(n > 0);
    for (size_t i = 0; i < n; i++)
        d->hash = (d->hash ^ (uint8_t)p[i]) * 1099511628211u;
    d->len += n;
}

static struct digest run(enum tg_route route, const char *in, size_t len, size_t step)
{
    struct tg_reply_text t;
    struct digest d = {0, 1469598103934665603u};
    tg_reply_text_init(&t, route, sink, &d);
    for (size_t at = 0; at < len; at += step)
        tg_reply_text_feed(&t, in + at, len - at < step ? len - at : step);
    return d;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    enum tg_route route = routes[data[0] % (sizeof(routes) / sizeof(routes[0]))];
    const char *in = (const char *)data + 1;
    size_t len = size - 1;
    struct digest whole = run(route, in, len, len > 0 ? len : 1);
    CHECK(whole.len <= len);
    struct digest bytes = run(route, in, len, 1);
    CHECK(bytes.len == whole.len && bytes.hash == whole.hash);
    size_t cut = len > 0 ? (size_t)(data[0] >> 3) % len : 0;
    struct tg_reply_text t;
    struct digest two = {0, 1469598103934665603u};
    tg_reply_text_init(&t, route, sink, &two);
    tg_reply_text_feed(&t, in, cut);
    tg_reply_text_feed(&t, in + cut, len - cut);
    CHECK(two.len == whole.len && two.hash == whole.hash);
    return 0;
}
