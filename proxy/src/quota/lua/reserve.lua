-- reserve.lua: take a reservation, or refuse when used + reserved >= limit.
-- KEYS: H, RZ. ARGV: request_id, amount, limit (-1 unlimited), now_ms, reservation expiry ms,
-- claim_notice (0|1), key expiry ms (0: never).
-- Codes: 0 reserved (notice = level claimed, 0 if none), 1 blocked, 2 need init.
-- A repeated reserve of the same request_id takes nothing more and answers 0 again.
local h, rz = KEYS[1], KEYS[2]
local id, amount, limit = ARGV[1], num(ARGV[2]), num(ARGV[3])
local now, until_ms, claim, key_exp = num(ARGV[4]), num(ARGV[5]), ARGV[6] == '1', num(ARGV[7])

if redis.call('HGET', h, 'init') ~= '1' then
  return {2, 0, 0, 0, 0}
end
local res, notice = purge(h, rz, now)
local used = num(redis.call('HGET', h, 'used'))
if redis.call('HEXISTS', h, 'r:' .. id) == 1 then
  return {0, used, res, num(redis.call('HGET', h, 'n:' .. id)), 0}
end
if limit == 0 or (limit > 0 and used + res >= limit) then
  return {1, used, res, 0, 0}
end
res = res + amount
redis.call('HSET', h, 'res', res, 'r:' .. id, amount)
redis.call('ZADD', rz, until_ms, 'r:' .. id)
local claimed = 0
if claim and notice > 0 then
  claimed = notice
  redis.call('HSET', h, 'notice', 0, 'n:' .. id, notice)
end
expire_at(key_exp, h, rz)
return {0, used, res, claimed, 0}
