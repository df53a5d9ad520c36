/* quota_redis.h: the typed quota calls the request pipeline makes (reserve, settle, release,
 * init, peek), each one Lua script on one subject's keys; the key names. */
#ifndef TG_QUOTA_REDIS_H
#define TG_QUOTA_REDIS_H

#include "core/common.h"
#include "quota/quota_math.h"
#include "quota/quota_scripts.h"
#include "quota/redis_async.h"

/* Whose quota: a user or a team, and its limit (-1 unlimited, 0 blocked). */
struct tg_quota_subject {
    char tag[160]; /* "{u:alice}" or "{t:eng}": the Redis hash tag */
    int64_t limit;
};

/* Fills s for a user (kind 'u') or team ('t'). The id is percent-encoded where it would break
 * the key's structure ('{', '}', '%', ':', '#', space, control bytes), so different ids never
 * share a key; an id too long for tag[] is replaced by '#' + its SHA-256 in hex. Returns 0, or
 * -1 (bad kind, empty id). */
TG_MUST_CHECK int tg_quota_subject_init(struct tg_quota_subject *s, char kind, const char *id,
                                        int64_t limit);

/* Writes "<prefix><tag>:<period_key><suffix>" (suffix "", ":rz" or ":pre"). The prefix (e.g.
 * "tg:") must not contain '{' or '}'. Returns the length, or -1 (too small, bad prefix). */
TG_MUST_CHECK int tg_quota_key(char *dst, size_t cap, const char *prefix, const char *tag,
                               const char *period_key, const char *suffix);

/* Outcome of one quota call. */
struct tg_quota_result {
    bool ok;                    /* the script ran; the fields below are valid */
    enum tg_quota_code code;    /* quota_scripts.h */
    int64_t used;               /* settled tokens of the period */
    int64_t reserved;           /* tokens held by live reservations */
    int notice;                 /* TG_QUOTA_NOTICE_*: reserve: level claimed; others: pending */
    unsigned crossed;           /* TG_QUOTA_CROSSED_* (settle, init) */
    enum tg_redis_status redis; /* !ok: transport status (TG_REDIS_OK for an error reply) */
    const char *error;          /* !ok: reason (borrowed, valid during the callback) */
};

/* Called exactly once per successful *_start; res is borrowed for the call. */
typedef void (*tg_quota_cb)(void *arg, const struct tg_quota_result *res);

/* The *_start calls return 0 and call cb exactly once later (never inside the call), or -1
 * (cb never called) on invalid arguments or out of memory. Strings are borrowed for the call.
 * prefix: key prefix (REDIS_KEY_PREFIX); b: the period of the request (the same bounds must
 * be passed to reserve and to its settle/release). request_id: non-empty, at most 100 bytes,
 * no control bytes. Times are Unix ms. */

/* Reserve `amount` tokens unless used + reserved >= s->limit (TG_QUOTA_CODE_BLOCKED; limit 0
 * always blocks, -1 never). The reservation stops counting at now_ms + reservation_ttl_ms
 * unless settled or released first. claim_notice: take the pending notice (res.notice = its
 * level), so that no other request shows it. TG_QUOTA_CODE_NEED_INIT: call tg_quota_init_start
 * and retry. */
TG_MUST_CHECK int tg_quota_reserve_start(struct tg_redis *r, const char *prefix,
                                         const struct tg_quota_subject *s,
                                         const struct tg_period_bounds *b, const char *request_id,
                                         int64_t amount, int64_t now_ms, int64_t reservation_ttl_ms,
                                         bool claim_notice, tg_quota_cb cb, void *arg);

/* Replace the reservation by the real count `tokens` (finish_ms = the ledger row's finish time,
 * truncated to ms). Reports the first 80 % (warn_percent) and 100 % crossings of the period in
 * res.crossed. give_back_notice: the reply could not carry the notice this request claimed.
 * A repeated settle of the same request_id within dedupe_ms is ignored
 * (TG_QUOTA_CODE_DUPLICATE). When the period's hash is missing the settle is logged for the
 * rebuild (TG_QUOTA_CODE_PRE_LOGGED). */
TG_MUST_CHECK int tg_quota_settle_start(struct tg_redis *r, const char *prefix,
                                        const struct tg_quota_subject *s,
                                        const struct tg_period_bounds *b, const char *request_id,
                                        int64_t tokens, int64_t finish_ms, int warn_percent,
                                        bool give_back_notice, int64_t dedupe_ms, tg_quota_cb cb,
                                        void *arg);

/* Give a reservation back without usage (e.g. the team's reserve refused). Harmless when
 * nothing is held. */
TG_MUST_CHECK int tg_quota_release_start(struct tg_redis *r, const char *prefix,
                                         const struct tg_quota_subject *s,
                                         const struct tg_period_bounds *b, const char *request_id,
                                         bool give_back_notice, tg_quota_cb cb, void *arg);

/* Build the period's counters: used = ledger_tokens (sum of total_tokens of the period's ledger
 * rows with finished_at < since_ms, read after this instance's ledger rows were flushed) +
 * settles logged while the hash was missing with finish time >= since_ms. warned/exhausted:
 * the period's alerts were already sent. res.crossed: thresholds the rebuilt figure crosses
 * that the flags did not cover. TG_QUOTA_CODE_ALREADY_INIT when another caller won. */
TG_MUST_CHECK int tg_quota_init_start(struct tg_redis *r, const char *prefix,
                                      const struct tg_quota_subject *s,
                                      const struct tg_period_bounds *b, int64_t ledger_tokens,
                                      int64_t since_ms, bool warned, bool exhausted,
                                      int warn_percent, tg_quota_cb cb, void *arg);

/* Read used / live reserved / pending notice without changing anything. */
TG_MUST_CHECK int tg_quota_peek_start(struct tg_redis *r, const char *prefix,
                                      const struct tg_quota_subject *s,
                                      const struct tg_period_bounds *b, int64_t now_ms,
                                      tg_quota_cb cb, void *arg);

#endif
