/* jwks.h: JWS alg names, strict base64url, JWK Set / PEM public keys -> SPKI PEM for libjwt. */
#ifndef TG_JWKS_H
#define TG_JWKS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "core/common.h"

/* The signature algorithms tollgate verifies (libjwt 1.10's set, minus "none"). */
enum tg_jws_alg {
    TG_JWS_NONE = 0, /* "none", or anything unknown: never verified */
    TG_JWS_HS256,
    TG_JWS_HS384,
    TG_JWS_HS512,
    TG_JWS_RS256,
    TG_JWS_RS384,
    TG_JWS_RS512,
    TG_JWS_ES256,
    TG_JWS_ES384,
    TG_JWS_ES512,
    TG_JWS_ALG_COUNT,
};

#define TG_JWS_BIT(a) (1u << (a))
#define TG_JWS_HMAC_ALGS                                                                           \
    (TG_JWS_BIT(TG_JWS_HS256) | TG_JWS_BIT(TG_JWS_HS384) | TG_JWS_BIT(TG_JWS_HS512))
#define TG_JWS_RSA_ALGS                                                                            \
    (TG_JWS_BIT(TG_JWS_RS256) | TG_JWS_BIT(TG_JWS_RS384) | TG_JWS_BIT(TG_JWS_RS512))
#define TG_JWK_MAX_KID      128 /* longer kids are skipped */
#define TG_JWK_MAX_KEYS     64  /* a JWKS with more keys is refused */
#define TG_JWK_MIN_RSA_BITS 2048
#define TG_JWK_MAX_RSA_BITS 8192

/* Exact, case-sensitive algorithm name (RFC 7518) -> enum; TG_JWS_NONE for "none" and anything
 * else (libjwt's own parser is case-insensitive; this one is the gate). */
enum tg_jws_alg tg_jws_alg_parse(const char *s, size_t n);
/* "HS256" ... ; "none" for TG_JWS_NONE and out-of-range values. */
const char *tg_jws_alg_name(enum tg_jws_alg a);

/* Strict base64url (RFC 4648 §5) without padding: only A-Z a-z 0-9 - _, length % 4 != 1, and the
 * unused bits of the last character zero (one encoding per byte string). Writes at most cap bytes.
 * Returns the decoded length, or -1 when the input is not strict base64url or does not fit. */
TG_MUST_CHECK ssize_t tg_jwks_b64url_decode(const char *in, size_t n, uint8_t *out, size_t cap);
/* Decoded length of n strict base64url characters (n % 4 != 1 assumed). */
size_t tg_jwks_b64url_decoded_len(size_t n);
/* Encodes in[0..n) as base64url without padding plus a NUL. Returns the length written (without
 * the NUL), or -1 when cap is too small (needs 4*ceil(n/3)+1 at most). */
TG_MUST_CHECK ssize_t tg_jwks_b64url_encode(const uint8_t *in, size_t n, char *out, size_t cap);

/* One verification key, in the form libjwt 1.10 takes: an SPKI PEM. */
struct tg_jwk_key {
    char kid[TG_JWK_MAX_KID + 1]; /* jwt.c matches the token's kid against it */
    size_t kid_len;
    bool has_kid;
    unsigned alg_mask; /* TG_JWS_BIT()s this key may verify; fixed by the key, never the token */
    size_t sig_bytes;  /* exact signature length: RSA modulus bytes, or 2 x EC coordinate bytes */
    char *pem;         /* owned, NUL-terminated "-----BEGIN PUBLIC KEY-----" */
    size_t pem_len;    /* without the NUL */
};

/* A parsed key set. Zero-filled is an empty set. */
struct tg_jwks {
    struct tg_jwk_key *keys; /* owned array of n */
    size_t n;
};

/* Reads one PEM public key for JWT_PUBLIC_KEY_FILE: SPKI ("PUBLIC KEY"), PKCS#1 ("RSA PUBLIC KEY")
 * or an X.509 certificate. RSA (2048..8192 bits) allows RS256/384/512; EC allows only the ES alg of
 * its curve (P-256/384/521). Private keys are refused. Returns 0 and fills *out (the caller calls
 * tg_jwks_key_cleanup), or -1 with a one-line reason in err. */
TG_MUST_CHECK int tg_jwks_key_from_pem(const char *pem, size_t len, struct tg_jwk_key *out,
                                       char *err, size_t errlen);
/* Frees out->pem; accepts a zero-filled key. */
void tg_jwks_key_cleanup(struct tg_jwk_key *k);

/* Parses a JWK Set ({"keys":[...]}, RFC 7517). Kept: RSA keys (n, e) and EC keys (crv P-256,
 * P-384, P-521 with x, y), with `alg` from the JWK when given (it must suit the key) and otherwise
 * from kty/crv. Skipped, each with a note: use other than "sig", unsupported kty/crv/alg, RSA
 * outside 2048..8192 bits, points not on the curve, kids over TG_JWK_MAX_KID bytes, entries that
 * are not well-formed. Returns 0 with *out filled (at least one key; the caller calls
 * tg_jwks_cleanup) and err holding the notes ("" when none were skipped; cut to errlen); or -1
 * with the reason in err (not JSON, no "keys" array, more than TG_JWK_MAX_KEYS, no usable key). */
TG_MUST_CHECK int tg_jwks_parse(const char *json, size_t len, struct tg_jwks *out, char *err,
                                size_t errlen);
/* Frees every key; accepts a zero-filled set; leaves it empty. */
void tg_jwks_cleanup(struct tg_jwks *set);

#endif
