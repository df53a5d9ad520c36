/* Fuzz target: tg_jwt_verify with a fixed keyset (HMAC secret + RSA public key, from fixtures).
 *
 * Input: one mode byte, then
 *   mode 0: the raw token;
 *   mode 1: a payload (JSON or not), signed here with HS256 and the fixed secret, so that claim
 *           parsing and checking are reached behind a valid signature;
 *   mode 2: header "\n" payload, signed here with HS256 (the header's alg/kid/typ/crit decide).
 * Checks: no crash or sanitizer report; a TG_JWT_OK result carries a valid user id and exp. */
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth/jwks.h"
#include "auth/jwt.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define NOW 1950000000 /* inside the fixture tokens' nbf..exp */

static struct tg_jwt_keys *keys;
static char secret[256];
static size_t secret_len;

static char *slurp(const char *name, size_t *len)
{
    char path[512];
    snprintf(path, sizeof(path), "%s/jwt/%s", TG_FIXTURES_DIR, name);
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        perror(path);
        abort();
    }
    char *buf = malloc(65536);
    if (buf == NULL)
        abort();
    *len = fread(buf, 1, 65535, f);
    buf[*len] = '\0';
    fclose(f);
    return buf;
}

static void init(void)
{
    size_t n, pem_len;
    char *s = slurp("hs-secret.txt", &n);
    if (n == 0 || n > sizeof(secret))
        abort();
    memcpy(secret, s, n);
    secret_len = n;
    free(s);
    char *pem = slurp("rsa-public.pem", &pem_len);
    char err[256];
    keys = tg_jwt_keys_create(secret, secret_len, pem, pem_len, err, sizeof(err));
    free(pem);
    if (keys == NULL) {
        fprintf(stderr, "fuzz_jwt: %s\n", err);
        abort();
    }
}

/* base64url(header).base64url(payload).HS256 into a malloc'd token. */
static char *sign_hs256(const uint8_t *h, size_t hn, const uint8_t *p, size_t pn, size_t *len)
{
    size_t cap = (hn + pn) / 3 * 4 + 128;
    char *tok = malloc(cap);
    if (tok == NULL)
        abort();
    ssize_t a = tg_jwks_b64url_encode(h, hn, tok, cap);
    if (a < 0)
        abort();
    size_t n = (size_t)a;
    tok[n++] = '.';
    ssize_t b = tg_jwks_b64url_encode(p, pn, tok + n, cap - n);
    if (b < 0)
        abort();
    n += (size_t)b;
    uint8_t mac[EVP_MAX_MD_SIZE];
    unsigned int ml = 0;
    if (HMAC(EVP_sha256(), secret, (int)secret_len, (const unsigned char *)tok, n, mac, &ml) ==
        NULL)
        abort();
    tok[n++] = '.';
    ssize_t c = tg_jwks_b64url_encode(mac, ml, tok + n, cap - n);
    if (c < 0)
        abort();
    *len = n + (size_t)c;
    return tok;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (keys == NULL)
        init();
    if (size == 0)
        return 0;
    unsigned mode = data[0] % 3;
    const uint8_t *in = data + 1;
    size_t n = size - 1;
    char *tok = NULL;
    size_t tn = 0;
    if (mode == 0) {
        tok = malloc(n ? n : 1); /* an exact-size copy so overreads are caught */
        if (tok == NULL)
            abort();
        memcpy(tok, in, n);
        tn = n;
    } else if (mode == 1) {
        static const char h[] = "{\"alg\":\"HS256\",\"typ\":\"JWT\"}";
        tok = sign_hs256((const uint8_t *)h, sizeof(h) - 1, in, n, &tn);
    } else {
        const uint8_t *nl = memchr(in, '\n', n);
        size_t hn = nl ? (size_t)(nl - in) : n;
        const uint8_t *p = nl ? nl + 1 : in + n;
        tok = sign_hs256(in, hn, p, (size_t)(in + n - p), &tn);
    }
    static const struct tg_claims_policy pols[] = {
        {NULL, NULL, 0},
        {"https://idp.example.com/", "tollgate", 60},
    };
    for (size_t i = 0; i < sizeof(pols) / sizeof(pols[0]); i++) {
        struct tg_claims c;
        enum tg_jwt_status st = tg_jwt_verify(keys, tok, tn, NOW, &pols[i], &c);
        if (st == TG_JWT_OK) {
            if (!tg_claims_user_id_valid(c.sub, c.sub_len) || strlen(c.sub) != c.sub_len ||
                !c.has_exp || c.exp + 60 <= NOW)
                abort();
        } else if (c.sub_len != 0 || c.sub[0] != '\0') {
            abort();
        }
        (void)tg_jwt_status_name(st);
    }
    free(tok);
    return 0;
}
