/* apikey.h: personal API keys: generation, shape check, SHA-256 hash, constant-time compare. */
#ifndef TG_APIKEY_H
#define TG_APIKEY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/common.h"

#define TG_APIKEY_PREFIX       "tg-"
#define TG_APIKEY_PREFIX_LEN   3
#define TG_APIKEY_RANDOM_BYTES 32
#define TG_APIKEY_BODY_LEN     43 /* base64url of 32 bytes, no padding */
#define TG_APIKEY_LEN          (TG_APIKEY_PREFIX_LEN + TG_APIKEY_BODY_LEN) /* 46 */
#define TG_APIKEY_HASH_BYTES   32                                          /* SHA-256 */
#define TG_APIKEY_HASH_HEX_LEN 64
#define TG_APIKEY_DISPLAY_LEN  8 /* "tg-" + 5 characters: enough to tell keys apart in a list */

/* Storage: a key is stored only as SHA-256 over its full text ("tg-..."), as 32 raw bytes
 * (bytea in PostgreSQL; hex via tg_apikey_hash_hex where text is needed, e.g. Redis keys).
 * No salt or slow hash is needed: the key carries 256 random bits, so the hash is also the lookup
 * index. */

/* Creates a new key "tg-" + base64url(32 bytes from RAND_bytes) into out (NUL-terminated; cap must
 * be at least TG_APIKEY_LEN + 1) and its storage hash. Returns 0, or -1 when cap is too small or
 * the random generator fails (out is then an empty string). The caller shows out once and keeps
 * only hash. */
TG_MUST_CHECK int tg_apikey_generate(char *out, size_t cap, uint8_t hash[TG_APIKEY_HASH_BYTES]);

/* True when s[0..n) has the shape of a key: the "tg-" prefix, exactly TG_APIKEY_LEN bytes, the
 * base64url alphabet after the prefix, and a last character whose unused bits are zero. Cheap;
 * lets identity route a bearer credential to key lookup without hashing JWTs. Not a secret check.
 */
bool tg_apikey_looks_valid(const char *s, size_t n);

/* SHA-256 of key[0..n) into out (any n; the caller checks the shape first). */
void tg_apikey_hash(const char *key, size_t n, uint8_t out[TG_APIKEY_HASH_BYTES]);

/* Lower-case hex of a hash into out (64 characters + NUL). */
void tg_apikey_hash_hex(const uint8_t hash[TG_APIKEY_HASH_BYTES],
                        char out[TG_APIKEY_HASH_HEX_LEN + 1]);

/* Compares a[0..n) and b[0..n) in time that depends only on n (CRYPTO_memcmp). */
bool tg_ct_equal(const void *a, const void *b, size_t n);

/* The first TG_APIKEY_DISPLAY_LEN bytes of a key (fewer if n is shorter), NUL-terminated, into
 * out[cap] (cut to cap - 1), for listings and logs ("tg-AbCdE"). */
void tg_apikey_display_prefix(const char *key, size_t n, char *out, size_t cap);

#endif
