-- wrk script for scripts/bench: lookups over a file of created sessions, or nginx's `return 200`.
--
-- Environment:
--   BENCH_MODE        "sessiond": GET /v1/session with X-Session-Token (reader key)
--                     "webdis":   GET /GET/sessiond:{<tag>}<rest of handle> (a bare Redis GET)
--                     "nginx":    GET / of the URL, one fixed request (BENCH_FILE unused)
--   BENCH_FILE        "user_id handle token created_ms" lines, as written by create.lua
--   BENCH_READER_KEY  API key of role reader (sessiond mode)
--   BENCH_WEBDIS_SUFFIX  appended to the webdis key, e.g. ".raw" (default: JSON output)
--   BENCH_PICK        which session a sessiond lookup names:
--                     "uniform" (default): any session of the file at random; every session whose
--                                 touch step has passed is touched by its first lookup (the
--                                 touch-heavy workload)
--                     "steady":   the headline workload: BENCH_TOUCH_SHARE of the lookups name a
--                                 session due for a touch, the others a session in use (touched
--                                 less than a touch step ago), see below
--                     "sweep":    every session in use once, in turn, then again: warms a near
--                                 cache before a measured run; touches nothing
--                     "each":     every session of the file once, in turn, then again, with
--                                 ?touch=false: fills a near cache with all of them
--   BENCH_TOUCH_LOG   steady and sweep: "line_number time_ms" of every touch that steady runs
--                     made, appended by each steady run and read back by the next, so that a
--                     run knows each session's last touch whatever ran in between
--   BENCH_TOUCH_STEP_MS    sessiond's touch step for these sessions: min(60 s, idle timeout / 10)
--   BENCH_TOUCH_MARGIN_MS  a session is in use while younger than step - margin and due once
--                          older than step + margin; in between it is never named (the clocks of
--                          wrk and Redis, and the time a lookup takes, cannot make a guess wrong)
--   BENCH_TOUCH_SHARE      steady: the share of lookups that name a due session (0.02)
--   BENCH_IDLE_MS          the sessions' idle timeout: a due session idle for longer has expired
--                          and is never named
-- done() prints one machine-readable line starting with "BENCH ".
--
-- Why "steady" decides which lookups touch, rather than picking at random as real traffic does:
-- at random, the share of touches in a run depends on when each session was last touched, and
-- the bench interleaves its contenders, so the sessions sit idle between sessiond runs. The touch
-- times then bunch behind each idle gap, and uniform lookups give runs of 0 % beside runs of
-- 15 % (scripts/bench has the figures). In real traffic a session in use is looked up every second
-- or so and touched every step: a lookup is due for a touch with probability
-- 1 / (lookups per step + 1), about 2 % for a lookup every 1.2 s and a 60-s step. "steady" gives
-- each lookup that probability directly: with probability BENCH_TOUCH_SHARE it names a due
-- session (idle for a step or more: the user is back), which the lookup touches, after which the
-- session is in use; otherwise a random session among those in use. The set in use is then the
-- sessions touched during the last step, as in real traffic, and sessiond decides the touches
-- itself: the bench counts them in Redis (INFO commandstats), not here.
local mode = os.getenv("BENCH_MODE") or "sessiond"
local path = os.getenv("BENCH_FILE") or ""
local reader_key = os.getenv("BENCH_READER_KEY") or ""
local webdis_suffix = os.getenv("BENCH_WEBDIS_SUFFIX") or ""
local pick = os.getenv("BENCH_PICK") or "uniform"
local touch_log_path = os.getenv("BENCH_TOUCH_LOG") or ""
local step = tonumber(os.getenv("BENCH_TOUCH_STEP_MS") or "60000")
local margin = tonumber(os.getenv("BENCH_TOUCH_MARGIN_MS") or "2000")
local share = tonumber(os.getenv("BENCH_TOUCH_SHARE") or "0.02")
local idle = tonumber(os.getenv("BENCH_IDLE_MS") or "1800000")

local items, count = {}, 0
local head, tail, health

-- Per-thread figures, read by done() through thread:get (wrk runs done() in another Lua state).
bench_touches = 0 -- steady: lookups sent for a due session
bench_inuse = 0   -- steady, sweep: sessions in use at the last request
bench_healthz = 0 -- steady, sweep: GET /healthz sent instead, no session being in use or due
bench_nodue = 0   -- steady: lookups meant for a due session that found none left (too few sessions)

local ffi = require("ffi")
ffi.cdef [[
typedef struct { long tv_sec; long tv_nsec; } bench_timespec_t;
int clock_gettime(int clock_id, bench_timespec_t *tp);
]]
local timespec = ffi.new("bench_timespec_t")
-- CLOCK_REALTIME in ms: the clock of Redis's TIME, which stamps a session's last touch.
local function now_ms()
   ffi.C.clock_gettime(0, timespec)
   return tonumber(timespec.tv_sec) * 1000 + tonumber(timespec.tv_nsec) / 1e6
end

-- steady and sweep: last[i] is session i's last touch (its creation, or the time a steady run
-- sent its due lookup). q[qh .. fh-1] are the sessions between in use and due (never named),
-- q[fh .. qt] those in use, both oldest touch first; due[1 .. ndue] the due ones, in no order.
local last, q, qh, fh, qt, due, ndue = {}, {}, 1, 1, 0, {}, 0
local touch_log, sweep_at

local function advance(t)
   while fh <= qt and t - last[q[fh]] >= step - margin do fh = fh + 1 end
   while qh < fh and t - last[q[qh]] >= step + margin do
      ndue = ndue + 1
      due[ndue] = q[qh]
      q[qh] = nil
      qh = qh + 1
   end
end

-- A due session, now touched and in use; nil when none is left.
local function take_due(t)
   while ndue > 0 do
      local k = math.random(ndue)
      local i = due[k]
      due[k] = due[ndue]
      due[ndue] = nil
      ndue = ndue - 1
      if t - last[i] < idle - margin then
         last[i] = t
         qt = qt + 1
         q[qt] = i
         touch_log:write(i, " ", string.format("%.0f", t), "\n")
         bench_touches = bench_touches + 1
         return i
      end
      -- idle for longer than its idle timeout: expired, dropped
   end
   return nil
end

local function load_state()
   for i = 1, count do
      last[i] = tonumber(items[i].created)
      assert(last[i], "line " .. i .. " of " .. path .. " has no creation time (4th column)")
   end
   local f = io.open(touch_log_path, "r")
   if f then
      for line in f:lines() do
         local i, t = line:match("^(%d+) (%d+)$")
         if i then last[tonumber(i)] = tonumber(t) end
      end
      f:close()
   end
   local order = {}
   for i = 1, count do order[i] = i end
   table.sort(order, function(a, b) return last[a] < last[b] end)
   local t = now_ms()
   for _, i in ipairs(order) do
      local age = t - last[i]
      if age < step + margin then
         qt = qt + 1
         q[qt] = i
      elseif age < idle - margin then
         ndue = ndue + 1
         due[ndue] = i
      end
   end
   advance(t)
   bench_inuse = qt - fh + 1
end

function init(args)
   local host = wrk.headers["Host"]
   health = "GET /healthz HTTP/1.1\r\nHost: " .. host .. "\r\n\r\n"
   if mode == "nginx" then return end
   for line in io.lines(path) do
      local fields, i = {}, 0
      for word in line:gmatch("%S+") do
         i = i + 1
         fields[i] = word
      end
      count = count + 1
      local item = { token = fields[3], created = fields[4] }
      if mode == "webdis" then
         -- The session key: the handle's 3-character routing tag as the hash tag, then the rest
         -- (docs/redis-layout.md); braces percent-encoded in the URL.
         item.token = "%7B" .. fields[2]:sub(1, 3) .. "%7D" .. fields[2]:sub(4)
      end
      items[count] = item
   end
   assert(count > 0, "no sessions in " .. path)
   if mode == "webdis" then
      head = "GET /GET/sessiond:"
      tail = webdis_suffix .. " HTTP/1.1\r\nHost: " .. host .. "\r\n\r\n"
   else
      head = "GET /v1/session" .. (pick == "each" and "?touch=false" or "") .. " HTTP/1.1\r\nHost: " .. host ..
         "\r\nAuthorization: Bearer " .. reader_key .. "\r\nX-Session-Token: "
      tail = "\r\n\r\n"
   end
   math.randomseed(os.time() + tonumber(tostring({}):match("0x(%x+)") or "0", 16) % 100000)
   if mode == "sessiond" and (pick == "steady" or pick == "sweep") then
      assert(touch_log_path ~= "", "BENCH_PICK=" .. pick .. " needs BENCH_TOUCH_LOG")
      load_state()
      if pick == "steady" then
         touch_log = assert(io.open(touch_log_path, "a"))
         touch_log:setvbuf("line") -- whole lines on disk even if wrk is stopped
      end
   elseif pick ~= "uniform" and pick ~= "each" and mode == "sessiond" then
      error("BENCH_PICK must be uniform, steady, sweep or each, got " .. pick)
   end
end

-- wrk calls request() once before any connection exists, to check the request
-- (script_verify_request); that string is never sent, so it must change no state.
local verified = false
local each_at = 0

local function steady()
   local t = now_ms()
   advance(t)
   local i
   if math.random() < share then
      i = take_due(t)
      if not i then bench_nodue = bench_nodue + 1 end
   end
   if not i then
      if fh <= qt then
         i = q[math.random(fh, qt)]
      else
         -- Nothing in use (only while the sessions of a create age past their step): a due
         -- session, else no session at all. One between in use and due may or may not be
         -- touched, which the touch log could not know.
         i = take_due(t)
      end
   end
   bench_inuse = qt - fh + 1
   return i
end

local function sweep()
   advance(now_ms())
   bench_inuse = qt - fh + 1
   if fh > qt then return nil end
   if not sweep_at or sweep_at < fh or sweep_at > qt then sweep_at = fh end
   local i = q[sweep_at]
   sweep_at = sweep_at + 1
   return i
end

if mode ~= "nginx" then
   -- nginx mode defines no request(): wrk then sends its one fixed request, so the load
   -- generator spends the least on the fastest contender.
   function request()
      if not verified then
         verified = true
         return health
      end
      local i
      if pick == "steady" and mode == "sessiond" then
         i = steady()
      elseif pick == "sweep" and mode == "sessiond" then
         i = sweep()
      elseif pick == "each" then
         each_at = each_at % count + 1
         i = each_at
      else
         i = math.random(count)
      end
      if not i then
         bench_healthz = bench_healthz + 1
         return health
      end
      return head .. items[i].token .. tail
   end
end

local threads = {}

function setup(thread)
   threads[#threads + 1] = thread
end

function done(summary, latency, requests)
   local e = summary.errors
   local touches, inuse, healthz, nodue = 0, 0, 0, 0
   for _, thread in ipairs(threads) do
      touches = touches + (tonumber(thread:get("bench_touches")) or 0)
      inuse = inuse + (tonumber(thread:get("bench_inuse")) or 0)
      healthz = healthz + (tonumber(thread:get("bench_healthz")) or 0)
      nodue = nodue + (tonumber(thread:get("bench_nodue")) or 0)
   end
   io.write(string.format(
      "BENCH requests=%d duration_us=%d rps=%.2f p50_us=%.1f p99_us=%.1f max_us=%.1f " ..
      "non2xx=%d connect=%d read=%d write=%d timeout=%d touches=%d inuse=%d healthz=%d nodue=%d\n",
      summary.requests, summary.duration, summary.requests / (summary.duration / 1e6),
      latency:percentile(50), latency:percentile(99), latency.max,
      e.status, e.connect, e.read, e.write, e.timeout, touches, inuse, healthz, nodue))
end
