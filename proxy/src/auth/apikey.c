/* apikey.c: personal API keys: generation, shape check, SHA-256, constant-time compare. */
#include "auth/apikey.h"

#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <openssl/sha.h>
#include <string.h>

#include "auth/jwks.h"

int tg_apikey_generate(char *out, size_t cap, uint8_t hash[TG_APIKEY_HASH_BYTES])
{
    if (out == NULL || cap == 0)
        return -1;
    out[0] = '\0';
    if (cap < TG_APIKEY_LEN + 1)
        return -1;
    uint8_t raw[TG_APIKEY_RANDOM_BYTES];
    if (RAND_bytes(raw, sizeof(raw)) != 1)
        return -1;
    memcpy(out, TG_APIKEY_PREFIX, TG_APIKEY_PREFIX_LEN);
    ssize_t n = tg_jwks_b64url_encode(raw, sizeof(raw), out + TG_APIKEY_PREFIX_LEN,
                                      cap - TG_APIKEY_PREFIX_LEN);
    OPENSSL_cleanse(raw, sizeof(raw));
    if (n != TG_APIKEY_BODY_LEN) {
        OPENSSL_cleanse(out, cap);
        out[0] = '\0';
        return -1;
    }
    tg_apikey_hash(out, TG_APIKEY_LEN, hash);
    return 0;
}

bool tg_apikey_looks_valid(const char *s, size_t n)
{
    if (s == NULL || n != TG_APIKEY_LEN || memcmp(s, TG_APIKEY_PREFIX, TG_APIKEY_PREFIX_LEN) != 0)
        return false;
    uint8_t raw[TG_APIKEY_RANDOM_BYTES];
    ssize_t got =
        tg_jwks_b64url_decode(s + TG_APIKEY_PREFIX_LEN, TG_APIKEY_BODY_LEN, raw, sizeof(raw));
    return got == TG_APIKEY_RANDOM_BYTES;
}

void tg_apikey_hash(const char *key, size_t n, uint8_t out[TG_APIKEY_HASH_BYTES])
{
    SHA256((const unsigned char *)key, n, out);
}

void tg_apikey_hash_hex(const uint8_t hash[TG_APIKEY_HASH_BYTES],
                        char out[TG_APIKEY_HASH_HEX_LEN + 1])
{
    static const char hex[] = "0123456789abcdef";
    for (size_t i = 0; i < TG_APIKEY_HASH_BYTES; i++) {
        out[2 * i] = hex[hash[i] >> 4];
        out[2 * i + 1] = hex[hash[i] & 15];
    }
    out[TG_APIKEY_HASH_HEX_LEN] = '\0';
}

bool tg_ct_equal(const void *a, const void *b, size_t n)
{
    return CRYPTO_memcmp(a, b, n) == 0;
}

void tg_apikey_display_prefix(const char *key, size_t n, char *out, size_t cap)
{
    if (out == NULL || cap == 0)
        return;
    size_t k = TG_MIN(TG_MIN(n, (size_t)TG_APIKEY_DISPLAY_LEN), cap - 1);
    if (key != NULL)
        memcpy(out, key, k);
    else
        k = 0;
    out[k] = '\0';
}
