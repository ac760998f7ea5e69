// The Lua scripts, kept in Swift source so the binary carries them and nothing else needs
// deploying. Each script is run as `common` followed by its own body. Every key a script touches
// arrives in KEYS, and all of them carry the same hash tag, so each script runs on one Redis
// Cluster slot; no script builds a key name.

enum SessionScriptSource {
    static let common = #"""
-- Shared by every sessiond script (prepended when the script is loaded). A session record is a
-- binary string:
--   header  >I4 version, I6 created_ms, I6 last_seen_ms, I4 idle_s, I4 absolute_s   (24 bytes)
--   lengths >I2 user_id, I1 ip, I2 user_agent                                         (5 bytes)
--   user_id, ip, user_agent, data (the rest; empty means {})
-- All times come from the Redis server clock, so every sessiond process agrees on them.
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

-- The caller names the index from the user id it read; a record of another user means the
-- caller's read is stale, and nothing may be written.
local function check_user(record, user_id)
  if user_id_of(record) ~= user_id then
    return redis.error_reply('STALE session record does not belong to the given user')
  end
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

-- Revocation event (docs/events.md) on the channel `<prefix>events`, for services that cache
-- lookups. Handles only, never a token. `key` is any key of the user's slot: its prefix names
-- the channel and its hash tag is the handles' first three characters. Classic PUBLISH, not
-- SPUBLISH: a user's sessions are spread over 65,536 tags, and a subscriber wants all of them.
local function publish_revoked(key, user_id, members, reason)
  if #members == 0 then return end
  local prefix, tag = string.match(key, '^(.-){(...)}')
  local handles = {}
  for i, member in ipairs(members) do handles[i] = tag .. member end
  redis.call('PUBLISH', prefix .. 'events', cjson.encode({
    event = 'revoked', reason = reason, user_id = user_id, handles = handles, time_ms = now_ms()
  }))
end
"""#

    static let create = #"""
-- Create a session and index it; with a cap, revoke the user's oldest live sessions beyond it.
-- KEYS[1] session key, KEYS[2] user index, KEYS[3..] (cap only) the session keys of the index's
-- members as the caller read them.
-- ARGV[1] index member of the new session, ARGV[2] idle_s, ARGV[3] absolute_s, ARGV[4] record
-- tail, ARGV[5] cap (0 = none), ARGV[6..] (cap only) the members matching KEYS[3..], in index order.
-- Returns {record, {revoked members}}; an error reply COLLISION when the handle exists, or STALE
-- when the index no longer holds exactly the members the caller read (the caller reads again).
local cap = tonumber(ARGV[5])
local existing = {}
if cap > 0 then
  existing = redis.call('ZRANGE', KEYS[2], 0, -1)
  if #existing ~= #ARGV - 5 then return redis.error_reply('STALE index changed') end
  for i, member in ipairs(existing) do
    if member ~= ARGV[5 + i] then return redis.error_reply('STALE index changed') end
  end
end

local now = now_ms()
local idle, absolute = tonumber(ARGV[2]), tonumber(ARGV[3])
local record = struct.pack(HEADER, 1, now, now, idle, absolute) .. ARGV[4]
local expires = expiry_of(now, now, idle, absolute)
if not redis.call('SET', KEYS[1], record, 'PXAT', int(expires), 'NX') then
  return redis.error_reply('COLLISION session handle already exists')
end
redis.call('ZADD', KEYS[2], int(now), ARGV[1])
extend_index(KEYS[2], expires)

local revoked = {}
if cap > 0 then
  -- Expired members are dropped and do not count; the oldest live ones beyond the cap go.
  local dead, live = {}, {}
  for i, member in ipairs(existing) do
    if redis.call('EXISTS', KEYS[2 + i]) == 1 then
      live[#live + 1] = i
    else
      dead[#dead + 1] = member
    end
  end
  remove_members(KEYS[2], dead)
  local excess = #live + 1 - cap
  for n = 1, excess do
    local i = live[n]
    redis.call('DEL', KEYS[2 + i])
    revoked[#revoked + 1] = existing[i]
  end
  remove_members(KEYS[2], revoked)
  publish_revoked(KEYS[1], user_id_of(record), revoked, 'cap')
end
return {record, revoked}
"""#

    static let lookup = #"""
-- Read a session and slide its idle expiry, but only when that moves it by a meaningful step
-- (a tenth of the idle timeout, at most 60 s), so most lookups only read.
-- KEYS[1] session key, KEYS[2] its user's index. Returns the record, or nil.
local record = redis.call('GET', KEYS[1])
if not record then return record end
local version, created, last_seen, idle, absolute = struct.unpack(HEADER, record)
local now = now_ms()
local step = math.min(60000, idle * 100)
local expires = expiry_of(created, now, idle, absolute)
if now - last_seen < step or expires <= expiry_of(created, last_seen, idle, absolute) then
  return record
end
record = struct.pack(HEADER, version, created, now, idle, absolute) .. string.sub(record, HEADER_LEN + 1)
redis.call('SET', KEYS[1], record, 'PXAT', int(expires))
extend_index(KEYS[2], expires)
return record
"""#

    static let replaceData = #"""
-- Compare-and-set of a session's data: applies only if the version is still ARGV[1].
-- The write counts as activity, so it also slides the idle expiry.
-- KEYS[1] session key, KEYS[2] its user's index; ARGV[2] new data (compact JSON object).
-- Returns nil (no session), {0, current record} (version moved on), or {1, new record}.
local record = redis.call('GET', KEYS[1])
if not record then return nil end
local version, created, last_seen, idle, absolute = struct.unpack(HEADER, record)
if version ~= tonumber(ARGV[1]) then return {0, record} end
local user_len, ip_len, agent_len = struct.unpack('>I2I1I2', record, HEADER_LEN + 1)
local fixed_end = HEADER_LEN + 5 + user_len + ip_len + agent_len
local now = now_ms()
local updated = struct.pack(HEADER, version + 1, created, now, idle, absolute)
  .. string.sub(record, HEADER_LEN + 1, fixed_end) .. ARGV[2]
local expires = expiry_of(created, now, idle, absolute)
redis.call('SET', KEYS[1], updated, 'PXAT', int(expires))
extend_index(KEYS[2], expires)
return {1, updated}
"""#

    static let revoke = #"""
-- Revoke one session and drop it from its user's index.
-- KEYS[1] session key, KEYS[2] its user's index; ARGV[1] index member, ARGV[2] user id,
-- ARGV[3] the event's reason (logout or admin). Returns 1 if a session was revoked, else 0.
local record = redis.call('GET', KEYS[1])
if not record then return 0 end
local stale = check_user(record, ARGV[2])
if stale then return stale end
redis.call('DEL', KEYS[1])
redis.call('ZREM', KEYS[2], ARGV[1])
publish_revoked(KEYS[1], ARGV[2], {ARGV[1]}, ARGV[3])
return 1
"""#

    static let rotate = #"""
-- Move a session to a new handle: the old key is gone in the same step, so the old token
-- stops working at once. User, data, version and creation time (so the absolute end) carry over.
-- KEYS[1] old session key, KEYS[2] new session key, KEYS[3] the user's index;
-- ARGV[1] old member, ARGV[2] new member, ARGV[3] user id.
-- Returns the new record, nil when the old session is gone, or an error reply COLLISION.
local record = redis.call('GET', KEYS[1])
if not record then return nil end
local stale = check_user(record, ARGV[3])
if stale then return stale end
local version, created, last_seen, idle, absolute = struct.unpack(HEADER, record)
local now = now_ms()
local rotated = struct.pack(HEADER, version, created, now, idle, absolute) .. string.sub(record, HEADER_LEN + 1)
local expires = expiry_of(created, now, idle, absolute)
if not redis.call('SET', KEYS[2], rotated, 'PXAT', int(expires), 'NX') then
  return redis.error_reply('COLLISION session handle already exists')
end
redis.call('DEL', KEYS[1])
redis.call('ZREM', KEYS[3], ARGV[1])
redis.call('ZADD', KEYS[3], int(created), ARGV[2])
extend_index(KEYS[3], expires)
publish_revoked(KEYS[1], ARGV[3], {ARGV[1]}, 'rotate')
return rotated
"""#

    static let clock = #"""
-- Force-logout's bound: the Redis time in ms on the node that holds the user index KEYS[1], or
-- the index's newest creation time if that is later (a promoted replica's clock may lag the one
-- that stamped it), so every session created before the call is at or below the bound.
local now = now_ms()
local newest = redis.call('ZRANGE', KEYS[1], -1, -1, 'WITHSCORES')
if newest[2] and tonumber(newest[2]) > now then now = tonumber(newest[2]) end
return {int(now), redis.call('ZCARD', KEYS[1])}
"""#

    static let fence = #"""
-- A small write in a user's slot, for a revocation that found nothing left to do: once a
-- replica acknowledges it (WAIT), every earlier write of the slot's node has reached the replica
-- too, a delete by an earlier attempt whose WAIT timed out included. KEYS[1] the fence key.
redis.call('SET', KEYS[1], '1', 'PX', 1000)
return 1
"""#

    static let revokeMembers = #"""
-- Revoke a batch of one user's sessions (a force-logout chunk) in one atomic step, so
-- sessions and index never disagree. KEYS[1] the user's index, KEYS[2..] the members' session
-- keys; ARGV the members, in the same order. Returns how many sessions existed and were deleted.
local revoked = {}
for i = 2, #KEYS do
  if redis.call('DEL', KEYS[i]) == 1 then revoked[#revoked + 1] = ARGV[i - 1] end
end
remove_members(KEYS[1], ARGV)
publish_revoked(KEYS[1], string.match(KEYS[1], '}u:(.*)$'), revoked, 'force_logout')
return #revoked
"""#

    static let routingKey = #"""
-- The deployment's routing key: created once (first start), then read by every process.
-- KEYS[1] its key; ARGV[1] a fresh random key, kept only if none exists yet.
redis.call('SET', KEYS[1], ARGV[1], 'NX')
return redis.call('GET', KEYS[1])
"""#
}
