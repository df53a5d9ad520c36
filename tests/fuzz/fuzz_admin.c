/* fuzz_admin.c: the admin API's input parsers on arbitrary bytes. The first byte picks how the
 * rest is split into method / path / query; every parser runs, and each result is checked for
 * the invariants the handlers rely on (NUL-terminated values within bounds, a matched route
 * whose pattern has the parameters found, a price accepted only when it is plain decimal). */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "admin/admin_routes.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(bool ok)
{
    if (!ok)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    static const char *const methods[] = {"GET", "PUT", "POST", "DELETE", "HEAD"};
    const char *method = methods[data[0] % 5];
    const char *p = (const char *)data + 1;
    size_t n = size - 1;
    const char *q = memchr(p, '?', n);
    size_t path_len = q ? (size_t)(q - p) : n;
    const char *query = q ? q + 1 : p + n;
    size_t query_len = q ? n - path_len - 1 : 0;

    struct tg_admin_match m;
    enum tg_admin_match_rc rc = tg_admin_route_match(method, strlen(method), p, path_len, &m);
    if (rc == TG_ADMIN_MATCH_OK || rc == TG_ADMIN_MATCH_BAD_PARAM) {
        check(m.route != NULL && strcmp(m.route->method, method) == 0);
        check(m.nparams >= 1 || rc == TG_ADMIN_MATCH_OK);
        for (int i = 0; i < m.nparams; i++) {
            check(m.params[i].len <= TG_ADMIN_PARAM_MAX);
            check(m.params[i].value[m.params[i].len] == '\0');
            check(strstr(m.route->pattern, m.params[i].name) != NULL);
        }
    }
    if (rc == TG_ADMIN_MATCH_BAD_METHOD)
        check(m.allow[0] != '\0');

    struct tg_admin_query aq;
    char bad[64], err[200];
    if (tg_admin_query_parse(query, query_len, "from to user limit cursor q sort", &aq, bad,
                             sizeof(bad), err, sizeof(err)) == 0) {
        check(aq.n <= TG_ADMIN_MAX_QUERY);
        for (int i = 0; i < aq.n; i++)
            check(aq.items[i].len <= TG_ADMIN_PARAM_MAX &&
                  aq.items[i].value[aq.items[i].len] == '\0');
    } else {
        check(bad[0] != '\0' && err[0] != '\0');
    }

    int64_t v;
    if (tg_admin_parse_int(p, n, -1, INT64_MAX, &v) == 0)
        check(v >= -1);
    if (tg_admin_price_check(p, n) == TG_ADMIN_PRICE_OK) {
        check(n > 0 && p[0] >= '0' && p[0] <= '9' && p[n - 1] >= '0' && p[n - 1] <= '9');
        for (size_t i = 0; i < n; i++)
            check((p[i] >= '0' && p[i] <= '9') || p[i] == '.');
    }
    if (tg_admin_is_uuid(p, n))
        check(n == 36);
    (void)tg_admin_text_ok(p, n, 128);
    return 0;
}
