/* jwt.h: JWT verification (libjwt 1.10, alg pinned by the key) and immutable key snapshots. */
#ifndef TG_JWT_H
#define TG_JWT_H

#include <stddef.h>
#include <stdint.h>

#include "auth/claims.h"
#include "core/common.h"

#define TG_JWT_MAX_TOKEN_BYTES  8192 /* longer tokens are TG_JWT_TOO_LONG */
#define TG_JWT_MAX_SECRET_BYTES 4096
#define TG_JWT_MAX_PEM_BYTES    65536

/* An immutable snapshot of the verification keys: an optional HMAC secret (HS256/384/512), an
 * optional PEM public key (RS256/384/512, or the one ES alg of its curve) and an optional JWK set
 * (kid -> key + allowed algs). Reference-counted with atomics: the control thread builds a new
 * snapshot on each JWKS refresh and swaps it in, while workers keep verifying with the one they
 * hold. Everything derived from the keys (PEM for libjwt, allowed algorithms) is computed once
 * here, never per verification. The refcount does not make a shared pointer safe by itself:
 * load the current pointer and take the reference under the same lock the swapper holds (or
 * give each worker its own reference, replaced on its own loop), as test_concurrent_verify does. */
struct tg_jwt_keys;

/* Creates a snapshot with refcount 1 from an HMAC secret (may be NULL/0) and a PEM public key,
 * X.509 certificate or PKCS#1 RSA public key (may be NULL/0). Either or both may be absent (JWKS
 * only). Returns NULL with a one-line reason in err (oversized secret, unreadable key, RSA
 * under 2048 bits, unsupported curve, a private key, out of memory). Caller owns the reference. */
TG_MUST_CHECK struct tg_jwt_keys *tg_jwt_keys_create(const char *hmac_secret, size_t secret_len,
                                                     const char *pem, size_t pem_len, char *err,
                                                     size_t errlen);

/* Adds the keys of a JWK Set document (see tg_jwks_parse for what is kept). Only while the
 * snapshot is still private to its builder (before it is shared with other threads). Returns 0
 * with notes on skipped keys in err ("" when none), or -1 with the reason in err (the snapshot is
 * then unchanged). */
TG_MUST_CHECK int tg_jwt_keys_add_jwks(struct tg_jwt_keys *k, const char *jwks_json, size_t len,
                                       char *err, size_t errlen);

/* Number of JWKS keys in the snapshot (for logs and tests). */
size_t tg_jwt_keys_jwks_count(const struct tg_jwt_keys *k);

/* Takes one more reference (any thread). */
void tg_jwt_keys_ref(struct tg_jwt_keys *k);
/* Drops a reference (any thread); the last one frees the snapshot. Accepts NULL. */
void tg_jwt_keys_unref(struct tg_jwt_keys *k);

/* Verifies token[0..len) at time `now` (seconds) and fills *out with its claims.
 * The token is pre-checked before libjwt sees it: at most TG_JWT_MAX_TOKEN_BYTES, exactly three
 * non-empty strict base64url segments, a JSON-object header (at most 16 members, names of at
 * most 64 bytes, no duplicates) with a string alg (exact case), no crit, typ absent or "JWT"
 * (any case, as libjwt requires), kid (if any) a string of at most TG_JWK_MAX_KID bytes. The key is
 * chosen without trusting alg:
 *   - a kid and a JWK set: the JWKS key with that kid (none -> TG_JWT_UNKNOWN_KID);
 *   - otherwise the HMAC secret for HS algs, the PEM key for RS and ES algs (that key not
 *     configured -> TG_JWT_BAD_ALG);
 *   - an RS/ES token without kid and no PEM key: the JWKS key if the set has exactly one,
 *     TG_JWT_NO_KEY if it has several (nothing to choose by); no key at all -> TG_JWT_NO_KEY.
 *   - the header's jku, jwk, x5u and x5c are ignored: keys never come from the token.
 * The alg must be one the chosen key allows (else TG_JWT_BAD_ALG), so "none" and algorithm
 * confusion (an HS token signed with the public key's text) never reach signature checking.
 * Then libjwt verifies the signature, and tg_claims_parse/tg_claims_check decide with `pol`.
 * Thread-safe: any number of threads may verify with the same snapshot. `out` is always written
 * (zeroed unless TG_JWT_OK). */
TG_MUST_CHECK enum tg_jwt_status tg_jwt_verify(const struct tg_jwt_keys *k, const char *token,
                                               size_t len, int64_t now,
                                               const struct tg_claims_policy *pol,
                                               struct tg_claims *out);

#endif
