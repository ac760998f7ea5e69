-- wrk script for scripts/bench: random lookups over a file of created sessions.
--
-- Environment:
--   BENCH_MODE        "sessiond": GET /v1/session with X-Session-Token (reader key)
--                     "webdis":   GET /GET/sessiond:{<tag>}<rest of handle> (a bare Redis GET)
--   BENCH_FILE        "user_id handle token" lines, as written by create.lua
--   BENCH_READER_KEY  API key of role reader (sessiond mode)
--   BENCH_WEBDIS_SUFFIX  appended to the webdis key, e.g. ".raw" (default: JSON output)
-- done() prints one machine-readable line starting with "BENCH ".
local mode = os.getenv("BENCH_MODE") or "sessiond"
local path = os.getenv("BENCH_FILE") or ""
local reader_key = os.getenv("BENCH_READER_KEY") or ""
local webdis_suffix = os.getenv("BENCH_WEBDIS_SUFFIX") or ""

local items, count = {}, 0
local head, tail

function init(args)
   local host = wrk.headers["Host"]
   local column = (mode == "webdis") and 2 or 3
   for line in io.lines(path) do
      local fields, i = {}, 0
      for word in line:gmatch("%S+") do
         i = i + 1
         fields[i] = word
      end
      count = count + 1
      items[count] = fields[column]
      if mode == "webdis" then
         -- The session key: the handle's 3-character routing tag as the hash tag, then the rest
         -- (docs/redis-layout.md); braces percent-encoded in the URL.
         items[count] = "%7B" .. items[count]:sub(1, 3) .. "%7D" .. items[count]:sub(4)
      end
   end
   assert(count > 0, "no sessions in " .. path)
   if mode == "webdis" then
      head = "GET /GET/sessiond:"
      tail = webdis_suffix .. " HTTP/1.1\r\nHost: " .. host .. "\r\n\r\n"
   else
      head = "GET /v1/session HTTP/1.1\r\nHost: " .. host .. "\r\nAuthorization: Bearer " ..
         reader_key .. "\r\nX-Session-Token: "
      tail = "\r\n\r\n"
   end
   math.randomseed(os.time() + tonumber(tostring({}):match("0x(%x+)") or "0", 16) % 100000)
end

function request()
   return head .. items[math.random(count)] .. tail
end

function done(summary, latency, requests)
   local e = summary.errors
   io.write(string.format(
      "BENCH requests=%d duration_us=%d rps=%.2f p50_us=%.1f p99_us=%.1f max_us=%.1f " ..
      "non2xx=%d connect=%d read=%d write=%d timeout=%d\n",
      summary.requests, summary.duration, summary.requests / (summary.duration / 1e6),
      latency:percentile(50), latency:percentile(99), latency.max,
      e.status, e.connect, e.read, e.write, e.timeout))
end
