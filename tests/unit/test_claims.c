/* Unit tests for auth/claims.c: claim extraction and the exp/nbf/iss/aud/sub checks. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <string.h>

#include "auth/claims.h"

#define NOW 1700000000

/* parse + check of one payload */
struct row {
    int line;
    const char *json;
    const char *issuer, *audience;
    int64_t leeway_s;
    int64_t now;
    enum tg_jwt_status want;
};

static void run_rows(const struct row *rows, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        const struct row *r = &rows[i];
        struct tg_claims_policy pol = {r->issuer, r->audience, r->leeway_s};
        struct tg_claims c;
        enum tg_jwt_status st = tg_claims_parse(r->json, strlen(r->json), &pol, &c);
        if (st == TG_JWT_OK)
            st = tg_claims_check(&c, r->now, &pol);
        if (st != r->want)
            fail_msg("line %d: %s: got %s, want %s", r->line, r->json, tg_jwt_status_name(st),
                     tg_jwt_status_name(r->want));
    }
}

static void test_time_claims(void **state)
{
    (void)state;
    static const struct row rows[] = {
        {__LINE__, "{\"sub\":\"u\"}", NULL, NULL, 0, NOW, TG_JWT_NO_EXP},
        {__LINE__, "{\"sub\":\"u\",\"exp\":null}", NULL, NULL, 0, NOW, TG_JWT_NO_EXP},
        {__LINE__, "{\"sub\":\"u\",\"exp\":1700000001}", NULL, NULL, 0, NOW, TG_JWT_OK},
        {__LINE__, "{\"sub\":\"u\",\"exp\":1700000000}", NULL, NULL, 0, NOW, TG_JWT_EXPIRED},
        {__LINE__, "{\"sub\":\"u\",\"exp\":1699999999}", NULL, NULL, 0, NOW, TG_JWT_EXPIRED},
        /* leeway: accepted within, refused beyond */
        {__LINE__, "{\"sub\":\"u\",\"exp\":1699999970}", NULL, NULL, 60, NOW, TG_JWT_OK},
        {__LINE__, "{\"sub\":\"u\",\"exp\":1699999941}", NULL, NULL, 60, NOW, TG_JWT_OK},
        {__LINE__, "{\"sub\":\"u\",\"exp\":1699999940}", NULL, NULL, 60, NOW, TG_JWT_EXPIRED},
        {__LINE__, "{\"sub\":\"u\",\"exp\":1699999970}", NULL, NULL, -60, NOW, TG_JWT_EXPIRED},
        /* floats and exponents */
        {__LINE__, "{\"sub\":\"u\",\"exp\":1700000001.0}", NULL, NULL, 0, NOW, TG_JWT_OK},
        {__LINE__, "{\"sub\":\"u\",\"exp\":1700000000.9}", NULL, NULL, 0, NOW, TG_JWT_EXPIRED},
        {__LINE__, "{\"sub\":\"u\",\"exp\":1700000001.5}", NULL, NULL, 0, NOW, TG_JWT_OK},
        {__LINE__, "{\"sub\":\"u\",\"exp\":1.8e9}", NULL, NULL, 0, NOW, TG_JWT_OK},
        {__LINE__, "{\"sub\":\"u\",\"exp\":1.6E9}", NULL, NULL, 0, NOW, TG_JWT_EXPIRED},
        {__LINE__, "{\"sub\":\"u\",\"exp\":-1}", NULL, NULL, 0, NOW, TG_JWT_EXPIRED},
        /* wrong types and ranges */
        {__LINE__, "{\"sub\":\"u\",\"exp\":\"1800000000\"}", NULL, NULL, 0, NOW, TG_JWT_BAD_CLAIM},
        {__LINE__, "{\"sub\":\"u\",\"exp\":true}", NULL, NULL, 0, NOW, TG_JWT_BAD_CLAIM},
        {__LINE__, "{\"sub\":\"u\",\"exp\":[1800000000]}", NULL, NULL, 0, NOW, TG_JWT_BAD_CLAIM},
        {__LINE__, "{\"sub\":\"u\",\"exp\":1e300}", NULL, NULL, 0, NOW, TG_JWT_BAD_CLAIM},
        {__LINE__, "{\"sub\":\"u\",\"exp\":-1e300}", NULL, NULL, 0, NOW, TG_JWT_BAD_CLAIM},
        {__LINE__, "{\"sub\":\"u\",\"exp\":9223372036854775807}", NULL, NULL, 0, NOW,
         TG_JWT_BAD_CLAIM},
        {__LINE__, "{\"sub\":\"u\",\"exp\":99999999999999999999}", NULL, NULL, 0, NOW,
         TG_JWT_BAD_CLAIM},
        {__LINE__, "{\"sub\":\"u\",\"exp\":4503599627370496}", NULL, NULL, 0, NOW, TG_JWT_OK},
        {__LINE__, "{\"sub\":\"u\",\"exp\":4503599627370497}", NULL, NULL, 0, NOW,
         TG_JWT_BAD_CLAIM},
        {__LINE__, "{\"sub\":\"u\",\"exp\":1800000000,\"iat\":\"x\"}", NULL, NULL, 0, NOW,
         TG_JWT_BAD_CLAIM},
        /* nbf */
        {__LINE__, "{\"sub\":\"u\",\"exp\":1800000000,\"nbf\":1700000100}", NULL, NULL, 0, NOW,
         TG_JWT_NOT_YET_VALID},
        {__LINE__, "{\"sub\":\"u\",\"exp\":1800000000,\"nbf\":1700000000}", NULL, NULL, 0, NOW,
         TG_JWT_OK},
        {__LINE__, "{\"sub\":\"u\",\"exp\":1800000000,\"nbf\":1700000001}", NULL, NULL, 0, NOW,
         TG_JWT_NOT_YET_VALID},
        {__LINE__, "{\"sub\":\"u\",\"exp\":1800000000,\"nbf\":1700000010}", NULL, NULL, 10, NOW,
         TG_JWT_OK},
        {__LINE__, "{\"sub\":\"u\",\"exp\":1800000000,\"nbf\":1700000011}", NULL, NULL, 10, NOW,
         TG_JWT_NOT_YET_VALID},
        {__LINE__, "{\"sub\":\"u\",\"exp\":1800000000,\"nbf\":\"soon\"}", NULL, NULL, 0, NOW,
         TG_JWT_BAD_CLAIM},
        {__LINE__, "{\"sub\":\"u\",\"exp\":1800000000,\"nbf\":null}", NULL, NULL, 0, NOW,
         TG_JWT_OK},
        /* extreme now and leeway: no overflow */
        {__LINE__, "{\"sub\":\"u\",\"exp\":4503599627370496}", NULL, NULL, INT64_MAX, INT64_MAX,
         TG_JWT_EXPIRED},
        {__LINE__, "{\"sub\":\"u\",\"exp\":1}", NULL, NULL, INT64_MAX, INT64_MIN, TG_JWT_OK},
        {__LINE__, "{\"sub\":\"u\",\"exp\":1,\"nbf\":-4503599627370496}", NULL, NULL, INT64_MAX,
         INT64_MIN, TG_JWT_NOT_YET_VALID},
        {__LINE__, "{\"sub\":\"u\",\"exp\":1,\"nbf\":0}", NULL, NULL, 0, INT64_MIN,
         TG_JWT_NOT_YET_VALID},
    };
    run_rows(rows, TG_ARRAY_LEN(rows));
}

static void test_iss_aud(void **state)
{
    (void)state;
#define iss "https://idp.example.com/"
    static const struct row rows[] = {
        {__LINE__, "{\"sub\":\"u\",\"exp\":1800000000,\"iss\":\"https://idp.example.com/\"}", iss,
         NULL, 0, NOW, TG_JWT_OK},
        {__LINE__, "{\"sub\":\"u\",\"exp\":1800000000,\"iss\":\"https://idp.example.com\"}", iss,
         NULL, 0, NOW, TG_JWT_BAD_ISSUER},
        {__LINE__, "{\"sub\":\"u\",\"exp\":1800000000,\"iss\":\"https://evil.example.com/\"}", iss,
         NULL, 0, NOW, TG_JWT_BAD_ISSUER},
        {__LINE__, "{\"sub\":\"u\",\"exp\":1800000000}", iss, NULL, 0, NOW, TG_JWT_BAD_ISSUER},
        {__LINE__, "{\"sub\":\"u\",\"exp\":1800000000,\"iss\":\"anything\"}", NULL, NULL, 0, NOW,
         TG_JWT_OK},
        {__LINE__, "{\"sub\":\"u\",\"exp\":1800000000,\"iss\":7}", NULL, NULL, 0, NOW,
         TG_JWT_BAD_CLAIM},
        {__LINE__, "{\"sub\":\"u\",\"exp\":1800000000,\"iss\":\"https:\\/\\/idp.example.com\\/\"}",
         iss, NULL, 0, NOW, TG_JWT_OK},
        /* aud as a string */
        {__LINE__, "{\"sub\":\"u\",\"exp\":1800000000,\"aud\":\"tollgate\"}", NULL, "tollgate", 0,
         NOW, TG_JWT_OK},
        {__LINE__, "{\"sub\":\"u\",\"exp\":1800000000,\"aud\":\"tollgate2\"}", NULL, "tollgate", 0,
         NOW, TG_JWT_BAD_AUDIENCE},
        {__LINE__, "{\"sub\":\"u\",\"exp\":1800000000,\"aud\":\"Tollgate\"}", NULL, "tollgate", 0,
         NOW, TG_JWT_BAD_AUDIENCE},
        {__LINE__, "{\"sub\":\"u\",\"exp\":1800000000}", NULL, "tollgate", 0, NOW,
         TG_JWT_BAD_AUDIENCE},
        /* aud as an array */
        {__LINE__, "{\"sub\":\"u\",\"exp\":1800000000,\"aud\":[\"a\",\"tollgate\",\"b\"]}", NULL,
         "tollgate", 0, NOW, TG_JWT_OK},
        {__LINE__, "{\"sub\":\"u\",\"exp\":1800000000,\"aud\":[\"a\",\"b\"]}", NULL, "tollgate", 0,
         NOW, TG_JWT_BAD_AUDIENCE},
        {__LINE__, "{\"sub\":\"u\",\"exp\":1800000000,\"aud\":[]}", NULL, "tollgate", 0, NOW,
         TG_JWT_BAD_AUDIENCE},
        {__LINE__, "{\"sub\":\"u\",\"exp\":1800000000,\"aud\":[\"tollgate\",3]}", NULL, "tollgate",
         0, NOW, TG_JWT_BAD_CLAIM},
        {__LINE__, "{\"sub\":\"u\",\"exp\":1800000000,\"aud\":[[\"tollgate\"]]}", NULL, "tollgate",
         0, NOW, TG_JWT_BAD_CLAIM},
        {__LINE__, "{\"sub\":\"u\",\"exp\":1800000000,\"aud\":{\"tollgate\":1}}", NULL, "tollgate",
         0, NOW, TG_JWT_BAD_CLAIM},
        {__LINE__, "{\"sub\":\"u\",\"exp\":1800000000,\"aud\":[\"x\"]}", NULL, NULL, 0, NOW,
         TG_JWT_OK},
        {__LINE__, "{\"sub\":\"u\",\"exp\":1800000000,\"aud\":\"toll\\u0067ate\"}", NULL,
         "tollgate", 0, NOW, TG_JWT_OK},
    };
    run_rows(rows, TG_ARRAY_LEN(rows));
#undef iss
}

static void test_subject(void **state)
{
    (void)state;
    char long_ok[256], long_bad[256];
    snprintf(long_ok, sizeof(long_ok), "{\"exp\":1800000000,\"sub\":\"%0128d\"}", 0);
    snprintf(long_bad, sizeof(long_bad), "{\"exp\":1800000000,\"sub\":\"%0129d\"}", 0);
    const struct row rows[] = {
        {__LINE__, "{\"exp\":1800000000}", NULL, NULL, 0, NOW, TG_JWT_NO_SUBJECT},
        {__LINE__, "{\"exp\":1800000000,\"sub\":\"\"}", NULL, NULL, 0, NOW, TG_JWT_NO_SUBJECT},
        {__LINE__, "{\"exp\":1800000000,\"sub\":null}", NULL, NULL, 0, NOW, TG_JWT_NO_SUBJECT},
        {__LINE__, "{\"exp\":1800000000,\"sub\":42}", NULL, NULL, 0, NOW, TG_JWT_BAD_CLAIM},
        {__LINE__, "{\"exp\":1800000000,\"sub\":[\"u\"]}", NULL, NULL, 0, NOW, TG_JWT_BAD_CLAIM},
        {__LINE__, long_ok, NULL, NULL, 0, NOW, TG_JWT_OK},
        {__LINE__, long_bad, NULL, NULL, 0, NOW, TG_JWT_BAD_CLAIM},
        {__LINE__, "{\"exp\":1800000000,\"sub\":\"a\\nb\"}", NULL, NULL, 0, NOW, TG_JWT_BAD_CLAIM},
        {__LINE__, "{\"exp\":1800000000,\"sub\":\"a\\r\"}", NULL, NULL, 0, NOW, TG_JWT_BAD_CLAIM},
        {__LINE__, "{\"exp\":1800000000,\"sub\":\"a\\u0000b\"}", NULL, NULL, 0, NOW,
         TG_JWT_BAD_CLAIM},
        {__LINE__, "{\"exp\":1800000000,\"sub\":\"a\\u007f\"}", NULL, NULL, 0, NOW,
         TG_JWT_BAD_CLAIM},
        {__LINE__, "{\"exp\":1800000000,\"sub\":\"a\\u0085\"}", NULL, NULL, 0, NOW,
         TG_JWT_BAD_CLAIM},
        {__LINE__, "{\"exp\":1800000000,\"sub\":\"a\xff\"}", NULL, NULL, 0, NOW, TG_JWT_BAD_CLAIM},
        {__LINE__, "{\"exp\":1800000000,\"sub\":\"\xc0\xaf\"}", NULL, NULL, 0, NOW,
         TG_JWT_BAD_CLAIM},
        {__LINE__, "{\"exp\":1800000000,\"sub\":\"\xed\xa0\x80\"}", NULL, NULL, 0, NOW,
         TG_JWT_BAD_CLAIM},
        {__LINE__, "{\"exp\":1800000000,\"sub\":\"caf\\u00e9 \xf0\x9f\x98\x80\"}", NULL, NULL, 0,
         NOW, TG_JWT_OK},
        {__LINE__, "{\"exp\":1800000000,\"sub\":\"auth0|5f7c8ec7c33c6c004bbafe82\"}", NULL, NULL, 0,
         NOW, TG_JWT_OK},
        /* not a JSON object */
        {__LINE__, "[]", NULL, NULL, 0, NOW, TG_JWT_MALFORMED},
        {__LINE__, "\"sub\"", NULL, NULL, 0, NOW, TG_JWT_MALFORMED},
        {__LINE__, "{\"sub\":\"u\",", NULL, NULL, 0, NOW, TG_JWT_MALFORMED},
        {__LINE__, "", NULL, NULL, 0, NOW, TG_JWT_MALFORMED},
    };
    run_rows(rows, TG_ARRAY_LEN(rows));
}

static void test_profile_fields(void **state)
{
    (void)state;
    const char *doc = "{\"sub\":\"u1\",\"exp\":1800000000.0,\"nbf\":1600000000,\"iat\":1600000000."
                      "7,\"role\":\"admin\",\"team\":\"research\",\"email\":\"a@example.com\","
                      "\"name\":\"Ada L\\u00f6vel\\u0061ce\",\"iss\":\"i\",\"aud\":\"x\"}";
    struct tg_claims_policy pol = {"i", "x", 0};
    struct tg_claims c;
    assert_int_equal(tg_claims_parse(doc, strlen(doc), &pol, &c), TG_JWT_OK);
    assert_int_equal(tg_claims_check(&c, NOW, &pol), TG_JWT_OK);
    assert_string_equal(c.sub, "u1");
    assert_int_equal(c.sub_len, 2);
    assert_string_equal(c.role, "admin");
    assert_true(c.is_admin);
    assert_string_equal(c.team, "research");
    assert_string_equal(c.email, "a@example.com");
    assert_string_equal(c.name, "Ada L\xc3\xb6velace");
    assert_true(c.has_exp && c.has_nbf && c.has_iat && c.has_iss && c.has_aud && c.aud_matches);
    assert_int_equal(c.exp, 1800000000);
    assert_int_equal(c.nbf, 1600000000);
    assert_int_equal(c.iat, 1600000000);

    /* duplicate members: the last one wins, as in jansson (and so in libjwt) */
    const char *dup = "{\"sub\":\"first\",\"exp\":1800000000,\"sub\":\"second\"}";
    assert_int_equal(tg_claims_parse(dup, strlen(dup), NULL, &c), TG_JWT_OK);
    assert_string_equal(c.sub, "second");

    /* NULL policy: only exp/nbf/sub */
    const char *bare = "{\"sub\":\"u\",\"exp\":1800000000,\"aud\":\"zzz\",\"iss\":\"zzz\"}";
    assert_int_equal(tg_claims_parse(bare, strlen(bare), NULL, &c), TG_JWT_OK);
    assert_int_equal(tg_claims_check(&c, NOW, NULL), TG_JWT_OK);
    assert_true(c.has_aud);
    assert_false(c.aud_matches);
    assert_false(c.is_admin);
    assert_string_equal(c.team, "");
}

static void test_role(void **state)
{
    (void)state;
    static const struct {
        int line;
        const char *json;
        enum tg_jwt_status want;
        bool is_admin;
        const char *role;
    } rows[] = {
        {__LINE__, "{\"role\":\"admin\"}", TG_JWT_OK, true, "admin"},
        {__LINE__, "{\"role\":\"Admin\"}", TG_JWT_OK, false, "Admin"},
        {__LINE__, "{\"role\":\"admin \"}", TG_JWT_OK, false, "admin "},
        {__LINE__, "{\"role\":\"user\"}", TG_JWT_OK, false, "user"},
        {__LINE__, "{\"role\":\"a-role-name-that-is-longer-than-32-bytes\"}", TG_JWT_OK, false, ""},
        {__LINE__, "{\"role\":[\"user\",\"admin\"]}", TG_JWT_OK, true, "admin"},
        {__LINE__, "{\"role\":[\"user\"]}", TG_JWT_OK, false, ""},
        {__LINE__, "{\"role\":[\"user\",1]}", TG_JWT_BAD_CLAIM, false, ""},
        {__LINE__, "{\"role\":true}", TG_JWT_BAD_CLAIM, false, ""},
        {__LINE__, "{\"role\":\"adm\\nin\"}", TG_JWT_BAD_CLAIM, false, ""},
        {__LINE__, "{\"role\":null}", TG_JWT_OK, false, ""},
        {__LINE__, "{\"roles\":\"admin\"}", TG_JWT_OK, false, ""},
    };
    for (size_t i = 0; i < TG_ARRAY_LEN(rows); i++) {
        struct tg_claims c;
        enum tg_jwt_status st = tg_claims_parse(rows[i].json, strlen(rows[i].json), NULL, &c);
        if (st != rows[i].want)
            fail_msg("line %d: status %s", rows[i].line, tg_jwt_status_name(st));
        if (st != TG_JWT_OK)
            continue;
        if (c.is_admin != rows[i].is_admin || strcmp(c.role, rows[i].role) != 0)
            fail_msg("line %d: is_admin=%d role=%s", rows[i].line, c.is_admin, c.role);
    }
}

static void test_optional_strings(void **state)
{
    (void)state;
    char doc[2048], big[400];
    struct tg_claims c;

    /* email: 320 bytes fit, 321 do not */
    memset(big, 'e', 320);
    big[320] = '\0';
    snprintf(doc, sizeof(doc), "{\"email\":\"%s\"}", big);
    assert_int_equal(tg_claims_parse(doc, strlen(doc), NULL, &c), TG_JWT_OK);
    assert_int_equal(strlen(c.email), 320);
    snprintf(doc, sizeof(doc), "{\"email\":\"%se\"}", big);
    assert_int_equal(tg_claims_parse(doc, strlen(doc), NULL, &c), TG_JWT_BAD_CLAIM);

    /* team: 128 / 129 */
    snprintf(doc, sizeof(doc), "{\"team\":\"%.128s\"}", big);
    assert_int_equal(tg_claims_parse(doc, strlen(doc), NULL, &c), TG_JWT_OK);
    snprintf(doc, sizeof(doc), "{\"team\":\"%.129s\"}", big);
    assert_int_equal(tg_claims_parse(doc, strlen(doc), NULL, &c), TG_JWT_BAD_CLAIM);
    assert_int_equal(tg_claims_parse("{\"team\":5}", 10, NULL, &c), TG_JWT_BAD_CLAIM);
    assert_int_equal(tg_claims_parse("{\"email\":{}}", 12, NULL, &c), TG_JWT_BAD_CLAIM);
    assert_int_equal(tg_claims_parse("{\"team\":\"a\\tb\"}", 15, NULL, &c), TG_JWT_BAD_CLAIM);

    /* name: longer than 256 is cut at a character boundary, never mid-character */
    for (int pad = 250; pad <= 256; pad++) {
        char name[600];
        memset(name, 'n', (size_t)pad);
        size_t n = (size_t)pad;
        for (int k = 0; k < 4; k++) {
            memcpy(name + n, "\xe2\x82\xac", 3); /* U+20AC, 3 bytes */
            n += 3;
        }
        name[n] = '\0';
        snprintf(doc, sizeof(doc), "{\"name\":\"%s\"}", name);
        assert_int_equal(tg_claims_parse(doc, strlen(doc), NULL, &c), TG_JWT_OK);
        size_t got = strlen(c.name);
        assert_true(got <= TG_CLAIMS_NAME_MAX);
        assert_true(tg_claims_user_id_valid(c.name, TG_MIN(got, 128)) || got > 128);
        /* whole characters only: what is kept is a prefix ending on a boundary */
        assert_memory_equal(c.name, name, got);
        assert_true((got - (size_t)pad) % 3 == 0 || got == (size_t)pad);
        assert_true(got + 3 > TG_CLAIMS_NAME_MAX || got == n);
    }
    assert_int_equal(tg_claims_parse("{\"name\":[]}", 11, NULL, &c), TG_JWT_BAD_CLAIM);
}

static void test_user_id_rule(void **state)
{
    (void)state;
    static const struct {
        int line;
        const char *s;
        size_t n;
        bool ok;
    } rows[] = {
        {__LINE__, "u", 1, true},
        {__LINE__, "", 0, false},
        {__LINE__, "a\0b", 3, false},
        {__LINE__, "a\x1f", 2, false},
        {__LINE__, "a\x7f", 2, false},
        {__LINE__, "\xc2\x80", 2, false},         /* U+0080, C1 control */
        {__LINE__, "\xc2\x9f", 2, false},         /* U+009F */
        {__LINE__, "\xc2\xa0", 2, true},          /* U+00A0 */
        {__LINE__, "\xe0\x80\xaf", 3, false},     /* overlong */
        {__LINE__, "\xf4\x90\x80\x80", 4, false}, /* > U+10FFFF */
        {__LINE__, "\xf0\x9f\x98\x80", 4, true},
        {__LINE__, "\xf0\x9f\x98", 3, false}, /* truncated */
        {__LINE__, "{{LIBRECHAT_USER_ID}}", 21, true},
    };
    for (size_t i = 0; i < TG_ARRAY_LEN(rows); i++) {
        if (tg_claims_user_id_valid(rows[i].s, rows[i].n) != rows[i].ok)
            fail_msg("line %d", rows[i].line);
    }
    char id[129];
    memset(id, 'x', sizeof(id));
    assert_true(tg_claims_user_id_valid(id, 128));
    assert_false(tg_claims_user_id_valid(id, 129));
    assert_false(tg_claims_user_id_valid(NULL, 1));
}

static void test_status_names(void **state)
{
    (void)state;
    for (int a = TG_JWT_OK; a <= TG_JWT_NO_KEY; a++) {
        const char *na = tg_jwt_status_name((enum tg_jwt_status)a);
        assert_string_not_equal(na, "unknown");
        for (int b = a + 1; b <= TG_JWT_NO_KEY; b++)
            assert_string_not_equal(na, tg_jwt_status_name((enum tg_jwt_status)b));
    }
    assert_string_equal(tg_jwt_status_name((enum tg_jwt_status)99), "unknown");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_time_claims),  cmocka_unit_test(test_iss_aud),
        cmocka_unit_test(test_subject),      cmocka_unit_test(test_profile_fields),
        cmocka_unit_test(test_role),         cmocka_unit_test(test_optional_strings),
        cmocka_unit_test(test_user_id_rule), cmocka_unit_test(test_status_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
