/* claims.h: JWT claims: extraction from the payload and the pure exp/nbf/iss/aud/sub checks. */
#ifndef TG_CLAIMS_H
#define TG_CLAIMS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/common.h"

#define TG_CLAIMS_SUB_MAX      128 /* SPEC §2: a user id is 1–128 bytes */
#define TG_CLAIMS_ROLE_MAX     32
#define TG_CLAIMS_TEAM_MAX     128
#define TG_CLAIMS_EMAIL_MAX    320
#define TG_CLAIMS_NAME_MAX     256
#define TG_CLAIMS_ISS_MAX      256
/* Largest |exp|, |nbf|, |iat| accepted; keeps every leeway sum far from int64 overflow. */
#define TG_CLAIMS_TIME_MAX     ((int64_t)1 << 52)
/* Largest leeway honoured; larger values are clamped. */
#define TG_CLAIMS_LEEWAY_MAX_S ((int64_t)1 << 31)

/* Every outcome of a JWT verification (jwt.c) and of the claim checks (claims.c). */
enum tg_jwt_status {
    TG_JWT_OK = 0,
    TG_JWT_MALFORMED,     /* not three base64url segments, bad header/payload JSON, crit, typ */
    TG_JWT_BAD_ALG,       /* alg none/unknown, or not an algorithm the chosen key allows */
    TG_JWT_UNKNOWN_KID,   /* kid not in the JWKS */
    TG_JWT_BAD_SIGNATURE, /* signature does not verify (or has the wrong length) */
    TG_JWT_EXPIRED,       /* now >= exp + leeway */
    TG_JWT_NOT_YET_VALID, /* now < nbf - leeway */
    TG_JWT_NO_EXP,        /* exp missing (it is required) */
    TG_JWT_BAD_ISSUER,    /* iss missing or different when an issuer is configured */
    TG_JWT_BAD_AUDIENCE,  /* aud missing or without the configured audience */
    TG_JWT_NO_SUBJECT,    /* sub missing or empty */
    TG_JWT_BAD_CLAIM,     /* a claim of the wrong type, out of range, too long or not a valid id */
    TG_JWT_TOO_LONG,      /* the raw token exceeds TG_JWT_MAX_TOKEN_BYTES */
    TG_JWT_NO_KEY,        /* no configured key can verify this token */
};

/* What a verified token says about its bearer. Strings are NUL-terminated, valid UTF-8 without
 * control characters; absent optional claims are empty strings. */
struct tg_claims {
    char sub[TG_CLAIMS_SUB_MAX + 1]; /* user id (identity uses it as the key of the user) */
    size_t sub_len;
    char role[TG_CLAIMS_ROLE_MAX + 1]; /* as sent; "" when absent or longer than 32 bytes */
    char team[TG_CLAIMS_TEAM_MAX + 1];
    char email[TG_CLAIMS_EMAIL_MAX + 1];
    char name[TG_CLAIMS_NAME_MAX + 1]; /* cut at a character boundary when longer */
    char iss[TG_CLAIMS_ISS_MAX + 1];
    int64_t exp, nbf, iat; /* seconds since the epoch; fractions are floored */
    bool has_exp, has_nbf, has_iat, has_iss;
    bool has_aud;     /* an aud claim was present */
    bool aud_matches; /* aud contains the audience passed to tg_claims_parse */
    bool is_admin;    /* role == "admin" (or a role array containing "admin") */
};

/* What the operator configured (JWT_ISSUER, JWT_AUDIENCE, JWT_LEEWAY_S). */
struct tg_claims_policy {
    const char *issuer;   /* NULL = not checked */
    const char *audience; /* NULL = not checked */
    int64_t leeway_s;     /* applied to exp and nbf; negative counts as 0 */
};

/* Short stable name of a status ("ok", "expired", ...), for logs and metrics. Never NULL. */
const char *tg_jwt_status_name(enum tg_jwt_status s);

/* Extracts the claims from a JWT payload (the decoded JSON, not base64url).
 * `pol` may be NULL; only pol->audience is used here, to record out->aud_matches (aud may be a
 * string or an array of strings of any length, so it is not copied). Pass the same policy to
 * tg_claims_check. Numbers may be integers or floats (1700000000.0, 1.7e9). `null` counts as
 * absent. Returns TG_JWT_OK, TG_JWT_MALFORMED (not a JSON object) or TG_JWT_BAD_CLAIM (a claim
 * of the wrong type, out of range, or a sub/team/email/iss that is too long or not a valid id).
 * Missing claims are not errors here; tg_claims_check decides. `out` is always initialised. */
TG_MUST_CHECK enum tg_jwt_status tg_claims_parse(const char *json, size_t len,
                                                 const struct tg_claims_policy *pol,
                                                 struct tg_claims *out);

/* Checks the claims at time `now` (seconds): exp required and not past (leeway applies), nbf
 * not in the future (leeway applies), iss equal to pol->issuer when set, aud containing
 * pol->audience when set, sub present. `pol` may be NULL (only exp/nbf/sub are checked, no
 * leeway). Pure; also used to re-check a cached token. Returns TG_JWT_OK or the first failure
 * among NO_EXP, EXPIRED, NOT_YET_VALID, BAD_ISSUER, BAD_AUDIENCE, NO_SUBJECT. */
TG_MUST_CHECK enum tg_jwt_status tg_claims_check(const struct tg_claims *c, int64_t now,
                                                 const struct tg_claims_policy *pol);

/* SPEC §2 user-id rule: 1–128 bytes of valid UTF-8 (shortest form, no surrogates) without
 * control characters (U+0000–U+001F, U+007F–U+009F). */
bool tg_claims_user_id_valid(const char *s, size_t n);

#endif
