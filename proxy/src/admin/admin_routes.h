/* admin_routes.h: the admin API's route table (the single source for dispatch, 405 answers and
 * the OpenAPI check) and pure helpers for its inputs: path matching, query strings, integers,
 * prices. No I/O: linked alone into unit tests. */
#ifndef TG_ADMIN_ROUTES_H
#define TG_ADMIN_ROUTES_H

#include <sys/types.h>

#include "core/common.h"

/* What a route does; admin_api.c maps each to its handler. */
enum tg_admin_op {
    TG_ADMIN_USERS_LIST,
    TG_ADMIN_USER_GET,
    TG_ADMIN_USER_QUOTA_PUT,
    TG_ADMIN_TEAMS_LIST,
    TG_ADMIN_TEAM_GET,
    TG_ADMIN_TEAM_QUOTA_PUT,
    TG_ADMIN_DEFAULT_QUOTA_GET,
    TG_ADMIN_DEFAULT_QUOTA_PUT,
    TG_ADMIN_KEY_CREATE,
    TG_ADMIN_KEY_REVOKE,
    TG_ADMIN_USER_DISABLE,
    TG_ADMIN_USER_ENABLE,
    TG_ADMIN_USAGE,
    TG_ADMIN_LEDGER,
    TG_ADMIN_LEDGER_CSV,
    TG_ADMIN_PRICES_LIST,
    TG_ADMIN_PRICE_PUT,
    TG_ADMIN_AUDIT,
    TG_ADMIN_EVENTS,
    TG_ADMIN_OPENAPI,
    TG_ADMIN_OP_COUNT
};

/* One route. `pattern` segments in braces ("{id}") match one non-empty path segment, which is
 * percent-decoded; with `is_tail` the last one takes the rest of the path, slashes included
 * (model names such as "azure/gpt-4o"). `statuses` lists every status the route answers with,
 * 401/403 included (405 belongs to the path, not to an operation). `query` lists the query
 * parameters it accepts; any other is refused with 400. */
struct tg_admin_route {
    const char *method;
    const char *pattern;
    enum tg_admin_op op;
    bool is_tail;
    bool has_body;        /* reads a JSON body */
    const char *statuses; /* space separated, e.g. "200 400 401 403 503" */
    const char *query;    /* space separated names, "" for none */
};

extern const struct tg_admin_route tg_admin_routes[];
extern const size_t tg_admin_route_count;

#define TG_ADMIN_PARAM_MAX  512 /* decoded bytes of one path or query parameter */
#define TG_ADMIN_MAX_PARAMS 2
#define TG_ADMIN_MAX_QUERY  8

enum tg_admin_match_rc {
    TG_ADMIN_MATCH_OK,         /* m->route is set */
    TG_ADMIN_MATCH_NO_PATH,    /* 404 */
    TG_ADMIN_MATCH_BAD_METHOD, /* 405; m->allow lists the methods of the path */
    TG_ADMIN_MATCH_BAD_PARAM,  /* 400; m->bad_param names the parameter (bad %-escape, too long) */
};

struct tg_admin_match {
    const struct tg_admin_route *route;
    char allow[64];        /* "GET, PUT" */
    const char *bad_param; /* name of the offending parameter (points into params[]) */
    int nparams;
    struct {
        char name[32];
        char value[TG_ADMIN_PARAM_MAX + 1]; /* decoded, NUL-terminated (may hold NUL bytes) */
        size_t len;
    } params[TG_ADMIN_MAX_PARAMS];
};

/* Finds the route for method + path (path without the query). Pure. */
enum tg_admin_match_rc tg_admin_route_match(const char *method, size_t method_len, const char *path,
                                            size_t path_len, struct tg_admin_match *m);

/* Value of path parameter `name` (decoded) or NULL; *len gets its length. */
const char *tg_admin_match_param(const struct tg_admin_match *m, const char *name, size_t *len);

/* A parsed query string: only the names a route accepts, each at most once. */
struct tg_admin_query {
    int n;
    struct {
        char name[32];
        char value[TG_ADMIN_PARAM_MAX + 1];
        size_t len;
    } items[TG_ADMIN_MAX_QUERY];
};

/* Parses a query string (without '?') against `allowed` (space-separated names). '+' is a
 * space and %XX escapes are decoded; an empty value counts as absent. Returns 0, or -1 with
 * the offending parameter's name in bad[badcap] and a sentence in err[errlen] (unknown
 * parameter, given twice, bad escape, too long). Pure. */
TG_MUST_CHECK int tg_admin_query_parse(const char *query, size_t len, const char *allowed,
                                       struct tg_admin_query *q, char *bad, size_t badcap,
                                       char *err, size_t errlen);

/* The decoded value of `name`, or NULL when absent. */
const char *tg_admin_query_get(const struct tg_admin_query *q, const char *name);

/* Parses s as a decimal integer (optional '-' then 1-19 digits, nothing else) within
 * [min, max]. Returns 0, or -1 (syntax or range). */
TG_MUST_CHECK int tg_admin_parse_int(const char *s, size_t n, int64_t min, int64_t max,
                                     int64_t *out);

enum tg_admin_price_rc {
    TG_ADMIN_PRICE_OK,
    TG_ADMIN_PRICE_SYNTAX,    /* not digits[.digits], or too many digits */
    TG_ADMIN_PRICE_NEGATIVE,  /* a leading '-' */
    TG_ADMIN_PRICE_TOO_LARGE, /* above TG_ADMIN_PRICE_MAX */
};

/* The largest price accepted, USD per million tokens (the schema's CHECK). */
#define TG_ADMIN_PRICE_MAX        10000
#define TG_ADMIN_PRICE_MAX_DIGITS 30 /* fraction digits */

/* Checks the text of a price (USD per million tokens): "2.50", "10", "0.000001". The text is
 * never converted to binary floating point: it is checked here and PostgreSQL's numeric parses
 * it. Exponents are refused. Pure. */
enum tg_admin_price_rc tg_admin_price_check(const char *s, size_t n);

/* True when s[0..n) is a canonical UUID text (8-4-4-4-12 hex digits). */
bool tg_admin_is_uuid(const char *s, size_t n);

/* True when s[0..n) is 1..max bytes of valid UTF-8 without control characters (C0, DEL, C1). */
bool tg_admin_text_ok(const char *s, size_t n, size_t max);

#endif
