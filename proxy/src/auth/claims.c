/* claims.c: JWT payload -> struct tg_claims; exp/nbf/iss/aud/sub checks (pure, `now` given). */
#include "auth/claims.h"

#include <math.h> /* isfinite: a macro, no libm */
#include <stdlib.h>
#include <string.h>

#include "core/json_scan.h"

const char *tg_jwt_status_name(enum tg_jwt_status s)
{
    switch (s) {
    case TG_JWT_OK:
        return "ok";
    case TG_JWT_MALFORMED:
        return "malformed";
    case TG_JWT_BAD_ALG:
        return "bad_alg";
    case TG_JWT_UNKNOWN_KID:
        return "unknown_kid";
    case TG_JWT_BAD_SIGNATURE:
        return "bad_signature";
    case TG_JWT_EXPIRED:
        return "expired";
    case TG_JWT_NOT_YET_VALID:
        return "not_yet_valid";
    case TG_JWT_NO_EXP:
        return "no_exp";
    case TG_JWT_BAD_ISSUER:
        return "bad_issuer";
    case TG_JWT_BAD_AUDIENCE:
        return "bad_audience";
    case TG_JWT_NO_SUBJECT:
        return "no_subject";
    case TG_JWT_BAD_CLAIM:
        return "bad_claim";
    case TG_JWT_TOO_LONG:
        return "too_long";
    case TG_JWT_NO_KEY:
        return "no_key";
    }
    return "unknown";
}

/* Length of the UTF-8 sequence at s[0..n) when it is valid, shortest-form, not a surrogate and
 * not a control character; 0 otherwise. */
static size_t text_char_len(const unsigned char *s, size_t n)
{
    unsigned c = s[0];
    if (c < 0x20 || c == 0x7f)
        return 0;
    if (c < 0x80)
        return 1;
    size_t len;
    unsigned cp;
    if (c >= 0xc2 && c <= 0xdf) {
        len = 2;
        cp = c & 0x1f;
    } else if (c >= 0xe0 && c <= 0xef) {
        len = 3;
        cp = c & 0x0f;
    } else if (c >= 0xf0 && c <= 0xf4) {
        len = 4;
        cp = c & 0x07;
    } else {
        return 0;
    }
    if (n < len)
        return 0;
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xc0) != 0x80)
            return 0;
        cp = (cp << 6) | (s[i] & 0x3f);
    }
    if ((len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) || cp > 0x10ffff)
        return 0;
    if (cp >= 0xd800 && cp <= 0xdfff)
        return 0;
    if (cp >= 0x80 && cp <= 0x9f)
        return 0;
    return len;
}

static bool text_valid(const char *s, size_t n)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t i = 0;
    while (i < n) {
        size_t l = text_char_len(p + i, n - i);
        if (l == 0)
            return false;
        i += l;
    }
    return true;
}

bool tg_claims_user_id_valid(const char *s, size_t n)
{
    return s != NULL && n >= 1 && n <= TG_CLAIMS_SUB_MAX && text_valid(s, n);
}

/* A NumericDate: integer or float (floored), within ±TG_CLAIMS_TIME_MAX. */
static int parse_time(const struct tg_jv *v, int64_t *out)
{
    if (v->type != TG_JSON_NUMBER)
        return -1;
    int64_t i;
    if (tg_json_int64(v, &i) == 0) {
        if (i > TG_CLAIMS_TIME_MAX || i < -TG_CLAIMS_TIME_MAX)
            return -1;
        *out = i;
        return 0;
    }
    char buf[64];
    if (v->n >= sizeof(buf))
        return -1;
    memcpy(buf, v->p, v->n);
    buf[v->n] = '\0';
    char *end = NULL;
    double d = strtod(buf, &end);
    if (end != buf + v->n || !isfinite(d))
        return -1;
    if (d > (double)TG_CLAIMS_TIME_MAX || d < -(double)TG_CLAIMS_TIME_MAX)
        return -1;
    int64_t t = (int64_t)d; /* toward zero; floor below */
    if ((double)t > d)
        t--;
    *out = t;
    return 0;
}

/* Copies a string claim into dst[cap+1] as valid text. Returns the length, or -1 when it is not
 * a string, is longer than cap, or is not valid text. */
static ssize_t copy_text(const struct tg_jv *v, char *dst, size_t cap)
{
    if (v->type != TG_JSON_STRING)
        return -1;
    ssize_t n = tg_json_string_copy(v, dst, cap);
    if (n < 0) {
        dst[0] = '\0';
        return -1;
    }
    dst[n] = '\0';
    if (!text_valid(dst, (size_t)n)) {
        dst[0] = '\0';
        return -1;
    }
    return n;
}

struct cut_sink {
    char *dst;
    size_t cap, len;
    bool full;
};

static void cut_emit(const char *p, size_t n, void *arg)
{
    struct cut_sink *s = arg;
    if (s->full)
        return;
    size_t room = s->cap - s->len;
    if (n > room) {
        n = room;
        s->full = true;
    }
    memcpy(s->dst + s->len, p, n);
    s->len += n;
}

/* Like copy_text, but a longer string is cut at the last character boundary that fits. */
static int copy_text_cut(const struct tg_jv *v, char *dst, size_t cap)
{
    if (v->type != TG_JSON_STRING)
        return -1;
    struct cut_sink s = {dst, cap, 0, false};
    tg_json_string_decode(v, cut_emit, &s);
    size_t n = s.len;
    if (s.full) {
        /* back off to a lead byte so a multi-byte character is dropped whole */
        size_t i = 0, last_ok = 0;
        while (i < n) {
            size_t l = text_char_len((const unsigned char *)dst + i, n - i);
            if (l == 0)
                break;
            i += l;
            last_ok = i;
        }
        if (i < n && n - i < 4 && (unsigned char)dst[i] >= 0xc2)
            n = last_ok;
    }
    dst[n] = '\0';
    if (!text_valid(dst, n)) {
        dst[0] = '\0';
        return -1;
    }
    return 0;
}

static enum tg_jwt_status parse_role(const struct tg_jv *v, struct tg_claims *out)
{
    if (v->type == TG_JSON_STRING) {
        char tmp[TG_CLAIMS_ROLE_MAX + 1];
        if (tg_json_string_len(v) > TG_CLAIMS_ROLE_MAX)
            return TG_JWT_OK; /* cannot be "admin"; kept empty */
        if (copy_text(v, tmp, TG_CLAIMS_ROLE_MAX) < 0)
            return TG_JWT_BAD_CLAIM;
        memcpy(out->role, tmp, sizeof(tmp));
        out->is_admin = strcmp(tmp, "admin") == 0;
        return TG_JWT_OK;
    }
    if (v->type != TG_JSON_ARRAY)
        return TG_JWT_BAD_CLAIM;
    struct tg_json_iter it;
    struct tg_jv e;
    tg_json_iter_init(&it, v);
    while (tg_json_next_elem(&it, &e)) {
        if (e.type != TG_JSON_STRING)
            return TG_JWT_BAD_CLAIM;
        if (tg_json_string_eq(&e, "admin", 5))
            out->is_admin = true;
    }
    if (out->is_admin)
        memcpy(out->role, "admin", 6);
    return TG_JWT_OK;
}

static enum tg_jwt_status parse_aud(const struct tg_jv *v, const char *want, struct tg_claims *out)
{
    out->has_aud = true;
    size_t want_len = want ? strlen(want) : 0;
    if (v->type == TG_JSON_STRING) {
        out->aud_matches = want != NULL && tg_json_string_eq(v, want, want_len);
        return TG_JWT_OK;
    }
    if (v->type != TG_JSON_ARRAY)
        return TG_JWT_BAD_CLAIM;
    struct tg_json_iter it;
    struct tg_jv e;
    tg_json_iter_init(&it, v);
    while (tg_json_next_elem(&it, &e)) {
        if (e.type != TG_JSON_STRING)
            return TG_JWT_BAD_CLAIM;
        if (want != NULL && tg_json_string_eq(&e, want, want_len))
            out->aud_matches = true;
    }
    return TG_JWT_OK;
}

enum tg_jwt_status tg_claims_parse(const char *json, size_t len, const struct tg_claims_policy *pol,
                                   struct tg_claims *out)
{
    memset(out, 0, sizeof(*out));
    struct tg_jv root;
    if (json == NULL || tg_json_parse(json, len, &root, NULL) != 0 || root.type != TG_JSON_OBJECT)
        return TG_JWT_MALFORMED;

    const char *want_aud = pol ? pol->audience : NULL;
    struct tg_jv v;
    if (tg_json_get(&root, "exp", &v) && v.type != TG_JSON_NULL) {
        if (parse_time(&v, &out->exp) != 0)
            return TG_JWT_BAD_CLAIM;
        out->has_exp = true;
    }
    if (tg_json_get(&root, "nbf", &v) && v.type != TG_JSON_NULL) {
        if (parse_time(&v, &out->nbf) != 0)
            return TG_JWT_BAD_CLAIM;
        out->has_nbf = true;
    }
    if (tg_json_get(&root, "iat", &v) && v.type != TG_JSON_NULL) {
        if (parse_time(&v, &out->iat) != 0)
            return TG_JWT_BAD_CLAIM;
        out->has_iat = true;
    }
    if (tg_json_get(&root, "iss", &v) && v.type != TG_JSON_NULL) {
        if (copy_text(&v, out->iss, TG_CLAIMS_ISS_MAX) < 0)
            return TG_JWT_BAD_CLAIM;
        out->has_iss = true;
    }
    if (tg_json_get(&root, "aud", &v) && v.type != TG_JSON_NULL) {
        enum tg_jwt_status s = parse_aud(&v, want_aud, out);
        if (s != TG_JWT_OK)
            return s;
    }
    if (tg_json_get(&root, "sub", &v) && v.type != TG_JSON_NULL) {
        ssize_t n = copy_text(&v, out->sub, TG_CLAIMS_SUB_MAX);
        if (n < 0)
            return TG_JWT_BAD_CLAIM;
        out->sub_len = (size_t)n;
    }
    if (tg_json_get(&root, "role", &v) && v.type != TG_JSON_NULL) {
        enum tg_jwt_status s = parse_role(&v, out);
        if (s != TG_JWT_OK)
            return s;
    }
    if (tg_json_get(&root, "team", &v) && v.type != TG_JSON_NULL &&
        copy_text(&v, out->team, TG_CLAIMS_TEAM_MAX) < 0)
        return TG_JWT_BAD_CLAIM;
    if (tg_json_get(&root, "email", &v) && v.type != TG_JSON_NULL &&
        copy_text(&v, out->email, TG_CLAIMS_EMAIL_MAX) < 0)
        return TG_JWT_BAD_CLAIM;
    if (tg_json_get(&root, "name", &v) && v.type != TG_JSON_NULL &&
        copy_text_cut(&v, out->name, TG_CLAIMS_NAME_MAX) < 0)
        return TG_JWT_BAD_CLAIM;
    return TG_JWT_OK;
}

enum tg_jwt_status tg_claims_check(const struct tg_claims *c, int64_t now,
                                   const struct tg_claims_policy *pol)
{
    int64_t leeway = pol ? pol->leeway_s : 0;
    if (leeway < 0)
        leeway = 0;
    if (leeway > TG_CLAIMS_LEEWAY_MAX_S)
        leeway = TG_CLAIMS_LEEWAY_MAX_S;

    if (!c->has_exp)
        return TG_JWT_NO_EXP;
    /* exp and nbf are bounded by TG_CLAIMS_TIME_MAX, the leeway by 2^31: no overflow */
    if (now >= c->exp + leeway)
        return TG_JWT_EXPIRED;
    if (c->has_nbf && now < c->nbf - leeway)
        return TG_JWT_NOT_YET_VALID;
    if (pol != NULL && pol->issuer != NULL && (!c->has_iss || strcmp(c->iss, pol->issuer) != 0))
        return TG_JWT_BAD_ISSUER;
    if (pol != NULL && pol->audience != NULL && !(c->has_aud && c->aud_matches))
        return TG_JWT_BAD_AUDIENCE;
    if (c->sub_len == 0)
        return TG_JWT_NO_SUBJECT;
    return TG_JWT_OK;
}
