/* jwks.c: JWS alg names, strict base64url, JWK Set / PEM public keys -> SPKI PEM (OpenSSL 3). */
#include "auth/jwks.h"

#include <openssl/core_names.h>
#include <openssl/decoder.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/json_scan.h"

static const char *const alg_names[TG_JWS_ALG_COUNT] = {
    [TG_JWS_NONE] = "none",   [TG_JWS_HS256] = "HS256", [TG_JWS_HS384] = "HS384",
    [TG_JWS_HS512] = "HS512", [TG_JWS_RS256] = "RS256", [TG_JWS_RS384] = "RS384",
    [TG_JWS_RS512] = "RS512", [TG_JWS_ES256] = "ES256", [TG_JWS_ES384] = "ES384",
    [TG_JWS_ES512] = "ES512",
};

enum tg_jws_alg tg_jws_alg_parse(const char *s, size_t n)
{
    if (s == NULL || n != 5)
        return TG_JWS_NONE;
    for (int a = TG_JWS_HS256; a < TG_JWS_ALG_COUNT; a++) {
        if (memcmp(s, alg_names[a], 5) == 0)
            return (enum tg_jws_alg)a;
    }
    return TG_JWS_NONE;
}

const char *tg_jws_alg_name(enum tg_jws_alg a)
{
    if ((int)a <= TG_JWS_NONE || a >= TG_JWS_ALG_COUNT)
        return "none";
    return alg_names[a];
}

/* base64url value + 1 for each alphabet byte; 0 means "not in the alphabet" */
static const uint8_t b64url_val[256] = {
    ['A'] = 1,  ['B'] = 2,  ['C'] = 3,  ['D'] = 4,  ['E'] = 5,  ['F'] = 6,  ['G'] = 7,  ['H'] = 8,
    ['I'] = 9,  ['J'] = 10, ['K'] = 11, ['L'] = 12, ['M'] = 13, ['N'] = 14, ['O'] = 15, ['P'] = 16,
    ['Q'] = 17, ['R'] = 18, ['S'] = 19, ['T'] = 20, ['U'] = 21, ['V'] = 22, ['W'] = 23, ['X'] = 24,
    ['Y'] = 25, ['Z'] = 26, ['a'] = 27, ['b'] = 28, ['c'] = 29, ['d'] = 30, ['e'] = 31, ['f'] = 32,
    ['g'] = 33, ['h'] = 34, ['i'] = 35, ['j'] = 36, ['k'] = 37, ['l'] = 38, ['m'] = 39, ['n'] = 40,
    ['o'] = 41, ['p'] = 42, ['q'] = 43, ['r'] = 44, ['s'] = 45, ['t'] = 46, ['u'] = 47, ['v'] = 48,
    ['w'] = 49, ['x'] = 50, ['y'] = 51, ['z'] = 52, ['0'] = 53, ['1'] = 54, ['2'] = 55, ['3'] = 56,
    ['4'] = 57, ['5'] = 58, ['6'] = 59, ['7'] = 60, ['8'] = 61, ['9'] = 62, ['-'] = 63, ['_'] = 64,
};

size_t tg_jwks_b64url_decoded_len(size_t n)
{
    return n / 4 * 3 + (n % 4 == 0 ? 0 : n % 4 - 1);
}

ssize_t tg_jwks_b64url_decode(const char *in, size_t n, uint8_t *out, size_t cap)
{
    if (n % 4 == 1)
        return -1;
    size_t need = tg_jwks_b64url_decoded_len(n);
    if (need > cap)
        return -1;
    uint32_t acc = 0;
    unsigned bits = 0;
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        uint8_t v = b64url_val[(unsigned char)in[i]];
        if (v == 0)
            return -1;
        acc = (acc << 6) | (uint32_t)(v - 1);
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out[o++] = (uint8_t)(acc >> bits);
            acc &= (1u << bits) - 1;
        }
    }
    if (acc != 0) /* non-zero padding bits: a second spelling of the same bytes */
        return -1;
    return (ssize_t)o;
}

ssize_t tg_jwks_b64url_encode(const uint8_t *in, size_t n, char *out, size_t cap)
{
    static const char abc[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    size_t need = n / 3 * 4 + (n % 3 == 0 ? 0 : n % 3 + 1);
    if (cap < need + 1)
        return -1;
    size_t o = 0, i = 0;
    for (; i + 3 <= n; i += 3) {
        uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 | in[i + 2];
        out[o++] = abc[v >> 18];
        out[o++] = abc[(v >> 12) & 63];
        out[o++] = abc[(v >> 6) & 63];
        out[o++] = abc[v & 63];
    }
    if (n - i == 1) {
        uint32_t v = (uint32_t)in[i] << 16;
        out[o++] = abc[v >> 18];
        out[o++] = abc[(v >> 12) & 63];
    } else if (n - i == 2) {
        uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8;
        out[o++] = abc[v >> 18];
        out[o++] = abc[(v >> 12) & 63];
        out[o++] = abc[(v >> 6) & 63];
    }
    out[o] = '\0';
    return (ssize_t)o;
}

TG_PRINTF(3, 4) static void set_err(char *err, size_t errlen, const char *fmt, ...)
{
    if (err == NULL || errlen == 0)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

void tg_jwks_key_cleanup(struct tg_jwk_key *k)
{
    if (k == NULL)
        return;
    free(k->pem);
    k->pem = NULL;
    k->pem_len = 0;
}

void tg_jwks_cleanup(struct tg_jwks *set)
{
    if (set == NULL)
        return;
    for (size_t i = 0; i < set->n; i++)
        tg_jwks_key_cleanup(&set->keys[i]);
    free(set->keys);
    set->keys = NULL;
    set->n = 0;
}

/* Algorithms, signature size and SPKI PEM of a public key. Returns 0 or -1 with err. */
static int finish_key(EVP_PKEY *pkey, struct tg_jwk_key *out, char *err, size_t errlen)
{
    if (EVP_PKEY_is_a(pkey, "RSA")) {
        int bits = EVP_PKEY_get_bits(pkey);
        if (bits < TG_JWK_MIN_RSA_BITS || bits > TG_JWK_MAX_RSA_BITS) {
            set_err(err, errlen, "RSA key of %d bits (%d..%d allowed)", bits, TG_JWK_MIN_RSA_BITS,
                    TG_JWK_MAX_RSA_BITS);
            return -1;
        }
        out->alg_mask = TG_JWS_RSA_ALGS;
        out->sig_bytes = (size_t)EVP_PKEY_get_size(pkey);
    } else if (EVP_PKEY_is_a(pkey, "EC")) {
        char group[64];
        size_t glen = 0;
        if (EVP_PKEY_get_utf8_string_param(pkey, OSSL_PKEY_PARAM_GROUP_NAME, group, sizeof(group),
                                           &glen) != 1) {
            set_err(err, errlen, "EC key without a named curve");
            return -1;
        }
        if (strcmp(group, "prime256v1") == 0 || strcmp(group, "P-256") == 0) {
            out->alg_mask = TG_JWS_BIT(TG_JWS_ES256);
            out->sig_bytes = 64;
        } else if (strcmp(group, "secp384r1") == 0 || strcmp(group, "P-384") == 0) {
            out->alg_mask = TG_JWS_BIT(TG_JWS_ES384);
            out->sig_bytes = 96;
        } else if (strcmp(group, "secp521r1") == 0 || strcmp(group, "P-521") == 0) {
            out->alg_mask = TG_JWS_BIT(TG_JWS_ES512);
            out->sig_bytes = 132;
        } else {
            set_err(err, errlen, "EC curve %s is not P-256, P-384 or P-521", group);
            return -1;
        }
    } else {
        set_err(err, errlen, "key type %s is not RSA or EC", EVP_PKEY_get0_type_name(pkey));
        return -1;
    }

    BIO *mem = BIO_new(BIO_s_mem());
    if (mem == NULL || PEM_write_bio_PUBKEY(mem, pkey) != 1) {
        BIO_free(mem);
        set_err(err, errlen, "cannot write the key as PEM");
        return -1;
    }
    char *data = NULL;
    long n = BIO_get_mem_data(mem, &data);
    out->pem = n > 0 ? malloc((size_t)n + 1) : NULL;
    if (out->pem == NULL) {
        BIO_free(mem);
        set_err(err, errlen, "out of memory");
        return -1;
    }
    memcpy(out->pem, data, (size_t)n);
    out->pem[n] = '\0';
    out->pem_len = (size_t)n;
    BIO_free(mem);
    return 0;
}

static bool contains(const char *hay, size_t n, const char *needle)
{
    return memmem(hay, n, needle, strlen(needle)) != NULL;
}

int tg_jwks_key_from_pem(const char *pem, size_t len, struct tg_jwk_key *out, char *err,
                         size_t errlen)
{
    memset(out, 0, sizeof(*out));
    if (pem == NULL || len == 0 || len > INT32_MAX) {
        set_err(err, errlen, "empty key");
        return -1;
    }
    if (contains(pem, len, "PRIVATE KEY")) {
        set_err(err, errlen, "this is a private key; give the public key");
        return -1;
    }
    EVP_PKEY *pkey = NULL;
    if (contains(pem, len, "-----BEGIN CERTIFICATE-----")) {
        BIO *bio = BIO_new_mem_buf(pem, (int)len);
        X509 *cert = bio ? PEM_read_bio_X509(bio, NULL, NULL, NULL) : NULL;
        if (cert != NULL)
            pkey = X509_get_pubkey(cert);
        X509_free(cert);
        BIO_free(bio);
    } else {
        OSSL_DECODER_CTX *dctx = OSSL_DECODER_CTX_new_for_pkey(&pkey, "PEM", NULL, NULL,
                                                               EVP_PKEY_PUBLIC_KEY, NULL, NULL);
        const unsigned char *data = (const unsigned char *)pem;
        size_t left = len;
        if (dctx == NULL || OSSL_DECODER_from_data(dctx, &data, &left) != 1) {
            EVP_PKEY_free(pkey);
            pkey = NULL;
        }
        OSSL_DECODER_CTX_free(dctx);
    }
    if (pkey == NULL) {
        set_err(err, errlen, "not a PEM public key or certificate");
        return -1;
    }
    int rc = finish_key(pkey, out, err, errlen);
    EVP_PKEY_free(pkey);
    return rc;
}

/* Builds a public EVP_PKEY from parameters and checks it. NULL on failure. */
static EVP_PKEY *pkey_from_params(const char *type, OSSL_PARAM_BLD *bld)
{
    EVP_PKEY *pkey = NULL;
    OSSL_PARAM *params = OSSL_PARAM_BLD_to_param(bld);
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_name(NULL, type, NULL);
    EVP_PKEY_CTX *check = NULL;
    if (params == NULL || ctx == NULL || EVP_PKEY_fromdata_init(ctx) != 1 ||
        EVP_PKEY_fromdata(ctx, &pkey, EVP_PKEY_PUBLIC_KEY, params) != 1)
        goto fail;
    check = EVP_PKEY_CTX_new_from_pkey(NULL, pkey, NULL);
    if (check == NULL || EVP_PKEY_public_check(check) != 1)
        goto fail;
    EVP_PKEY_CTX_free(check);
    EVP_PKEY_CTX_free(ctx);
    OSSL_PARAM_free(params);
    return pkey;
fail:
    EVP_PKEY_CTX_free(check);
    EVP_PKEY_CTX_free(ctx);
    OSSL_PARAM_free(params);
    EVP_PKEY_free(pkey);
    return NULL;
}

/* Decodes a base64url string member into buf. Returns the length or -1. */
static ssize_t member_b64(const struct tg_jv *obj, const char *name, uint8_t *buf, size_t cap)
{
    struct tg_jv v;
    char text[2048];
    if (!tg_json_get(obj, name, &v) || v.type != TG_JSON_STRING)
        return -1;
    ssize_t n = tg_json_string_copy(&v, text, sizeof(text));
    if (n <= 0)
        return -1;
    return tg_jwks_b64url_decode(text, (size_t)n, buf, cap);
}

static EVP_PKEY *rsa_from_jwk(const struct tg_jv *obj, const char **why)
{
    uint8_t n[TG_JWK_MAX_RSA_BITS / 8 + 1], e[16];
    ssize_t nn = member_b64(obj, "n", n, sizeof(n));
    ssize_t en = member_b64(obj, "e", e, sizeof(e));
    if (nn <= 0 || en <= 0) {
        *why = "RSA key without valid n and e";
        return NULL;
    }
    EVP_PKEY *pkey = NULL;
    BIGNUM *bn_n = BN_bin2bn(n, (int)nn, NULL);
    BIGNUM *bn_e = BN_bin2bn(e, (int)en, NULL);
    OSSL_PARAM_BLD *bld = OSSL_PARAM_BLD_new();
    if (bn_n != NULL && bn_e != NULL && bld != NULL &&
        OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, bn_n) == 1 &&
        OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, bn_e) == 1)
        pkey = pkey_from_params("RSA", bld);
    if (pkey == NULL)
        *why = "RSA key rejected by OpenSSL";
    OSSL_PARAM_BLD_free(bld);
    BN_free(bn_n);
    BN_free(bn_e);
    return pkey;
}

static EVP_PKEY *ec_from_jwk(const struct tg_jv *obj, const char **why)
{
    static const struct {
        const char *crv, *group;
        size_t coord;
    } curves[] = {
        {"P-256", "prime256v1", 32},
        {"P-384", "secp384r1", 48},
        {"P-521", "secp521r1", 66},
    };
    struct tg_jv crv;
    size_t c = TG_ARRAY_LEN(curves);
    if (tg_json_get(obj, "crv", &crv) && crv.type == TG_JSON_STRING) {
        for (c = 0; c < TG_ARRAY_LEN(curves); c++) {
            if (tg_json_string_eq(&crv, curves[c].crv, strlen(curves[c].crv)))
                break;
        }
    }
    if (c == TG_ARRAY_LEN(curves)) {
        *why = "EC curve is not P-256, P-384 or P-521";
        return NULL;
    }
    uint8_t pub[1 + 2 * 66];
    size_t coord = curves[c].coord;
    ssize_t xn = member_b64(obj, "x", pub + 1, coord);
    ssize_t yn = member_b64(obj, "y", pub + 1 + coord, coord);
    if (xn != (ssize_t)coord || yn != (ssize_t)coord) {
        *why = "EC key without x and y of the curve's size";
        return NULL;
    }
    pub[0] = 0x04; /* uncompressed point */
    EVP_PKEY *pkey = NULL;
    OSSL_PARAM_BLD *bld = OSSL_PARAM_BLD_new();
    if (bld != NULL &&
        OSSL_PARAM_BLD_push_utf8_string(bld, OSSL_PKEY_PARAM_GROUP_NAME, curves[c].group, 0) == 1 &&
        OSSL_PARAM_BLD_push_octet_string(bld, OSSL_PKEY_PARAM_PUB_KEY, pub, 1 + 2 * coord) == 1)
        pkey = pkey_from_params("EC", bld);
    if (pkey == NULL)
        *why = "EC point rejected by OpenSSL (not on the curve?)";
    OSSL_PARAM_BLD_free(bld);
    return pkey;
}

/* Appends "; " + text to the notes in err, keeping it NUL-terminated and cut to errlen. */
TG_PRINTF(3, 4) static void add_note(char *err, size_t errlen, const char *fmt, ...)
{
    if (err == NULL || errlen == 0)
        return;
    size_t used = strnlen(err, errlen - 1);
    if (used > 0 && used + 2 < errlen) {
        memcpy(err + used, "; ", 3);
        used += 2;
    }
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err + used, errlen - used, fmt, ap);
    va_end(ap);
}

/* The kid of a skipped key, shown printable-ASCII only and short, for a log line. */
static void kid_for_note(const char *kid, size_t n, char *out, size_t cap)
{
    size_t o = 0;
    for (size_t i = 0; i < n && o + 4 < cap; i++)
        out[o++] = (kid[i] >= 0x20 && kid[i] < 0x7f) ? kid[i] : '?';
    if (o < n && o + 4 <= cap) {
        memcpy(out + o, "...", 3);
        o += 3;
    }
    out[o] = '\0';
}

/* Parses one JWK into *out. Returns 0, or -1 with *why set (the key is skipped). */
static int parse_one(const struct tg_jv *obj, struct tg_jwk_key *out, const char **why)
{
    struct tg_jv v;
    memset(out, 0, sizeof(*out));
    if (obj->type != TG_JSON_OBJECT) {
        *why = "not an object";
        return -1;
    }
    if (tg_json_get(obj, "kid", &v)) {
        if (v.type != TG_JSON_STRING) {
            *why = "kid is not a string";
            return -1;
        }
        ssize_t n = tg_json_string_copy(&v, out->kid, TG_JWK_MAX_KID);
        if (n < 0) {
            *why = "kid too long";
            return -1;
        }
        out->kid[n] = '\0';
        out->kid_len = (size_t)n;
        out->has_kid = true;
    }
    if (tg_json_get(obj, "use", &v) && !tg_json_string_eq(&v, "sig", 3)) {
        *why = "use is not sig";
        return -1;
    }
    enum tg_jws_alg alg = TG_JWS_NONE;
    if (tg_json_get(obj, "alg", &v)) {
        char name[16];
        ssize_t n = v.type == TG_JSON_STRING ? tg_json_string_copy(&v, name, sizeof(name)) : -1;
        alg = n > 0 ? tg_jws_alg_parse(name, (size_t)n) : TG_JWS_NONE;
        if (alg == TG_JWS_NONE || (TG_JWS_BIT(alg) & TG_JWS_HMAC_ALGS)) {
            *why = "alg not supported";
            return -1;
        }
    }
    struct tg_jv kty;
    EVP_PKEY *pkey = NULL;
    if (!tg_json_get(obj, "kty", &kty) || kty.type != TG_JSON_STRING) {
        *why = "no kty";
        return -1;
    }
    if (tg_json_string_eq(&kty, "RSA", 3)) {
        pkey = rsa_from_jwk(obj, why);
    } else if (tg_json_string_eq(&kty, "EC", 2)) {
        pkey = ec_from_jwk(obj, why);
    } else {
        *why = "kty not supported (RSA and EC are)";
        return -1;
    }
    if (pkey == NULL)
        return -1;
    char msg[128];
    int rc = finish_key(pkey, out, msg, sizeof(msg));
    EVP_PKEY_free(pkey);
    if (rc != 0) {
        *why = "key size or curve not supported";
        return -1;
    }
    if (alg != TG_JWS_NONE) {
        if (!(out->alg_mask & TG_JWS_BIT(alg))) {
            tg_jwks_key_cleanup(out);
            *why = "alg does not suit the key";
            return -1;
        }
        out->alg_mask = TG_JWS_BIT(alg);
    }
    return 0;
}

int tg_jwks_parse(const char *json, size_t len, struct tg_jwks *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof(*out));
    if (err != NULL && errlen > 0)
        err[0] = '\0';
    struct tg_jv root, keys, elem;
    if (json == NULL || tg_json_parse(json, len, &root, NULL) != 0 || root.type != TG_JSON_OBJECT) {
        set_err(err, errlen, "JWKS is not a JSON object");
        return -1;
    }
    if (!tg_json_get(&root, "keys", &keys) || keys.type != TG_JSON_ARRAY) {
        set_err(err, errlen, "JWKS has no \"keys\" array");
        return -1;
    }
    struct tg_json_iter it;
    size_t count = 0;
    tg_json_iter_init(&it, &keys);
    while (tg_json_next_elem(&it, &elem))
        count++;
    if (count > TG_JWK_MAX_KEYS) {
        set_err(err, errlen, "JWKS has %zu keys (at most %d)", count, TG_JWK_MAX_KEYS);
        return -1;
    }
    out->keys = count ? calloc(count, sizeof(*out->keys)) : NULL;
    if (count && out->keys == NULL) {
        set_err(err, errlen, "out of memory");
        return -1;
    }
    size_t index = 0;
    tg_json_iter_init(&it, &keys);
    while (tg_json_next_elem(&it, &elem)) {
        const char *why = "invalid";
        struct tg_jwk_key *k = &out->keys[out->n];
        if (parse_one(&elem, k, &why) == 0) {
            out->n++;
        } else {
            char shown[48];
            kid_for_note(k->kid, k->kid_len, shown, sizeof(shown));
            add_note(err, errlen, "skipped key #%zu%s%s%s: %s", index, k->has_kid ? " (kid " : "",
                     shown, k->has_kid ? ")" : "", why);
            memset(k, 0, sizeof(*k));
        }
        index++;
    }
    if (out->n == 0) {
        char notes[256];
        snprintf(notes, sizeof(notes), "%s", (err != NULL && errlen > 0) ? err : "");
        tg_jwks_cleanup(out);
        set_err(err, errlen, "JWKS has no usable key%s%s", notes[0] ? ": " : "", notes);
        return -1;
    }
    return 0;
}
