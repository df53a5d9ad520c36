-- settle.lua: replace a reservation by the real count; report threshold crossings.
-- KEYS: H, RZ, PRE. ARGV: request_id, tokens, limit (-1 unlimited), warn_at tokens (-1 none),
-- finish_ms, return_notice (1: the reply could not carry a claimed notice), dedupe_until_ms,
-- key expiry ms (0: never).
-- Codes: 0 settled (notice = pending level after this settle, crossed = bits newly crossed),
-- 3 logged in PRE (H missing: counted by init when finish_ms >= W), 4 duplicate (already
-- settled within the dedupe window; nothing changed).
local h, rz, pre = KEYS[1], KEYS[2], KEYS[3]
local id, tokens, limit, warn_at = ARGV[1], num(ARGV[2]), num(ARGV[3]), num(ARGV[4])
local finish, give_back, dedupe_until, key_exp = num(ARGV[5]), ARGV[6] == '1', num(ARGV[7]), num(ARGV[8])

if redis.call('HGET', h, 'init') ~= '1' then
  redis.call('ZADD', pre, 'NX', finish, id .. ':' .. ARGV[2])
  expire_at(key_exp, pre)
  return {3, 0, 0, 0, 0}
end
local used = num(redis.call('HGET', h, 'used'))
local res = num(redis.call('HGET', h, 'res'))
local notice = num(redis.call('HGET', h, 'notice'))
if redis.call('ZSCORE', rz, 'd:' .. id) then
  return {4, used, res, notice, 0}
end
local a = redis.call('HGET', h, 'r:' .. id)
if a then
  res = res - num(a)
  if res < 0 then
    res = 0
  end
  local n = num(redis.call('HGET', h, 'n:' .. id))
  if give_back and n > notice then
    notice = n
  end
  redis.call('HDEL', h, 'r:' .. id, 'n:' .. id)
  redis.call('ZREM', rz, 'r:' .. id)
end
used = used + tokens
local crossed
crossed, notice = crossings(h, used, limit, warn_at, notice)
redis.call('HSET', h, 'used', used, 'res', res, 'notice', notice)
redis.call('ZADD', rz, dedupe_until, 'd:' .. id)
expire_at(key_exp, h, rz)
return {0, used, res, notice, crossed}
