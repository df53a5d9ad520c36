-- wrk_post.lua: the request bench/run.sh sends with wrk, built once per thread (no Lua runs
-- per request, so wrk's own CPU cost stays low), and one machine-readable RESULT line at the end.
--   WRK_METHOD       GET or POST (default POST)
--   WRK_BODY_FILE    request body (sent as application/json)
--   WRK_HEADER_FILE  extra header lines "Name: value", one per line
--   WRK_PATH         request path (default: the path of the URL given to wrk)
--   WRK_ROTATE_FILE  one header line per line ("Authorization: Bearer …"): request i carries
--                    line i mod N (all N requests are formatted once, at start-up)

local function read_all(path)
  local f = assert(io.open(path, "rb"))
  local s = f:read("*a")
  f:close()
  return s
end

wrk.method = os.getenv("WRK_METHOD") or "POST"
local body_file = os.getenv("WRK_BODY_FILE")
if body_file and body_file ~= "" then
  wrk.body = read_all(body_file)
  wrk.headers["Content-Type"] = "application/json"
end
local header_file = os.getenv("WRK_HEADER_FILE")
if header_file and header_file ~= "" then
  for line in io.lines(header_file) do
    local name, value = line:match("^([^:]+):%s*(.-)%s*$")
    if name then
      wrk.headers[name] = value
    end
  end
end
local path = os.getenv("WRK_PATH")
if path and path ~= "" then
  wrk.path = path
end

local rotate_file = os.getenv("WRK_ROTATE_FILE")
if rotate_file and rotate_file ~= "" then
  local reqs, n, i = {}, 0, 0
  -- formatted in init(), after wrk has set the Host header
  init = function(args)
    for line in io.lines(rotate_file) do
      local name, value = line:match("^([^:]+):%s*(.-)%s*$")
      if name then
        local headers = {}
        for k, v in pairs(wrk.headers) do
          headers[k] = v
        end
        headers[name] = value
        reqs[#reqs + 1] = wrk.format(nil, nil, headers)
      end
    end
    n = #reqs
  end
  request = function()
    i = i % n + 1
    return reqs[i]
  end
end

done = function(summary, latency, requests)
  local e = summary.errors
  local secs = summary.duration / 1e6
  io.write(string.format(
    "RESULT requests=%d seconds=%.2f rps=%.1f errors_connect=%d errors_read=%d " ..
    "errors_write=%d errors_status=%d errors_timeout=%d p50_us=%d p90_us=%d p99_us=%d " ..
    "max_us=%d mean_us=%.0f\n",
    summary.requests, secs, summary.requests / secs, e.connect, e.read, e.write, e.status,
    e.timeout, latency:percentile(50), latency:percentile(90), latency:percentile(99),
    latency.max, latency.mean))
end
