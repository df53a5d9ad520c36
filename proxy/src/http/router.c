/* router.c: which handler answers which path (SPEC §3, §5, §7, §8). */
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "core/log.h"
#include "admin/admin_api.h"
#include "admin/static_files.h"
#include "http/ops.h"
#include "http/reply.h"
#include "http/request.h"
#include "http/server.h"
#include "http/worker.h"

struct route_entry {
    const char *path; /* without the optional /v1 prefix */
    enum tg_route route;
    const char *method;
};

static const struct route_entry metered[] = {
    {"/chat/completions", TG_ROUTE_CHAT, "POST"}, {"/completions", TG_ROUTE_COMPLETIONS, "POST"},
    {"/embeddings", TG_ROUTE_EMBEDDINGS, "POST"}, {"/responses", TG_ROUTE_RESPONSES, "POST"},
    {"/messages", TG_ROUTE_MESSAGES, "POST"},     {"/models", TG_ROUTE_MODELS, "GET"},
};

static bool path_is(const struct tg_conn *c, const char *p)
{
    size_t n = strlen(p);
    return c->path_len == n && memcmp(c->path, p, n) == 0;
}

static bool method_is(const struct tg_conn *c, const char *m)
{
    size_t n = strlen(m);
    return c->head.method_len == n && memcmp(c->head.method, m, n) == 0;
}

static void method_not_allowed(struct tg_conn *c, const char *allow)
{
    char msg[160];
    snprintf(msg, sizeof(msg), "Method %.*s is not allowed here; use %s.",
             (int)TG_MIN(c->head.method_len, 16), c->head.method, allow);
    tg_conn_add_header(c, "Allow", allow);
    tg_reply_error(c, 405, msg, "invalid_request_error", "method_not_allowed", NULL);
}

static bool path_has_prefix(const struct tg_conn *c, const char *p)
{
    size_t n = strlen(p);
    return c->path_len >= n && memcmp(c->path, p, n) == 0;
}

static bool passthrough_match(const struct tg_conn *c)
{
    const char *list = tg_app->cfg.passthrough_paths;
    while (*list) {
        size_t n = strcspn(list, ",");
        const char *s = list;
        size_t len = n;
        while (len > 0 && *s == ' ') {
            s++;
            len--;
        }
        while (len > 0 && s[len - 1] == ' ')
            len--;
        if (len > 0 && c->path_len >= len && memcmp(c->path, s, len) == 0)
            return true;
        list += n;
        if (*list == ',')
            list++;
    }
    return false;
}

void tg_router_dispatch(struct tg_conn *c)
{
    /* operations */
    if (path_is(c, "/healthz")) {
        tg_ops_healthz(c);
        return;
    }
    if (path_is(c, "/readyz")) {
        tg_ops_readyz(c);
        return;
    }
    if (path_is(c, "/metrics")) {
        tg_ops_metrics(c);
        return;
    }
    if (path_is(c, "/admin/api") || path_has_prefix(c, "/admin/api/")) {
        tg_admin_dispatch(c);
        return;
    }
    if (path_is(c, "/dashboard") || path_has_prefix(c, "/dashboard/") || path_is(c, "/")) {
        tg_static_dispatch(c);
        return;
    }
    if (path_is(c, "/v1/quota") || path_is(c, "/quota") || path_is(c, "/v1/quota/statement") ||
        path_is(c, "/quota/statement")) {
        if (!method_is(c, "GET")) {
            method_not_allowed(c, "GET");
            return;
        }
        tg_request_start(c, c->path_len >= 10 &&
                                    memcmp(c->path + c->path_len - 10, "/statement", 10) == 0
                                ? TG_ROUTE_STATEMENT
                                : TG_ROUTE_QUOTA);
        return;
    }
    /* the gateway routes, with or without /v1 */
    const char *p = c->path;
    size_t n = c->path_len;
    if (n >= 3 && memcmp(p, "/v1", 3) == 0 && (n == 3 || p[3] == '/')) {
        p += 3;
        n -= 3;
    }
    for (size_t i = 0; i < TG_ARRAY_LEN(metered); i++) {
        size_t rl = strlen(metered[i].path);
        if (n == rl && memcmp(p, metered[i].path, rl) == 0) {
            if (!method_is(c, metered[i].method)) {
                method_not_allowed(c, metered[i].method);
                return;
            }
            tg_request_start(c, metered[i].route);
            return;
        }
    }
    if (tg_app->cfg.passthrough_paths[0] && passthrough_match(c)) {
        tg_request_start(c, TG_ROUTE_NONE);
        return;
    }
    char msg[300];
    snprintf(msg, sizeof(msg), "Unknown path %.*s.", (int)TG_MIN(c->path_len, 200), c->path);
    tg_reply_error(c, 404, msg, "invalid_request_error", "not_found", NULL);
}
