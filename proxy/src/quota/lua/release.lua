-- release.lua: give a reservation back without usage (the request was not forwarded).
-- KEYS: H, RZ. ARGV: request_id, return_notice (1: give a claimed notice back).
-- Codes: 0 released (also when nothing was held: releasing twice is harmless), 2 need init.
local h, rz = KEYS[1], KEYS[2]
local id, give_back = ARGV[1], ARGV[2] == '1'

if redis.call('HGET', h, 'init') ~= '1' then
  return {2, 0, 0, 0, 0}
end
local used = num(redis.call('HGET', h, 'used'))
local res = num(redis.call('HGET', h, 'res'))
local notice = num(redis.call('HGET', h, 'notice'))
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
  redis.call('HSET', h, 'res', res, 'notice', notice)
end
return {0, used, res, notice, 0}
