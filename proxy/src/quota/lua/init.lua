-- init.lua: rebuild a period's counters from the ledger.
-- KEYS: H, RZ, PRE. ARGV: ledger_tokens (sum of the period's rows finished before W), W ms,
-- warned (0|1), exhausted (0|1) (alerts already sent), limit (-1 unlimited), warn_at tokens
-- (-1 none), key expiry ms (0: never).
-- used = ledger_tokens + the PRE entries finished at or after W; PRE is deleted.
-- Codes: 0 built (crossed = thresholds the rebuilt figure crosses that the flags passed in
-- did not cover), 5 already built by someone else (nothing changed).
local h, rz, pre = KEYS[1], KEYS[2], KEYS[3]
local ledger, w = num(ARGV[1]), num(ARGV[2])
local warned, exhausted = ARGV[3] == '1', ARGV[4] == '1'
local limit, warn_at, key_exp = num(ARGV[5]), num(ARGV[6]), num(ARGV[7])

if redis.call('HGET', h, 'init') == '1' then
  return {5, num(redis.call('HGET', h, 'used')), num(redis.call('HGET', h, 'res')),
          num(redis.call('HGET', h, 'notice')), 0}
end
local used = ledger
for _, m in ipairs(redis.call('ZRANGEBYSCORE', pre, w, '+inf')) do
  used = used + num(string.match(m, ':(%d+)$'))
end
redis.call('DEL', h, rz, pre)
redis.call('HSET', h, 'init', 1, 'used', used, 'res', 0, 'notice', 0,
           'warned', warned and 1 or 0, 'exhausted', exhausted and 1 or 0)
local crossed, notice = crossings(h, used, limit, warn_at, 0)
redis.call('HSET', h, 'notice', notice)
expire_at(key_exp, h)
return {0, used, 0, notice, crossed}
