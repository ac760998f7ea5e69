-- wrk script for scripts/bench: creates exactly BENCH_COUNT sessions through
-- POST /v1/sessions, then stops its thread. Run with -t1 (one Lua state).
--
-- Environment:
--   BENCH_COUNT        sessions to create
--   BENCH_USERS        user ids u000000000.. cycled round-robin (10 characters each)
--   BENCH_USER_OFFSET  first user number (default 0)
--   BENCH_USER         one fixed user id for every session instead (optional)
--   BENCH_APP_KEY      API key of role app
--   BENCH_IDLE_TIMEOUT idle_timeout of each session in seconds (optional; default the server's)
--   BENCH_OUT          file for "user_id handle token created_ms" lines (optional), created_ms
--                      the wall-clock time of the answer in ms (a bound on the session's
--                      creation, which scripts/bench.d/lookup.lua takes as its last touch)
--   BENCH_DONE         written last, atomically: "created failed elapsed_seconds"
-- Creates beyond the count are never sent: once BENCH_COUNT are out, the
-- remaining connections ask GET /healthz until the last create is answered.
local ffi = require("ffi")
ffi.cdef [[
typedef struct { long tv_sec; long tv_nsec; } bench_timespec_t;
int clock_gettime(int clock_id, bench_timespec_t *tp);
]]
local timespec = ffi.new("bench_timespec_t")
local function now()
   ffi.C.clock_gettime(1, timespec) -- CLOCK_MONOTONIC
   return tonumber(timespec.tv_sec) + tonumber(timespec.tv_nsec) / 1e9
end
local function wall_ms()
   ffi.C.clock_gettime(0, timespec) -- CLOCK_REALTIME: the clock of Redis's TIME
   return tonumber(timespec.tv_sec) * 1000 + tonumber(timespec.tv_nsec) / 1e6
end

local total = tonumber(os.getenv("BENCH_COUNT") or "0")
local users = tonumber(os.getenv("BENCH_USERS") or "1")
local offset = tonumber(os.getenv("BENCH_USER_OFFSET") or "0")
local fixed_user = os.getenv("BENCH_USER")
if fixed_user == "" then fixed_user = nil end
local app_key = os.getenv("BENCH_APP_KEY") or ""
local idle_timeout = tonumber(os.getenv("BENCH_IDLE_TIMEOUT") or "")
local body_tail = idle_timeout and string.format('","idle_timeout":%d}', idle_timeout) or '"}'
local out_path = os.getenv("BENCH_OUT") or ""
local done_path = os.getenv("BENCH_DONE") or ""

local issued, created, failed = 0, 0, 0
local started, finished = nil, false
-- wrk calls request() once before any connection exists, to check the request
-- (script_verify_request); that string is never sent, so it is not counted.
local verified = false
local out, head, health, first_failure

function init(args)
   local host = wrk.headers["Host"]
   head = "POST /v1/sessions HTTP/1.1\r\nHost: " .. host ..
      "\r\nAuthorization: Bearer " .. app_key ..
      "\r\nContent-Type: application/json\r\nContent-Length: "
   health = "GET /healthz HTTP/1.1\r\nHost: " .. host .. "\r\n\r\n"
   if out_path ~= "" then
      out = assert(io.open(out_path, "w"))
      out:setvbuf("full", 1048576)
   end
end

function request()
   if not verified then
      verified = true
      return health
   end
   if issued >= total then return health end
   if issued == 0 then started = now() end
   local user = fixed_user or string.format("u%09d", offset + issued % users)
   issued = issued + 1
   local body = '{"user_id":"' .. user .. body_tail
   return head .. #body .. "\r\n\r\n" .. body
end

local function finish()
   finished = true
   local elapsed = now() - (started or now())
   if out then out:close() end
   local tmp = done_path .. ".tmp"
   local f = assert(io.open(tmp, "w"))
   f:write(string.format("%d %d %.6f\n", created, failed, elapsed))
   if first_failure then f:write(first_failure, "\n") end
   f:close()
   assert(os.rename(tmp, done_path))
   wrk.thread:stop()
end

function response(status, headers, body)
   if finished then return end
   if status == 201 then
      local handle = body:match('"handle":"([^"]+)"')
      local token = body:match('"token":"([^"]+)"')
      local user = body:match('"user_id":"([^"]+)"')
      if handle and token and user then
         created = created + 1
         if out then out:write(user, " ", handle, " ", token, " ", string.format("%.0f", wall_ms()), "\n") end
      else
         failed = failed + 1
         first_failure = first_failure or ("201 without handle/token/user_id: " .. body:sub(1, 300))
      end
   elseif status == 200 and body:find('"status"', 1, true) then
      return -- a /healthz filler answer
   else
      failed = failed + 1
      first_failure = first_failure or (status .. ": " .. body:sub(1, 300))
   end
   if created + failed >= total then finish() end
end
