-- wrk script for scripts/soak: a paced mix of lookups, creates, patches and revokes.
--
-- Environment:
--   SOAK_FILE       "user_id handle token" lines of pre-created sessions (create.lua's output):
--                   lookups and patches use these
--   SOAK_READER_KEY, SOAK_APP_KEY  API keys
--   SOAK_RATE       requests per second for this wrk process in all (0: as fast as it can)
--   SOAK_MIX        percentages "lookup,create,patch,revoke" (default 90,5,3,2)
-- Revokes take sessions this thread created (their tokens come back in the 201 answers), so a
-- lookup or patch never meets a revoked session; with none in hand, the slot does a lookup.
-- Every answer other than 200/201 (and a revoke answering "revoked":false) is counted; done()
-- prints "SOAK requests=... unexpected=... first=<status>".
local path = os.getenv("SOAK_FILE") or ""
local reader_key = os.getenv("SOAK_READER_KEY") or ""
local app_key = os.getenv("SOAK_APP_KEY") or ""
local rate = tonumber(os.getenv("SOAK_RATE") or "0")
local mix = {}
for n in (os.getenv("SOAK_MIX") or "90,5,3,2"):gmatch("%d+") do mix[#mix + 1] = tonumber(n) end
local c_lookup, c_create, c_patch = mix[1], mix[1] + mix[2], mix[1] + mix[2] + mix[3]

local ffi = require("ffi")
ffi.cdef [[
typedef struct { long tv_sec; long tv_nsec; } soak_timespec_t;
int clock_gettime(int clock_id, soak_timespec_t *tp);
]]
local ts = ffi.new("soak_timespec_t")
local function now()
   ffi.C.clock_gettime(1, ts)
   return tonumber(ts.tv_sec) + tonumber(ts.tv_nsec) / 1e9
end

local threads = {}
function setup(thread)
   threads[#threads + 1] = thread
end

local tokens, count = {}, 0
local created, created_n = {}, 0
local host, interval, next_at
unexpected, first_bad, revokes, creates, patches = 0, "", 0, 0, 0
local seq = 0

function init(args)
   host = wrk.headers["Host"]
   for line in io.lines(path) do
      local t = line:match("%S+%s+%S+%s+(%S+)")
      if t then count = count + 1; tokens[count] = t end
   end
   assert(count > 0, "no sessions in " .. path)
   if rate > 0 then interval = #threads / rate end
   math.randomseed(os.time() + tonumber(tostring({}):match("0x(%x+)") or "0", 16) % 100000)
end

function delay()
   if not interval then return 0 end
   local t = now()
   if not next_at or next_at < t - 0.05 then next_at = t end
   next_at = next_at + interval
   local d = (next_at - t) * 1000
   if d < 1 then return 0 end
   return math.floor(d)
end

local function lookup()
   return "GET /v1/session HTTP/1.1\r\nHost: " .. host .. "\r\nAuthorization: Bearer " .. reader_key ..
      "\r\nX-Session-Token: " .. tokens[math.random(count)] .. "\r\n\r\n"
end

function request()
   local r = math.random(100)
   if r <= c_lookup then
      return lookup()
   elseif r <= c_create then
      seq = seq + 1
      local body = '{"user_id":"soak-' .. (seq % 1000) .. '","data":{"n":' .. seq .. '}}'
      return "POST /v1/sessions HTTP/1.1\r\nHost: " .. host .. "\r\nAuthorization: Bearer " .. app_key ..
         "\r\nContent-Type: application/json\r\nContent-Length: " .. #body .. "\r\n\r\n" .. body
   elseif r <= c_patch then
      seq = seq + 1
      local body = '{"n":' .. seq .. '}'
      return "PATCH /v1/session HTTP/1.1\r\nHost: " .. host .. "\r\nAuthorization: Bearer " .. app_key ..
         "\r\nX-Session-Token: " .. tokens[math.random(count)] ..
         "\r\nContent-Type: application/merge-patch+json\r\nContent-Length: " .. #body .. "\r\n\r\n" .. body
   else
      if created_n == 0 then return lookup() end
      local t = created[created_n]
      created[created_n] = nil
      created_n = created_n - 1
      return "DELETE /v1/session HTTP/1.1\r\nHost: " .. host .. "\r\nAuthorization: Bearer " .. app_key ..
         "\r\nX-Session-Token: " .. t .. "\r\n\r\n"
   end
end

function response(status, headers, body)
   if status == 201 then
      creates = creates + 1
      local t = body:match('"token":"([^"]+)"')
      if t and created_n < 20000 then created_n = created_n + 1; created[created_n] = t end
   elseif status == 200 then
      if body:find('"revoked":', 1, true) then
         revokes = revokes + 1
         if not body:find('"revoked":true', 1, true) then
            unexpected = unexpected + 1
            if first_bad == "" then first_bad = "revoke answered revoked:false" end
         end
      end
   else
      unexpected = unexpected + 1
      if first_bad == "" then first_bad = tostring(status) .. " " .. (body:match('"error":"([^"]+)"') or "") end
   end
end

function done(summary, latency, requests)
   local bad, first, rv, cr = 0, "", 0, 0
   for _, t in ipairs(threads) do
      bad = bad + (t:get("unexpected") or 0)
      rv = rv + (t:get("revokes") or 0)
      cr = cr + (t:get("creates") or 0)
      local f = t:get("first_bad") or ""
      if first == "" then first = f end
   end
   local e = summary.errors
   io.write(string.format(
      "SOAK requests=%d duration_us=%d rps=%.1f p50_us=%.1f p99_us=%.1f max_us=%.1f creates=%d revokes=%d " ..
      "unexpected=%d non2xx=%d connect=%d read=%d write=%d timeout=%d first=%s\n",
      summary.requests, summary.duration, summary.requests / (summary.duration / 1e6),
      latency:percentile(50), latency:percentile(99), latency.max, cr, rv, bad,
      e.status, e.connect, e.read, e.write, e.timeout, (first:gsub("%s", "_"))))
end
