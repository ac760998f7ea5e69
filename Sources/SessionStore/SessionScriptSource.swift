// The Lua scripts, kept in Swift source so the binary carries them and nothing else needs
// deploying. Each script is run as `common` followed by its own body.

enum SessionScriptSource {
    static let common = #"""
-- Shared by every sessiond script (prepended when the script is loaded).
-- ARGV[1] is always the key prefix. A session record is a binary string:
--   header  >I4 version, I6 created_ms, I6 last_seen_ms, I4 idle_s, I4 absolute_s   (24 bytes)
--   lengths >I2 user_id, I1 ip, I2 user_agent                                         (5 bytes)
--   user_id, ip, user_agent, data (the rest; empty means {})
-- All times come from the Redis server clock, so every sessiond process agrees on them.
local PREFIX = ARGV[1]
local HEADER = '>I4I6I6I4I4'
local HEADER_LEN = 24

local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

-- Integers as decimal text: Lua's default number formatting switches to exponents.
local function int(n)
  return string.format('%.0f', n)
end

local function expiry_of(created, last_seen, idle, absolute)
  return math.min(last_seen + idle * 1000, created + absolute * 1000)
end

local function user_id_of(record)
  local length = struct.unpack('>I2', record, HEADER_LEN + 1)
  return string.sub(record, HEADER_LEN + 6, HEADER_LEN + 5 + length)
end

local function index_key(user_id)
  return PREFIX .. 'u:' .. user_id
end

-- The index lives as long as its longest-lived session, so it is never gone while one of its
-- sessions is valid, and Redis frees it by TTL once they have all expired.
local function extend_index(index, expires)
  if redis.call('PEXPIRETIME', index) < expires then
    redis.call('PEXPIREAT', index, int(expires))
  end
end

local function remove_members(index, members)
  for i = 1, #members, 1000 do
    redis.call('ZREM', index, unpack(members, i, math.min(i + 999, #members)))
  end
end

-- Drops index entries whose session key has expired; returns how many remain. One multi-key
-- EXISTS per batch counts the live sessions; only a batch with dead entries is checked key by
-- key. Most batches have none, so this stays cheap for big users.
local function prune(index)
  local members = redis.call('ZRANGE', index, 0, -1)
  local dead = {}
  local batch = 500
  for first = 1, #members, batch do
    local last = math.min(first + batch - 1, #members)
    local keys = {}
    for i = first, last do keys[#keys + 1] = PREFIX .. members[i] end
    if redis.call('EXISTS', unpack(keys)) < #keys then
      for i = first, last do
        if redis.call('EXISTS', keys[i - first + 1]) == 0 then dead[#dead + 1] = members[i] end
      end
    end
  end
  remove_members(index, dead)
  return #members - #dead
end
"""#

    static let create = #"""
-- Create a session and index it, revoking the user's oldest sessions beyond the cap.
-- KEYS[1] session key, KEYS[2] user index
-- ARGV[2] handle, ARGV[3] idle_s, ARGV[4] absolute_s, ARGV[5] record tail, ARGV[6] cap (0 = none)
-- Returns {record, {revoked handles}}, or an error reply COLLISION when the handle exists.
local now = now_ms()
local idle, absolute = tonumber(ARGV[3]), tonumber(ARGV[4])
local record = struct.pack(HEADER, 1, now, now, idle, absolute) .. ARGV[5]
local expires = expiry_of(now, now, idle, absolute)
if not redis.call('SET', KEYS[1], record, 'PXAT', int(expires), 'NX') then
  return redis.error_reply('COLLISION session handle already exists')
end
redis.call('ZADD', KEYS[2], int(now), ARGV[2])
extend_index(KEYS[2], expires)

local revoked = {}
local cap = tonumber(ARGV[6])
if cap > 0 and redis.call('ZCARD', KEYS[2]) > cap then
  local excess = prune(KEYS[2]) - cap
  if excess > 0 then
    for _, handle in ipairs(redis.call('ZRANGE', KEYS[2], 0, excess)) do
      if handle ~= ARGV[2] and #revoked < excess then
        redis.call('DEL', PREFIX .. handle)
        revoked[#revoked + 1] = handle
      end
    end
    remove_members(KEYS[2], revoked)
  end
end
return {record, revoked}
"""#

    static let lookup = #"""
-- Read a session; with ARGV[2] == '1', slide its idle expiry, but only when that moves it by
-- a meaningful step (a tenth of the idle timeout, at most 60 s), so most lookups only read.
-- KEYS[1] session key. Returns the record, or nil.
local record = redis.call('GET', KEYS[1])
if not record or ARGV[2] ~= '1' then return record end
local version, created, last_seen, idle, absolute = struct.unpack(HEADER, record)
local now = now_ms()
local step = math.min(60000, idle * 100)
local expires = expiry_of(created, now, idle, absolute)
if now - last_seen < step or expires <= expiry_of(created, last_seen, idle, absolute) then
  return record
end
record = struct.pack(HEADER, version, created, now, idle, absolute) .. string.sub(record, HEADER_LEN + 1)
redis.call('SET', KEYS[1], record, 'PXAT', int(expires))
extend_index(index_key(user_id_of(record)), expires)
return record
"""#

    static let replaceData = #"""
-- Compare-and-set of a session's data: applies only if the version is still ARGV[2].
-- The write counts as activity, so it also slides the idle expiry.
-- KEYS[1] session key; ARGV[3] new data (compact JSON object).
-- Returns nil (no session), {0, current record} (version moved on), or {1, new record}.
local record = redis.call('GET', KEYS[1])
if not record then return nil end
local version, created, last_seen, idle, absolute = struct.unpack(HEADER, record)
if version ~= tonumber(ARGV[2]) then return {0, record} end
local user_len, ip_len, agent_len = struct.unpack('>I2I1I2', record, HEADER_LEN + 1)
local fixed_end = HEADER_LEN + 5 + user_len + ip_len + agent_len
local now = now_ms()
local updated = struct.pack(HEADER, version + 1, created, now, idle, absolute)
  .. string.sub(record, HEADER_LEN + 1, fixed_end) .. ARGV[3]
local expires = expiry_of(created, now, idle, absolute)
redis.call('SET', KEYS[1], updated, 'PXAT', int(expires))
extend_index(index_key(user_id_of(record)), expires)
return {1, updated}
"""#

    static let revoke = #"""
-- Revoke one session and drop it from its user's index.
-- KEYS[1] session key; ARGV[2] handle. Returns 1 if a session was revoked, else 0.
local record = redis.call('GET', KEYS[1])
if not record then return 0 end
redis.call('DEL', KEYS[1])
redis.call('ZREM', index_key(user_id_of(record)), ARGV[2])
return 1
"""#

    static let rotate = #"""
-- Move a session to a new handle: the old key is gone in the same step, so the old token
-- stops working at once. User, data, version and creation time (so the absolute end) carry over.
-- KEYS[1] old session key, KEYS[2] new session key; ARGV[2] old handle, ARGV[3] new handle.
-- Returns the new record, nil when the old session is gone, or an error reply COLLISION.
local record = redis.call('GET', KEYS[1])
if not record then return nil end
local version, created, last_seen, idle, absolute = struct.unpack(HEADER, record)
local now = now_ms()
local rotated = struct.pack(HEADER, version, created, now, idle, absolute) .. string.sub(record, HEADER_LEN + 1)
local expires = expiry_of(created, now, idle, absolute)
if not redis.call('SET', KEYS[2], rotated, 'PXAT', int(expires), 'NX') then
  return redis.error_reply('COLLISION session handle already exists')
end
redis.call('DEL', KEYS[1])
local index = index_key(user_id_of(record))
redis.call('ZREM', index, ARGV[2])
redis.call('ZADD', index, int(created), ARGV[3])
extend_index(index, expires)
return rotated
"""#

    static let forceLogout = #"""
-- Revoke a user's sessions created up to a bound, one chunk per call, so Redis is never
-- blocked for long; each call is atomic, so sessions and index never disagree.
-- KEYS[1] user index; ARGV[2] bound in ms ('' on the first call: now), ARGV[3] handle to keep
-- ('' for none), ARGV[4] chunk size.
-- Returns {bound, revoked in this call, 1 if more may remain else 0}.
local bound = ARGV[2] == '' and now_ms() or tonumber(ARGV[2])
local keep, chunk = ARGV[3], tonumber(ARGV[4])
local members = redis.call('ZRANGE', KEYS[1], '-inf', int(bound), 'BYSCORE', 'LIMIT', 0, chunk + 1)
local removed, revoked = {}, 0
for _, handle in ipairs(members) do
  if handle ~= keep and #removed < chunk then
    revoked = revoked + redis.call('DEL', PREFIX .. handle)
    removed[#removed + 1] = handle
  end
end
remove_members(KEYS[1], removed)
return {int(bound), revoked, #removed == chunk and 1 or 0}
"""#

    static let list = #"""
-- One page of a user's live sessions, newest first, after pruning expired index entries so
-- `total` is exact. Order: created desc, then handle desc (ZRANGE ... REV).
-- KEYS[1] user index; ARGV[2] limit, ARGV[3] cursor score ('' for the first page),
-- ARGV[4] cursor handle.
-- Returns {total, more (0/1), handle1, record1, handle2, record2, ...}.
local limit = tonumber(ARGV[2])
local cursor_score, cursor_handle = tonumber(ARGV[3]), ARGV[4]

-- Byte order, as ZRANGE sorts members; Lua's `<` on strings follows the server's locale.
local function bytes_before(a, b)
  for i = 1, math.min(#a, #b) do
    local x, y = string.byte(a, i), string.byte(b, i)
    if x ~= y then return x < y end
  end
  return #a < #b
end

local total = prune(KEYS[1])

-- The page: entries after the cursor, read from the index in order, `limit` + 1 at a time
-- so `more` is known without a second pass.
local page, taken, more = {}, 0, 0
local upper = cursor_score and int(cursor_score) or '+inf'
local offset = 0
while true do
  local entries = redis.call('ZRANGE', KEYS[1], upper, '-inf', 'BYSCORE', 'REV', 'WITHSCORES', 'LIMIT', offset, limit + 1)
  if #entries == 0 then break end
  for i = 1, #entries, 2 do
    local handle, score = entries[i], tonumber(entries[i + 1])
    if not cursor_score or score < cursor_score or bytes_before(handle, cursor_handle) then
      if taken == limit then more = 1 break end
      local record = redis.call('GET', PREFIX .. handle)
      if record then
        taken = taken + 1
        page[#page + 1] = handle
        page[#page + 1] = record
      else
        total = total - 1
      end
    end
  end
  if more == 1 or #entries < 2 * (limit + 1) then break end
  offset = offset + limit + 1
end
local reply = {total, more}
for _, value in ipairs(page) do reply[#reply + 1] = value end
return reply
"""#

}
