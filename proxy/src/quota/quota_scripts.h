/* quota_scripts.h: the quota Lua scripts compiled into the binary, and their reply codes.
 *
 * Keys of one subject (hash tag "{u:<id>}" or "{t:<id>}") and period (key part "m2026-11",
 * "w2026-11-16", "d2026-11-22", "all"), all in one Redis Cluster slot:
 *   H   = <prefix>{u:alice}:m2026-11       hash: init, used, res, warned, exhausted, notice,
 *                                          r:<request_id> (tokens reserved),
 *                                          n:<request_id> (notice level it claimed)
 *   RZ  = <prefix>{u:alice}:m2026-11:rz    zset: r:<request_id> scored by reservation expiry;
 *                                          d:<request_id> scored by the end of its settle
 *                                          dedupe window
 *   PRE = <prefix>{u:alice}:m2026-11:pre   zset: "<request_id>:<tokens>" scored by finish
 *                                          time, settles that arrived while H was missing
 * Every key a script touches is passed in KEYS (none is built inside), so the scripts run on
 * Redis Cluster. Times are Unix ms (wall clock shared by all instances); numbers are decimal
 * strings. Every script replies with five integers: {code, used, reserved, notice, crossed}.
 *
 *   script   KEYS          ARGV
 *   reserve  H RZ          request_id amount limit now_ms reserved_until_ms claim(0|1)
 * key_expire_ms settle   H RZ PRE      request_id tokens limit warn_at finish_ms give_back(0|1)
 *                          dedupe_until_ms key_expire_ms
 *   release  H RZ          request_id give_back(0|1)
 *   init     H RZ PRE      ledger_tokens since_ms(W) warned(0|1) exhausted(0|1) limit warn_at
 *                          key_expire_ms
 *   peek     H RZ          now_ms
 * limit -1 = unlimited; warn_at = tg_quota_warn_tokens(limit, percent); key_expire_ms 0 = the
 * keys never expire (period none), else period reset + 7 days.
 */
#ifndef TG_QUOTA_SCRIPTS_H
#define TG_QUOTA_SCRIPTS_H

#include "quota/redis_async.h"

/* Reply codes (first element). */
enum tg_quota_code {
    TG_QUOTA_CODE_OK = 0,           /* reserve: reserved; settle: added; release: released;
                                       init: built; peek: figures valid */
    TG_QUOTA_CODE_BLOCKED = 1,      /* reserve: used + reserved >= limit (limit 0: always) */
    TG_QUOTA_CODE_NEED_INIT = 2,    /* reserve/release/peek: the period's hash is missing:
                                       rebuild it from the ledger (init), then retry */
    TG_QUOTA_CODE_PRE_LOGGED = 3,   /* settle: hash missing; the settle was logged in PRE */
    TG_QUOTA_CODE_DUPLICATE = 4,    /* settle: this request_id was already settled */
    TG_QUOTA_CODE_ALREADY_INIT = 5, /* init: another caller built the hash first */
};

/* Bits of `crossed` (settle, init): thresholds crossed for the first time this period. */
#define TG_QUOTA_CROSSED_WARNING   1u
#define TG_QUOTA_CROSSED_EXHAUSTED 2u

/* Levels of `notice`: reserve: the level this reservation claimed (0 none); settle, release,
 * init, peek: the level pending for the subject after the call. */
#define TG_QUOTA_NOTICE_NONE      0
#define TG_QUOTA_NOTICE_WARNING   1
#define TG_QUOTA_NOTICE_EXHAUSTED 2

extern const struct tg_redis_script tg_quota_lua_reserve;
extern const struct tg_redis_script tg_quota_lua_settle;
extern const struct tg_redis_script tg_quota_lua_release;
extern const struct tg_redis_script tg_quota_lua_init;
extern const struct tg_redis_script tg_quota_lua_peek;

#endif
