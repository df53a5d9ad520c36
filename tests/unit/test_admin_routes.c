/* Unit tests for admin/admin_routes.c (route matching, query strings, integers, prices, ids) and
 * for the OpenAPI document: every route of the table is documented with exactly its statuses and
 * query parameters, every documented operation is in the table, and the embedded copy served at
 * /admin/api/openapi.json is the file. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <ctype.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "admin/admin_openapi.h"
#include "admin/admin_routes.h"

static void test_match(void **state)
{
    (void)state;
    static const struct {
        int line;
        const char *method, *path;
        enum tg_admin_match_rc rc;
        enum tg_admin_op op;
        const char *param, *value; /* one expected path parameter */
        const char *allow;
    } rows[] = {
        {__LINE__, "GET", "/admin/api/users", TG_ADMIN_MATCH_OK, TG_ADMIN_USERS_LIST, NULL, NULL,
         NULL},
        {__LINE__, "GET", "/admin/api/users/alice", TG_ADMIN_MATCH_OK, TG_ADMIN_USER_GET, "id",
         "alice", NULL},
        {__LINE__, "GET", "/admin/api/users/a%2Fb%20c", TG_ADMIN_MATCH_OK, TG_ADMIN_USER_GET, "id",
         "a/b c", NULL},
        {__LINE__, "GET", "/admin/api/users/a+b", TG_ADMIN_MATCH_OK, TG_ADMIN_USER_GET, "id", "a+b",
         NULL},
        {__LINE__, "GET", "/admin/api/users/%zz", TG_ADMIN_MATCH_BAD_PARAM, TG_ADMIN_USER_GET, NULL,
         NULL, NULL},
        {__LINE__, "GET", "/admin/api/users/%4", TG_ADMIN_MATCH_BAD_PARAM, TG_ADMIN_USER_GET, NULL,
         NULL, NULL},
        {__LINE__, "PUT", "/admin/api/users/bob/quota", TG_ADMIN_MATCH_OK, TG_ADMIN_USER_QUOTA_PUT,
         "id", "bob", NULL},
        {__LINE__, "POST", "/admin/api/users/bob/keys", TG_ADMIN_MATCH_OK, TG_ADMIN_KEY_CREATE,
         "id", "bob", NULL},
        {__LINE__, "POST", "/admin/api/users/bob/disable", TG_ADMIN_MATCH_OK, TG_ADMIN_USER_DISABLE,
         "id", "bob", NULL},
        {__LINE__, "POST", "/admin/api/users/bob/enable", TG_ADMIN_MATCH_OK, TG_ADMIN_USER_ENABLE,
         "id", "bob", NULL},
        {__LINE__, "PUT", "/admin/api/teams/t1/quota", TG_ADMIN_MATCH_OK, TG_ADMIN_TEAM_QUOTA_PUT,
         "id", "t1", NULL},
        {__LINE__, "GET", "/admin/api/quota/default", TG_ADMIN_MATCH_OK, TG_ADMIN_DEFAULT_QUOTA_GET,
         NULL, NULL, NULL},
        {__LINE__, "PUT", "/admin/api/quota/default", TG_ADMIN_MATCH_OK, TG_ADMIN_DEFAULT_QUOTA_PUT,
         NULL, NULL, NULL},
        {__LINE__, "DELETE", "/admin/api/keys/0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b",
         TG_ADMIN_MATCH_OK, TG_ADMIN_KEY_REVOKE, "key_id", "0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b",
         NULL},
        {__LINE__, "GET", "/admin/api/usage", TG_ADMIN_MATCH_OK, TG_ADMIN_USAGE, NULL, NULL, NULL},
        {__LINE__, "GET", "/admin/api/ledger", TG_ADMIN_MATCH_OK, TG_ADMIN_LEDGER, NULL, NULL,
         NULL},
        {__LINE__, "GET", "/admin/api/ledger.csv", TG_ADMIN_MATCH_OK, TG_ADMIN_LEDGER_CSV, NULL,
         NULL, NULL},
        {__LINE__, "GET", "/admin/api/prices", TG_ADMIN_MATCH_OK, TG_ADMIN_PRICES_LIST, NULL, NULL,
         NULL},
        {__LINE__, "PUT", "/admin/api/prices/gpt-4o", TG_ADMIN_MATCH_OK, TG_ADMIN_PRICE_PUT,
         "model", "gpt-4o", NULL},
        {__LINE__, "PUT", "/admin/api/prices/azure/gpt-4o", TG_ADMIN_MATCH_OK, TG_ADMIN_PRICE_PUT,
         "model", "azure/gpt-4o", NULL},
        {__LINE__, "PUT", "/admin/api/prices/azure%2Fgpt-4o", TG_ADMIN_MATCH_OK, TG_ADMIN_PRICE_PUT,
         "model", "azure/gpt-4o", NULL},
        {__LINE__, "GET", "/admin/api/audit", TG_ADMIN_MATCH_OK, TG_ADMIN_AUDIT, NULL, NULL, NULL},
        {__LINE__, "GET", "/admin/api/events", TG_ADMIN_MATCH_OK, TG_ADMIN_EVENTS, NULL, NULL,
         NULL},
        {__LINE__, "GET", "/admin/api/openapi.json", TG_ADMIN_MATCH_OK, TG_ADMIN_OPENAPI, NULL,
         NULL, NULL},
        /* wrong methods: 405 with the path's methods */
        {__LINE__, "POST", "/admin/api/users", TG_ADMIN_MATCH_BAD_METHOD, 0, NULL, NULL, "GET"},
        {__LINE__, "DELETE", "/admin/api/quota/default", TG_ADMIN_MATCH_BAD_METHOD, 0, NULL, NULL,
         "GET, PUT"},
        {__LINE__, "GET", "/admin/api/users/bob/quota", TG_ADMIN_MATCH_BAD_METHOD, 0, NULL, NULL,
         "PUT"},
        {__LINE__, "GET", "/admin/api/keys/x", TG_ADMIN_MATCH_BAD_METHOD, 0, NULL, NULL, "DELETE"},
        {__LINE__, "get", "/admin/api/users", TG_ADMIN_MATCH_BAD_METHOD, 0, NULL, NULL, "GET"},
        {__LINE__, "HEAD", "/admin/api/prices/x", TG_ADMIN_MATCH_BAD_METHOD, 0, NULL, NULL, "PUT"},
        /* no such path */
        {__LINE__, "GET", "/admin/api", TG_ADMIN_MATCH_NO_PATH, 0, NULL, NULL, NULL},
        {__LINE__, "GET", "/admin/api/", TG_ADMIN_MATCH_NO_PATH, 0, NULL, NULL, NULL},
        {__LINE__, "GET", "/admin/api/users/", TG_ADMIN_MATCH_NO_PATH, 0, NULL, NULL, NULL},
        {__LINE__, "GET", "/admin/api/users//quota", TG_ADMIN_MATCH_NO_PATH, 0, NULL, NULL, NULL},
        {__LINE__, "GET", "/admin/api/users/a/b/c", TG_ADMIN_MATCH_NO_PATH, 0, NULL, NULL, NULL},
        {__LINE__, "GET", "/admin/api/userss", TG_ADMIN_MATCH_NO_PATH, 0, NULL, NULL, NULL},
        {__LINE__, "GET", "/admin/api/ledger.csvx", TG_ADMIN_MATCH_NO_PATH, 0, NULL, NULL, NULL},
        {__LINE__, "PUT", "/admin/api/prices/", TG_ADMIN_MATCH_NO_PATH, 0, NULL, NULL, NULL},
        {__LINE__, "GET", "", TG_ADMIN_MATCH_NO_PATH, 0, NULL, NULL, NULL},
    };
    for (size_t i = 0; i < TG_ARRAY_LEN(rows); i++) {
        struct tg_admin_match m;
        enum tg_admin_match_rc rc = tg_admin_route_match(rows[i].method, strlen(rows[i].method),
                                                         rows[i].path, strlen(rows[i].path), &m);
        if (rc != rows[i].rc)
            fail_msg("line %d: rc %d, want %d", rows[i].line, rc, rows[i].rc);
        if (rc == TG_ADMIN_MATCH_OK || rc == TG_ADMIN_MATCH_BAD_PARAM) {
            if (m.route == NULL || m.route->op != rows[i].op)
                fail_msg("line %d: wrong route", rows[i].line);
        }
        if (rc == TG_ADMIN_MATCH_BAD_PARAM && (m.bad_param == NULL || strcmp(m.bad_param, "id")))
            fail_msg("line %d: bad_param %s", rows[i].line, m.bad_param ? m.bad_param : "(null)");
        if (rows[i].param != NULL) {
            size_t n = 0;
            const char *v = tg_admin_match_param(&m, rows[i].param, &n);
            if (v == NULL || n != strlen(rows[i].value) || memcmp(v, rows[i].value, n) != 0)
                fail_msg("line %d: param %s = %s", rows[i].line, rows[i].param, v ? v : "(null)");
        }
        if (rows[i].allow != NULL && strcmp(m.allow, rows[i].allow) != 0)
            fail_msg("line %d: allow '%s', want '%s'", rows[i].line, m.allow, rows[i].allow);
    }
}

static void test_match_long_param(void **state)
{
    (void)state;
    char path[2000];
    int n = snprintf(path, sizeof(path), "/admin/api/users/");
    memset(path + n, 'x', TG_ADMIN_PARAM_MAX);
    path[n + TG_ADMIN_PARAM_MAX] = '\0';
    struct tg_admin_match m;
    assert_int_equal(tg_admin_route_match("GET", 3, path, strlen(path), &m), TG_ADMIN_MATCH_OK);
    path[n + TG_ADMIN_PARAM_MAX] = 'x';
    path[n + TG_ADMIN_PARAM_MAX + 1] = '\0';
    assert_int_equal(tg_admin_route_match("GET", 3, path, strlen(path), &m),
                     TG_ADMIN_MATCH_BAD_PARAM);
    assert_string_equal(m.bad_param, "id");
}

static void test_query(void **state)
{
    (void)state;
    static const struct {
        int line;
        const char *query, *allowed;
        int rc;
        const char *bad;          /* the offending name on error */
        const char *name, *value; /* one expected value (NULL value: absent) */
    } rows[] = {
        {__LINE__, "", "a b", 0, NULL, "a", NULL},
        {__LINE__, "a=1", "a b", 0, NULL, "a", "1"},
        {__LINE__, "a=1&b=x%20y", "a b", 0, NULL, "b", "x y"},
        {__LINE__, "a=1+2", "a", 0, NULL, "a", "1 2"},
        {__LINE__, "a=%2B", "a", 0, NULL, "a", "+"},
        {__LINE__, "a=", "a", 0, NULL, "a", NULL},
        {__LINE__, "a", "a", 0, NULL, "a", NULL},
        {__LINE__, "&&a=3&", "a", 0, NULL, "a", "3"},
        {__LINE__, "q=%C3%A9t%C3%A9", "q", 0, NULL, "q", "\xc3\xa9t\xc3\xa9"},
        {__LINE__, "c=1", "a b", -1, "c", NULL, NULL},
        {__LINE__, "ab=1", "a b", -1, "ab", NULL, NULL},
        {__LINE__, "a=1&a=2", "a", -1, "a", NULL, NULL},
        {__LINE__, "a=%G1", "a", -1, "a", NULL, NULL},
        {__LINE__, "a=%4", "a", -1, "a", NULL, NULL},
        {__LINE__, "%zz=1", "a", -1, "query", NULL, NULL},
        {__LINE__, "%00a=1", "a", -1, "query", NULL, NULL},
        {__LINE__, "a%0A=1", "a", -1, "query", NULL, NULL},
        {__LINE__, "%FF=1", "a", -1, "query", NULL, NULL},
        {__LINE__, "=1", "a", 0, NULL, "a", NULL},
    };
    for (size_t i = 0; i < TG_ARRAY_LEN(rows); i++) {
        struct tg_admin_query q;
        char bad[64] = "", err[200] = "";
        int rc = tg_admin_query_parse(rows[i].query, strlen(rows[i].query), rows[i].allowed, &q,
                                      bad, sizeof(bad), err, sizeof(err));
        if (rc != rows[i].rc)
            fail_msg("line %d: rc %d (%s)", rows[i].line, rc, err);
        if (rc != 0) {
            if (strcmp(bad, rows[i].bad) != 0 || err[0] == '\0')
                fail_msg("line %d: bad '%s' err '%s'", rows[i].line, bad, err);
            continue;
        }
        const char *v = tg_admin_query_get(&q, rows[i].name);
        if ((v == NULL) != (rows[i].value == NULL) || (v && strcmp(v, rows[i].value) != 0))
            fail_msg("line %d: %s = %s", rows[i].line, rows[i].name, v ? v : "(null)");
    }
    /* a value longer than TG_ADMIN_PARAM_MAX is refused, not cut */
    char long_q[TG_ADMIN_PARAM_MAX + 8];
    memcpy(long_q, "a=", 2);
    memset(long_q + 2, 'x', TG_ADMIN_PARAM_MAX + 1);
    long_q[TG_ADMIN_PARAM_MAX + 3] = '\0';
    struct tg_admin_query q;
    char bad[64], err[200];
    assert_int_equal(
        tg_admin_query_parse(long_q, strlen(long_q), "a", &q, bad, sizeof(bad), err, sizeof(err)),
        -1);
    assert_string_equal(bad, "a");
}

static void test_parse_int(void **state)
{
    (void)state;
    static const struct {
        int line;
        const char *s;
        int64_t min, max;
        int rc;
        int64_t v;
    } rows[] = {
        {__LINE__, "0", 0, 10, 0, 0},
        {__LINE__, "10", 0, 10, 0, 10},
        {__LINE__, "11", 0, 10, -1, 0},
        {__LINE__, "-1", -1, 10, 0, -1},
        {__LINE__, "-2", -1, 10, -1, 0},
        {__LINE__, "-", -1, 10, -1, 0},
        {__LINE__, "", 0, 10, -1, 0},
        {__LINE__, "1.0", 0, 10, -1, 0},
        {__LINE__, "1e3", 0, 10000, -1, 0},
        {__LINE__, " 1", 0, 10, -1, 0},
        {__LINE__, "+1", 0, 10, -1, 0},
        {__LINE__, "0x10", 0, 100, -1, 0},
        {__LINE__, "9223372036854775807", 0, INT64_MAX, 0, INT64_MAX},
        {__LINE__, "9223372036854775808", 0, INT64_MAX, -1, 0},
        {__LINE__, "99999999999999999999", 0, INT64_MAX, -1, 0},
        {__LINE__, "007", 0, 10, 0, 7},
    };
    for (size_t i = 0; i < TG_ARRAY_LEN(rows); i++) {
        int64_t v = 0;
        int rc = tg_admin_parse_int(rows[i].s, strlen(rows[i].s), rows[i].min, rows[i].max, &v);
        if (rc != rows[i].rc || (rc == 0 && v != rows[i].v))
            fail_msg("line %d: rc %d v %lld", rows[i].line, rc, (long long)v);
    }
}

static void test_price(void **state)
{
    (void)state;
    static const struct {
        int line;
        const char *s;
        enum tg_admin_price_rc rc;
    } rows[] = {
        {__LINE__, "0", TG_ADMIN_PRICE_OK},
        {__LINE__, "2.50", TG_ADMIN_PRICE_OK},
        {__LINE__, "10", TG_ADMIN_PRICE_OK},
        {__LINE__, "0.000001", TG_ADMIN_PRICE_OK},
        {__LINE__, "10000", TG_ADMIN_PRICE_OK},
        {__LINE__, "10000.000", TG_ADMIN_PRICE_OK},
        {__LINE__, "0010000", TG_ADMIN_PRICE_OK},
        {__LINE__, "9999.999999999999999999999999", TG_ADMIN_PRICE_OK},
        {__LINE__, "10000.0000001", TG_ADMIN_PRICE_TOO_LARGE},
        {__LINE__, "10001", TG_ADMIN_PRICE_TOO_LARGE},
        {__LINE__, "99999", TG_ADMIN_PRICE_TOO_LARGE},
        {__LINE__, "100000", TG_ADMIN_PRICE_TOO_LARGE},
        {__LINE__, "-1", TG_ADMIN_PRICE_NEGATIVE},
        {__LINE__, "-0.5", TG_ADMIN_PRICE_NEGATIVE},
        {__LINE__, "-", TG_ADMIN_PRICE_SYNTAX},
        {__LINE__, "", TG_ADMIN_PRICE_SYNTAX},
        {__LINE__, ".5", TG_ADMIN_PRICE_SYNTAX},
        {__LINE__, "5.", TG_ADMIN_PRICE_SYNTAX},
        {__LINE__, "1e3", TG_ADMIN_PRICE_SYNTAX},
        {__LINE__, "1E-3", TG_ADMIN_PRICE_SYNTAX},
        {__LINE__, "-1e3", TG_ADMIN_PRICE_SYNTAX},
        {__LINE__, "NaN", TG_ADMIN_PRICE_SYNTAX},
        {__LINE__, "Infinity", TG_ADMIN_PRICE_SYNTAX},
        {__LINE__, " 1", TG_ADMIN_PRICE_SYNTAX},
        {__LINE__, "1 ", TG_ADMIN_PRICE_SYNTAX},
        {__LINE__, "1,5", TG_ADMIN_PRICE_SYNTAX},
        {__LINE__, "+1", TG_ADMIN_PRICE_SYNTAX},
        {__LINE__, "0x10", TG_ADMIN_PRICE_SYNTAX},
        {__LINE__, "1.0000000000000000000000000000001", TG_ADMIN_PRICE_SYNTAX}, /* 31 decimals */
        {__LINE__, "1.000000000000000000000000000001", TG_ADMIN_PRICE_OK},      /* 30 decimals */
    };
    for (size_t i = 0; i < TG_ARRAY_LEN(rows); i++) {
        enum tg_admin_price_rc rc = tg_admin_price_check(rows[i].s, strlen(rows[i].s));
        if (rc != rows[i].rc)
            fail_msg("line %d: '%s' gives %d, want %d", rows[i].line, rows[i].s, rc, rows[i].rc);
    }
}

static void test_ids(void **state)
{
    (void)state;
    assert_true(tg_admin_is_uuid("0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b", 36));
    assert_true(tg_admin_is_uuid("0190A1B2-C3D4-7E5F-8A9B-0C1D2E3F4A5B", 36));
    assert_false(tg_admin_is_uuid("0190a1b2c3d47e5f8a9b0c1d2e3f4a5b", 32));
    assert_false(tg_admin_is_uuid("0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5g", 36));
    assert_false(tg_admin_is_uuid("0190a1b2-c3d4-7e5f-8a9b_0c1d2e3f4a5b", 36));
    static const struct {
        int line;
        const char *s;
        size_t n, max;
        bool ok;
    } rows[] = {
        {__LINE__, "alice", 5, 128, true},
        {__LINE__, "", 0, 128, false},
        {__LINE__, "a b/c", 5, 128, true},
        {__LINE__, "abc", 3, 2, false},
        {__LINE__, "a\nb", 3, 128, false},
        {__LINE__, "a\x7f", 2, 128, false},
        {__LINE__, "a\0b", 3, 128, false},
        {__LINE__, "\xc3\xa9", 2, 128, true},
        {__LINE__, "\xc2\x85", 2, 128, false},     /* C1 control */
        {__LINE__, "\xc3", 1, 128, false},         /* truncated */
        {__LINE__, "\xc0\xaf", 2, 128, false},     /* overlong */
        {__LINE__, "\xed\xa0\x80", 3, 128, false}, /* surrogate */
        {__LINE__, "\xf0\x9f\x98\x80", 4, 128, true},
        {__LINE__, "\xff", 1, 128, false},
    };
    for (size_t i = 0; i < TG_ARRAY_LEN(rows); i++)
        if (tg_admin_text_ok(rows[i].s, rows[i].n, rows[i].max) != rows[i].ok)
            fail_msg("line %d", rows[i].line);
}

/* ---- the OpenAPI document ------------------------------------------------------------------ */

static json_t *load_doc(void)
{
    json_error_t e;
    json_t *doc = json_load_file(TG_OPENAPI_FILE, 0, &e);
    if (doc == NULL)
        fail_msg("%s:%d: %s", TG_OPENAPI_FILE, e.line, e.text);
    return doc;
}

/* Follows a local "$ref" ("#/components/..."). */
static json_t *deref(json_t *doc, json_t *v)
{
    json_t *r = json_object_get(v, "$ref");
    if (!json_is_string(r))
        return v;
    const char *p = json_string_value(r);
    assert_true(strncmp(p, "#/", 2) == 0);
    json_t *cur = doc;
    char seg[128];
    p += 2;
    while (*p) {
        size_t n = strcspn(p, "/");
        assert_true(n < sizeof(seg));
        memcpy(seg, p, n);
        seg[n] = '\0';
        cur = json_object_get(cur, seg);
        if (cur == NULL)
            fail_msg("unresolved $ref %s", json_string_value(r));
        p += n;
        if (*p == '/')
            p++;
    }
    return cur;
}

static bool word_in(const char *list, const char *w)
{
    size_t n = strlen(w);
    for (const char *p = list; *p;) {
        while (*p == ' ')
            p++;
        size_t wl = strcspn(p, " ");
        if (wl == n && wl > 0 && memcmp(p, w, n) == 0)
            return true;
        p += wl;
    }
    return false;
}

static int count_words(const char *list)
{
    int c = 0;
    for (const char *p = list; *p;) {
        while (*p == ' ')
            p++;
        size_t wl = strcspn(p, " ");
        if (wl > 0)
            c++;
        p += wl;
    }
    return c;
}

/* Every parameter `in` of an operation (path-level ones included), into names (space separated). */
static void op_params(json_t *doc, json_t *path_item, json_t *op, const char *in, char *names,
                      size_t cap)
{
    names[0] = '\0';
    json_t *lists[2] = {json_object_get(path_item, "parameters"),
                        json_object_get(op, "parameters")};
    for (int k = 0; k < 2; k++) {
        size_t i;
        json_t *p;
        json_array_foreach(lists[k], i, p)
        {
            json_t *d = deref(doc, p);
            if (strcmp(json_string_value(json_object_get(d, "in")), in) != 0)
                continue;
            size_t l = strlen(names);
            snprintf(names + l, cap - l, "%s%s", l ? " " : "",
                     json_string_value(json_object_get(d, "name")));
        }
    }
}

static void test_openapi_matches_table(void **state)
{
    (void)state;
    json_t *doc = load_doc();
    assert_string_equal(json_string_value(json_object_get(doc, "openapi")), "3.1.0");
    json_t *paths = json_object_get(doc, "paths");
    assert_non_null(paths);
    /* table -> document */
    for (size_t i = 0; i < tg_admin_route_count; i++) {
        const struct tg_admin_route *r = &tg_admin_routes[i];
        json_t *item = json_object_get(paths, r->pattern);
        if (item == NULL)
            fail_msg("route %s %s is not documented", r->method, r->pattern);
        char m[16];
        size_t ml = strlen(r->method);
        for (size_t k = 0; k <= ml; k++)
            m[k] = (char)tolower((unsigned char)r->method[k]);
        json_t *op = json_object_get(item, m);
        if (op == NULL)
            fail_msg("route %s %s is not documented", r->method, r->pattern);
        json_t *resp = json_object_get(op, "responses");
        const char *code;
        json_t *v;
        int ndoc = 0;
        json_object_foreach(resp, code, v)
        {
            if (strcmp(code, "default") == 0)
                continue;
            if (!word_in(r->statuses, code))
                fail_msg("%s %s: documents %s, the table does not", r->method, r->pattern, code);
            ndoc++;
        }
        if (ndoc != count_words(r->statuses))
            fail_msg("%s %s: the table has statuses (%s) the document lacks", r->method, r->pattern,
                     r->statuses);
        char q[512];
        op_params(doc, item, op, "query", q, sizeof(q));
        if (count_words(q) != count_words(r->query))
            fail_msg("%s %s: query parameters '%s' vs table '%s'", r->method, r->pattern, q,
                     r->query);
        for (const char *p = r->query; *p;) {
            while (*p == ' ')
                p++;
            size_t wl = strcspn(p, " ");
            char w[64];
            snprintf(w, sizeof(w), "%.*s", (int)wl, p);
            if (wl > 0 && !word_in(q, w))
                fail_msg("%s %s: query parameter %s is not documented", r->method, r->pattern, w);
            p += wl;
        }
        /* path parameters: the braces of the pattern */
        char pp[256], want[256] = "";
        op_params(doc, item, op, "path", pp, sizeof(pp));
        for (const char *s = strchr(r->pattern, '{'); s; s = strchr(s + 1, '{')) {
            size_t l = strlen(want);
            snprintf(want + l, sizeof(want) - l, "%s%.*s", l ? " " : "",
                     (int)(strchr(s, '}') - s - 1), s + 1);
        }
        assert_string_equal(pp, want);
        bool has_body = json_object_get(op, "requestBody") != NULL;
        if (has_body != r->has_body)
            fail_msg("%s %s: requestBody documented=%d, table=%d", r->method, r->pattern, has_body,
                     r->has_body);
    }
    /* document -> table */
    const char *path;
    json_t *item;
    json_object_foreach(paths, path, item)
    {
        static const char *const methods[] = {"get",   "put",     "post", "delete",
                                              "patch", "options", "head", "trace"};
        for (size_t k = 0; k < TG_ARRAY_LEN(methods); k++) {
            if (json_object_get(item, methods[k]) == NULL)
                continue;
            bool found = false;
            for (size_t i = 0; i < tg_admin_route_count; i++) {
                const struct tg_admin_route *r = &tg_admin_routes[i];
                if (strcmp(r->pattern, path) == 0 && strcasecmp(r->method, methods[k]) == 0)
                    found = true;
            }
            if (!found)
                fail_msg("documented %s %s is not a route", methods[k], path);
        }
    }
    json_decref(doc);
}

static void test_openapi_embedded(void **state)
{
    (void)state;
    FILE *f = fopen(TG_OPENAPI_FILE, "rb");
    assert_non_null(f);
    static char buf[1 << 20];
    size_t n = fread(buf, 1, sizeof(buf), f);
    fclose(f);
    if (n != tg_admin_openapi_json_len || memcmp(buf, tg_admin_openapi_json, n) != 0)
        fail_msg("admin_openapi_doc.c is stale: run proxy/src/admin/gen_openapi.sh");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_match),
        cmocka_unit_test(test_match_long_param),
        cmocka_unit_test(test_query),
        cmocka_unit_test(test_parse_int),
        cmocka_unit_test(test_price),
        cmocka_unit_test(test_ids),
        cmocka_unit_test(test_openapi_matches_table),
        cmocka_unit_test(test_openapi_embedded),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
