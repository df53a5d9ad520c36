/* Unit tests for auth/jwt.c: each rejection of issue 4 item 2, acceptance per alg, JWKS by kid. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <jwt.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/pem.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth/jwks.h"
#include "auth/jwt.h"

#define NOW    1700000000
#define SECRET "a-test-secret-that-is-32-bytes!!"
#define TOKCAP 16384

static EVP_PKEY *rsa, *rsa_other, *ec256, *ec384, *ec521, *ec256_other;
static char *rsa_pem, *ec256_pem, *ec384_pem, *ec521_pem;
static struct tg_jwt_keys *ks_hmac, *ks_rsa, *ks_ec256, *ks_ec384, *ks_ec521, *ks_both, *ks_jwks,
    *ks_jwks_one, *ks_empty;
static const struct tg_claims_policy no_policy = {NULL, NULL, 0};

/* ---- token construction (OpenSSL only; no libjwt encoder) ---- */

static size_t b64(const void *p, size_t n, char *out, size_t cap)
{
    ssize_t r = tg_jwks_b64url_encode(p, n, out, cap);
    assert_true(r >= 0);
    return (size_t)r;
}

static const EVP_MD *alg_md(const char *alg)
{
    if (strstr(alg, "256"))
        return EVP_sha256();
    if (strstr(alg, "384"))
        return EVP_sha384();
    return EVP_sha512();
}

/* Signs in[0..n) with pkey: PKCS#1 v1.5 for RSA, raw R||S (JWS) for EC; der = keep ECDSA DER. */
static size_t pkey_sign(EVP_PKEY *pkey, const EVP_MD *md, const char *in, size_t n, uint8_t *sig,
                        bool der)
{
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    size_t len = 0;
    assert_int_equal(EVP_DigestSignInit(ctx, NULL, md, NULL, pkey), 1);
    assert_int_equal(EVP_DigestSign(ctx, NULL, &len, (const unsigned char *)in, n), 1);
    uint8_t *tmp = malloc(len);
    assert_int_equal(EVP_DigestSign(ctx, tmp, &len, (const unsigned char *)in, n), 1);
    EVP_MD_CTX_free(ctx);
    if (!EVP_PKEY_is_a(pkey, "EC") || der) {
        memcpy(sig, tmp, len);
        free(tmp);
        return len;
    }
    const unsigned char *p = tmp;
    ECDSA_SIG *es = d2i_ECDSA_SIG(NULL, &p, (long)len);
    assert_non_null(es);
    size_t coord = ((size_t)EVP_PKEY_get_bits(pkey) + 7) / 8;
    assert_int_equal(BN_bn2binpad(ECDSA_SIG_get0_r(es), sig, (int)coord), (int)coord);
    assert_int_equal(BN_bn2binpad(ECDSA_SIG_get0_s(es), sig + coord, (int)coord), (int)coord);
    ECDSA_SIG_free(es);
    free(tmp);
    return 2 * coord;
}

enum sign_kind { SIGN_EMPTY, SIGN_HMAC, SIGN_PKEY, SIGN_PKEY_DER };
struct signer {
    enum sign_kind kind;
    const void *secret; /* SIGN_HMAC */
    size_t secret_len;
    EVP_PKEY *pkey; /* SIGN_PKEY */
    const EVP_MD *md;
};

/* base64url(header) . base64url(payload) . signature into out; returns the length. */
static size_t make_raw(char *out, const char *header, const char *payload, const struct signer *s)
{
    size_t n = b64(header, strlen(header), out, TOKCAP);
    out[n++] = '.';
    n += b64(payload, strlen(payload), out + n, TOKCAP - n);
    uint8_t sig[1024];
    size_t sn = 0;
    if (s->kind == SIGN_HMAC) {
        unsigned int l = 0;
        assert_non_null(
            HMAC(s->md, s->secret, (int)s->secret_len, (const unsigned char *)out, n, sig, &l));
        sn = l;
    } else if (s->kind == SIGN_PKEY || s->kind == SIGN_PKEY_DER) {
        sn = pkey_sign(s->pkey, s->md, out, n, sig, s->kind == SIGN_PKEY_DER);
    }
    out[n++] = '.';
    n += b64(sig, sn, out + n, TOKCAP - n);
    return n;
}

/* The key the tests sign `alg` with by default. */
static struct signer default_signer(const char *alg)
{
    struct signer s = {SIGN_PKEY, NULL, 0, NULL, alg_md(alg)};
    if (alg[0] == 'H') {
        s.kind = SIGN_HMAC;
        s.secret = SECRET;
        s.secret_len = strlen(SECRET);
    } else if (alg[0] == 'R') {
        s.pkey = rsa;
    } else {
        s.pkey = strstr(alg, "256") ? ec256 : strstr(alg, "384") ? ec384 : ec521;
    }
    return s;
}

static const char *default_payload(void)
{
    static char p[256];
    snprintf(p, sizeof(p),
             "{\"sub\":\"user-1\",\"exp\":%d,\"iat\":%d,\"email\":\"u1@example.com\","
             "\"name\":\"User One\",\"team\":\"t1\",\"role\":\"admin\"}",
             NOW + 3600, NOW);
    return p;
}

/* A token for alg with optional kid, payload (NULL = default) and the default key. */
static size_t make(char *out, const char *alg, const char *kid, const char *payload)
{
    char header[256];
    if (kid)
        snprintf(header, sizeof(header), "{\"alg\":\"%s\",\"typ\":\"JWT\",\"kid\":\"%s\"}", alg,
                 kid);
    else
        snprintf(header, sizeof(header), "{\"alg\":\"%s\",\"typ\":\"JWT\"}", alg);
    struct signer s = default_signer(alg);
    return make_raw(out, header, payload ? payload : default_payload(), &s);
}

static enum tg_jwt_status verify_pol(const struct tg_jwt_keys *k, const char *tok, size_t n,
                                     int64_t now, const struct tg_claims_policy *pol)
{
    struct tg_claims c;
    memset(&c, 0x5a, sizeof(c));
    enum tg_jwt_status st = tg_jwt_verify(k, tok, n, now, pol, &c);
    if (st != TG_JWT_OK) {
        /* nothing leaks out of a failed verification */
        static const struct tg_claims zero;
        assert_memory_equal(&c, &zero, sizeof(c));
    }
    return st;
}

static enum tg_jwt_status verify(const struct tg_jwt_keys *k, const char *tok, size_t n)
{
    return verify_pol(k, tok, n, NOW, &no_policy);
}

static char *read_fixture(const char *name, size_t *len)
{
    char path[512];
    snprintf(path, sizeof(path), "%s/jwt/%s", TG_FIXTURES_DIR, name);
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        fail_msg("cannot open %s", path);
    char *buf = malloc(65536);
    size_t n = fread(buf, 1, 65535, f);
    fclose(f);
    while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r'))
        n--;
    buf[n] = '\0';
    *len = n;
    return buf;
}

#define EXPECT(want, got)                                                                          \
    do {                                                                                           \
        enum tg_jwt_status got_ = (got);                                                           \
        if (got_ != (want))                                                                        \
            fail_msg("got %s, want %s", tg_jwt_status_name(got_), tg_jwt_status_name(want));       \
    } while (0)

/* ---- fixtures ---- */

static char *pem_of(EVP_PKEY *k)
{
    BIO *mem = BIO_new(BIO_s_mem());
    assert_int_equal(PEM_write_bio_PUBKEY(mem, k), 1);
    char *data;
    long n = BIO_get_mem_data(mem, &data);
    char *out = malloc((size_t)n + 1);
    memcpy(out, data, (size_t)n);
    out[n] = '\0';
    BIO_free(mem);
    return out;
}

static void b64_bn(EVP_PKEY *k, const char *param, size_t pad, char *out, size_t cap)
{
    BIGNUM *bn = NULL;
    assert_int_equal(EVP_PKEY_get_bn_param(k, param, &bn), 1);
    uint8_t raw[600];
    int n = pad ? BN_bn2binpad(bn, raw, (int)pad) : BN_bn2bin(bn, raw);
    b64(raw, (size_t)n, out, cap);
    BN_free(bn);
}

static void jwk_json(EVP_PKEY *k, const char *kid, const char *extra, char *out, size_t cap)
{
    char a[800], b[800];
    if (EVP_PKEY_is_a(k, "RSA")) {
        b64_bn(k, OSSL_PKEY_PARAM_RSA_N, 0, a, sizeof(a));
        b64_bn(k, OSSL_PKEY_PARAM_RSA_E, 0, b, sizeof(b));
        snprintf(out, cap, "{\"kty\":\"RSA\",\"kid\":\"%s\",\"n\":\"%s\",\"e\":\"%s\"%s}", kid, a,
                 b, extra);
        return;
    }
    int bits = EVP_PKEY_get_bits(k);
    size_t coord = ((size_t)bits + 7) / 8;
    b64_bn(k, OSSL_PKEY_PARAM_EC_PUB_X, coord, a, sizeof(a));
    b64_bn(k, OSSL_PKEY_PARAM_EC_PUB_Y, coord, b, sizeof(b));
    snprintf(out, cap,
             "{\"kty\":\"EC\",\"kid\":\"%s\",\"crv\":\"P-%d\",\"x\":\"%s\",\"y\":\"%s\"%s}", kid,
             bits, a, b, extra);
}

static struct tg_jwt_keys *keys(const char *secret, const char *pem)
{
    char err[256];
    struct tg_jwt_keys *k = tg_jwt_keys_create(secret, secret ? strlen(secret) : 0, pem,
                                               pem ? strlen(pem) : 0, err, sizeof(err));
    if (k == NULL)
        fail_msg("tg_jwt_keys_create: %s", err);
    return k;
}

static int setup(void **state)
{
    (void)state;
    rsa = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
    rsa_other = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
    ec256 = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    ec384 = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-384");
    ec521 = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-521");
    ec256_other = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    if (!rsa || !rsa_other || !ec256 || !ec384 || !ec521 || !ec256_other)
        return -1;
    rsa_pem = pem_of(rsa);
    ec256_pem = pem_of(ec256);
    ec384_pem = pem_of(ec384);
    ec521_pem = pem_of(ec521);
    ks_hmac = keys(SECRET, NULL);
    ks_rsa = keys(NULL, rsa_pem);
    ks_ec256 = keys(NULL, ec256_pem);
    ks_ec384 = keys(NULL, ec384_pem);
    ks_ec521 = keys(NULL, ec521_pem);
    ks_both = keys(SECRET, rsa_pem);
    ks_empty = keys(NULL, NULL);

    static char doc[8000], j1[2000], j2[600], j3[600];
    char err[512];
    jwk_json(rsa, "r1", ",\"alg\":\"RS256\",\"use\":\"sig\"", j1, sizeof(j1));
    jwk_json(ec256, "e1", "", j2, sizeof(j2));
    jwk_json(ec384, "e3", "", j3, sizeof(j3));
    snprintf(doc, sizeof(doc), "{\"keys\":[%s,%s,%s]}", j1, j2, j3);
    ks_jwks = keys(NULL, NULL);
    if (tg_jwt_keys_add_jwks(ks_jwks, doc, strlen(doc), err, sizeof(err)) != 0)
        fail_msg("jwks: %s", err);
    jwk_json(rsa, "only", "", j1, sizeof(j1));
    snprintf(doc, sizeof(doc), "{\"keys\":[%s]}", j1);
    ks_jwks_one = keys(NULL, NULL);
    if (tg_jwt_keys_add_jwks(ks_jwks_one, doc, strlen(doc), err, sizeof(err)) != 0)
        fail_msg("jwks: %s", err);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    struct tg_jwt_keys *all[] = {ks_hmac, ks_rsa,  ks_ec256,    ks_ec384, ks_ec521,
                                 ks_both, ks_jwks, ks_jwks_one, ks_empty};
    for (size_t i = 0; i < TG_ARRAY_LEN(all); i++)
        tg_jwt_keys_unref(all[i]);
    EVP_PKEY *pk[] = {rsa, rsa_other, ec256, ec384, ec521, ec256_other};
    for (size_t i = 0; i < TG_ARRAY_LEN(pk); i++)
        EVP_PKEY_free(pk[i]);
    free(rsa_pem);
    free(ec256_pem);
    free(ec384_pem);
    free(ec521_pem);
    return 0;
}

/* ---- acceptance ---- */

static void accept_alg(struct tg_jwt_keys *k, const char *alg, const char *kid)
{
    char tok[TOKCAP];
    size_t n = make(tok, alg, kid, NULL);
    struct tg_claims c;
    enum tg_jwt_status st = tg_jwt_verify(k, tok, n, NOW, &no_policy, &c);
    if (st != TG_JWT_OK)
        fail_msg("%s kid=%s: %s", alg, kid ? kid : "-", tg_jwt_status_name(st));
    assert_string_equal(c.sub, "user-1");
    assert_int_equal(c.sub_len, 6);
    assert_string_equal(c.email, "u1@example.com");
    assert_string_equal(c.name, "User One");
    assert_string_equal(c.team, "t1");
    assert_true(c.is_admin);
    assert_int_equal(c.exp, NOW + 3600);
    /* libjwt agrees on its own (a sanity check of the tokens we build) */
    const char *key = NULL;
    if (alg[0] == 'H')
        key = SECRET;
    jwt_t *j = NULL;
    if (key != NULL) {
        char z[TOKCAP];
        memcpy(z, tok, n);
        z[n] = '\0';
        assert_int_equal(jwt_decode(&j, z, (const unsigned char *)key, (int)strlen(key)), 0);
        jwt_free(j);
    }
}

static void test_accept_hs(void **state)
{
    (void)state;
    accept_alg(ks_hmac, "HS256", NULL);
    accept_alg(ks_hmac, "HS384", NULL);
    accept_alg(ks_hmac, "HS512", NULL);
    accept_alg(ks_both, "HS256", NULL);
    accept_alg(ks_hmac, "HS256", "ignored-without-jwks");
}

static void test_accept_rs(void **state)
{
    (void)state;
    accept_alg(ks_rsa, "RS256", NULL);
    accept_alg(ks_rsa, "RS384", NULL);
    accept_alg(ks_rsa, "RS512", NULL);
    accept_alg(ks_both, "RS512", NULL);
}

static void test_accept_es(void **state)
{
    (void)state;
    accept_alg(ks_ec256, "ES256", NULL);
    accept_alg(ks_ec384, "ES384", NULL);
    accept_alg(ks_ec521, "ES512", NULL);
}

static void test_accept_jwks_by_kid(void **state)
{
    (void)state;
    accept_alg(ks_jwks, "RS256", "r1");
    accept_alg(ks_jwks, "ES256", "e1");
    accept_alg(ks_jwks, "ES384", "e3");
    /* a one-key set serves tokens without kid */
    accept_alg(ks_jwks_one, "RS256", NULL);
    accept_alg(ks_jwks_one, "RS512", "only");
    /* the JWK's alg pins RS256 for r1 */
    char tok[TOKCAP];
    EXPECT(TG_JWT_BAD_ALG, verify(ks_jwks, tok, make(tok, "RS384", "r1", NULL)));
    /* the curve pins ES256 for e1 */
    EXPECT(TG_JWT_BAD_ALG, verify(ks_jwks, tok, make(tok, "ES384", "e1", NULL)));
    /* several keys and no kid: nothing to choose by */
    EXPECT(TG_JWT_NO_KEY, verify(ks_jwks, tok, make(tok, "RS256", NULL, NULL)));
    /* a token signed by r1's key but naming e1 */
    EXPECT(TG_JWT_BAD_ALG, verify(ks_jwks, tok, make(tok, "RS256", "e1", NULL)));
    assert_int_equal(tg_jwt_keys_jwks_count(ks_jwks), 3);
}

/* ---- issue 4 item 2: each rejection ---- */

static void test_reject_alg_none(void **state)
{
    (void)state;
    /* hand-made: {"alg":"none"} . {"sub":"admin","exp":...,"role":"admin"} . (empty) */
    char payload[128];
    snprintf(payload, sizeof(payload), "{\"sub\":\"admin\",\"exp\":%d,\"role\":\"admin\"}",
             NOW + 3600);
    static const char *const headers[] = {
        "{\"alg\":\"none\"}", "{\"alg\":\"none\",\"typ\":\"JWT\"}",
        "{\"alg\":\"None\"}", "{\"alg\":\"NONE\"}",
        "{\"alg\":\"nOnE\"}", "{\"alg\":\"none\",\"kid\":\"r1\"}",
    };
    struct tg_jwt_keys *sets[] = {ks_hmac, ks_rsa, ks_both, ks_jwks, ks_jwks_one, ks_empty};
    struct signer empty = {SIGN_EMPTY, NULL, 0, NULL, NULL};
    struct signer hmac = {SIGN_HMAC, SECRET, strlen(SECRET), NULL, EVP_sha256()};
    for (size_t h = 0; h < TG_ARRAY_LEN(headers); h++) {
        char tok[TOKCAP];
        size_t n = make_raw(tok, headers[h], payload, &empty);
        assert_int_equal(tok[n - 1], '.');
        for (size_t s = 0; s < TG_ARRAY_LEN(sets); s++)
            EXPECT(TG_JWT_BAD_ALG, verify(sets[s], tok, n));
        /* a none token carrying a (valid HMAC) signature anyway */
        n = make_raw(tok, headers[h], payload, &hmac);
        for (size_t s = 0; s < TG_ARRAY_LEN(sets); s++)
            EXPECT(TG_JWT_BAD_ALG, verify(sets[s], tok, n));
    }
    /* the classic literal */
    const char *lit = "eyJhbGciOiJub25lIn0.eyJzdWIiOiJhZG1pbiIsImV4cCI6NDEwMjQ0NDgwMH0.";
    EXPECT(TG_JWT_BAD_ALG, verify(ks_hmac, lit, strlen(lit)));
}

static void test_reject_alg_confusion(void **state)
{
    (void)state;
    /* HS tokens whose HMAC secret is the text of the configured public key: the file as
     * configured (PKCS#1 here) and the SPKI PEM that libjwt is handed for it */
    size_t pkcs1_len, spki_len;
    char *pkcs1 = read_fixture("rsa-public-pkcs1.pem", &pkcs1_len);
    char *spki = read_fixture("rsa-public.pem", &spki_len);
    struct tg_jwt_keys *from_pkcs1 = keys(NULL, pkcs1);
    /* read_fixture strips the final newline; the file as configured keeps it */
    char pkcs1_nl[4096];
    snprintf(pkcs1_nl, sizeof(pkcs1_nl), "%s\n", pkcs1);
    char spki_nl[4096];
    snprintf(spki_nl, sizeof(spki_nl), "%s\n", spki);
    struct {
        const char *secret;
        struct tg_jwt_keys *ks;
    } cases[] = {
        {rsa_pem, ks_rsa},  {ec256_pem, ks_ec256}, {pkcs1, from_pkcs1},    {pkcs1_nl, from_pkcs1},
        {spki, from_pkcs1}, {spki_nl, from_pkcs1}, {rsa_pem, ks_jwks_one},
    };
    char payload[128];
    snprintf(payload, sizeof(payload), "{\"sub\":\"attacker\",\"exp\":%d,\"role\":\"admin\"}",
             NOW + 3600);
    static const char *const algs[] = {"HS256", "HS384", "HS512"};
    for (size_t i = 0; i < TG_ARRAY_LEN(cases); i++) {
        for (size_t a = 0; a < TG_ARRAY_LEN(algs); a++) {
            char header[64], tok[TOKCAP];
            snprintf(header, sizeof(header), "{\"alg\":\"%s\",\"typ\":\"JWT\"}", algs[a]);
            struct signer s = {SIGN_HMAC, cases[i].secret, strlen(cases[i].secret), NULL,
                               alg_md(algs[a])};
            size_t n = make_raw(tok, header, payload, &s);
            EXPECT(TG_JWT_BAD_ALG, verify(cases[i].ks, tok, n));
            /* with a kid naming a JWKS key */
            snprintf(header, sizeof(header), "{\"alg\":\"%s\",\"kid\":\"r1\"}", algs[a]);
            n = make_raw(tok, header, payload, &s);
            EXPECT(TG_JWT_BAD_ALG, verify(ks_jwks, tok, n));
        }
    }
    tg_jwt_keys_unref(from_pkcs1);
    free(pkcs1);
    free(spki);
    /* with both a secret and the public key configured, an HS token is checked against the
     * secret only, so the PEM-signed one fails */
    char tok[TOKCAP];
    struct signer s = {SIGN_HMAC, rsa_pem, strlen(rsa_pem), NULL, EVP_sha256()};
    size_t n = make_raw(tok, "{\"alg\":\"HS256\"}", payload, &s);
    EXPECT(TG_JWT_BAD_SIGNATURE, verify(ks_both, tok, n));
    /* the reverse: an RS/ES token when only a secret is configured */
    EXPECT(TG_JWT_BAD_ALG, verify(ks_hmac, tok, make(tok, "RS256", NULL, NULL)));
    EXPECT(TG_JWT_BAD_ALG, verify(ks_hmac, tok, make(tok, "ES256", NULL, NULL)));
    /* the key type fixes the family and the curve fixes the EC alg */
    EXPECT(TG_JWT_BAD_ALG, verify(ks_rsa, tok, make(tok, "ES256", NULL, NULL)));
    EXPECT(TG_JWT_BAD_ALG, verify(ks_ec256, tok, make(tok, "RS256", NULL, NULL)));
    EXPECT(TG_JWT_BAD_ALG, verify(ks_ec256, tok, make(tok, "ES384", NULL, NULL)));
    EXPECT(TG_JWT_BAD_ALG, verify(ks_ec384, tok, make(tok, "ES512", NULL, NULL)));
}

static void test_reject_bad_signature(void **state)
{
    (void)state;
    char tok[TOKCAP];
    size_t n;
    /* wrong HMAC secret */
    struct signer wrong = {SIGN_HMAC, "another-secret", 14, NULL, EVP_sha256()};
    n = make_raw(tok, "{\"alg\":\"HS256\"}", default_payload(), &wrong);
    EXPECT(TG_JWT_BAD_SIGNATURE, verify(ks_hmac, tok, n));
    /* another RSA / EC key */
    struct signer other = {SIGN_PKEY, NULL, 0, rsa_other, EVP_sha256()};
    n = make_raw(tok, "{\"alg\":\"RS256\"}", default_payload(), &other);
    EXPECT(TG_JWT_BAD_SIGNATURE, verify(ks_rsa, tok, n));
    other.pkey = ec256_other;
    n = make_raw(tok, "{\"alg\":\"ES256\"}", default_payload(), &other);
    EXPECT(TG_JWT_BAD_SIGNATURE, verify(ks_ec256, tok, n));
    other.pkey = rsa_other;
    n = make_raw(tok, "{\"alg\":\"RS256\",\"kid\":\"only\"}", default_payload(), &other);
    EXPECT(TG_JWT_BAD_SIGNATURE, verify(ks_jwks_one, tok, n));
    /* ECDSA as DER instead of raw R||S */
    struct signer der = {SIGN_PKEY_DER, NULL, 0, ec256, EVP_sha256()};
    n = make_raw(tok, "{\"alg\":\"ES256\"}", default_payload(), &der);
    EXPECT(TG_JWT_BAD_SIGNATURE, verify(ks_ec256, tok, n));

    /* one bit flipped in each signature byte position, for each family */
    static const struct {
        const char *alg;
        struct tg_jwt_keys **ks;
    } algs[] = {{"HS256", &ks_hmac}, {"RS256", &ks_rsa}, {"ES256", &ks_ec256}};
    for (size_t a = 0; a < TG_ARRAY_LEN(algs); a++) {
        n = make(tok, algs[a].alg, NULL, NULL);
        EXPECT(TG_JWT_OK, verify(*algs[a].ks, tok, n));
        size_t sig_at = (size_t)(strrchr(tok, '.') - tok) + 1;
        for (size_t i = sig_at; i + 1 < n; i += 7) {
            char c = tok[i];
            tok[i] = c == 'A' ? 'B' : 'A';
            EXPECT(TG_JWT_BAD_SIGNATURE, verify(*algs[a].ks, tok, n));
            tok[i] = c;
        }
        /* the signature of another payload */
        char tok2[TOKCAP];
        size_t n2 = make(tok2, algs[a].alg, NULL, "{\"sub\":\"someone-else\",\"exp\":1800000000}");
        size_t sig2 = (size_t)(strrchr(tok2, '.') - tok2) + 1;
        char spliced[TOKCAP];
        memcpy(spliced, tok, sig_at);
        memcpy(spliced + sig_at, tok2 + sig2, n2 - sig2);
        EXPECT(TG_JWT_BAD_SIGNATURE, verify(*algs[a].ks, spliced, sig_at + n2 - sig2));
        /* truncated, extended, missing */
        EXPECT(TG_JWT_BAD_SIGNATURE, verify(*algs[a].ks, tok, n - 2));
        EXPECT(TG_JWT_BAD_SIGNATURE, verify(*algs[a].ks, tok, sig_at));
        memcpy(spliced, tok, n);
        memcpy(spliced + n, "AAAA", 4);
        EXPECT(TG_JWT_BAD_SIGNATURE, verify(*algs[a].ks, spliced, n + 4));
    }
    /* the payload changed after signing */
    n = make(tok, "HS256", NULL, "{\"sub\":\"user-1\",\"exp\":1800000000,\"role\":\"user\"}");
    char forged[TOKCAP];
    char *dot1 = strchr(tok, '.'), *dot2 = strrchr(tok, '.');
    char body[256];
    size_t bn =
        b64("{\"sub\":\"user-1\",\"exp\":1800000000,\"role\":\"admin\"}", 48, body, sizeof(body));
    size_t fn = (size_t)(dot1 - tok) + 1;
    memcpy(forged, tok, fn);
    memcpy(forged + fn, body, bn);
    fn += bn;
    memcpy(forged + fn, dot2, (size_t)(tok + n - dot2));
    fn += (size_t)(tok + n - dot2);
    EXPECT(TG_JWT_BAD_SIGNATURE, verify(ks_hmac, forged, fn));
}

static void test_reject_expired_beyond_leeway(void **state)
{
    (void)state;
    char tok[TOKCAP], payload[128];
    snprintf(payload, sizeof(payload), "{\"sub\":\"u\",\"exp\":%d}", NOW - 100);
    size_t n = make(tok, "HS256", NULL, payload);
    struct tg_claims_policy none = {NULL, NULL, 0}, small = {NULL, NULL, 99},
                            exact = {NULL, NULL, 100}, big = {NULL, NULL, 300};
    EXPECT(TG_JWT_EXPIRED, verify_pol(ks_hmac, tok, n, NOW, &none));
    EXPECT(TG_JWT_EXPIRED, verify_pol(ks_hmac, tok, n, NOW, &small));
    EXPECT(TG_JWT_EXPIRED, verify_pol(ks_hmac, tok, n, NOW, &exact));
    /* accepted within the leeway */
    EXPECT(TG_JWT_OK, verify_pol(ks_hmac, tok, n, NOW, &big));
    EXPECT(TG_JWT_OK, verify_pol(ks_hmac, tok, n, NOW - 101, &none));
    /* no exp at all */
    n = make(tok, "HS256", NULL, "{\"sub\":\"u\"}");
    EXPECT(TG_JWT_NO_EXP, verify_pol(ks_hmac, tok, n, NOW, &big));
}

static void test_reject_nbf_in_future(void **state)
{
    (void)state;
    char tok[TOKCAP], payload[128];
    snprintf(payload, sizeof(payload), "{\"sub\":\"u\",\"exp\":%d,\"nbf\":%d}", NOW + 3600,
             NOW + 60);
    size_t n = make(tok, "RS256", NULL, payload);
    struct tg_claims_policy none = {NULL, NULL, 0}, leeway = {NULL, NULL, 60};
    EXPECT(TG_JWT_NOT_YET_VALID, verify_pol(ks_rsa, tok, n, NOW, &none));
    EXPECT(TG_JWT_OK, verify_pol(ks_rsa, tok, n, NOW, &leeway));
    EXPECT(TG_JWT_OK, verify_pol(ks_rsa, tok, n, NOW + 60, &none));
}

static void test_reject_wrong_issuer(void **state)
{
    (void)state;
    struct tg_claims_policy pol = {"https://idp.example.com/", NULL, 0};
    char tok[TOKCAP], payload[160];
    snprintf(payload, sizeof(payload), "{\"sub\":\"u\",\"exp\":%d,\"iss\":\"%s\"}", NOW + 60,
             "https://evil.example.com/");
    EXPECT(TG_JWT_BAD_ISSUER,
           verify_pol(ks_hmac, tok, make(tok, "HS256", NULL, payload), NOW, &pol));
    snprintf(payload, sizeof(payload), "{\"sub\":\"u\",\"exp\":%d}", NOW + 60);
    EXPECT(TG_JWT_BAD_ISSUER,
           verify_pol(ks_hmac, tok, make(tok, "HS256", NULL, payload), NOW, &pol));
    snprintf(payload, sizeof(payload), "{\"sub\":\"u\",\"exp\":%d,\"iss\":\"%s\"}", NOW + 60,
             "https://idp.example.com/");
    EXPECT(TG_JWT_OK, verify_pol(ks_hmac, tok, make(tok, "HS256", NULL, payload), NOW, &pol));
}

static void test_reject_wrong_audience(void **state)
{
    (void)state;
    struct tg_claims_policy pol = {NULL, "tollgate", 0};
    static const struct {
        int line;
        const char *aud; /* JSON value, NULL = absent */
        enum tg_jwt_status want;
    } rows[] = {
        {__LINE__, "\"tollgate\"", TG_JWT_OK},
        {__LINE__, "\"other\"", TG_JWT_BAD_AUDIENCE},
        {__LINE__, "[\"a\",\"tollgate\"]", TG_JWT_OK},
        {__LINE__, "[\"a\",\"b\"]", TG_JWT_BAD_AUDIENCE},
        {__LINE__, "[]", TG_JWT_BAD_AUDIENCE},
        {__LINE__, NULL, TG_JWT_BAD_AUDIENCE},
        {__LINE__, "[\"tollgate\",7]", TG_JWT_BAD_CLAIM},
    };
    for (size_t i = 0; i < TG_ARRAY_LEN(rows); i++) {
        char tok[TOKCAP], payload[160];
        if (rows[i].aud)
            snprintf(payload, sizeof(payload), "{\"sub\":\"u\",\"exp\":%d,\"aud\":%s}", NOW + 60,
                     rows[i].aud);
        else
            snprintf(payload, sizeof(payload), "{\"sub\":\"u\",\"exp\":%d}", NOW + 60);
        enum tg_jwt_status st =
            verify_pol(ks_ec256, tok, make(tok, "ES256", NULL, payload), NOW, &pol);
        if (st != rows[i].want)
            fail_msg("line %d: %s", rows[i].line, tg_jwt_status_name(st));
    }
}

static void test_reject_missing_sub(void **state)
{
    (void)state;
    char tok[TOKCAP], payload[128];
    snprintf(payload, sizeof(payload), "{\"exp\":%d,\"role\":\"admin\"}", NOW + 60);
    EXPECT(TG_JWT_NO_SUBJECT, verify(ks_hmac, tok, make(tok, "HS256", NULL, payload)));
    snprintf(payload, sizeof(payload), "{\"exp\":%d,\"sub\":\"\"}", NOW + 60);
    EXPECT(TG_JWT_NO_SUBJECT, verify(ks_hmac, tok, make(tok, "HS256", NULL, payload)));
    snprintf(payload, sizeof(payload), "{\"exp\":%d,\"sub\":\"a\\r\\nX-Evil: 1\"}", NOW + 60);
    EXPECT(TG_JWT_BAD_CLAIM, verify(ks_hmac, tok, make(tok, "HS256", NULL, payload)));
}

static void test_reject_unknown_kid(void **state)
{
    (void)state;
    char tok[TOKCAP];
    EXPECT(TG_JWT_UNKNOWN_KID, verify(ks_jwks, tok, make(tok, "RS256", "nope", NULL)));
    EXPECT(TG_JWT_UNKNOWN_KID, verify(ks_jwks, tok, make(tok, "RS256", "R1", NULL)));
    EXPECT(TG_JWT_UNKNOWN_KID, verify(ks_jwks, tok, make(tok, "RS256", "", NULL)));
    EXPECT(TG_JWT_UNKNOWN_KID, verify(ks_jwks_one, tok, make(tok, "RS256", "r1", NULL)));
}

static void test_reject_two_dots_malformed(void **state)
{
    (void)state;
    char tok[TOKCAP];
    size_t n = make(tok, "HS256", NULL, NULL);
    char *dot1 = strchr(tok, '.');
    char *dot2 = strrchr(tok, '.');
    static const char *const lits[] = {"..", "a..", "..c", ".b.c", "a..c", "...", "."};
    for (size_t i = 0; i < TG_ARRAY_LEN(lits); i++) {
        enum tg_jwt_status st = verify(ks_hmac, lits[i], strlen(lits[i]));
        if (st != TG_JWT_MALFORMED)
            fail_msg("%s: %s", lits[i], tg_jwt_status_name(st));
    }
    /* two dots but an empty header or payload */
    char t[TOKCAP];
    size_t tn = 0;
    t[tn++] = '.';
    memcpy(t + tn, dot1 + 1, (size_t)(tok + n - dot1 - 1));
    tn += (size_t)(tok + n - dot1 - 1);
    EXPECT(TG_JWT_MALFORMED, verify(ks_hmac, t, tn));
    tn = (size_t)(dot1 - tok) + 1;
    memcpy(t, tok, tn);
    memcpy(t + tn, dot2, (size_t)(tok + n - dot2));
    tn += (size_t)(tok + n - dot2);
    EXPECT(TG_JWT_MALFORMED, verify(ks_hmac, t, tn));
    /* one dot: header.payload */
    EXPECT(TG_JWT_MALFORMED, verify(ks_hmac, tok, (size_t)(dot2 - tok)));
    /* no dot */
    EXPECT(TG_JWT_MALFORMED, verify(ks_hmac, tok, (size_t)(dot1 - tok)));
    EXPECT(TG_JWT_MALFORMED, verify(ks_hmac, "", 0));
    EXPECT(TG_JWT_MALFORMED, verify(ks_hmac, NULL, 10));
}

static void test_reject_four_dots(void **state)
{
    (void)state;
    char tok[TOKCAP];
    size_t n = make(tok, "HS256", NULL, NULL);
    EXPECT(TG_JWT_OK, verify(ks_hmac, tok, n));
    /* a valid token with extra segments: three dots, four dots (JWE shape), trailing dot */
    memcpy(tok + n, ".AAAA.BBBB", 10);
    EXPECT(TG_JWT_MALFORMED, verify(ks_hmac, tok, n + 5));
    EXPECT(TG_JWT_MALFORMED, verify(ks_hmac, tok, n + 10));
    EXPECT(TG_JWT_MALFORMED, verify(ks_hmac, tok, n + 1));
    const char *jwe = "eyJhbGciOiJSU0EtT0FFUCIsImVuYyI6IkEyNTZHQ00ifQ.a.b.c.d";
    EXPECT(TG_JWT_MALFORMED, verify(ks_hmac, jwe, strlen(jwe)));
    EXPECT(TG_JWT_MALFORMED, verify(ks_hmac, "....", 4));
}

static void test_reject_non_base64(void **state)
{
    (void)state;
    char tok[TOKCAP];
    size_t n = make(tok, "HS256", NULL, NULL);
    /* a character outside the base64url alphabet in each segment */
    static const char bad[] = {'+', '/', '=', ' ', '%', '\n', '\t', '"', '\\', '\x80', '\xff'};
    size_t positions[] = {3, (size_t)(strchr(tok, '.') - tok) + 3, n - 3};
    for (size_t p = 0; p < TG_ARRAY_LEN(positions); p++) {
        for (size_t b = 0; b < sizeof(bad); b++) {
            char t[TOKCAP];
            memcpy(t, tok, n);
            t[positions[p]] = bad[b];
            EXPECT(TG_JWT_MALFORMED, verify(ks_hmac, t, n));
        }
    }
    /* padded base64 (standard encoders) */
    memcpy(tok + n, "==", 2);
    EXPECT(TG_JWT_MALFORMED, verify(ks_hmac, tok, n + 2));
    /* a header in plain JSON */
    const char *plain = "{\"alg\":\"HS256\"}.e30.AAAA";
    EXPECT(TG_JWT_MALFORMED, verify(ks_hmac, plain, strlen(plain)));
    /* the "Bearer " prefix left on */
    char t[TOKCAP];
    memcpy(t, "Bearer ", 7);
    n = make(t + 7, "HS256", NULL, NULL);
    EXPECT(TG_JWT_MALFORMED, verify(ks_hmac, t, n + 7));
    /* base64url alphabet but an impossible length (len % 4 == 1) or non-zero padding bits */
    n = make(tok, "HS256", NULL, NULL);
    char *dot1 = strchr(tok, '.');
    memmove(dot1 + 1, dot1, (size_t)(tok + n - dot1));
    *dot1 = 'A';
    EXPECT(TG_JWT_MALFORMED, verify(ks_hmac, tok, n + 1));
}

static void test_reject_100k_token(void **state)
{
    (void)state;
    size_t big = 100 * 1024;
    char *t = malloc(big);
    assert_non_null(t);
    size_t n = make(t, "HS256", NULL, NULL);
    memset(t + n, 'A', big - n);
    EXPECT(TG_JWT_TOO_LONG, verify(ks_hmac, t, big));
    /* a well-formed 100 KiB token (huge payload claim) */
    char *payload = malloc(big);
    assert_non_null(payload);
    int off = snprintf(payload, big, "{\"sub\":\"u\",\"exp\":%d,\"pad\":\"", NOW + 60);
    memset(payload + off, 'x', big - (size_t)off - 3);
    memcpy(payload + big - 3, "\"}", 3);
    char *tok = malloc(big * 2);
    assert_non_null(tok);
    char header[] = "{\"alg\":\"HS256\"}";
    size_t hn = b64(header, strlen(header), tok, big * 2);
    tok[hn++] = '.';
    size_t pn = b64(payload, strlen(payload), tok + hn, big * 2 - hn);
    memcpy(tok + hn + pn, ".AAAA", 5);
    EXPECT(TG_JWT_TOO_LONG, verify(ks_hmac, tok, hn + pn + 5));
    free(tok);
    free(payload);
    free(t);
}

static void test_token_size_limit(void **state)
{
    (void)state;
    /* a payload padded so that the whole token is exactly TG_JWT_MAX_TOKEN_BYTES */
    char *payload = malloc(TOKCAP);
    char *tok = malloc(TOKCAP);
    assert_non_null(payload);
    assert_non_null(tok);
    size_t pad = 0;
    size_t n = 0;
    for (int round = 0; round < 2; round++) {
        int off = snprintf(payload, TOKCAP, "{\"sub\":\"u\",\"exp\":%d,\"pad\":\"", NOW + 60);
        memset(payload + off, 'x', pad);
        memcpy(payload + off + pad, "\"}", 3);
        n = make(tok, "HS256", NULL, payload);
        if (n < TG_JWT_MAX_TOKEN_BYTES)
            pad += (TG_JWT_MAX_TOKEN_BYTES - n) * 3 / 4;
    }
    /* nudge to the exact length */
    while (n < TG_JWT_MAX_TOKEN_BYTES) {
        pad++;
        int off = snprintf(payload, TOKCAP, "{\"sub\":\"u\",\"exp\":%d,\"pad\":\"", NOW + 60);
        memset(payload + off, 'x', pad);
        memcpy(payload + off + pad, "\"}", 3);
        n = make(tok, "HS256", NULL, payload);
    }
    assert_int_equal(n, TG_JWT_MAX_TOKEN_BYTES);
    EXPECT(TG_JWT_OK, verify(ks_hmac, tok, n));
    pad++;
    int off = snprintf(payload, TOKCAP, "{\"sub\":\"u\",\"exp\":%d,\"pad\":\"", NOW + 60);
    memset(payload + off, 'x', pad);
    memcpy(payload + off + pad, "\"}", 3);
    n = make(tok, "HS256", NULL, payload);
    assert_true(n > TG_JWT_MAX_TOKEN_BYTES);
    EXPECT(TG_JWT_TOO_LONG, verify(ks_hmac, tok, n));
    free(payload);
    free(tok);
}

static void test_reject_nul_bytes(void **state)
{
    (void)state;
    char tok[TOKCAP];
    size_t n = make(tok, "HS256", NULL, NULL);
    EXPECT(TG_JWT_OK, verify(ks_hmac, tok, n));
    /* NUL replacing a byte, and NUL inserted, at every position */
    for (size_t i = 0; i < n; i++) {
        char t[TOKCAP];
        memcpy(t, tok, n);
        t[i] = '\0';
        EXPECT(TG_JWT_MALFORMED, verify(ks_hmac, t, n));
        memcpy(t, tok, i);
        t[i] = '\0';
        memcpy(t + i + 1, tok + i, n - i);
        EXPECT(TG_JWT_MALFORMED, verify(ks_hmac, t, n + 1));
    }
    /* trailing NUL (a C string length off by one) */
    tok[n] = '\0';
    EXPECT(TG_JWT_MALFORMED, verify(ks_hmac, tok, n + 1));
    /* a NUL inside the decoded payload is the payload's business (claims), not a crash */
    char payload[128];
    snprintf(payload, sizeof(payload), "{\"sub\":\"u\\u0000v\",\"exp\":%d}", NOW + 60);
    n = make(tok, "HS256", NULL, payload);
    enum tg_jwt_status st = verify(ks_hmac, tok, n);
    assert_true(st == TG_JWT_BAD_CLAIM || st == TG_JWT_BAD_SIGNATURE);
}

/* ---- header and payload shapes ---- */

static void test_header_shapes(void **state)
{
    (void)state;
    static const struct {
        int line;
        const char *header;
        enum tg_jwt_status want;
    } rows[] = {
        {__LINE__, "{\"alg\":\"HS256\"}", TG_JWT_OK},
        {__LINE__, "{\"typ\":\"JWT\",\"alg\":\"HS256\"}", TG_JWT_OK},
        {__LINE__, "{\"alg\":\"HS256\",\"typ\":\"jwt\"}", TG_JWT_OK},
        {__LINE__, " { \"alg\" : \"HS256\" } ", TG_JWT_OK},
        {__LINE__, "{\"alg\":\"HS\\u0032\\u0035\\u0036\"}", TG_JWT_OK},
        {__LINE__, "{\"alg\":\"HS256\",\"typ\":\"at+jwt\"}", TG_JWT_MALFORMED},
        {__LINE__, "{\"alg\":\"HS256\",\"typ\":\"JWTX\"}", TG_JWT_MALFORMED},
        {__LINE__, "{\"alg\":\"HS256\",\"typ\":1}", TG_JWT_MALFORMED},
        {__LINE__, "{\"alg\":\"HS256\",\"crit\":[\"exp\"]}", TG_JWT_MALFORMED},
        {__LINE__, "{\"alg\":\"HS256\",\"alg\":\"HS256\"}", TG_JWT_MALFORMED},
        {__LINE__, "{\"alg\":\"none\",\"alg\":\"HS256\"}", TG_JWT_MALFORMED},
        {__LINE__, "{\"alg\":\"HS256\",\"a\\u006cg\":\"none\"}", TG_JWT_MALFORMED},
        {__LINE__,
         "{\"alg\":\"HS256\",\"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\":"
         "1}",
         TG_JWT_MALFORMED},
        {__LINE__,
         "{\"alg\":\"HS256\",\"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\":"
         "1}",
         TG_JWT_OK},
        {__LINE__, "{\"alg\":[\"HS256\"]}", TG_JWT_MALFORMED},
        {__LINE__, "{\"alg\":null}", TG_JWT_MALFORMED},
        {__LINE__, "{\"typ\":\"JWT\"}", TG_JWT_MALFORMED},
        {__LINE__, "{\"alg\":\"HS256\",\"kid\":5}", TG_JWT_MALFORMED},
        {__LINE__, "[\"HS256\"]", TG_JWT_MALFORMED},
        {__LINE__, "\"HS256\"", TG_JWT_MALFORMED},
        {__LINE__, "{\"alg\":\"HS256\"", TG_JWT_MALFORMED},
        {__LINE__, "{\"alg\":\"HS256\"} x", TG_JWT_MALFORMED},
        {__LINE__, "{\"alg\":\"hs256\"}", TG_JWT_BAD_ALG},
        {__LINE__, "{\"alg\":\"PS256\"}", TG_JWT_BAD_ALG},
        {__LINE__, "{\"alg\":\"EdDSA\"}", TG_JWT_BAD_ALG},
        {__LINE__, "{\"alg\":\"\"}", TG_JWT_BAD_ALG},
        {__LINE__, "{\"alg\":\"HS256\\u0000\"}", TG_JWT_BAD_ALG},
        {__LINE__,
         "{\"alg\":\"HS256\",\"a\":1,\"b\":2,\"c\":3,\"d\":4,\"e\":5,\"f\":6,\"g\":7,"
         "\"h\":8,\"i\":9,\"j\":10,\"k\":11,\"l\":12,\"m\":13,\"n\":14,\"o\":15,\"p\":16}",
         TG_JWT_MALFORMED},
    };
    for (size_t i = 0; i < TG_ARRAY_LEN(rows); i++) {
        char tok[TOKCAP];
        struct signer s = default_signer("HS256");
        size_t n = make_raw(tok, rows[i].header, default_payload(), &s);
        enum tg_jwt_status st = verify(ks_hmac, tok, n);
        if (st != rows[i].want)
            fail_msg("line %d: %s", rows[i].line, tg_jwt_status_name(st));
    }
    /* a kid longer than any JWKS kid */
    char header[300], kid[200];
    memset(kid, 'k', 129);
    kid[129] = '\0';
    snprintf(header, sizeof(header), "{\"alg\":\"RS256\",\"kid\":\"%s\"}", kid);
    char tok[TOKCAP];
    struct signer s = default_signer("RS256");
    EXPECT(TG_JWT_MALFORMED, verify(ks_jwks, tok, make_raw(tok, header, default_payload(), &s)));
}

static void test_keys_never_from_token(void **state)
{
    (void)state;
    /* the attacker signs with their own key and names it in jwk / jku / x5u / x5c */
    char jwk[2000], header[2600], tok[TOKCAP];
    jwk_json(rsa_other, "r1", "", jwk, sizeof(jwk));
    struct signer s = {SIGN_PKEY, NULL, 0, rsa_other, EVP_sha256()};
    snprintf(header, sizeof(header), "{\"alg\":\"RS256\",\"jwk\":%s}", jwk);
    EXPECT(TG_JWT_BAD_SIGNATURE, verify(ks_rsa, tok, make_raw(tok, header, default_payload(), &s)));
    snprintf(header, sizeof(header),
             "{\"alg\":\"RS256\",\"kid\":\"r1\",\"jku\":\"https://evil.example/jwks\","
             "\"x5u\":\"https://evil.example/cert\",\"x5c\":[\"AAAA\"]}");
    EXPECT(TG_JWT_BAD_SIGNATURE,
           verify(ks_jwks, tok, make_raw(tok, header, default_payload(), &s)));
}

static void test_payload_shapes(void **state)
{
    (void)state;
    static const struct {
        int line;
        const char *payload;
        enum tg_jwt_status want;
    } rows[] = {
        {__LINE__, "{\"sub\":\"u\",\"exp\":1800000000}", TG_JWT_OK},
        {__LINE__, "{\"sub\":\"u\",\"exp\":1800000000.0}", TG_JWT_OK},
        {__LINE__, "[\"sub\"]", TG_JWT_MALFORMED},
        {__LINE__, "\"text\"", TG_JWT_MALFORMED},
        {__LINE__, "{\"sub\":\"u\",", TG_JWT_MALFORMED},
        {__LINE__, "not json", TG_JWT_MALFORMED},
        {__LINE__, "{\"sub\":\"u\",\"exp\":\"1800000000\"}", TG_JWT_BAD_CLAIM},
        {__LINE__, "{\"sub\":7,\"exp\":1800000000}", TG_JWT_BAD_CLAIM},
    };
    for (size_t i = 0; i < TG_ARRAY_LEN(rows); i++) {
        char tok[TOKCAP];
        enum tg_jwt_status st = verify(ks_hmac, tok, make(tok, "HS256", NULL, rows[i].payload));
        if (st != rows[i].want)
            fail_msg("line %d: %s", rows[i].line, tg_jwt_status_name(st));
    }
    /* empty payload segment */
    const char *t = "eyJhbGciOiJIUzI1NiJ9..AAAA";
    EXPECT(TG_JWT_MALFORMED, verify(ks_hmac, t, strlen(t)));
}

static void test_no_key(void **state)
{
    (void)state;
    char tok[TOKCAP];
    EXPECT(TG_JWT_NO_KEY, verify(ks_empty, tok, make(tok, "HS256", NULL, NULL)));
    EXPECT(TG_JWT_NO_KEY, verify(ks_empty, tok, make(tok, "RS256", "r1", NULL)));
    EXPECT(TG_JWT_NO_KEY, verify(NULL, tok, make(tok, "HS256", NULL, NULL)));
    EXPECT(TG_JWT_BAD_ALG, verify(ks_jwks, tok, make(tok, "HS256", NULL, NULL)));
}

/* ---- libjwt 1.10 alone would accept these: why the pre-checks exist ---- */

static void test_libjwt_alone_is_unsafe(void **state)
{
    (void)state;
    jwt_t *j = NULL;
    /* no key given: any signed token "verifies", as alg none */
    char tok[TOKCAP];
    size_t n = make(tok, "HS256", NULL, NULL);
    tok[n] = '\0';
    assert_int_equal(jwt_decode(&j, tok, NULL, 0), 0);
    assert_int_equal(jwt_get_alg(j), JWT_ALG_NONE);
    jwt_free(j);
    /* algorithm confusion: the public key text used as an HMAC secret verifies */
    struct signer s = {SIGN_HMAC, rsa_pem, strlen(rsa_pem), NULL, EVP_sha256()};
    n = make_raw(tok, "{\"alg\":\"HS256\",\"typ\":\"JWT\"}", default_payload(), &s);
    tok[n] = '\0';
    assert_int_equal(jwt_decode(&j, tok, (const unsigned char *)rsa_pem, (int)strlen(rsa_pem)), 0);
    assert_int_equal(jwt_get_alg(j), JWT_ALG_HS256);
    jwt_free(j);
    /* alg names are matched case-insensitively */
    assert_int_equal(jwt_str_alg("hs256"), JWT_ALG_HS256);
    /* ... and tollgate refuses each */
    EXPECT(TG_JWT_BAD_ALG, verify(ks_rsa, tok, n));
}

/* ---- fixtures made by an independent implementation (Python cryptography) ---- */

static void check_fixture(struct tg_jwt_keys *k, const char *file)
{
    struct tg_claims_policy pol = {"https://idp.example.com/", "tollgate", 0};
    size_t n;
    char *tok = read_fixture(file, &n);
    struct tg_claims c;
    enum tg_jwt_status st = tg_jwt_verify(k, tok, n, 1950000000, &pol, &c);
    if (st != TG_JWT_OK)
        fail_msg("%s: %s", file, tg_jwt_status_name(st));
    assert_string_equal(c.sub, "fixture-user");
    assert_string_equal(c.email, "fixture@example.com");
    assert_string_equal(c.name, "Fixture User");
    assert_string_equal(c.team, "fixtures");
    assert_true(c.is_admin);
    assert_int_equal(c.exp, 2000000000);
    EXPECT(TG_JWT_EXPIRED, tg_jwt_verify(k, tok, n, 2000000000, &pol, &c));
    EXPECT(TG_JWT_NOT_YET_VALID, tg_jwt_verify(k, tok, n, 1899999999, &pol, &c));
    struct tg_claims_policy other = {"https://idp.example.com/", "someone-else", 0};
    EXPECT(TG_JWT_BAD_AUDIENCE, tg_jwt_verify(k, tok, n, 1950000000, &other, &c));
    free(tok);
}

static void test_fixture_tokens(void **state)
{
    (void)state;
    char err[512];
    size_t len, slen;
    char *secret = read_fixture("hs-secret.txt", &slen);
    struct tg_jwt_keys *k = tg_jwt_keys_create(secret, slen, NULL, 0, err, sizeof(err));
    assert_non_null(k);
    check_fixture(k, "hs256.jwt");
    tg_jwt_keys_unref(k);
    free(secret);

    char *jwks = read_fixture("jwks.json", &len);
    k = tg_jwt_keys_create(NULL, 0, NULL, 0, err, sizeof(err));
    assert_non_null(k);
    assert_int_equal(tg_jwt_keys_add_jwks(k, jwks, len, err, sizeof(err)), 0);
    assert_non_null(strstr(err, "fx-oct"));
    assert_int_equal(tg_jwt_keys_jwks_count(k), 2);
    check_fixture(k, "rs256.jwt");
    check_fixture(k, "es256.jwt");
    tg_jwt_keys_unref(k);
    free(jwks);

    static const char *const rsa_files[] = {"rsa-public.pem", "rsa-public-pkcs1.pem",
                                            "rsa-cert.pem"};
    for (size_t i = 0; i < TG_ARRAY_LEN(rsa_files); i++) {
        char *pem = read_fixture(rsa_files[i], &len);
        k = tg_jwt_keys_create(NULL, 0, pem, len, err, sizeof(err));
        if (k == NULL)
            fail_msg("%s: %s", rsa_files[i], err);
        check_fixture(k, "rs256-nokid.jwt");
        /* the HS fixture is refused: wrong family for this key */
        size_t tn;
        char *hs = read_fixture("hs256.jwt", &tn);
        struct tg_claims c;
        EXPECT(TG_JWT_BAD_ALG, tg_jwt_verify(k, hs, tn, 1950000000, &no_policy, &c));
        free(hs);
        tg_jwt_keys_unref(k);
        free(pem);
    }
    char *pem = read_fixture("ec256-public.pem", &len);
    k = tg_jwt_keys_create(NULL, 0, pem, len, err, sizeof(err));
    assert_non_null(k);
    check_fixture(k, "es256.jwt"); /* kid present, no JWKS: the PEM key is used */
    tg_jwt_keys_unref(k);
    free(pem);
}

/* ---- snapshots ---- */

static void test_keys_create(void **state)
{
    (void)state;
    char err[256];
    char big[TG_JWT_MAX_SECRET_BYTES + 1];
    memset(big, 's', sizeof(big));
    assert_null(tg_jwt_keys_create(big, sizeof(big), NULL, 0, err, sizeof(err)));
    assert_non_null(strstr(err, "secret"));
    assert_null(tg_jwt_keys_create(NULL, 0, "garbage", 7, err, sizeof(err)));
    assert_non_null(strstr(err, "not a PEM"));
    size_t len;
    char *priv = read_fixture("rsa-private.pem", &len);
    assert_null(tg_jwt_keys_create(NULL, 0, priv, len, err, sizeof(err)));
    assert_non_null(strstr(err, "private"));
    free(priv);
    char *small = read_fixture("rsa1024-public.pem", &len);
    assert_null(tg_jwt_keys_create(SECRET, strlen(SECRET), small, len, err, sizeof(err)));
    free(small);

    /* a binary secret with NUL bytes works */
    static const char bin[] = {'k', 0, 'e', 0, 'y', 1, 2, 3};
    struct tg_jwt_keys *k = tg_jwt_keys_create(bin, sizeof(bin), NULL, 0, err, sizeof(err));
    assert_non_null(k);
    char tok[TOKCAP];
    struct signer s = {SIGN_HMAC, bin, sizeof(bin), NULL, EVP_sha256()};
    size_t n = make_raw(tok, "{\"alg\":\"HS256\"}", default_payload(), &s);
    EXPECT(TG_JWT_OK, verify(k, tok, n));
    struct signer s2 = {SIGN_HMAC, bin, 1, NULL, EVP_sha256()}; /* "k": cut at the NUL */
    n = make_raw(tok, "{\"alg\":\"HS256\"}", default_payload(), &s2);
    EXPECT(TG_JWT_BAD_SIGNATURE, verify(k, tok, n));

    /* add_jwks failure leaves the snapshot unchanged; success appends */
    assert_int_equal(tg_jwt_keys_add_jwks(k, "{}", 2, err, sizeof(err)), -1);
    assert_int_equal(tg_jwt_keys_jwks_count(k), 0);
    char j1[2000], doc[2100];
    jwk_json(ec256, "a", "", j1, sizeof(j1));
    snprintf(doc, sizeof(doc), "{\"keys\":[%s]}", j1);
    assert_int_equal(tg_jwt_keys_add_jwks(k, doc, strlen(doc), err, sizeof(err)), 0);
    jwk_json(ec384, "b", "", j1, sizeof(j1));
    snprintf(doc, sizeof(doc), "{\"keys\":[%s]}", j1);
    assert_int_equal(tg_jwt_keys_add_jwks(k, doc, strlen(doc), err, sizeof(err)), 0);
    assert_int_equal(tg_jwt_keys_jwks_count(k), 2);
    EXPECT(TG_JWT_OK, verify(k, tok, make(tok, "ES384", "b", NULL)));
    EXPECT(TG_JWT_OK, verify(k, tok, make(tok, "ES256", "a", NULL)));

    /* reference counting */
    tg_jwt_keys_ref(k);
    tg_jwt_keys_unref(k);
    EXPECT(TG_JWT_OK, verify(k, tok, make(tok, "ES256", "a", NULL)));
    tg_jwt_keys_unref(k);
    tg_jwt_keys_unref(NULL);
    assert_int_equal(tg_jwt_keys_jwks_count(NULL), 0);
}

/* ---- threads: concurrent verification while the snapshot is swapped ---- */

struct shared {
    pthread_mutex_t lock;
    struct tg_jwt_keys *current; /* guarded by lock; readers take a ref under it */
    char tokens[5][TOKCAP];
    size_t lens[5];
    enum tg_jwt_status want[5];
    int failures;
};

static void *worker(void *arg)
{
    struct shared *sh = arg;
    for (int i = 0; i < 150; i++) {
        pthread_mutex_lock(&sh->lock);
        struct tg_jwt_keys *k = sh->current;
        tg_jwt_keys_ref(k);
        pthread_mutex_unlock(&sh->lock);
        int t = i % 5;
        struct tg_claims c;
        if (tg_jwt_verify(k, sh->tokens[t], sh->lens[t], NOW, &no_policy, &c) != sh->want[t] ||
            (sh->want[t] == TG_JWT_OK && strcmp(c.sub, "user-1") != 0))
            __atomic_fetch_add(&sh->failures, 1, __ATOMIC_RELAXED);
        tg_jwt_keys_unref(k);
    }
    return NULL;
}

static struct tg_jwt_keys *full_snapshot(void)
{
    char err[256], j1[2000], doc[2100];
    struct tg_jwt_keys *k = keys(SECRET, rsa_pem);
    jwk_json(ec256, "e1", "", j1, sizeof(j1));
    snprintf(doc, sizeof(doc), "{\"keys\":[%s]}", j1);
    assert_int_equal(tg_jwt_keys_add_jwks(k, doc, strlen(doc), err, sizeof(err)), 0);
    return k;
}

static void test_concurrent_verify(void **state)
{
    (void)state;
    static struct shared sh;
    memset(&sh, 0, sizeof(sh));
    pthread_mutex_init(&sh.lock, NULL);
    sh.current = full_snapshot();
    sh.lens[0] = make(sh.tokens[0], "HS256", NULL, NULL);
    sh.lens[1] = make(sh.tokens[1], "RS256", NULL, NULL);
    sh.lens[2] = make(sh.tokens[2], "ES256", "e1", NULL);
    sh.lens[3] = make(sh.tokens[3], "ES256", "gone", NULL);
    struct signer s = {SIGN_HMAC, rsa_pem, strlen(rsa_pem), NULL, EVP_sha256()};
    sh.lens[4] = make_raw(sh.tokens[4], "{\"alg\":\"HS256\"}", default_payload(), &s);
    enum tg_jwt_status want[5] = {TG_JWT_OK, TG_JWT_OK, TG_JWT_OK, TG_JWT_UNKNOWN_KID,
                                  TG_JWT_BAD_SIGNATURE};
    memcpy(sh.want, want, sizeof(want));

    pthread_t th[4];
    for (int i = 0; i < 4; i++)
        assert_int_equal(pthread_create(&th[i], NULL, worker, &sh), 0);
    /* the lead's JWKS refresh: build a new snapshot, swap it in, drop the old reference */
    for (int i = 0; i < 40; i++) {
        struct tg_jwt_keys *fresh = full_snapshot();
        pthread_mutex_lock(&sh.lock);
        struct tg_jwt_keys *old = sh.current;
        sh.current = fresh;
        pthread_mutex_unlock(&sh.lock);
        tg_jwt_keys_unref(old);
    }
    for (int i = 0; i < 4; i++)
        pthread_join(th[i], NULL);
    assert_int_equal(sh.failures, 0);
    tg_jwt_keys_unref(sh.current);
    pthread_mutex_destroy(&sh.lock);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_accept_hs),
        cmocka_unit_test(test_accept_rs),
        cmocka_unit_test(test_accept_es),
        cmocka_unit_test(test_accept_jwks_by_kid),
        cmocka_unit_test(test_reject_alg_none),
        cmocka_unit_test(test_reject_alg_confusion),
        cmocka_unit_test(test_reject_bad_signature),
        cmocka_unit_test(test_reject_expired_beyond_leeway),
        cmocka_unit_test(test_reject_nbf_in_future),
        cmocka_unit_test(test_reject_wrong_issuer),
        cmocka_unit_test(test_reject_wrong_audience),
        cmocka_unit_test(test_reject_missing_sub),
        cmocka_unit_test(test_reject_unknown_kid),
        cmocka_unit_test(test_reject_two_dots_malformed),
        cmocka_unit_test(test_reject_four_dots),
        cmocka_unit_test(test_reject_non_base64),
        cmocka_unit_test(test_reject_100k_token),
        cmocka_unit_test(test_token_size_limit),
        cmocka_unit_test(test_reject_nul_bytes),
        cmocka_unit_test(test_header_shapes),
        cmocka_unit_test(test_keys_never_from_token),
        cmocka_unit_test(test_payload_shapes),
        cmocka_unit_test(test_no_key),
        cmocka_unit_test(test_libjwt_alone_is_unsafe),
        cmocka_unit_test(test_fixture_tokens),
        cmocka_unit_test(test_keys_create),
        cmocka_unit_test(test_concurrent_verify),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
