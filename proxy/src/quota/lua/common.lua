-- common.lua: helpers prepended to every quota script (one source per script, one SHA each).
-- Keys of one subject and period (all in one hash tag, passed in KEYS, never built here):
--   H   hash: init, used, res, warned, exhausted, notice, r:<id> = reserved tokens,
--             n:<id> = notice level claimed by reservation <id>
--   RZ  zset: r:<id> scored by the reservation's expiry (ms); d:<id> scored by the end of the
--             window in which a repeated settle of <id> is ignored
--   PRE zset: "<id>:<tokens>" scored by finish time (ms), settles seen while H was missing
-- Numbers arrive as decimal strings; times are Unix ms. Replies: {code, used, reserved,
-- notice, crossed}; codes in quota_scripts.h.

local function num(v)
  return tonumber(v or '0') or 0
end

-- Drops expired reservations (giving back any notice they had claimed); returns res, notice.
local function purge(h, rz, now)
  local res = num(redis.call('HGET', h, 'res'))
  local notice = num(redis.call('HGET', h, 'notice'))
  local expired = redis.call('ZRANGEBYSCORE', rz, '-inf', now)
  if #expired == 0 then
    return res, notice
  end
  for _, m in ipairs(expired) do
    local a = redis.call('HGET', h, m)
    if a then
      res = res - num(a)
      local id = string.sub(m, 3)
      local n = num(redis.call('HGET', h, 'n:' .. id))
      if n > notice then
        notice = n
      end
      redis.call('HDEL', h, m, 'n:' .. id)
    end
  end
  redis.call('ZREMRANGEBYSCORE', rz, '-inf', now)
  if res < 0 then
    res = 0
  end
  redis.call('HSET', h, 'res', res, 'notice', notice)
  return res, notice
end

-- Marks the 80 % (bit 1) and 100 % (bit 2) crossings once per period; returns crossed, notice.
local function crossings(h, used, limit, warn_at, notice)
  local crossed = 0
  if limit < 0 or used <= 0 then
    return crossed, notice
  end
  if warn_at >= 0 and used >= warn_at and redis.call('HGET', h, 'warned') ~= '1' then
    redis.call('HSET', h, 'warned', 1)
    crossed = crossed + 1
    if notice < 1 then
      notice = 1
    end
  end
  if used >= limit and redis.call('HGET', h, 'exhausted') ~= '1' then
    redis.call('HSET', h, 'exhausted', 1)
    crossed = crossed + 2
    if notice < 2 then
      notice = 2
    end
  end
  return crossed, notice
end

local function expire_at(at, ...)
  if at > 0 then
    for _, k in ipairs({...}) do
      redis.call('PEXPIREAT', k, at)
    end
  end
end
