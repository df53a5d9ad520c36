/* Unit tests for auth/jwks.c: base64url, algorithm names, JWK Set and PEM key loading. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth/jwks.h"

static EVP_PKEY *rsa2048, *rsa1024, *ec256, *ec384, *ec521;

static int setup(void **state)
{
    (void)state;
    rsa2048 = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
    rsa1024 = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)1024);
    ec256 = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    ec384 = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-384");
    ec521 = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-521");
    return rsa2048 && rsa1024 && ec256 && ec384 && ec521 ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    EVP_PKEY_free(rsa2048);
    EVP_PKEY_free(rsa1024);
    EVP_PKEY_free(ec256);
    EVP_PKEY_free(ec384);
    EVP_PKEY_free(ec521);
    return 0;
}

static void b64_bn(EVP_PKEY *k, const char *param, size_t pad, char *out, size_t cap)
{
    BIGNUM *bn = NULL;
    assert_int_equal(EVP_PKEY_get_bn_param(k, param, &bn), 1);
    uint8_t raw[1100];
    int n = pad ? BN_bn2binpad(bn, raw, (int)pad) : BN_bn2bin(bn, raw);
    assert_true(n > 0);
    assert_true(tg_jwks_b64url_encode(raw, (size_t)n, out, cap) > 0);
    BN_free(bn);
}

/* {"kty":...,"kid":kid, key members, extra} for a generated public key. */
static void jwk_json(EVP_PKEY *k, const char *kid, const char *extra, char *out, size_t cap)
{
    char a[1500], b[1500];
    if (EVP_PKEY_is_a(k, "RSA")) {
        b64_bn(k, OSSL_PKEY_PARAM_RSA_N, 0, a, sizeof(a));
        b64_bn(k, OSSL_PKEY_PARAM_RSA_E, 0, b, sizeof(b));
        snprintf(out, cap, "{\"kty\":\"RSA\",\"kid\":\"%s\",\"n\":\"%s\",\"e\":\"%s\"%s}", kid, a,
                 b, extra);
        return;
    }
    int bits = EVP_PKEY_get_bits(k);
    size_t coord = ((size_t)bits + 7) / 8;
    const char *crv = bits == 256 ? "P-256" : bits == 384 ? "P-384" : "P-521";
    b64_bn(k, OSSL_PKEY_PARAM_EC_PUB_X, coord, a, sizeof(a));
    b64_bn(k, OSSL_PKEY_PARAM_EC_PUB_Y, coord, b, sizeof(b));
    snprintf(out, cap, "{\"kty\":\"EC\",\"kid\":\"%s\",\"crv\":\"%s\",\"x\":\"%s\",\"y\":\"%s\"%s}",
             kid, crv, a, b, extra);
}

static EVP_PKEY *pem_to_pkey(const char *pem)
{
    BIO *bio = BIO_new_mem_buf(pem, -1);
    EVP_PKEY *k = PEM_read_bio_PUBKEY(bio, NULL, NULL, NULL);
    BIO_free(bio);
    return k;
}

static char *read_fixture(const char *name, size_t *len)
{
    char path[512];
    snprintf(path, sizeof(path), "%s/jwt/%s", TG_FIXTURES_DIR, name);
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        fail_msg("cannot open %s", path);
    char *buf = malloc(65536);
    assert_non_null(buf);
    size_t n = fread(buf, 1, 65535, f);
    fclose(f);
    buf[n] = '\0';
    *len = n;
    return buf;
}

static void test_b64url_vectors(void **state)
{
    (void)state;
    static const struct {
        int line;
        const char *raw, *enc;
    } rows[] = {
        {__LINE__, "", ""},
        {__LINE__, "f", "Zg"},
        {__LINE__, "fo", "Zm8"},
        {__LINE__, "foo", "Zm9v"},
        {__LINE__, "foob", "Zm9vYg"},
        {__LINE__, "fooba", "Zm9vYmE"},
        {__LINE__, "foobar", "Zm9vYmFy"},
        {__LINE__, "\xfb\xff", "-_8"},
        {__LINE__, "{\"alg\":\"none\"}", "eyJhbGciOiJub25lIn0"},
    };
    for (size_t i = 0; i < TG_ARRAY_LEN(rows); i++) {
        char enc[64];
        uint8_t dec[64];
        size_t rn = strlen(rows[i].raw);
        ssize_t n = tg_jwks_b64url_encode((const uint8_t *)rows[i].raw, rn, enc, sizeof(enc));
        if (n != (ssize_t)strlen(rows[i].enc) || strcmp(enc, rows[i].enc) != 0)
            fail_msg("line %d: encode gave %s", rows[i].line, enc);
        n = tg_jwks_b64url_decode(rows[i].enc, strlen(rows[i].enc), dec, sizeof(dec));
        if (n != (ssize_t)rn || memcmp(dec, rows[i].raw, rn) != 0)
            fail_msg("line %d: decode", rows[i].line);
        if (tg_jwks_b64url_decoded_len(strlen(rows[i].enc)) != rn)
            fail_msg("line %d: decoded_len", rows[i].line);
    }
}

static void test_b64url_strict(void **state)
{
    (void)state;
    static const struct {
        int line;
        const char *enc;
    } bad[] = {
        {__LINE__, "Zg=="}, {__LINE__, "Zg="},  {__LINE__, "Z"},           {__LINE__, "Zm9vY"},
        {__LINE__, "Zh"},   {__LINE__, "Zm9"},  {__LINE__, "+_8"},         {__LINE__, "-/8"},
        {__LINE__, "Zm 9"}, {__LINE__, "Zm.v"}, {__LINE__, "Zm9\xc3\xa9"},
    };
    for (size_t i = 0; i < TG_ARRAY_LEN(bad); i++) {
        uint8_t dec[64];
        if (tg_jwks_b64url_decode(bad[i].enc, strlen(bad[i].enc), dec, sizeof(dec)) != -1)
            fail_msg("line %d: %s decoded", bad[i].line, bad[i].enc);
    }
    uint8_t dec[8];
    assert_int_equal(tg_jwks_b64url_decode("Zm9v\0Zm9v", 9, dec, sizeof(dec)), -1);
    assert_int_equal(tg_jwks_b64url_decode("Zm9vYmFy", 8, dec, 5), -1); /* does not fit */
    assert_int_equal(tg_jwks_b64url_decode("Zm9vYmFy", 8, dec, 6), 6);
    char enc[9];
    assert_int_equal(tg_jwks_b64url_encode((const uint8_t *)"foobar", 6, enc, 8), -1);
    assert_int_equal(tg_jwks_b64url_encode((const uint8_t *)"foobar", 6, enc, 9), 8);
}

static void test_b64url_roundtrip(void **state)
{
    (void)state;
    for (size_t n = 0; n < 300; n++) {
        uint8_t raw[300], dec[300];
        char enc[420];
        assert_int_equal(RAND_bytes(raw, (int)sizeof(raw)), 1);
        ssize_t en = tg_jwks_b64url_encode(raw, n, enc, sizeof(enc));
        assert_true(en >= 0);
        assert_int_equal(tg_jwks_b64url_decoded_len((size_t)en), n);
        assert_int_equal(tg_jwks_b64url_decode(enc, (size_t)en, dec, n), (ssize_t)n);
        assert_memory_equal(raw, dec, n);
    }
}

static void test_alg_names(void **state)
{
    (void)state;
    static const struct {
        int line;
        const char *s;
        enum tg_jws_alg want;
    } rows[] = {
        {__LINE__, "HS256", TG_JWS_HS256}, {__LINE__, "HS384", TG_JWS_HS384},
        {__LINE__, "HS512", TG_JWS_HS512}, {__LINE__, "RS256", TG_JWS_RS256},
        {__LINE__, "RS384", TG_JWS_RS384}, {__LINE__, "RS512", TG_JWS_RS512},
        {__LINE__, "ES256", TG_JWS_ES256}, {__LINE__, "ES384", TG_JWS_ES384},
        {__LINE__, "ES512", TG_JWS_ES512}, {__LINE__, "none", TG_JWS_NONE},
        {__LINE__, "None", TG_JWS_NONE},   {__LINE__, "hs256", TG_JWS_NONE},
        {__LINE__, "HS256 ", TG_JWS_NONE}, {__LINE__, "PS256", TG_JWS_NONE},
        {__LINE__, "EdDSA", TG_JWS_NONE},  {__LINE__, "ES256K", TG_JWS_NONE},
        {__LINE__, "", TG_JWS_NONE},
    };
    for (size_t i = 0; i < TG_ARRAY_LEN(rows); i++) {
        if (tg_jws_alg_parse(rows[i].s, strlen(rows[i].s)) != rows[i].want)
            fail_msg("line %d: %s", rows[i].line, rows[i].s);
    }
    for (int a = TG_JWS_HS256; a < TG_JWS_ALG_COUNT; a++) {
        const char *name = tg_jws_alg_name((enum tg_jws_alg)a);
        assert_int_equal(tg_jws_alg_parse(name, strlen(name)), a);
    }
    assert_string_equal(tg_jws_alg_name(TG_JWS_NONE), "none");
    assert_string_equal(tg_jws_alg_name(TG_JWS_ALG_COUNT), "none");
    assert_int_equal(tg_jws_alg_parse(NULL, 5), TG_JWS_NONE);
}

static void test_jwks_generated(void **state)
{
    (void)state;
    static char doc[20000], k1[4000], k2[1000], k3[1000], k4[1000];
    jwk_json(rsa2048, "r1", ",\"use\":\"sig\"", k1, sizeof(k1));
    jwk_json(ec256, "e256", "", k2, sizeof(k2));
    jwk_json(ec384, "e384", ",\"alg\":\"ES384\"", k3, sizeof(k3));
    jwk_json(ec521, "e521", "", k4, sizeof(k4));
    snprintf(doc, sizeof(doc), "{\"keys\":[%s,%s,%s,%s]}", k1, k2, k3, k4);
    struct tg_jwks set;
    char err[512];
    assert_int_equal(tg_jwks_parse(doc, strlen(doc), &set, err, sizeof(err)), 0);
    assert_string_equal(err, "");
    assert_int_equal(set.n, 4);
    static const struct {
        const char *kid;
        unsigned mask;
        size_t sig_bytes;
    } want[] = {
        {"r1", TG_JWS_RSA_ALGS, 256},
        {"e256", TG_JWS_BIT(TG_JWS_ES256), 64},
        {"e384", TG_JWS_BIT(TG_JWS_ES384), 96},
        {"e521", TG_JWS_BIT(TG_JWS_ES512), 132},
    };
    EVP_PKEY *orig[] = {rsa2048, ec256, ec384, ec521};
    for (size_t i = 0; i < 4; i++) {
        assert_true(set.keys[i].has_kid);
        assert_string_equal(set.keys[i].kid, want[i].kid);
        assert_int_equal(set.keys[i].kid_len, strlen(want[i].kid));
        assert_int_equal(set.keys[i].alg_mask, want[i].mask);
        assert_int_equal(set.keys[i].sig_bytes, want[i].sig_bytes);
        assert_int_equal(strlen(set.keys[i].pem), set.keys[i].pem_len);
        EVP_PKEY *back = pem_to_pkey(set.keys[i].pem);
        assert_non_null(back);
        assert_int_equal(EVP_PKEY_eq(back, orig[i]), 1);
        EVP_PKEY_free(back);
    }
    tg_jwks_cleanup(&set);
    assert_int_equal(set.n, 0);
    assert_null(set.keys);
    tg_jwks_cleanup(&set);
    tg_jwks_cleanup(NULL);
}

static void test_jwks_alg_member(void **state)
{
    (void)state;
    static char doc[8000], k[4000];
    static const struct {
        int line;
        EVP_PKEY **key;
        const char *extra;
        unsigned mask; /* 0: skipped */
    } rows[] = {
        {__LINE__, &rsa2048, ",\"alg\":\"RS384\"", TG_JWS_BIT(TG_JWS_RS384)},
        {__LINE__, &rsa2048, ",\"alg\":\"RS512\",\"use\":\"sig\"", TG_JWS_BIT(TG_JWS_RS512)},
        {__LINE__, &rsa2048, "", TG_JWS_RSA_ALGS},
        {__LINE__, &rsa2048, ",\"alg\":\"PS256\"", 0},
        {__LINE__, &rsa2048, ",\"alg\":\"HS256\"", 0},
        {__LINE__, &rsa2048, ",\"alg\":\"ES256\"", 0},
        {__LINE__, &rsa2048, ",\"alg\":\"none\"", 0},
        {__LINE__, &rsa2048, ",\"alg\":\"rs256\"", 0},
        {__LINE__, &rsa2048, ",\"alg\":256", 0},
        {__LINE__, &ec256, ",\"alg\":\"ES256\"", TG_JWS_BIT(TG_JWS_ES256)},
        {__LINE__, &ec256, ",\"alg\":\"ES384\"", 0},
        {__LINE__, &ec256, ",\"alg\":\"RS256\"", 0},
        {__LINE__, &ec521, ",\"alg\":\"ES512\"", TG_JWS_BIT(TG_JWS_ES512)},
    };
    for (size_t i = 0; i < TG_ARRAY_LEN(rows); i++) {
        jwk_json(*rows[i].key, "k", rows[i].extra, k, sizeof(k));
        snprintf(doc, sizeof(doc), "{\"keys\":[%s]}", k);
        struct tg_jwks set;
        char err[256];
        int rc = tg_jwks_parse(doc, strlen(doc), &set, err, sizeof(err));
        if (rows[i].mask == 0) {
            if (rc != -1 || strstr(err, "alg") == NULL)
                fail_msg("line %d: rc=%d err=%s", rows[i].line, rc, err);
            continue;
        }
        if (rc != 0 || set.n != 1 || set.keys[0].alg_mask != rows[i].mask)
            fail_msg("line %d: rc=%d err=%s", rows[i].line, rc, err);
        tg_jwks_cleanup(&set);
    }
}

static void test_jwks_skips(void **state)
{
    (void)state;
    static char good[4000], bad[4000], doc[10000];
    jwk_json(ec256, "good", "", good, sizeof(good));
    char long_kid[200];
    memset(long_kid, 'k', 129);
    long_kid[129] = '\0';

    enum { N = 16 };
    struct {
        int line;
        char json[4000];
        const char *note;
    } *rows = calloc(N, sizeof(*rows));
    assert_non_null(rows);
    size_t n = 0;
#define ROW(note_, ...)                                                                            \
    do {                                                                                           \
        rows[n].line = __LINE__;                                                                   \
        snprintf(rows[n].json, sizeof(rows[n].json), __VA_ARGS__);                                 \
        rows[n++].note = note_;                                                                    \
    } while (0)
    jwk_json(rsa2048, "enc", ",\"use\":\"enc\"", bad, sizeof(bad));
    ROW("use is not sig", "%s", bad);
    ROW("kty not supported", "{\"kty\":\"oct\",\"kid\":\"o\",\"k\":\"c2VjcmV0\"}");
    ROW("kty not supported", "{\"kty\":\"OKP\",\"crv\":\"Ed25519\",\"x\":\"AAAA\"}");
    ROW("no kty", "{\"kid\":\"x\"}");
    ROW("kid is not a string", "{\"kty\":\"EC\",\"kid\":5}");
    ROW("kid too long", "{\"kty\":\"EC\",\"kid\":\"%s\"}", long_kid);
    ROW("not an object", "[1]");
    ROW("RSA key without valid n and e",
        "{\"kty\":\"RSA\",\"kid\":\"r\",\"n\":\"*\",\"e\":\"AQAB\"}");
    ROW("RSA key without valid n and e", "{\"kty\":\"RSA\",\"kid\":\"r\",\"n\":\"AQAB\"}");
    jwk_json(rsa1024, "small", "", bad, sizeof(bad));
    ROW("key size", "%s", bad);
    ROW("EC curve", "{\"kty\":\"EC\",\"kid\":\"c\",\"crv\":\"P-192\",\"x\":\"AA\",\"y\":\"AA\"}");
    ROW("x and y",
        "{\"kty\":\"EC\",\"kid\":\"s\",\"crv\":\"P-256\",\"x\":\"%044d\",\"y\":\"%043d\"}", 0,
        0); /* x of 33 bytes */
    /* a point off the curve: change one character of y */
    jwk_json(ec256, "offcurve", "", bad, sizeof(bad));
    char *yp = strstr(bad, "\"y\":\"") + 5;
    yp[1] = yp[1] == 'A' ? 'B' : 'A';
    ROW("rejected by OpenSSL", "%s", bad);
    /* RSA with an even modulus: OpenSSL's public check refuses it */
    char even_n[343];
    memset(even_n, 'A', 342);
    even_n[0] = 'w'; /* 0xc0 00 ... 00: 2048 bits, even */
    even_n[342] = '\0';
    ROW("rejected by OpenSSL", "{\"kty\":\"RSA\",\"kid\":\"even\",\"n\":\"%s\",\"e\":\"AQAB\"}",
        even_n);
#undef ROW
    for (size_t i = 0; i < n; i++) {
        snprintf(doc, sizeof(doc), "{\"keys\":[%s,%s]}", rows[i].json, good);
        struct tg_jwks set;
        char err[512];
        int rc = tg_jwks_parse(doc, strlen(doc), &set, err, sizeof(err));
        if (rc != 0 || set.n != 1 || strcmp(set.keys[0].kid, "good") != 0)
            fail_msg("line %d: rc=%d n=%zu err=%s", rows[i].line, rc, set.n, err);
        if (strstr(err, rows[i].note) == NULL || strstr(err, "key #0") == NULL)
            fail_msg("line %d: note \"%s\" lacks \"%s\"", rows[i].line, err, rows[i].note);
        tg_jwks_cleanup(&set);
    }
    free(rows);
}

static void test_jwks_errors(void **state)
{
    (void)state;
    static const struct {
        int line;
        const char *doc;
        const char *err;
    } rows[] = {
        {__LINE__, "", "not a JSON object"},
        {__LINE__, "{\"keys\":[}", "not a JSON object"},
        {__LINE__, "[]", "not a JSON object"},
        {__LINE__, "{}", "no \"keys\" array"},
        {__LINE__, "{\"keys\":{}}", "no \"keys\" array"},
        {__LINE__, "{\"keys\":[]}", "no usable key"},
        {__LINE__, "{\"keys\":[{\"kty\":\"oct\",\"kid\":\"a\"}]}", "no usable key: skipped key #0"},
    };
    for (size_t i = 0; i < TG_ARRAY_LEN(rows); i++) {
        struct tg_jwks set;
        char err[256];
        if (tg_jwks_parse(rows[i].doc, strlen(rows[i].doc), &set, err, sizeof(err)) != -1)
            fail_msg("line %d: accepted", rows[i].line);
        if (strstr(err, rows[i].err) == NULL)
            fail_msg("line %d: err %s", rows[i].line, err);
        assert_int_equal(set.n, 0);
        assert_null(set.keys);
    }
    /* too many keys */
    char *doc = malloc(100000);
    assert_non_null(doc);
    size_t o = (size_t)sprintf(doc, "{\"keys\":[");
    for (int i = 0; i < TG_JWK_MAX_KEYS + 1; i++)
        o += (size_t)sprintf(doc + o, "%s{\"kty\":\"oct\"}", i ? "," : "");
    sprintf(doc + o, "]}");
    struct tg_jwks set;
    char err[256];
    assert_int_equal(tg_jwks_parse(doc, strlen(doc), &set, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "65 keys"));
    assert_int_equal(tg_jwks_parse(NULL, 0, &set, err, sizeof(err)), -1);
    /* no room for notes is fine */
    assert_int_equal(tg_jwks_parse("{\"keys\":[]}", 11, &set, NULL, 0), -1);
    free(doc);
}

static void test_jwks_fixture(void **state)
{
    (void)state;
    size_t len;
    char *doc = read_fixture("jwks.json", &len);
    struct tg_jwks set;
    char err[1024];
    assert_int_equal(tg_jwks_parse(doc, len, &set, err, sizeof(err)), 0);
    assert_int_equal(set.n, 2);
    assert_string_equal(set.keys[0].kid, "fx-rsa");
    assert_int_equal(set.keys[0].alg_mask, TG_JWS_BIT(TG_JWS_RS256));
    assert_string_equal(set.keys[1].kid, "fx-ec");
    assert_int_equal(set.keys[1].alg_mask, TG_JWS_BIT(TG_JWS_ES256));
    static const char *const skipped[] = {"fx-enc", "fx-oct", "fx-okp", "fx-small"};
    for (size_t i = 0; i < TG_ARRAY_LEN(skipped); i++) {
        if (strstr(err, skipped[i]) == NULL)
            fail_msg("notes lack %s: %s", skipped[i], err);
    }
    /* the RSA key is the one in rsa-public.pem */
    size_t plen;
    char *pem = read_fixture("rsa-public.pem", &plen);
    struct tg_jwk_key k;
    assert_int_equal(tg_jwks_key_from_pem(pem, plen, &k, err, sizeof(err)), 0);
    assert_string_equal(k.pem, set.keys[0].pem);
    tg_jwks_key_cleanup(&k);
    free(pem);
    tg_jwks_cleanup(&set);
    free(doc);
}

static char *pkey_pem(EVP_PKEY *k, bool priv)
{
    BIO *mem = BIO_new(BIO_s_mem());
    if (priv)
        assert_int_equal(PEM_write_bio_PrivateKey(mem, k, NULL, NULL, 0, NULL, NULL), 1);
    else
        assert_int_equal(PEM_write_bio_PUBKEY(mem, k), 1);
    char *data;
    long n = BIO_get_mem_data(mem, &data);
    char *out = malloc((size_t)n + 1);
    memcpy(out, data, (size_t)n);
    out[n] = '\0';
    BIO_free(mem);
    return out;
}

static void test_key_from_pem(void **state)
{
    (void)state;
    static const struct {
        int line;
        const char *file;
        unsigned mask; /* 0: refused */
        const char *err;
    } files[] = {
        {__LINE__, "rsa-public.pem", TG_JWS_RSA_ALGS, NULL},
        {__LINE__, "rsa-public-pkcs1.pem", TG_JWS_RSA_ALGS, NULL},
        {__LINE__, "rsa-cert.pem", TG_JWS_RSA_ALGS, NULL},
        {__LINE__, "ec256-public.pem", TG_JWS_BIT(TG_JWS_ES256), NULL},
        {__LINE__, "rsa-private.pem", 0, "private key"},
        {__LINE__, "rsa1024-public.pem", 0, "1024 bits"},
        {__LINE__, "jwks.json", 0, "not a PEM public key"},
    };
    char *first_rsa = NULL;
    for (size_t i = 0; i < TG_ARRAY_LEN(files); i++) {
        size_t len;
        char *pem = read_fixture(files[i].file, &len);
        struct tg_jwk_key k;
        char err[256] = "";
        int rc = tg_jwks_key_from_pem(pem, len, &k, err, sizeof(err));
        if (files[i].mask == 0) {
            if (rc != -1 || strstr(err, files[i].err) == NULL)
                fail_msg("line %d: rc=%d err=%s", files[i].line, rc, err);
            assert_null(k.pem);
        } else {
            if (rc != 0 || k.alg_mask != files[i].mask)
                fail_msg("line %d: rc=%d err=%s", files[i].line, rc, err);
            assert_non_null(strstr(k.pem, "-----BEGIN PUBLIC KEY-----"));
            assert_false(k.has_kid);
            /* every RSA spelling gives the same SPKI */
            if (files[i].mask == TG_JWS_RSA_ALGS) {
                if (first_rsa == NULL)
                    first_rsa = strdup(k.pem);
                else
                    assert_string_equal(first_rsa, k.pem);
                assert_int_equal(k.sig_bytes, 256);
            }
            tg_jwks_key_cleanup(&k);
            assert_null(k.pem);
        }
        free(pem);
    }
    free(first_rsa);

    /* generated keys */
    struct tg_jwk_key k;
    char err[256];
    char *pem = pkey_pem(ec384, false);
    assert_int_equal(tg_jwks_key_from_pem(pem, strlen(pem), &k, err, sizeof(err)), 0);
    assert_int_equal(k.alg_mask, TG_JWS_BIT(TG_JWS_ES384));
    assert_int_equal(k.sig_bytes, 96);
    tg_jwks_key_cleanup(&k);
    free(pem);
    pem = pkey_pem(ec256, true);
    assert_int_equal(tg_jwks_key_from_pem(pem, strlen(pem), &k, err, sizeof(err)), -1);
    free(pem);
    EVP_PKEY *ed = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
    assert_non_null(ed);
    pem = pkey_pem(ed, false);
    assert_int_equal(tg_jwks_key_from_pem(pem, strlen(pem), &k, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "not RSA or EC"));
    free(pem);
    EVP_PKEY_free(ed);
    EVP_PKEY *k256k1 = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "secp256k1");
    assert_non_null(k256k1);
    pem = pkey_pem(k256k1, false);
    assert_int_equal(tg_jwks_key_from_pem(pem, strlen(pem), &k, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "secp256k1"));
    free(pem);
    EVP_PKEY_free(k256k1);
    assert_int_equal(tg_jwks_key_from_pem("", 0, &k, err, sizeof(err)), -1);
    assert_int_equal(tg_jwks_key_from_pem(NULL, 10, &k, err, sizeof(err)), -1);
    const char *junk = "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n";
    assert_int_equal(tg_jwks_key_from_pem(junk, strlen(junk), &k, err, sizeof(err)), -1);
    tg_jwks_key_cleanup(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_b64url_vectors),   cmocka_unit_test(test_b64url_strict),
        cmocka_unit_test(test_b64url_roundtrip), cmocka_unit_test(test_alg_names),
        cmocka_unit_test(test_jwks_generated),   cmocka_unit_test(test_jwks_alg_member),
        cmocka_unit_test(test_jwks_skips),       cmocka_unit_test(test_jwks_errors),
        cmocka_unit_test(test_jwks_fixture),     cmocka_unit_test(test_key_from_pem),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
