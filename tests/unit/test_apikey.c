/* Unit tests for auth/apikey.c: generation, shape check, hashing, constant-time compare. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include "auth/apikey.h"

static void test_generate(void **state)
{
    (void)state;
    char key[TG_APIKEY_LEN + 1];
    uint8_t hash[TG_APIKEY_HASH_BYTES], again[TG_APIKEY_HASH_BYTES];
    assert_int_equal(tg_apikey_generate(key, sizeof(key), hash), 0);
    assert_int_equal(strlen(key), 46);
    assert_memory_equal(key, "tg-", 3);
    assert_true(tg_apikey_looks_valid(key, strlen(key)));
    tg_apikey_hash(key, strlen(key), again);
    assert_memory_equal(hash, again, sizeof(hash));

    /* too small a buffer */
    char small[TG_APIKEY_LEN];
    memset(small, 'x', sizeof(small));
    assert_int_equal(tg_apikey_generate(small, sizeof(small), hash), -1);
    assert_int_equal(small[0], '\0');
    assert_int_equal(tg_apikey_generate(NULL, 100, hash), -1);
}

static int cmp_keys(const void *a, const void *b)
{
    return memcmp(a, b, TG_APIKEY_LEN);
}

static void test_generate_distinct(void **state)
{
    (void)state;
    enum { N = 2000 };
    char(*keys)[TG_APIKEY_LEN + 1] = calloc(N, sizeof(*keys));
    assert_non_null(keys);
    unsigned seen_chars[256] = {0};
    for (int i = 0; i < N; i++) {
        uint8_t hash[TG_APIKEY_HASH_BYTES];
        assert_int_equal(tg_apikey_generate(keys[i], sizeof(keys[i]), hash), 0);
        assert_true(tg_apikey_looks_valid(keys[i], TG_APIKEY_LEN));
        for (int j = 3; j < TG_APIKEY_LEN - 1; j++)
            seen_chars[(unsigned char)keys[i][j]]++;
    }
    qsort(keys, N, sizeof(*keys), cmp_keys);
    for (int i = 1; i < N; i++)
        assert_true(memcmp(keys[i - 1], keys[i], TG_APIKEY_LEN) != 0);
    /* all 64 alphabet characters show up in 84000 random positions */
    int distinct = 0;
    for (int c = 0; c < 256; c++)
        distinct += seen_chars[c] != 0;
    assert_int_equal(distinct, 64);
    free(keys);
}

static void test_looks_valid(void **state)
{
    (void)state;
    static const struct {
        int line;
        const char *s;
        bool ok;
    } rows[] = {
        {__LINE__, "tg-AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", true},
        {__LINE__, "tg-abcdefghijklmnopqrstuvwxyz0123456789-_ABCDE", true},
        {__LINE__, "tg-abcdefghijklmnopqrstuvwxyz0123456789-_ABCDw", true},
        {__LINE__, "tg-abcdefghijklmnopqrstuvwxyz0123456789-_ABCDF", false}, /* unused bits set */
        {__LINE__, "tg-abcdefghijklmnopqrstuvwxyz0123456789-_ABCDx", false},
        {__LINE__, "tg-abcdefghijklmnopqrstuvwxyz0123456789-_ABCD", false}, /* 45 bytes */
        {__LINE__, "tg-abcdefghijklmnopqrstuvwxyz0123456789-_ABCDEA", false},
        {__LINE__, "tg_abcdefghijklmnopqrstuvwxyz0123456789-_ABCDE", false},
        {__LINE__, "TG-abcdefghijklmnopqrstuvwxyz0123456789-_ABCDE", false},
        {__LINE__, "sk-abcdefghijklmnopqrstuvwxyz0123456789-_ABCDE", false},
        {__LINE__, "tg-abcdefghijklmnopqrstuvwxyz0123456789+/ABCDE", false},
        {__LINE__, "tg-abcdefghijklmnopqrstuvwxyz0123456789-_ABC=E", false},
        {__LINE__, "tg-abcdefghijklmnopqrstuvwxyz0123456789-_ABC E", false},
        {__LINE__, "tg-abcdefghijklmnopqrstuvwxyz0123456789-_.-ABE", false},
        {__LINE__, "", false},
        {__LINE__, "tg-", false},
        {__LINE__, "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ1In0.c2lnbmF0dXJl", false},
    };
    for (size_t i = 0; i < TG_ARRAY_LEN(rows); i++) {
        if (tg_apikey_looks_valid(rows[i].s, strlen(rows[i].s)) != rows[i].ok)
            fail_msg("line %d: %s", rows[i].line, rows[i].s);
    }
    /* a NUL inside */
    char k[TG_APIKEY_LEN + 1] = "tg-AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";
    assert_true(tg_apikey_looks_valid(k, TG_APIKEY_LEN));
    k[20] = '\0';
    assert_false(tg_apikey_looks_valid(k, TG_APIKEY_LEN));
    assert_false(tg_apikey_looks_valid(NULL, TG_APIKEY_LEN));
}

static void test_hash(void **state)
{
    (void)state;
    uint8_t h[TG_APIKEY_HASH_BYTES];
    char hex[TG_APIKEY_HASH_HEX_LEN + 1];
    /* FIPS 180-2 test vector */
    tg_apikey_hash("abc", 3, h);
    tg_apikey_hash_hex(h, hex);
    assert_string_equal(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    /* sha256sum of the key text, computed with coreutils */
    const char *key = "tg-AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";
    tg_apikey_hash(key, strlen(key), h);
    tg_apikey_hash_hex(h, hex);
    assert_string_equal(hex, "06a385b44b1f2faffd5c9df2c9d9940c5318fa26ead3976519dbb3a17177c3c5");
}

static void test_ct_equal(void **state)
{
    (void)state;
    uint8_t a[32], b[32];
    memset(a, 7, sizeof(a));
    memcpy(b, a, sizeof(b));
    assert_true(tg_ct_equal(a, b, sizeof(a)));
    for (size_t i = 0; i < sizeof(a); i++) {
        b[i] ^= 0x80;
        assert_false(tg_ct_equal(a, b, sizeof(a)));
        b[i] ^= 0x80;
    }
    assert_true(tg_ct_equal(a, b, 0));
    b[31] = 0;
    assert_true(tg_ct_equal(a, b, 31));
}

static void test_display_prefix(void **state)
{
    (void)state;
    const char *key = "tg-AbCdEfGhIjKlMnOpQrStUvWxYz0123456789-_ABCDE";
    char out[16];
    tg_apikey_display_prefix(key, strlen(key), out, sizeof(out));
    assert_string_equal(out, "tg-AbCdE");
    tg_apikey_display_prefix(key, 5, out, sizeof(out));
    assert_string_equal(out, "tg-Ab");
    tg_apikey_display_prefix(key, strlen(key), out, 4);
    assert_string_equal(out, "tg-");
    tg_apikey_display_prefix(NULL, 10, out, sizeof(out));
    assert_string_equal(out, "");
    out[0] = 'z';
    tg_apikey_display_prefix(key, strlen(key), out, 0);
    assert_int_equal(out[0], 'z');
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_generate),    cmocka_unit_test(test_generate_distinct),
        cmocka_unit_test(test_looks_valid), cmocka_unit_test(test_hash),
        cmocka_unit_test(test_ct_equal),    cmocka_unit_test(test_display_prefix),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
