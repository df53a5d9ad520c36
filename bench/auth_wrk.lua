-- auth_wrk.lua: the chat completion bench/auth_bench.sh sends with wrk, with one credential.
--   AUTH_BEARER       the credential for Authorization: Bearer (one for every request), or
--   AUTH_TOKENS_FILE  a file of credentials, one per line, used in turn (each thread starts at
--                     its own offset), to measure verification without the cache
--   AUTH_USER         X-Tollgate-User (service key mode)
-- At the end one line: "RESULT rps=… requests=… non200=… p50_us=… p99_us=…".

local body = '{"model":"gpt-4o-mini","messages":[{"role":"user","content":"Hello"}]}'
wrk.method = "POST"
wrk.body = body
wrk.headers["Content-Type"] = "application/json"
local user = os.getenv("AUTH_USER")
if user and user ~= "" then
  wrk.headers["X-Tollgate-User"] = user
end
local bearer = os.getenv("AUTH_BEARER")
if bearer and bearer ~= "" then
  wrk.headers["Authorization"] = "Bearer " .. bearer
end

local threads = {}
local thread_no = 0
setup = function(thread)
  thread:set("id", thread_no)
  thread_no = thread_no + 1
  table.insert(threads, thread)
end

local tokens = nil
local next_token = 1
non200 = 0

init = function(args)
  local file = os.getenv("AUTH_TOKENS_FILE")
  if file and file ~= "" then
    tokens = {}
    for line in io.lines(file) do
      if line ~= "" then
        tokens[#tokens + 1] = line
      end
    end
    next_token = 1 + (id * 7919) % #tokens
  end
end

if os.getenv("AUTH_TOKENS_FILE") and os.getenv("AUTH_TOKENS_FILE") ~= "" then
  request = function()
    local t = tokens[next_token]
    next_token = next_token % #tokens + 1
    wrk.headers["Authorization"] = "Bearer " .. t
    return wrk.format(nil, nil, nil, nil)
  end
end

response = function(status, headers, resp_body)
  if status ~= 200 then
    non200 = non200 + 1
  end
end

done = function(summary, latency, requests)
  local bad = 0
  for _, t in ipairs(threads) do
    bad = bad + t:get("non200")
  end
  local e = summary.errors
  io.write(string.format(
    "RESULT rps=%.0f requests=%d non200=%d socket_errors=%d p50_us=%d p99_us=%d\n",
    summary.requests / (summary.duration / 1e6), summary.requests, bad,
    e.connect + e.read + e.write + e.timeout, latency:percentile(50), latency:percentile(99)))
end
