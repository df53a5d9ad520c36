/* identity.h: who is asking (SPEC §2): JWT, personal API key, service key + user header;
 * per-worker caches of verified credentials and user records. */
#ifndef TG_IDENTITY_H
#define TG_IDENTITY_H

#include "core/common.h"

struct tg_worker;
struct tg_request;
struct tg_conn;

enum tg_principal_kind {
    TG_WHO_NONE,
    TG_WHO_JWT,
    TG_WHO_APIKEY,
    TG_WHO_SERVICE,   /* the trusted front end's key; the user comes from a header or the body */
    TG_WHO_ADMIN_KEY, /* TOLLGATE_ADMIN_KEY: admin API only */
};

struct tg_principal {
    enum tg_principal_kind kind;
    char user_id[129];
    size_t user_id_len;
    char email[321];
    char name[257];
    char team_claim[129]; /* JWT "team" */
    bool has_team_claim;
    bool is_admin;   /* JWT role admin, or the admin key */
    char key_id[37]; /* personal API key id */
    char actor[160]; /* for audit: the admin JWT's sub or "admin-key" */
};

/* A user's record as the request path needs it (cached per worker). */
struct tg_user_rec {
    char team_id[129];
    bool disabled;
    int64_t limit_tokens; /* effective: the user's own quota or the default; -1 unlimited */
    int period;           /* enum tg_period of the user's quota */
    bool has_team_quota;
    int64_t team_limit;
    int team_period;
};

enum tg_auth_rc {
    TG_AUTH_OK,
    TG_AUTH_PENDING,      /* async: the continuation will be called */
    TG_AUTH_UNAUTHORIZED, /* 401 */
    TG_AUTH_BAD_REQUEST,  /* 400 (bad user id) */
    TG_AUTH_FORBIDDEN,    /* 403 */
    TG_AUTH_UNAVAILABLE,  /* 503: the database could not be asked */
};

struct tg_identity_cache;

/* Creates a worker's caches: verified keys (by SHA-256 of the key), verified JWTs (by SHA-256 of
 * the token, never past exp + leeway) and user records, each holding at most max_entries (least
 * recently used evicted) for at most AUTH_CACHE_TTL_S. NULL when out of memory. Owned by the
 * worker; not thread-safe (only the worker's loop touches it). */
struct tg_identity_cache *tg_identity_cache_create(int max_entries);
void tg_identity_cache_destroy(struct tg_identity_cache *ic);
/* Drops every cached entry (subscriber reconnect, JWKS change) or those of one user / key.
 * Database lookups already under way when this happens serve their request but are not cached
 * (they may have read the row before the change was committed). */
void tg_identity_cache_flush(struct tg_identity_cache *ic);
void tg_identity_invalidate_user(struct tg_identity_cache *ic, const char *user_id);
void tg_identity_invalidate_key(struct tg_identity_cache *ic, const char *key_id);

/* Checks the request's credential (Authorization: Bearer, else x-api-key) into r->who.
 * The service and admin keys are compared as SHA-256 digests in constant time; a personal key
 * is only ever hashed (its hash is the cache key and the database lookup key); JWTs are
 * verified by tg_jwt_verify (cached by the token's SHA-256). An API key not in the cache is
 * looked up in the database: TG_AUTH_PENDING, then tg_request_on_credential(). Otherwise
 * TG_AUTH_OK, TG_AUTH_UNAUTHORIZED (every bad credential: the same "Invalid credentials."; the
 * JWT's reason is logged), TG_AUTH_FORBIDDEN (the admin key) or TG_AUTH_UNAVAILABLE, with the
 * client's message in msg. The service key needs no user here (GET /v1/models). */
int tg_identity_authenticate(struct tg_request *r, char *msg, size_t cap);
/* Service key: the user named by X-Tollgate-User, or the body's "user" when the header is
 * absent, empty or a literal {{…}} (SPEC §2); X-Tollgate-User-Email when valid. TG_AUTH_OK, or
 * TG_AUTH_BAD_REQUEST with a message naming what to send (no user, an invalid id). */
int tg_identity_service_user(struct tg_request *r, char *msg, size_t cap);
/* Loads the user record into r->user, creating the user on first sight and recording the
 * credential's email / name / team when they changed (the other workers and instances are then
 * told to drop their copy). TG_AUTH_OK when cached, TG_AUTH_FORBIDDEN for a disabled user,
 * TG_AUTH_UNAVAILABLE, or TG_AUTH_PENDING then tg_request_on_user(). */
int tg_identity_load_user(struct tg_request *r, char *msg, size_t cap);

/* Authenticates a request on the admin API, synchronously: TG_AUTH_OK for TOLLGATE_ADMIN_KEY
 * or a valid JWT with the admin role (who filled in, who->actor for the audit log);
 * TG_AUTH_FORBIDDEN for a user's credential (a JWT without the role, the service key, anything
 * shaped like a personal key: none grants the admin API, so a key is not looked up);
 * TG_AUTH_UNAUTHORIZED for no or a bad credential. */
int tg_identity_check_admin(struct tg_conn *c, struct tg_principal *who, char *msg, size_t cap);

void tg_request_on_credential(struct tg_request *r, int rc, const char *msg);

#endif
