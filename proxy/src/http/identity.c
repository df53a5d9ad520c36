/* identity.c: credential checks and the per-worker caches of keys, tokens and users. */
#include "http/identity.h"

#include <openssl/crypto.h>
#include <openssl/sha.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "auth/apikey.h"
#include "auth/claims.h"
#include "auth/jwt.h"
#include "core/log.h"
#include "core/lru.h"
#include "http/control.h"
#include "http/dbpool.h"
#include "http/keyuse.h"
#include "http/request.h"
#include "http/server.h"
#include "http/worker.h"
#include "quota/quota_math.h"

#define NEGATIVE_TTL_MS 5000

struct key_entry {
    bool valid;
    char key_id[37];
    char user_id[129];
    int64_t last_reported_ms;
};

struct jwt_entry {
    struct tg_claims claims;
};

struct user_entry {
    struct tg_user_rec rec;
    /* what the credential last said about the user: a change means an update */
    char email[321];
    char name[257];
    char team_claim[129];
    bool has_team_claim;
};

struct tg_identity_cache {
    struct tg_lru *keys;
    struct tg_lru *jwts;
    struct tg_lru *users;
    /* Bumped by every flush and invalidation. A database lookup started under an older
     * generation may have read the row before the change that caused the invalidation was
     * committed: its answer serves the request that asked, but is not cached. */
    uint64_t gen;
};

struct tg_identity_cache *tg_identity_cache_create(int max_entries)
{
    struct tg_identity_cache *ic = calloc(1, sizeof(*ic));
    if (ic == NULL)
        return NULL;
    ic->keys = tg_lru_create((size_t)max_entries, sizeof(struct key_entry));
    ic->jwts = tg_lru_create((size_t)max_entries, sizeof(struct jwt_entry));
    ic->users = tg_lru_create((size_t)max_entries, sizeof(struct user_entry));
    if (ic->keys == NULL || ic->jwts == NULL || ic->users == NULL) {
        tg_identity_cache_destroy(ic);
        return NULL;
    }
    return ic;
}

void tg_identity_cache_destroy(struct tg_identity_cache *ic)
{
    if (ic == NULL)
        return;
    tg_lru_destroy(ic->keys);
    tg_lru_destroy(ic->jwts);
    tg_lru_destroy(ic->users);
    free(ic);
}

void tg_identity_cache_flush(struct tg_identity_cache *ic)
{
    ic->gen++;
    tg_lru_clear(ic->keys);
    tg_lru_clear(ic->jwts);
    tg_lru_clear(ic->users);
}

void tg_identity_invalidate_user(struct tg_identity_cache *ic, const char *user_id)
{
    ic->gen++;
    tg_lru_del(ic->users, user_id, strlen(user_id));
}

static bool key_id_is(const void *value, void *arg)
{
    const struct key_entry *e = value;
    return strcmp(e->key_id, (const char *)arg) == 0;
}

void tg_identity_invalidate_key(struct tg_identity_cache *ic, const char *key_id)
{
    ic->gen++;
    tg_lru_del_if(ic->keys, key_id_is, (void *)key_id);
}

/* ---- credentials ---------------------------------------------------------------------------- */

/* The presented credential: Authorization: Bearer …, else x-api-key. */
static bool get_credential(const struct tg_conn *c, const char **tok, size_t *len)
{
    const struct tg_http_header *a = tg_conn_header(c, "authorization");
    if (a != NULL) {
        if (a->value_len > 7 && strncasecmp(a->value, "Bearer ", 7) == 0) {
            const char *v = a->value + 7;
            size_t n = a->value_len - 7;
            while (n > 0 && *v == ' ') {
                v++;
                n--;
            }
            *tok = v;
            *len = n;
            return n > 0;
        }
        *tok = a->value;
        *len = 0;
        return false;
    }
    const struct tg_http_header *x = tg_conn_header(c, "x-api-key");
    if (x != NULL && x->value_len > 0) {
        *tok = x->value;
        *len = x->value_len;
        return true;
    }
    return false;
}

/* SHA-256 of the configured service and admin keys, computed once: comparing digests in
 * constant time does not reveal the configured key's length either. */
static pthread_once_t secrets_once = PTHREAD_ONCE_INIT;
static unsigned char service_key_sha[SHA256_DIGEST_LENGTH];
static unsigned char admin_key_sha[SHA256_DIGEST_LENGTH];

static void hash_secrets(void)
{
    const struct tg_config *cfg = &tg_app->cfg;
    SHA256((const unsigned char *)cfg->service_key, strlen(cfg->service_key), service_key_sha);
    SHA256((const unsigned char *)cfg->admin_key, strlen(cfg->admin_key), admin_key_sha);
}

/* True when tok[0..len) is the configured secret (which must be set). */
static bool secret_equal(const char *configured, const unsigned char configured_sha[],
                         const char *tok, size_t len)
{
    if (configured[0] == '\0')
        return false;
    pthread_once(&secrets_once, hash_secrets);
    unsigned char h[SHA256_DIGEST_LENGTH];
    SHA256((const unsigned char *)tok, len, h);
    return tg_ct_equal(configured_sha, h, sizeof(h));
}

static bool is_service_key(const char *tok, size_t len)
{
    return secret_equal(tg_app->cfg.service_key, service_key_sha, tok, len);
}

static bool is_admin_key(const char *tok, size_t len)
{
    return secret_equal(tg_app->cfg.admin_key, admin_key_sha, tok, len);
}

static bool jwt_configured(void)
{
    const struct tg_config *cfg = &tg_app->cfg;
    return cfg->jwt_secret[0] || cfg->jwt_public_key_file[0] || cfg->jwt_jwks_file[0] ||
           cfg->jwt_jwks_url_raw[0];
}

static struct tg_jwt_keys *current_keys(void)
{
    pthread_mutex_lock(&tg_app->jwt_keys_mu);
    struct tg_jwt_keys *k = atomic_load(&tg_app->jwt_keys);
    if (k != NULL)
        tg_jwt_keys_ref(k);
    pthread_mutex_unlock(&tg_app->jwt_keys_mu);
    return k;
}

/* Verifies a JWT (cached by the token's SHA-256 until it expires). */
static enum tg_jwt_status check_jwt(struct tg_worker *w, const char *tok, size_t len,
                                    struct tg_claims *out)
{
    unsigned char h[SHA256_DIGEST_LENGTH];
    SHA256((const unsigned char *)tok, len, h);
    int64_t now_ms = tg_now_ms();
    const struct tg_config *cfg = &tg_app->cfg;
    struct tg_claims_policy pol = {
        .issuer = cfg->jwt_issuer[0] ? cfg->jwt_issuer : NULL,
        .audience = cfg->jwt_audience[0] ? cfg->jwt_audience : NULL,
        .leeway_s = cfg->jwt_leeway_s,
    };
    struct jwt_entry *e = tg_lru_get(w->ident->jwts, h, sizeof(h), now_ms);
    if (e != NULL) {
        tg_metric_inc(&w->metrics.auth_cache_hits, 1);
        enum tg_jwt_status st = tg_claims_check(&e->claims, now_ms / 1000, &pol);
        if (st != TG_JWT_OK)
            return st;
        *out = e->claims;
        return TG_JWT_OK;
    }
    tg_metric_inc(&w->metrics.auth_cache_misses, 1);
    struct tg_jwt_keys *keys = current_keys();
    if (keys == NULL)
        return TG_JWT_NO_KEY;
    enum tg_jwt_status st = tg_jwt_verify(keys, tok, len, now_ms / 1000, &pol, out);
    tg_jwt_keys_unref(keys);
    if (st != TG_JWT_OK)
        return st;
    int64_t until_ms = (out->exp + cfg->jwt_leeway_s) * 1000;
    int64_t cap_ms = now_ms + (int64_t)cfg->auth_cache_ttl_s * 1000;
    struct jwt_entry *ne =
        tg_lru_put(w->ident->jwts, h, sizeof(h), until_ms < cap_ms ? until_ms : cap_ms);
    if (ne != NULL)
        ne->claims = *out;
    return TG_JWT_OK;
}

static void who_from_claims(struct tg_principal *who, const struct tg_claims *cl)
{
    who->kind = TG_WHO_JWT;
    memcpy(who->user_id, cl->sub, cl->sub_len);
    who->user_id[cl->sub_len] = '\0';
    who->user_id_len = cl->sub_len;
    snprintf(who->email, sizeof(who->email), "%s", cl->email);
    snprintf(who->name, sizeof(who->name), "%s", cl->name);
    if (cl->team[0]) {
        snprintf(who->team_claim, sizeof(who->team_claim), "%s", cl->team);
        who->has_team_claim = true;
    }
    who->is_admin = cl->is_admin;
    snprintf(who->actor, sizeof(who->actor), "%s", cl->sub);
}

/* API key lookup in the database (cache miss). */
struct key_job {
    struct tg_request *r;
    uint64_t gen; /* the cache's generation when the lookup was asked for */
    uint8_t hash[TG_APIKEY_HASH_BYTES];
    bool db_ok;
    bool found;
    bool revoked;
    bool disabled;
    char key_id[37];
    char user_id[129];
};

static void key_work(PGconn *conn, void *arg)
{
    struct key_job *j = arg;
    if (conn == NULL)
        return;
    char hex[2 * TG_APIKEY_HASH_BYTES + 3] = "\\x";
    tg_apikey_hash_hex(j->hash, hex + 2);
    const char *params[1] = {hex};
    PGresult *res = tg_db_exec(conn,
                               "SELECT k.id, k.user_id, k.revoked_at IS NOT NULL, u.disabled "
                               "FROM api_keys k JOIN users u ON u.id = k.user_id "
                               "WHERE k.key_hash = $1::bytea",
                               1, params);
    if (res == NULL)
        return;
    j->db_ok = true;
    if (PQntuples(res) == 1) {
        j->found = true;
        snprintf(j->key_id, sizeof(j->key_id), "%s", PQgetvalue(res, 0, 0));
        snprintf(j->user_id, sizeof(j->user_id), "%s", PQgetvalue(res, 0, 1));
        j->revoked = PQgetvalue(res, 0, 2)[0] == 't';
        j->disabled = PQgetvalue(res, 0, 3)[0] == 't';
    }
    PQclear(res);
}

static void fill_who_key(struct tg_principal *who, const char *key_id, const char *user_id)
{
    who->kind = TG_WHO_APIKEY;
    snprintf(who->key_id, sizeof(who->key_id), "%s", key_id);
    snprintf(who->user_id, sizeof(who->user_id), "%s", user_id);
    who->user_id_len = strlen(who->user_id);
    snprintf(who->actor, sizeof(who->actor), "%s", user_id);
}

static void key_done(void *arg)
{
    struct key_job *j = arg;
    struct tg_request *r = j->r;
    struct tg_worker *w = r->w;
    int64_t now = tg_now_ms();
    if (!j->db_ok) {
        free(j);
        tg_request_on_credential(r, TG_AUTH_UNAVAILABLE,
                                 "Cannot check the API key right now; try again.");
        return;
    }
    bool valid = j->found && !j->revoked;
    struct key_entry *e = NULL;
    if (j->gen == w->ident->gen)
        e = tg_lru_put(
            w->ident->keys, j->hash, sizeof(j->hash),
            now + (valid ? (int64_t)tg_app->cfg.auth_cache_ttl_s * 1000 : NEGATIVE_TTL_MS));
    if (e != NULL) {
        e->valid = valid;
        snprintf(e->key_id, sizeof(e->key_id), "%s", j->key_id);
        snprintf(e->user_id, sizeof(e->user_id), "%s", j->user_id);
        e->last_reported_ms = now;
    }
    if (!valid) {
        free(j);
        tg_request_on_credential(r, TG_AUTH_UNAUTHORIZED, "Invalid credentials.");
        return;
    }
    fill_who_key(&r->who, j->key_id, j->user_id);
    tg_keyuse_note(j->key_id, now);
    free(j);
    tg_request_on_credential(r, TG_AUTH_OK, "");
}

int tg_identity_authenticate(struct tg_request *r, char *msg, size_t cap)
{
    const struct tg_config *cfg = &tg_app->cfg;
    struct tg_worker *w = r->w;
    const char *tok = NULL;
    size_t len = 0;
    if (!get_credential(r->conn, &tok, &len)) {
        snprintf(msg, cap, "Missing credentials: send Authorization: Bearer <token>.");
        return TG_AUTH_UNAUTHORIZED;
    }
    if (is_service_key(tok, len)) {
        r->who.kind = TG_WHO_SERVICE;
        snprintf(r->who.actor, sizeof(r->who.actor), "service-key");
        return TG_AUTH_OK;
    }
    if (is_admin_key(tok, len)) {
        snprintf(msg, cap, "The admin key is for the admin API only; use a user credential.");
        return TG_AUTH_FORBIDDEN;
    }
    if (len >= TG_APIKEY_PREFIX_LEN && memcmp(tok, TG_APIKEY_PREFIX, TG_APIKEY_PREFIX_LEN) == 0) {
        if (!cfg->api_keys || !tg_apikey_looks_valid(tok, len)) {
            snprintf(msg, cap, "Invalid credentials.");
            return TG_AUTH_UNAUTHORIZED;
        }
        uint8_t hash[TG_APIKEY_HASH_BYTES];
        tg_apikey_hash(tok, len, hash);
        int64_t now = tg_now_ms();
        struct key_entry *e = tg_lru_get(w->ident->keys, hash, sizeof(hash), now);
        if (e != NULL) {
            tg_metric_inc(&w->metrics.auth_cache_hits, 1);
            if (!e->valid) {
                snprintf(msg, cap, "Invalid credentials.");
                return TG_AUTH_UNAUTHORIZED;
            }
            fill_who_key(&r->who, e->key_id, e->user_id);
            if (now - e->last_reported_ms > 10000) {
                e->last_reported_ms = now;
                tg_keyuse_note(e->key_id, now);
            }
            return TG_AUTH_OK;
        }
        tg_metric_inc(&w->metrics.auth_cache_misses, 1);
        struct key_job *j = calloc(1, sizeof(*j));
        if (j == NULL) {
            snprintf(msg, cap, "Out of memory.");
            return TG_AUTH_UNAVAILABLE;
        }
        j->r = r;
        j->gen = w->ident->gen;
        memcpy(j->hash, hash, sizeof(hash));
        if (tg_dbpool_submit(tg_app->db, w, key_work, key_done, j) != 0) {
            free(j);
            snprintf(msg, cap, "Cannot check the API key right now; try again.");
            return TG_AUTH_UNAVAILABLE;
        }
        return TG_AUTH_PENDING;
    }
    if (jwt_configured() && memchr(tok, '.', len) != NULL) {
        struct tg_claims cl;
        enum tg_jwt_status st = check_jwt(w, tok, len, &cl);
        if (st != TG_JWT_OK) {
            struct tg_logline l;
            tg_logline_begin(&l, TG_LOG_INFO, "jwt rejected");
            tg_logline_str(&l, "request_id", r->id);
            tg_logline_str(&l, "reason", tg_jwt_status_name(st));
            tg_logline_end(&l);
            snprintf(msg, cap, "Invalid credentials.");
            return TG_AUTH_UNAUTHORIZED;
        }
        who_from_claims(&r->who, &cl);
        return TG_AUTH_OK;
    }
    snprintf(msg, cap, "Invalid credentials.");
    return TG_AUTH_UNAUTHORIZED;
}

/* A header value that is a literal template LibreChat did not fill: "{{…}}". */
static bool is_placeholder(const char *v, size_t n)
{
    return n >= 4 && v[0] == '{' && v[1] == '{' && v[n - 2] == '}' && v[n - 1] == '}';
}

/* The user-id rule (valid UTF-8, no control characters) for texts longer than 128 bytes
 * (an email may have 320): checked in pieces cut before a byte that starts a character, so a
 * valid text gives valid pieces and any invalid sequence makes its piece invalid. An email
 * header that fails is ignored (the user is still served); one that passed cannot make
 * PostgreSQL refuse the row. */
static bool text_valid(const char *s, size_t n)
{
    while (n > 0) {
        size_t k = n <= TG_CLAIMS_SUB_MAX ? n : TG_CLAIMS_SUB_MAX;
        while (k < n && k > 1 && ((unsigned char)s[k] & 0xc0) == 0x80)
            k--;
        if (!tg_claims_user_id_valid(s, k))
            return false;
        s += k;
        n -= k;
    }
    return true;
}

int tg_identity_service_user(struct tg_request *r, char *msg, size_t cap)
{
    const struct tg_http_header *h = tg_conn_header(r->conn, "x-tollgate-user");
    const char *id = NULL;
    size_t n = 0;
    if (h != NULL && h->value_len > 0 && !is_placeholder(h->value, h->value_len)) {
        id = h->value;
        n = h->value_len;
    } else if (r->info.user_len > 0) {
        id = r->info.user;
        n = r->info.user_len;
    } else if (r->info.has_user) {
        /* a "user" that is empty, not a string or longer than 128 bytes */
        snprintf(msg, cap,
                 "Invalid user id in the body's \"user\": 1-128 bytes of UTF-8 without control "
                 "characters.");
        return TG_AUTH_BAD_REQUEST;
    }
    if (id == NULL) {
        snprintf(msg, cap,
                 "No user named: with the service key, send X-Tollgate-User (or a \"user\" "
                 "field in the body).");
        return TG_AUTH_BAD_REQUEST;
    }
    if (!tg_claims_user_id_valid(id, n)) {
        snprintf(msg, cap, "Invalid user id: 1-128 bytes of UTF-8 without control characters.");
        return TG_AUTH_BAD_REQUEST;
    }
    memcpy(r->who.user_id, id, n);
    r->who.user_id[n] = '\0';
    r->who.user_id_len = n;
    const struct tg_http_header *em = tg_conn_header(r->conn, "x-tollgate-user-email");
    if (em != NULL && em->value_len > 0 && em->value_len < sizeof(r->who.email) &&
        !is_placeholder(em->value, em->value_len) && text_valid(em->value, em->value_len)) {
        memcpy(r->who.email, em->value, em->value_len);
        r->who.email[em->value_len] = '\0';
    }
    return TG_AUTH_OK;
}

/* ---- user records --------------------------------------------------------------------------- */

struct user_job {
    struct tg_request *r;
    uint64_t gen;            /* the cache's generation when the load was asked for */
    struct tg_principal who; /* copy: the job must not read r from another thread */
    bool db_ok;
    bool updated; /* an existing user's email, name or team changed */
    struct tg_user_rec rec;
};

static int period_of(const char *s, int fallback)
{
    enum tg_period p;
    if (s != NULL && s[0] && tg_period_parse(s, &p) == 0)
        return (int)p;
    return fallback;
}

static void user_work(PGconn *conn, void *arg)
{
    struct user_job *j = arg;
    if (conn == NULL)
        return;
    const struct tg_principal *who = &j->who;
    const char *team = who->has_team_claim ? who->team_claim : NULL;
    PGresult *res = PQexec(conn, "BEGIN");
    PQclear(res);
    if (team != NULL) {
        const char *tp[1] = {team};
        res = tg_db_exec(conn, "INSERT INTO teams (id) VALUES ($1) ON CONFLICT DO NOTHING", 1, tp);
        if (res == NULL)
            goto rollback;
        PQclear(res);
    }
    const char *up[5] = {who->user_id, who->email, who->name, team ? team : "", team ? "t" : "f"};
    res =
        tg_db_exec(conn,
                   "INSERT INTO users (id, email, name, team_id) "
                   "VALUES ($1, NULLIF($2, ''), NULLIF($3, ''), NULLIF($4, '')) "
                   "ON CONFLICT (id) DO UPDATE SET "
                   "  email = COALESCE(EXCLUDED.email, users.email), "
                   "  name = COALESCE(EXCLUDED.name, users.name), "
                   "  team_id = CASE WHEN $5::boolean THEN EXCLUDED.team_id ELSE users.team_id END "
                   "WHERE users.email IS DISTINCT FROM COALESCE(EXCLUDED.email, users.email) "
                   "   OR users.name IS DISTINCT FROM COALESCE(EXCLUDED.name, users.name) "
                   "   OR ($5::boolean AND users.team_id IS DISTINCT FROM EXCLUDED.team_id) "
                   "RETURNING xmax <> 0",
                   5, up);
    if (res == NULL)
        goto rollback;
    /* a row back: inserted (xmax 0) or updated; none: nothing changed */
    bool updated = PQntuples(res) == 1 && PQgetvalue(res, 0, 0)[0] == 't';
    PQclear(res);
    const char *sp[1] = {who->user_id};
    res =
        tg_db_exec(conn,
                   "SELECT u.disabled, COALESCE(u.team_id, ''), "
                   "  uq.limit_tokens, uq.period, dq.limit_tokens, dq.period, "
                   "  tq.limit_tokens, tq.period, tq.subject_id IS NOT NULL "
                   "FROM users u "
                   "LEFT JOIN quotas uq ON uq.subject_kind = 'user' AND uq.subject_id = u.id "
                   "LEFT JOIN quotas dq ON dq.subject_kind = 'default' AND dq.subject_id = '' "
                   "LEFT JOIN quotas tq ON tq.subject_kind = 'team' AND tq.subject_id = u.team_id "
                   "WHERE u.id = $1",
                   1, sp);
    if (res == NULL)
        goto rollback;
    if (PQntuples(res) != 1) {
        PQclear(res);
        goto rollback;
    }
    const struct tg_config *cfg = &tg_app->cfg;
    struct tg_user_rec *rec = &j->rec;
    rec->disabled = PQgetvalue(res, 0, 0)[0] == 't';
    snprintf(rec->team_id, sizeof(rec->team_id), "%s", PQgetvalue(res, 0, 1));
    int default_period = tg_app->period;
    int64_t default_limit = cfg->quota_default_tokens;
    if (!PQgetisnull(res, 0, 4))
        default_limit = strtoll(PQgetvalue(res, 0, 4), NULL, 10);
    default_period =
        period_of(PQgetisnull(res, 0, 5) ? NULL : PQgetvalue(res, 0, 5), default_period);
    rec->limit_tokens =
        PQgetisnull(res, 0, 2) ? default_limit : strtoll(PQgetvalue(res, 0, 2), NULL, 10);
    rec->period = period_of(PQgetisnull(res, 0, 3) ? NULL : PQgetvalue(res, 0, 3), default_period);
    rec->has_team_quota = PQgetvalue(res, 0, 8)[0] == 't' && !PQgetisnull(res, 0, 6);
    if (rec->has_team_quota) {
        rec->team_limit = strtoll(PQgetvalue(res, 0, 6), NULL, 10);
        rec->team_period =
            period_of(PQgetisnull(res, 0, 7) ? NULL : PQgetvalue(res, 0, 7), default_period);
    }
    PQclear(res);
    res = PQexec(conn, "COMMIT");
    if (PQresultStatus(res) == PGRES_COMMAND_OK) {
        j->db_ok = true;
        j->updated = updated;
    }
    PQclear(res);
    return;
rollback:
    res = PQexec(conn, "ROLLBACK");
    PQclear(res);
}

static void user_done(void *arg)
{
    struct user_job *j = arg;
    struct tg_request *r = j->r;
    if (!j->db_ok) {
        free(j);
        tg_request_on_user(r, TG_AUTH_UNAVAILABLE,
                           "Cannot load the user record right now; try again.");
        return;
    }
    struct user_entry *e = NULL;
    if (j->gen == r->w->ident->gen)
        e = tg_lru_put(r->w->ident->users, j->who.user_id, strlen(j->who.user_id),
                       tg_now_ms() + (int64_t)tg_app->cfg.auth_cache_ttl_s * 1000);
    if (e != NULL) {
        e->rec = j->rec;
        snprintf(e->email, sizeof(e->email), "%s", j->who.email);
        snprintf(e->name, sizeof(e->name), "%s", j->who.name);
        snprintf(e->team_claim, sizeof(e->team_claim), "%s", j->who.team_claim);
        e->has_team_claim = j->who.has_team_claim;
    }
    r->user = j->rec;
    if (j->updated) {
        /* the other workers and instances may hold the old record (its team is billed) */
        char inval[8 + sizeof(j->who.user_id)];
        snprintf(inval, sizeof(inval), "user %s", j->who.user_id);
        tg_control_invalidate(inval);
    }
    free(j);
    tg_request_on_user(r, r->user.disabled ? TG_AUTH_FORBIDDEN : TG_AUTH_OK,
                       "This user is disabled.");
}

/* True when the credential says something new about the user (email, name, team). */
static bool claims_changed(const struct user_entry *e, const struct tg_principal *who)
{
    if (who->email[0] && strcmp(who->email, e->email) != 0)
        return true;
    if (who->name[0] && strcmp(who->name, e->name) != 0)
        return true;
    if (who->has_team_claim && (!e->has_team_claim || strcmp(who->team_claim, e->team_claim) != 0))
        return true;
    return false;
}

int tg_identity_load_user(struct tg_request *r, char *msg, size_t cap)
{
    struct tg_worker *w = r->w;
    struct user_entry *e =
        tg_lru_get(w->ident->users, r->who.user_id, r->who.user_id_len, tg_now_ms());
    if (e != NULL && !claims_changed(e, &r->who)) {
        r->user = e->rec;
        if (r->user.disabled) {
            snprintf(msg, cap, "This user is disabled.");
            return TG_AUTH_FORBIDDEN;
        }
        return TG_AUTH_OK;
    }
    struct user_job *j = calloc(1, sizeof(*j));
    if (j == NULL) {
        snprintf(msg, cap, "Out of memory.");
        return TG_AUTH_UNAVAILABLE;
    }
    j->r = r;
    j->gen = w->ident->gen;
    j->who = r->who;
    if (tg_dbpool_submit(tg_app->db, w, user_work, user_done, j) != 0) {
        free(j);
        snprintf(msg, cap, "Cannot load the user record right now; try again.");
        return TG_AUTH_UNAVAILABLE;
    }
    return TG_AUTH_PENDING;
}

int tg_identity_check_admin(struct tg_conn *c, struct tg_principal *who, char *msg, size_t cap)
{
    const char *tok = NULL;
    size_t len = 0;
    memset(who, 0, sizeof(*who));
    if (!get_credential(c, &tok, &len)) {
        snprintf(msg, cap, "Missing credentials: send Authorization: Bearer <admin token>.");
        return TG_AUTH_UNAUTHORIZED;
    }
    if (is_admin_key(tok, len)) {
        who->kind = TG_WHO_ADMIN_KEY;
        who->is_admin = true;
        snprintf(who->actor, sizeof(who->actor), "admin-key");
        return TG_AUTH_OK;
    }
    if (is_service_key(tok, len)) {
        snprintf(msg, cap, "The service key does not grant the admin API.");
        return TG_AUTH_FORBIDDEN;
    }
    if (len >= TG_APIKEY_PREFIX_LEN && memcmp(tok, TG_APIKEY_PREFIX, TG_APIKEY_PREFIX_LEN) == 0 &&
        tg_apikey_looks_valid(tok, len)) {
        snprintf(msg, cap, "A personal API key does not grant the admin API.");
        return TG_AUTH_FORBIDDEN;
    }
    if (jwt_configured() && memchr(tok, '.', len) != NULL) {
        struct tg_claims cl;
        struct tg_worker *w = c->w;
        if (check_jwt(w, tok, len, &cl) != TG_JWT_OK) {
            snprintf(msg, cap, "Invalid credentials.");
            return TG_AUTH_UNAUTHORIZED;
        }
        who_from_claims(who, &cl);
        if (!cl.is_admin) {
            snprintf(msg, cap, "This token does not grant the admin API (role is not admin).");
            return TG_AUTH_FORBIDDEN;
        }
        return TG_AUTH_OK;
    }
    snprintf(msg, cap, "Invalid credentials.");
    return TG_AUTH_UNAUTHORIZED;
}
