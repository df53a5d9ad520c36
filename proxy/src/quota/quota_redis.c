/* quota_redis.c: quota keys and the typed reserve/settle/release/init/peek script calls. */
#include "quota/quota_redis.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#define KEY_CAP       400
#define MAX_REQ_ID    100
#define MAX_PREFIX    100
#define NUM_CAP       24
#define SCRIPT_FIELDS 5

int tg_quota_subject_init(struct tg_quota_subject *s, char kind, const char *id, int64_t limit)
{
    static const char hex[] = "0123456789abcdef";
    if ((kind != 'u' && kind != 't') || id == NULL || id[0] == '\0')
        return -1;
    memset(s, 0, sizeof(*s));
    s->limit = limit;
    size_t o = 0, cap = sizeof(s->tag);
    s->tag[o++] = '{';
    s->tag[o++] = kind;
    s->tag[o++] = ':';
    bool fits = true;
    for (const unsigned char *p = (const unsigned char *)id; *p; p++) {
        bool esc = *p <= 0x20 || *p == 0x7f || *p == '{' || *p == '}' || *p == '%' || *p == ':' ||
                   *p == '#';
        if (o + (esc ? 3 : 1) + 2 > cap) {
            fits = false;
            break;
        }
        if (esc) {
            s->tag[o++] = '%';
            s->tag[o++] = hex[*p >> 4];
            s->tag[o++] = hex[*p & 15];
        } else {
            s->tag[o++] = (char)*p;
        }
    }
    if (!fits) {
        unsigned char md[EVP_MAX_MD_SIZE];
        unsigned int mdlen = 0;
        if (EVP_Digest(id, strlen(id), md, &mdlen, EVP_sha256(), NULL) != 1)
            return -1;
        o = 3;
        s->tag[o++] = '#';
        for (unsigned i = 0; i < mdlen; i++) {
            s->tag[o++] = hex[md[i] >> 4];
            s->tag[o++] = hex[md[i] & 15];
        }
    }
    s->tag[o++] = '}';
    s->tag[o] = '\0';
    return 0;
}

int tg_quota_key(char *dst, size_t cap, const char *prefix, const char *tag, const char *period_key,
                 const char *suffix)
{
    if (prefix == NULL || tag == NULL || period_key == NULL || strlen(prefix) > MAX_PREFIX ||
        strpbrk(prefix, "{}") != NULL || tag[0] != '{' || period_key[0] == '\0')
        return -1;
    int n = snprintf(dst, cap, "%s%s:%s%s", prefix, tag, period_key, suffix ? suffix : "");
    if (n < 0 || (size_t)n >= cap)
        return -1;
    return n;
}

static bool valid_request_id(const char *id)
{
    if (id == NULL || id[0] == '\0' || strlen(id) > MAX_REQ_ID)
        return false;
    for (const unsigned char *p = (const unsigned char *)id; *p; p++)
        if (*p < 0x20 || *p == 0x7f)
            return false;
    return true;
}

struct call {
    tg_quota_cb cb;
    void *arg;
};

static void on_script(void *arg, const redisReply *reply, enum tg_redis_status st)
{
    struct call call = *(struct call *)arg;
    free(arg);
    struct tg_quota_result res;
    memset(&res, 0, sizeof(res));
    res.redis = st;
    if (st != TG_REDIS_OK) {
        res.error = tg_redis_status_name(st);
    } else if (reply->type == REDIS_REPLY_ERROR) {
        res.error = reply->str;
    } else if (reply->type != REDIS_REPLY_ARRAY || reply->elements != SCRIPT_FIELDS) {
        res.error = "unexpected reply from quota script";
    } else {
        long long v[SCRIPT_FIELDS];
        res.ok = true;
        for (size_t i = 0; i < SCRIPT_FIELDS; i++) {
            if (reply->element[i]->type != REDIS_REPLY_INTEGER) {
                res.ok = false;
                res.error = "unexpected reply from quota script";
                break;
            }
            v[i] = reply->element[i]->integer;
        }
        if (res.ok) {
            res.code = (enum tg_quota_code)v[0];
            res.used = v[1];
            res.reserved = v[2];
            res.notice = (int)v[3];
            res.crossed = (unsigned)v[4];
        }
    }
    call.cb(call.arg, &res);
}

/* Keys H, RZ (and PRE) of a subject and period. */
struct keys {
    char h[KEY_CAP], rz[KEY_CAP], pre[KEY_CAP];
};

static int build_keys(struct keys *k, const char *prefix, const struct tg_quota_subject *s,
                      const struct tg_period_bounds *b)
{
    if (s == NULL || b == NULL || memchr(s->tag, '\0', sizeof(s->tag)) == NULL)
        return -1;
    if (tg_quota_key(k->h, sizeof(k->h), prefix, s->tag, b->key, "") < 0 ||
        tg_quota_key(k->rz, sizeof(k->rz), prefix, s->tag, b->key, ":rz") < 0 ||
        tg_quota_key(k->pre, sizeof(k->pre), prefix, s->tag, b->key, ":pre") < 0)
        return -1;
    return 0;
}

static int run(struct tg_redis *r, const struct tg_redis_script *script, int nkeys, int argc,
               const char **argv, tg_quota_cb cb, void *arg)
{
    if (r == NULL || cb == NULL)
        return -1;
    struct call *call = malloc(sizeof(*call));
    if (call == NULL)
        return -1;
    call->cb = cb;
    call->arg = arg;
    if (tg_redis_evalsha(r, script, nkeys, argc, argv, NULL, on_script, call) != 0) {
        free(call);
        return -1;
    }
    return 0;
}

static char *num(char *buf, int64_t v)
{
    snprintf(buf, NUM_CAP, "%" PRId64, v);
    return buf;
}

int tg_quota_reserve_start(struct tg_redis *r, const char *prefix, const struct tg_quota_subject *s,
                           const struct tg_period_bounds *b, const char *request_id, int64_t amount,
                           int64_t now_ms, int64_t reservation_ttl_ms, bool claim_notice,
                           tg_quota_cb cb, void *arg)
{
    struct keys k;
    if (build_keys(&k, prefix, s, b) != 0 || !valid_request_id(request_id) || amount < 0 ||
        now_ms < 0 || reservation_ttl_ms <= 0 || now_ms > INT64_MAX - reservation_ttl_ms)
        return -1;
    char n[5][NUM_CAP];
    const char *argv[] = {k.h,
                          k.rz,
                          request_id,
                          num(n[0], amount),
                          num(n[1], s->limit < 0 ? -1 : s->limit),
                          num(n[2], now_ms),
                          num(n[3], now_ms + reservation_ttl_ms),
                          claim_notice ? "1" : "0",
                          num(n[4], tg_quota_key_expire_ms(b))};
    return run(r, &tg_quota_lua_reserve, 2, (int)TG_ARRAY_LEN(argv), argv, cb, arg);
}

int tg_quota_settle_start(struct tg_redis *r, const char *prefix, const struct tg_quota_subject *s,
                          const struct tg_period_bounds *b, const char *request_id, int64_t tokens,
                          int64_t finish_ms, int warn_percent, bool give_back_notice,
                          int64_t dedupe_ms, tg_quota_cb cb, void *arg)
{
    struct keys k;
    if (build_keys(&k, prefix, s, b) != 0 || !valid_request_id(request_id) || tokens < 0 ||
        finish_ms < 0 || dedupe_ms < 0 || finish_ms > INT64_MAX - dedupe_ms)
        return -1;
    char n[6][NUM_CAP];
    int64_t limit = s->limit < 0 ? -1 : s->limit;
    const char *argv[] = {k.h,
                          k.rz,
                          k.pre,
                          request_id,
                          num(n[0], tokens),
                          num(n[1], limit),
                          num(n[2], tg_quota_warn_tokens(limit, warn_percent)),
                          num(n[3], finish_ms),
                          give_back_notice ? "1" : "0",
                          num(n[4], finish_ms + dedupe_ms),
                          num(n[5], tg_quota_key_expire_ms(b))};
    return run(r, &tg_quota_lua_settle, 3, (int)TG_ARRAY_LEN(argv), argv, cb, arg);
}

int tg_quota_release_start(struct tg_redis *r, const char *prefix, const struct tg_quota_subject *s,
                           const struct tg_period_bounds *b, const char *request_id,
                           bool give_back_notice, tg_quota_cb cb, void *arg)
{
    struct keys k;
    if (build_keys(&k, prefix, s, b) != 0 || !valid_request_id(request_id))
        return -1;
    const char *argv[] = {k.h, k.rz, request_id, give_back_notice ? "1" : "0"};
    return run(r, &tg_quota_lua_release, 2, (int)TG_ARRAY_LEN(argv), argv, cb, arg);
}

int tg_quota_init_start(struct tg_redis *r, const char *prefix, const struct tg_quota_subject *s,
                        const struct tg_period_bounds *b, int64_t ledger_tokens, int64_t since_ms,
                        bool warned, bool exhausted, int warn_percent, tg_quota_cb cb, void *arg)
{
    struct keys k;
    if (build_keys(&k, prefix, s, b) != 0 || ledger_tokens < 0 || since_ms < 0)
        return -1;
    char n[5][NUM_CAP];
    int64_t limit = s->limit < 0 ? -1 : s->limit;
    const char *argv[] = {k.h,
                          k.rz,
                          k.pre,
                          num(n[0], ledger_tokens),
                          num(n[1], since_ms),
                          warned ? "1" : "0",
                          exhausted ? "1" : "0",
                          num(n[2], limit),
                          num(n[3], tg_quota_warn_tokens(limit, warn_percent)),
                          num(n[4], tg_quota_key_expire_ms(b))};
    return run(r, &tg_quota_lua_init, 3, (int)TG_ARRAY_LEN(argv), argv, cb, arg);
}

int tg_quota_peek_start(struct tg_redis *r, const char *prefix, const struct tg_quota_subject *s,
                        const struct tg_period_bounds *b, int64_t now_ms, tg_quota_cb cb, void *arg)
{
    struct keys k;
    char n[NUM_CAP];
    if (build_keys(&k, prefix, s, b) != 0 || now_ms < 0)
        return -1;
    const char *argv[] = {k.h, k.rz, num(n, now_ms)};
    return run(r, &tg_quota_lua_peek, 2, (int)TG_ARRAY_LEN(argv), argv, cb, arg);
}
