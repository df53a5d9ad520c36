/* admin_routes.c: the admin API's route table and the pure checks of its inputs. */
#include "admin/admin_routes.h"

#include <stdio.h>
#include <string.h>

#define S_READ  "200 400 401 403 503"
#define S_WRITE "200 400 401 403 503"

const struct tg_admin_route tg_admin_routes[] = {
    {"GET", "/admin/api/users", TG_ADMIN_USERS_LIST, false, false, S_READ,
     "q limit offset sort order"},
    {"GET", "/admin/api/users/{id}", TG_ADMIN_USER_GET, false, false, "200 400 401 403 404 503",
     "from to"},
    {"PUT", "/admin/api/users/{id}/quota", TG_ADMIN_USER_QUOTA_PUT, false, true, S_WRITE, ""},
    {"POST", "/admin/api/users/{id}/keys", TG_ADMIN_KEY_CREATE, false, true, "201 400 401 403 503",
     ""},
    {"POST", "/admin/api/users/{id}/disable", TG_ADMIN_USER_DISABLE, false, true, S_WRITE, ""},
    {"POST", "/admin/api/users/{id}/enable", TG_ADMIN_USER_ENABLE, false, true, S_WRITE, ""},
    {"GET", "/admin/api/teams", TG_ADMIN_TEAMS_LIST, false, false, S_READ,
     "q limit offset sort order"},
    {"GET", "/admin/api/teams/{id}", TG_ADMIN_TEAM_GET, false, false, "200 400 401 403 404 503",
     ""},
    {"PUT", "/admin/api/teams/{id}/quota", TG_ADMIN_TEAM_QUOTA_PUT, false, true, S_WRITE, ""},
    {"GET", "/admin/api/quota/default", TG_ADMIN_DEFAULT_QUOTA_GET, false, false, "200 401 403 503",
     ""},
    {"PUT", "/admin/api/quota/default", TG_ADMIN_DEFAULT_QUOTA_PUT, false, true, S_WRITE, ""},
    {"DELETE", "/admin/api/keys/{key_id}", TG_ADMIN_KEY_REVOKE, false, false,
     "200 400 401 403 404 503", ""},
    {"GET", "/admin/api/usage", TG_ADMIN_USAGE, false, false, S_READ,
     "from to group_by sort order limit"},
    {"GET", "/admin/api/ledger", TG_ADMIN_LEDGER, false, false, S_READ,
     "from to user limit cursor"},
    {"GET", "/admin/api/ledger.csv", TG_ADMIN_LEDGER_CSV, false, false, "200 400 401 403 429 503",
     "from to user"},
    {"GET", "/admin/api/prices", TG_ADMIN_PRICES_LIST, false, false, S_READ, "model"},
    {"PUT", "/admin/api/prices/{model}", TG_ADMIN_PRICE_PUT, true, true, "200 201 400 401 403 503",
     ""},
    {"GET", "/admin/api/audit", TG_ADMIN_AUDIT, false, false, S_READ,
     "limit cursor actor action target"},
    {"GET", "/admin/api/events", TG_ADMIN_EVENTS, false, false, "200 401 403", ""},
    {"GET", "/admin/api/openapi.json", TG_ADMIN_OPENAPI, false, false, "200 401 403", ""},
};

const size_t tg_admin_route_count = TG_ARRAY_LEN(tg_admin_routes);

static int hexv(char ch)
{
    if (ch >= '0' && ch <= '9')
        return ch - '0';
    if (ch >= 'a' && ch <= 'f')
        return ch - 'a' + 10;
    if (ch >= 'A' && ch <= 'F')
        return ch - 'A' + 10;
    return -1;
}

/* Percent-decodes s[0..n) into dst[cap] (NUL-terminated); plus_is_space for query strings.
 * Returns the length, -1 for a bad escape, -2 when it does not fit. */
static ssize_t pct_decode(const char *s, size_t n, bool plus_is_space, char *dst, size_t cap)
{
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        char ch = s[i];
        if (ch == '%') {
            if (i + 2 >= n)
                return -1;
            int hi = hexv(s[i + 1]), lo = hexv(s[i + 2]);
            if (hi < 0 || lo < 0)
                return -1;
            ch = (char)(hi * 16 + lo);
            i += 2;
        } else if (ch == '+' && plus_is_space) {
            ch = ' ';
        }
        if (o + 1 >= cap)
            return -2;
        dst[o++] = ch;
    }
    dst[o] = '\0';
    return (ssize_t)o;
}

/* Next '/'-separated segment of [*p, end): sets *seg and *seg_len, and advances past it. */
static bool next_segment(const char **p, const char *end, const char **seg, size_t *seg_len)
{
    if (*p >= end)
        return false;
    if (**p == '/')
        (*p)++;
    const char *s = *p;
    const char *slash = memchr(s, '/', (size_t)(end - s));
    const char *e = slash ? slash : end;
    *seg = s;
    *seg_len = (size_t)(e - s);
    *p = e;
    return true;
}

/* 1 match, 0 no match, -1 bad parameter (m->bad_param set). */
static int match_one(const struct tg_admin_route *r, const char *path, size_t path_len,
                     struct tg_admin_match *m)
{
    const char *pp = r->pattern, *pend = r->pattern + strlen(r->pattern);
    const char *xp = path, *xend = path + path_len;
    const char *ps, *xs;
    size_t pl, xl;
    int np = 0;
    if (path_len == 0 || path[0] != '/')
        return 0;
    for (;;) {
        bool hp = next_segment(&pp, pend, &ps, &pl);
        if (!hp)
            return xp >= xend ? 1 : 0;
        if (xp >= xend)
            return 0;
        bool last = pp >= pend;
        if (pl >= 2 && ps[0] == '{' && ps[pl - 1] == '}') {
            const char *vs = xp + (*xp == '/' ? 1 : 0);
            size_t vl;
            if (last && r->is_tail) {
                vl = (size_t)(xend - vs);
                xp = xend;
            } else {
                if (!next_segment(&xp, xend, &xs, &xl))
                    return 0;
                vs = xs;
                vl = xl;
            }
            if (vl == 0)
                return 0;
            if (np >= TG_ADMIN_MAX_PARAMS)
                return 0;
            size_t nl = TG_MIN(pl - 2, sizeof(m->params[np].name) - 1);
            memcpy(m->params[np].name, ps + 1, nl);
            m->params[np].name[nl] = '\0';
            ssize_t dl =
                pct_decode(vs, vl, false, m->params[np].value, sizeof(m->params[np].value));
            if (dl < 0) {
                /* the route is right; the parameter is not */
                m->params[np].len = 0;
                m->params[np].value[0] = '\0';
                m->nparams = np + 1;
                return -1;
            }
            m->params[np].len = (size_t)dl;
            m->nparams = ++np;
        } else {
            if (!next_segment(&xp, xend, &xs, &xl))
                return 0;
            if (xl != pl || memcmp(xs, ps, pl) != 0)
                return 0;
        }
    }
}

enum tg_admin_match_rc tg_admin_route_match(const char *method, size_t method_len, const char *path,
                                            size_t path_len, struct tg_admin_match *m)
{
    memset(m, 0, sizeof(*m));
    bool path_seen = false;
    size_t alen = 0;
    for (size_t i = 0; i < tg_admin_route_count; i++) {
        const struct tg_admin_route *r = &tg_admin_routes[i];
        struct tg_admin_match tmp;
        memset(&tmp, 0, sizeof(tmp));
        int rc = match_one(r, path, path_len, &tmp);
        if (rc == 0)
            continue;
        bool same_method =
            strlen(r->method) == method_len && memcmp(r->method, method, method_len) == 0;
        if (same_method) {
            char allow[sizeof(m->allow)];
            memcpy(allow, m->allow, sizeof(allow));
            *m = tmp;
            memcpy(m->allow, allow, sizeof(allow));
            m->route = r;
            if (rc < 0) {
                m->bad_param = m->params[m->nparams - 1].name;
                return TG_ADMIN_MATCH_BAD_PARAM;
            }
            return TG_ADMIN_MATCH_OK;
        }
        path_seen = true;
        size_t ml = strlen(r->method);
        if (strstr(m->allow, r->method) == NULL && alen + ml + 3 < sizeof(m->allow)) {
            if (alen > 0) {
                memcpy(m->allow + alen, ", ", 2);
                alen += 2;
            }
            memcpy(m->allow + alen, r->method, ml);
            alen += ml;
            m->allow[alen] = '\0';
        }
    }
    if (path_seen)
        return TG_ADMIN_MATCH_BAD_METHOD;
    return TG_ADMIN_MATCH_NO_PATH;
}

const char *tg_admin_match_param(const struct tg_admin_match *m, const char *name, size_t *len)
{
    for (int i = 0; i < m->nparams; i++) {
        if (strcmp(m->params[i].name, name) == 0) {
            if (len != NULL)
                *len = m->params[i].len;
            return m->params[i].value;
        }
    }
    return NULL;
}

/* True when `name` (n bytes) is one of the space-separated words of `list`. */
static bool word_in(const char *list, const char *name, size_t n)
{
    const char *p = list;
    while (*p) {
        while (*p == ' ')
            p++;
        size_t wl = strcspn(p, " ");
        if (wl == n && wl > 0 && memcmp(p, name, n) == 0)
            return true;
        p += wl;
    }
    return false;
}

int tg_admin_query_parse(const char *query, size_t len, const char *allowed,
                         struct tg_admin_query *q, char *bad, size_t badcap, char *err,
                         size_t errlen)
{
    memset(q, 0, sizeof(*q));
    const char *p = query, *end = query + len;
    while (p < end) {
        const char *amp = memchr(p, '&', (size_t)(end - p));
        const char *pe = amp ? amp : end;
        const char *eq = memchr(p, '=', (size_t)(pe - p));
        const char *ke = eq ? eq : pe;
        const char *vs = eq ? eq + 1 : pe;
        if (ke > p) {
            char name[64];
            ssize_t nl = pct_decode(p, (size_t)(ke - p), true, name, sizeof(name));
            if (nl < 0) {
                snprintf(bad, badcap, "%s", "query");
                snprintf(err, errlen, "The query string has a malformed parameter name.");
                return -1;
            }
            if (nl == 0 || !tg_admin_text_ok(name, (size_t)nl, sizeof(name) - 1)) {
                snprintf(bad, badcap, "%s", "query");
                snprintf(err, errlen, "The query string has a malformed parameter name.");
                return -1;
            }
            if (!word_in(allowed, name, (size_t)nl)) {
                snprintf(bad, badcap, "%.*s", (int)TG_MIN((size_t)nl, 60), name);
                snprintf(err, errlen, "Unknown query parameter '%.60s'.", name);
                return -1;
            }
            for (int i = 0; i < q->n; i++) {
                if (strcmp(q->items[i].name, name) == 0) {
                    snprintf(bad, badcap, "%s", name);
                    snprintf(err, errlen, "Query parameter '%s' is given more than once.", name);
                    return -1;
                }
            }
            if (q->n >= TG_ADMIN_MAX_QUERY) {
                snprintf(bad, badcap, "%s", name);
                snprintf(err, errlen, "Too many query parameters.");
                return -1;
            }
            ssize_t vl = pct_decode(vs, (size_t)(pe - vs), true, q->items[q->n].value,
                                    sizeof(q->items[q->n].value));
            if (vl < 0) {
                snprintf(bad, badcap, "%s", name);
                snprintf(err, errlen,
                         vl == -1 ? "Query parameter '%s' has a malformed %%-escape."
                                  : "Query parameter '%s' is too long.",
                         name);
                return -1;
            }
            snprintf(q->items[q->n].name, sizeof(q->items[q->n].name), "%.31s", name);
            q->items[q->n].len = (size_t)vl;
            q->n++;
        }
        p = amp ? amp + 1 : end;
    }
    return 0;
}

const char *tg_admin_query_get(const struct tg_admin_query *q, const char *name)
{
    for (int i = 0; i < q->n; i++)
        if (strcmp(q->items[i].name, name) == 0)
            return q->items[i].len > 0 ? q->items[i].value : NULL;
    return NULL;
}

int tg_admin_parse_int(const char *s, size_t n, int64_t min, int64_t max, int64_t *out)
{
    size_t i = 0;
    bool neg = false;
    if (n > 0 && s[0] == '-') {
        neg = true;
        i = 1;
    }
    if (i >= n || n - i > 19)
        return -1;
    uint64_t v = 0;
    for (; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        v = v * 10 + (uint64_t)(s[i] - '0');
    }
    if (v > (uint64_t)INT64_MAX)
        return -1;
    int64_t x = neg ? -(int64_t)v : (int64_t)v;
    if (x < min || x > max)
        return -1;
    *out = x;
    return 0;
}

enum tg_admin_price_rc tg_admin_price_check(const char *s, size_t n)
{
    if (n == 0)
        return TG_ADMIN_PRICE_SYNTAX;
    size_t i = 0;
    if (s[0] == '-') {
        /* "-0" is not a price either: refuse any sign, but say "negative" for a number */
        for (size_t k = 1; k < n; k++)
            if ((s[k] < '0' || s[k] > '9') && s[k] != '.')
                return TG_ADMIN_PRICE_SYNTAX;
        return n > 1 ? TG_ADMIN_PRICE_NEGATIVE : TG_ADMIN_PRICE_SYNTAX;
    }
    size_t int_start = i;
    while (i < n && s[i] >= '0' && s[i] <= '9')
        i++;
    size_t int_len = i - int_start;
    if (int_len == 0)
        return TG_ADMIN_PRICE_SYNTAX;
    size_t frac_len = 0;
    bool frac_nonzero = false;
    if (i < n && s[i] == '.') {
        i++;
        size_t fs = i;
        while (i < n && s[i] >= '0' && s[i] <= '9') {
            if (s[i] != '0')
                frac_nonzero = true;
            i++;
        }
        frac_len = i - fs;
        if (frac_len == 0)
            return TG_ADMIN_PRICE_SYNTAX;
    }
    if (i != n || frac_len > TG_ADMIN_PRICE_MAX_DIGITS)
        return TG_ADMIN_PRICE_SYNTAX;
    /* the integer part without leading zeros, compared with TG_ADMIN_PRICE_MAX as text */
    const char *ip = s + int_start;
    while (int_len > 1 && *ip == '0') {
        ip++;
        int_len--;
    }
    char maxs[24];
    int ml = snprintf(maxs, sizeof(maxs), "%d", TG_ADMIN_PRICE_MAX);
    if (int_len > (size_t)ml)
        return TG_ADMIN_PRICE_TOO_LARGE;
    if (int_len == (size_t)ml) {
        int c = memcmp(ip, maxs, (size_t)ml);
        if (c > 0 || (c == 0 && frac_nonzero))
            return TG_ADMIN_PRICE_TOO_LARGE;
    }
    return TG_ADMIN_PRICE_OK;
}

bool tg_admin_is_uuid(const char *s, size_t n)
{
    if (n != 36)
        return false;
    for (size_t i = 0; i < n; i++) {
        if (i == 8 || i == 13 || i == 18 || i == 23) {
            if (s[i] != '-')
                return false;
        } else if (hexv(s[i]) < 0) {
            return false;
        }
    }
    return true;
}

bool tg_admin_text_ok(const char *s, size_t n, size_t max)
{
    if (n == 0 || n > max)
        return false;
    const unsigned char *p = (const unsigned char *)s;
    size_t i = 0;
    while (i < n) {
        unsigned c = p[i];
        if (c < 0x80) {
            if (c < 0x20 || c == 0x7f)
                return false;
            i++;
            continue;
        }
        size_t len;
        uint32_t cp;
        if (c >= 0xc2 && c <= 0xdf) {
            len = 2;
            cp = c & 0x1f;
        } else if (c >= 0xe0 && c <= 0xef) {
            len = 3;
            cp = c & 0x0f;
        } else if (c >= 0xf0 && c <= 0xf4) {
            len = 4;
            cp = c & 0x07;
        } else {
            return false;
        }
        if (i + len > n)
            return false;
        for (size_t k = 1; k < len; k++) {
            if ((p[i + k] & 0xc0) != 0x80)
                return false;
            cp = (cp << 6) | (p[i + k] & 0x3f);
        }
        if ((len == 3 && cp < 0x800) || (len == 4 && (cp < 0x10000 || cp > 0x10ffff)) ||
            (cp >= 0xd800 && cp <= 0xdfff) || (cp >= 0x80 && cp <= 0x9f))
            return false;
        i += len;
    }
    return true;
}
