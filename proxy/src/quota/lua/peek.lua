-- peek.lua: read a period's figures without changing anything (GET /v1/quota, headers).
-- KEYS: H, RZ. ARGV: now_ms.
-- Codes: 0 (reserved counts only unexpired reservations), 2 need init.
local h, rz = KEYS[1], KEYS[2]
local now = num(ARGV[1])

if redis.call('HGET', h, 'init') ~= '1' then
  return {2, 0, 0, 0, 0}
end
local res = num(redis.call('HGET', h, 'res'))
for _, m in ipairs(redis.call('ZRANGEBYSCORE', rz, '-inf', now)) do
  res = res - num(redis.call('HGET', h, m))
end
if res < 0 then
  res = 0
end
return {0, num(redis.call('HGET', h, 'used')), res, num(redis.call('HGET', h, 'notice')), 0}
