/* jwt.c: JWT verification: token pre-checks, key choice, libjwt signature check, claims. */
#include "auth/jwt.h"

#include <jwt.h>
#include <openssl/crypto.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "auth/jwks.h"
#include "core/json_scan.h"

#define MAX_DECODED      (TG_JWT_MAX_TOKEN_BYTES / 4 * 3)
#define MAX_SIG_BYTES    (TG_JWK_MAX_RSA_BITS / 8)
#define MAX_HEADER_ITEMS 16
#define MAX_HEADER_NAME  64 /* longer member names: malformed */

struct tg_jwt_keys {
    atomic_int refs;
    unsigned char *secret; /* HMAC secret, owned; NULL when not configured */
    size_t secret_len;
    struct tg_jwk_key pem; /* from the PEM file; pem.pem == NULL when not configured */
    struct tg_jwks jwks;   /* from JWKS documents; empty when none */
};

TG_PRINTF(3, 4) static void set_err(char *err, size_t errlen, const char *fmt, ...)
{
    if (err == NULL || errlen == 0)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

static void keys_free(struct tg_jwt_keys *k)
{
    if (k == NULL)
        return;
    if (k->secret != NULL) {
        OPENSSL_cleanse(k->secret, k->secret_len);
        free(k->secret);
    }
    tg_jwks_key_cleanup(&k->pem);
    tg_jwks_cleanup(&k->jwks);
    free(k);
}

struct tg_jwt_keys *tg_jwt_keys_create(const char *hmac_secret, size_t secret_len, const char *pem,
                                       size_t pem_len, char *err, size_t errlen)
{
    if (err != NULL && errlen > 0)
        err[0] = '\0';
    struct tg_jwt_keys *k = calloc(1, sizeof(*k));
    if (k == NULL) {
        set_err(err, errlen, "out of memory");
        return NULL;
    }
    atomic_init(&k->refs, 1);
    if (hmac_secret != NULL && secret_len > 0) {
        if (secret_len > TG_JWT_MAX_SECRET_BYTES) {
            set_err(err, errlen, "HMAC secret longer than %d bytes", TG_JWT_MAX_SECRET_BYTES);
            goto fail;
        }
        k->secret = malloc(secret_len);
        if (k->secret == NULL) {
            set_err(err, errlen, "out of memory");
            goto fail;
        }
        memcpy(k->secret, hmac_secret, secret_len);
        k->secret_len = secret_len;
    }
    if (pem != NULL && pem_len > 0) {
        if (pem_len > TG_JWT_MAX_PEM_BYTES) {
            set_err(err, errlen, "public key file larger than %d bytes", TG_JWT_MAX_PEM_BYTES);
            goto fail;
        }
        if (tg_jwks_key_from_pem(pem, pem_len, &k->pem, err, errlen) != 0)
            goto fail;
    }
    return k;
fail:
    keys_free(k);
    return NULL;
}

int tg_jwt_keys_add_jwks(struct tg_jwt_keys *k, const char *jwks_json, size_t len, char *err,
                         size_t errlen)
{
    struct tg_jwks add;
    if (tg_jwks_parse(jwks_json, len, &add, err, errlen) != 0)
        return -1;
    struct tg_jwk_key *keys = realloc(k->jwks.keys, (k->jwks.n + add.n) * sizeof(*keys));
    if (keys == NULL) {
        tg_jwks_cleanup(&add);
        set_err(err, errlen, "out of memory");
        return -1;
    }
    memcpy(keys + k->jwks.n, add.keys, add.n * sizeof(*keys));
    k->jwks.keys = keys;
    k->jwks.n += add.n;
    free(add.keys); /* the PEMs now belong to k */
    return 0;
}

size_t tg_jwt_keys_jwks_count(const struct tg_jwt_keys *k)
{
    return k ? k->jwks.n : 0;
}

void tg_jwt_keys_ref(struct tg_jwt_keys *k)
{
    atomic_fetch_add_explicit(&k->refs, 1, memory_order_relaxed);
}

void tg_jwt_keys_unref(struct tg_jwt_keys *k)
{
    if (k == NULL)
        return;
    if (atomic_fetch_sub_explicit(&k->refs, 1, memory_order_acq_rel) == 1)
        keys_free(k);
}

/* What the header says; views point into the decoded header. */
struct header {
    enum tg_jws_alg alg;
    struct tg_jv kid; /* type TG_JSON_NONE when absent */
};

static enum tg_jwt_status parse_header(const char *json, size_t n, struct header *h)
{
    struct tg_jv root, key, val;
    char seen[MAX_HEADER_ITEMS][MAX_HEADER_NAME];
    size_t seen_len[MAX_HEADER_ITEMS], count = 0;
    memset(h, 0, sizeof(*h));
    if (tg_json_parse(json, n, &root, NULL) != 0 || root.type != TG_JSON_OBJECT)
        return TG_JWT_MALFORMED;
    bool has_alg = false;
    struct tg_json_iter it;
    tg_json_iter_init(&it, &root);
    while (tg_json_next_member(&it, &key, &val)) {
        /* duplicates would let two parsers (ours, jansson in libjwt) see different headers */
        if (count == MAX_HEADER_ITEMS)
            return TG_JWT_MALFORMED;
        ssize_t kn = tg_json_string_copy(&key, seen[count], MAX_HEADER_NAME);
        if (kn < 0)
            return TG_JWT_MALFORMED;
        for (size_t i = 0; i < count; i++) {
            if (seen_len[i] == (size_t)kn && memcmp(seen[i], seen[count], (size_t)kn) == 0)
                return TG_JWT_MALFORMED;
        }
        seen_len[count++] = (size_t)kn;
        if (tg_json_key_is(&key, "alg")) {
            char name[8];
            if (val.type != TG_JSON_STRING)
                return TG_JWT_MALFORMED;
            ssize_t an = tg_json_string_copy(&val, name, sizeof(name));
            h->alg = an > 0 ? tg_jws_alg_parse(name, (size_t)an) : TG_JWS_NONE;
            has_alg = true;
        } else if (tg_json_key_is(&key, "kid")) {
            if (val.type != TG_JSON_STRING || tg_json_string_len(&val) > TG_JWK_MAX_KID)
                return TG_JWT_MALFORMED;
            h->kid = val;
        } else if (tg_json_key_is(&key, "typ")) {
            /* libjwt 1.10 refuses any other typ (case-insensitively) */
            char typ[4];
            if (val.type != TG_JSON_STRING || tg_json_string_copy(&val, typ, 3) != 3 ||
                strncasecmp(typ, "JWT", 3) != 0)
                return TG_JWT_MALFORMED;
        } else if (tg_json_key_is(&key, "crit")) {
            return TG_JWT_MALFORMED; /* RFC 7515 §4.1.11: we understand no extension */
        }
    }
    if (!has_alg)
        return TG_JWT_MALFORMED;
    if (h->alg == TG_JWS_NONE)
        return TG_JWT_BAD_ALG;
    return TG_JWT_OK;
}

/* The key chosen for one verification (borrowed from the snapshot). */
struct key_choice {
    const unsigned char *bytes;
    size_t len;
    size_t sig_bytes;
};

static enum tg_jwt_status choose_key(const struct tg_jwt_keys *k, const struct header *h,
                                     struct key_choice *kc)
{
    unsigned bit = TG_JWS_BIT(h->alg);
    const struct tg_jwk_key *jk = NULL;
    if (h->kid.type == TG_JSON_STRING && k->jwks.n > 0) {
        char kid[TG_JWK_MAX_KID + 1];
        ssize_t n = tg_json_string_copy(&h->kid, kid, TG_JWK_MAX_KID);
        bool kid_known = false;
        for (size_t i = 0; n >= 0 && i < k->jwks.n; i++) {
            const struct tg_jwk_key *c = &k->jwks.keys[i];
            if (!c->has_kid || c->kid_len != (size_t)n || memcmp(c->kid, kid, (size_t)n) != 0)
                continue;
            kid_known = true;
            if (c->alg_mask & bit) {
                jk = c;
                break;
            }
        }
        if (!kid_known)
            return TG_JWT_UNKNOWN_KID;
        if (jk == NULL)
            return TG_JWT_BAD_ALG;
    } else if (bit & TG_JWS_HMAC_ALGS) {
        if (k->secret == NULL)
            return (k->pem.pem || k->jwks.n) ? TG_JWT_BAD_ALG : TG_JWT_NO_KEY;
        static const size_t hmac_bytes[] = {
            [TG_JWS_HS256] = 32, [TG_JWS_HS384] = 48, [TG_JWS_HS512] = 64};
        kc->bytes = k->secret;
        kc->len = k->secret_len;
        kc->sig_bytes = hmac_bytes[h->alg];
        return TG_JWT_OK;
    } else if (k->pem.pem != NULL) {
        jk = &k->pem;
    } else if (k->jwks.n == 1) {
        jk = &k->jwks.keys[0]; /* one key and no kid: there is nothing to choose from */
    } else if (k->jwks.n > 1) {
        return TG_JWT_NO_KEY; /* several keys and no kid to choose by */
    } else {
        return k->secret ? TG_JWT_BAD_ALG : TG_JWT_NO_KEY;
    }
    if (!(jk->alg_mask & bit))
        return TG_JWT_BAD_ALG;
    kc->bytes = (const unsigned char *)jk->pem;
    kc->len = jk->pem_len;
    kc->sig_bytes = jk->sig_bytes;
    return TG_JWT_OK;
}

static const jwt_alg_t libjwt_alg[TG_JWS_ALG_COUNT] = {
    [TG_JWS_NONE] = JWT_ALG_NONE,   [TG_JWS_HS256] = JWT_ALG_HS256, [TG_JWS_HS384] = JWT_ALG_HS384,
    [TG_JWS_HS512] = JWT_ALG_HS512, [TG_JWS_RS256] = JWT_ALG_RS256, [TG_JWS_RS384] = JWT_ALG_RS384,
    [TG_JWS_RS512] = JWT_ALG_RS512, [TG_JWS_ES256] = JWT_ALG_ES256, [TG_JWS_ES384] = JWT_ALG_ES384,
    [TG_JWS_ES512] = JWT_ALG_ES512,
};

static bool is_b64url_char(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '_';
}

static enum tg_jwt_status verify(const struct tg_jwt_keys *k, const char *token, size_t len,
                                 int64_t now, const struct tg_claims_policy *pol,
                                 struct tg_claims *out)
{
    if (token == NULL || len == 0)
        return TG_JWT_MALFORMED;
    if (len > TG_JWT_MAX_TOKEN_BYTES)
        return TG_JWT_TOO_LONG;
    size_t dot[2] = {0, 0}, dots = 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)token[i];
        if (c == '.') {
            if (dots == 2)
                return TG_JWT_MALFORMED;
            dot[dots++] = i;
        } else if (!is_b64url_char(c)) {
            return TG_JWT_MALFORMED;
        }
    }
    if (dots != 2)
        return TG_JWT_MALFORMED;
    const char *hp = token, *pp = token + dot[0] + 1, *sp = token + dot[1] + 1;
    size_t hn = dot[0], pn = dot[1] - dot[0] - 1, sn = len - dot[1] - 1;
    if (hn == 0 || pn == 0)
        return TG_JWT_MALFORMED;

    char hbuf[MAX_DECODED];
    ssize_t hlen = tg_jwks_b64url_decode(hp, hn, (uint8_t *)hbuf, sizeof(hbuf));
    if (hlen <= 0)
        return TG_JWT_MALFORMED;
    struct header h;
    enum tg_jwt_status st = parse_header(hbuf, (size_t)hlen, &h);
    if (st != TG_JWT_OK)
        return st;
    if (k == NULL)
        return TG_JWT_NO_KEY;
    struct key_choice kc = {0};
    st = choose_key(k, &h, &kc);
    if (st != TG_JWT_OK)
        return st;

    uint8_t sbuf[MAX_SIG_BYTES];
    if (sn % 4 == 1 || tg_jwks_b64url_decoded_len(sn) != kc.sig_bytes ||
        tg_jwks_b64url_decode(sp, sn, sbuf, sizeof(sbuf)) != (ssize_t)kc.sig_bytes)
        return TG_JWT_BAD_SIGNATURE;

    char pbuf[MAX_DECODED];
    ssize_t plen = tg_jwks_b64url_decode(pp, pn, (uint8_t *)pbuf, sizeof(pbuf));
    struct tg_jv proot;
    if (plen <= 0 || tg_json_parse(pbuf, (size_t)plen, &proot, NULL) != 0 ||
        proot.type != TG_JSON_OBJECT)
        return TG_JWT_MALFORMED;

    char tbuf[TG_JWT_MAX_TOKEN_BYTES + 1];
    memcpy(tbuf, token, len);
    tbuf[len] = '\0';
    /* kc.len > 0 always: libjwt 1.10 silently skips verification when given no key */
    jwt_t *j = NULL;
    int rc = jwt_decode(&j, tbuf, kc.bytes, (int)kc.len);
    if (rc != 0 || j == NULL) {
        jwt_free(j);
        return TG_JWT_BAD_SIGNATURE;
    }
    jwt_alg_t got = jwt_get_alg(j);
    jwt_free(j);
    if (got != libjwt_alg[h.alg])
        return TG_JWT_BAD_ALG;

    st = tg_claims_parse(pbuf, (size_t)plen, pol, out);
    if (st != TG_JWT_OK)
        return st;
    return tg_claims_check(out, now, pol);
}

enum tg_jwt_status tg_jwt_verify(const struct tg_jwt_keys *k, const char *token, size_t len,
                                 int64_t now, const struct tg_claims_policy *pol,
                                 struct tg_claims *out)
{
    enum tg_jwt_status st = verify(k, token, len, now, pol, out);
    if (st != TG_JWT_OK)
        memset(out, 0, sizeof(*out));
    return st;
}
