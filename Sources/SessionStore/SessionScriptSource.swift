// The Lua scripts, kept in Swift source so the binary carries them and nothing else needs
// deploying. Each script is run as the part of `common` it uses followed by its own body. Every key a script touches
// arrives in KEYS, and all of them carry the same hash tag, so each script runs on one Redis
// Cluster slot (but `touch_batch` on one server, where any keys may meet); no script builds a
// key name.

enum SessionScriptSource {
    /// What of `common` a script carries: its header, and the functions `body` calls, directly
    /// or through each other, in `common`'s order. Every call of a script makes a closure of each
    /// local function its chunk defines, so an unused one is a cost on every call.
    static func prelude(for body: String) -> String {
        let blocks = common.split(separator: "\n\n", omittingEmptySubsequences: false)
        let functions = blocks.map { block -> (name: Substring?, text: Substring) in
            let definition = block.split(separator: "\n").first { $0.hasPrefix("local function ") }
            return (definition?.dropFirst("local function ".count).prefix { $0 != "(" }, block)
        }
        var wanted = Set<Substring>()
        var searched = [Substring(body)]
        while let text = searched.popLast() {
            for case let (name?, block) in functions where !wanted.contains(name) && calls(text, name) {
                wanted.insert(name)
                searched.append(block)
            }
        }
        let kept = functions.enumerated().filter { index, function in index == 0 || function.name.map(wanted.contains) == true }
        return kept.map { String($0.element.text) }.joined(separator: "\n\n") + "\n\n"
    }

    /// Whether `text` calls `name`: `name(` not preceded by a letter, digit or underscore.
    private static func calls(_ text: Substring, _ name: Substring) -> Bool {
        var rest = text[...]
        while let found = rest.firstRange(of: name + "(") {
            let before = found.lowerBound == text.startIndex ? nil : text[text.index(before: found.lowerBound)]
            if !(before.map { $0.isLetter || $0.isNumber || $0 == "_" } ?? false) { return true }
            rest = text[found.upperBound...]
        }
        return false
    }

    static let common = #"""
-- Shared by every sessiond script (prepended when the script is loaded). A session record,
-- format 2 (Sources/SessionStore/Session.swift, docs/redis-layout.md):
--   byte 0xA0 + flags (0x01: ip, 0x02: user agent, 0x04: the tail is sealed)
--   varint version, created ms as 6 bytes big-endian (struct: what a varint of today's times
--   takes, packed in C), then varints: last_seen - created ms, idle s, absolute s
--   body: varint length + user id, then the tail: [varint length + ip], [varint length + user
--   agent], data; or, sealed, one box of those bytes that only sessiond opens
-- Format 1 (a fixed '>I4I6I6I4I4' header, then '>I2I1I2' lengths) is read too, and every write
-- rewrites it as format 2. All times come from the Redis server clock, so every sessiond process
-- agrees on them.

local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

-- Integers as decimal text: Lua's default number formatting switches to exponents.
local function int(n)
  return string.format('%.0f', n)
end

-- Unrolled up to 3 bytes (every number but a large version or last_seen - created): a table and
-- unpack per call cost a create about a microsecond.
local function varint(n)
  if n < 128 then
    if n < 0 then error('negative varint') end
    return string.char(n)
  end
  if n < 16384 then return string.char(n % 128 + 128, math.floor(n / 128)) end
  if n < 2097152 then return string.char(n % 128 + 128, math.floor(n / 128) % 128 + 128, math.floor(n / 16384)) end
  local bytes = {}
  while n >= 128 do
    local low = n % 128
    bytes[#bytes + 1] = low + 128
    n = (n - low) / 128
  end
  bytes[#bytes + 1] = n
  return string.char(unpack(bytes))
end

local function read_varint(s, pos)
  local value, scale = 0, 1
  while true do
    local b = string.byte(s, pos)
    if not b then error('corrupt session record') end
    pos = pos + 1
    if b < 128 then return value + b * scale, pos end
    value = value + (b - 128) * scale
    scale = scale * 128
  end
end

-- The record as a table of its fields; `body` is in format 2 whatever the record's format.
local function parse(record)
  local s = {}
  local first = string.byte(record, 1)
  if first >= 128 then
    local pos, since = 2, 0
    s.first = first
    s.version, pos = read_varint(record, pos)
    s.created, pos = struct.unpack('>I6', record, pos)
    since, pos = read_varint(record, pos)
    s.last_seen = s.created + since
    s.idle, pos = read_varint(record, pos)
    s.absolute, pos = read_varint(record, pos)
    s.body = string.sub(record, pos)
    return s
  end
  s.version, s.created, s.last_seen, s.idle, s.absolute = struct.unpack('>I4I6I6I4I4', record)
  local user_len, ip_len, agent_len = struct.unpack('>I2I1I2', record, 25)
  local ip_at = 30 + user_len
  local agent_at = ip_at + ip_len
  local data_at = agent_at + agent_len
  s.first = 160
  local body = {varint(user_len), string.sub(record, 30, ip_at - 1)}
  if ip_len > 0 then
    s.first = s.first + 1
    body[#body + 1] = varint(ip_len) .. string.sub(record, ip_at, agent_at - 1)
  end
  if agent_len > 0 then
    s.first = s.first + 2
    body[#body + 1] = varint(agent_len) .. string.sub(record, agent_at, data_at - 1)
  end
  body[#body + 1] = string.sub(record, data_at)
  s.body = table.concat(body)
  return s
end

-- The creation time alone, for a check over many records (revoke_members): parse would copy
-- each body.
local function created_of(record)
  if string.byte(record, 1) >= 128 then
    local _, pos = read_varint(record, 2)
    return (struct.unpack('>I6', record, pos))
  end
  return (struct.unpack('>I6', record, 5))
end

local function encode(s)
  return string.char(s.first) .. varint(s.version) .. struct.pack('>I6', s.created) .. varint(s.last_seen - s.created)
    .. varint(s.idle) .. varint(s.absolute) .. s.body
end

-- The body's first field, the user id with its length: what precedes the tail (ip, user agent
-- and data, plain or sealed), which sessiond writes.
local function user_id_field(s)
  local len, pos = read_varint(s.body, 1)
  return string.sub(s.body, 1, pos + len - 1)
end

local function user_id_of(s)
  local len, pos = read_varint(s.body, 1)
  return string.sub(s.body, pos, pos + len - 1)
end

local function expiry_of(s)
  return math.min(s.last_seen + s.idle * 1000, s.created + s.absolute * 1000)
end

-- A new session (version 1, created now), stored at `key` unless that key exists (a handle
-- collision: nil). Returns the record as a table and its bytes.
local function store_new(key, first, idle, absolute, body)
  local now = now_ms()
  local s = {first = first, version = 1, created = now, last_seen = now, idle = idle, absolute = absolute, body = body}
  local record = encode(s)
  if not redis.call('SET', key, record, 'PXAT', int(expiry_of(s)), 'NX') then return nil end
  return s, record
end

-- Activity now. Never before creation: after a failover or a slot move the node's clock may lag
-- the one that stamped the record, and last_seen is stored as its distance from created.
local function seen_now(s)
  s.last_seen = math.max(now_ms(), s.created)
end

-- The caller names the index from the user id it read; a record of another user means the
-- caller's read is stale, and nothing may be written.
local function check_user(s, user_id)
  if user_id_of(s) ~= user_id then
    return redis.error_reply('STALE session record does not belong to the given user')
  end
end

-- The index outlives each of its sessions, so it is never gone while one of them is valid, and
-- Redis frees it by TTL once they have all expired. What a format-2 record asks of its index is
-- its horizon: the session's end as of the end of the quarter of its idle timeout in which its
-- last activity falls. Every write of a record raises the index's TTL to its reach, a quarter
-- idle timeout past its end, which is at least that; nothing lowers it. So a touch in the same
-- quarter as the record's last write (most touches: they come a tenth of the idle timeout apart)
-- leaves the TTL alone, and the index lingers at most a quarter idle timeout after its last
-- session's end.
local function index_horizon(s)
  local quarter = s.idle * 250
  return math.min((math.floor(s.last_seen / quarter) + 1) * quarter + s.idle * 1000,
    s.created + s.absolute * 1000)
end

-- Later activity reaches later, so a new session's reach is beyond its user's others and GT
-- rarely refuses it (a tie would cost index_session a PEXPIRETIME).
local function index_reach(s)
  return math.min(s.last_seen + s.idle * 1250, s.created + s.absolute * 1000)
end

-- For a batch of records at once (migrate_index): the latest of their reaches.
local function extend_index(index, reach)
  if redis.call('PEXPIRETIME', index) < reach then
    redis.call('PEXPIREAT', index, int(reach))
  end
end

-- A member's score is the second its session ends, rounded up: a member scored at or before the
-- current second has ended. Whole seconds fit a listpack's 32-bit integer.
local function score_of(expires)
  return int(math.ceil(expires / 1000))
end

local function index_session(index, member, s)
  local added = redis.call('ZADD', index, score_of(expiry_of(s)), member)
  -- Every script that writes an index gives it a TTL, so one call extends it. GT leaves a key
  -- without a TTL as it is, so a refusal after adding a member is checked: the index may reach
  -- further already, or be new (ZADD made it). An existing member means an existing index, with
  -- a TTL.
  local reach = int(index_reach(s))
  if redis.call('PEXPIREAT', index, reach, 'GT') == 0 and added == 1 and redis.call('PEXPIRETIME', index) == -1 then
    redis.call('PEXPIREAT', index, reach)
  end
end

-- A user whose format-1 index still exists has it moved to the format-2 index first (by the
-- caller, in chunks), so that no script writes an index while the user's sessions sit in two.
local function refuse_legacy(legacy)
  if redis.call('EXISTS', legacy) == 1 then
    return redis.error_reply('LEGACY the user has a format-1 index to move first')
  end
end

local function remove_members(index, members)
  for i = 1, #members, 1000 do
    redis.call('ZREM', index, unpack(members, i, math.min(i + 999, #members)))
  end
end

-- Revocation event (docs/events.md) on the channel `<prefix>events`, for services that cache
-- lookups. Handles only, never a token. `key` is any key of the user: its prefix names the
-- channel. Classic PUBLISH, not SPUBLISH: a user's sessions are spread over 65,536 tags, and a
-- subscriber wants all of them.
local function publish_revoked(key, user_id, handles, reason)
  if #handles == 0 then return end
  local prefix = string.match(key, '^(.-){')
  redis.call('PUBLISH', prefix .. 'events', cjson.encode({
    event = 'revoked', reason = reason, user_id = user_id, handles = handles, time_ms = now_ms()
  }))
end
"""#

    static let create = #"""
-- Create a session and index it, without a cap (the default, and the hot path: the fewest calls
-- and shared functions). A format-1 index of the user may still exist: its sessions are moved
-- when they are next written, listed or force-logged-out, and a new one does not touch them.
-- KEYS[1] session key, KEYS[2] user index. ARGV[1] index member, ARGV[2] idle_s, ARGV[3]
-- absolute_s, ARGV[4] the record's first byte, ARGV[5] its body.
-- Returns {record, {}, 0}, or an error reply COLLISION when the handle exists.
local s, record = store_new(KEYS[1], tonumber(ARGV[4]), tonumber(ARGV[2]), tonumber(ARGV[3]), ARGV[5])
if not s then return redis.error_reply('COLLISION session handle already exists') end
index_session(KEYS[2], ARGV[1], s)
return {record, {}, 0}
"""#

    static let createCapped = #"""
-- Create a session and index it, then revoke the user's live sessions that end first (the least
-- recently active) beyond the cap.
-- KEYS[1] session key, KEYS[2] user index, KEYS[3] format-1 index, KEYS[4..] the session keys of
-- the index's members as the caller read them.
-- ARGV[1] index member, ARGV[2] idle_s, ARGV[3] absolute_s, ARGV[4] the record's first byte,
-- ARGV[5] its body, ARGV[6] cap, ARGV[7..] member and handle pairs matching KEYS[4..], in index
-- order.
-- Ended members are dropped from the index. Returns {record, {revoked handles}, how many ended
-- members were dropped}; an error reply COLLISION when the handle exists, STALE when the index no
-- longer holds exactly the members the caller read (the caller reads again), or LEGACY (the
-- format-1 index's sessions count towards the cap).
local legacy = refuse_legacy(KEYS[3])
if legacy then return legacy end
local cap = tonumber(ARGV[6])
-- The same members, in any order: a touch moves a member's score, not its membership.
if redis.call('ZCARD', KEYS[2]) * 2 ~= #ARGV - 6 then return redis.error_reply('STALE index changed') end
local existing = {}
for i = 1, (#ARGV - 6) / 2 do
  existing[i] = ARGV[5 + 2 * i]
  if not redis.call('ZSCORE', KEYS[2], existing[i]) then return redis.error_reply('STALE index changed') end
end

local s, record = store_new(KEYS[1], tonumber(ARGV[4]), tonumber(ARGV[2]), tonumber(ARGV[3]), ARGV[5])
if not s then return redis.error_reply('COLLISION session handle already exists') end

-- Ended members do not count; beyond the cap go the live sessions that end first, the oldest
-- first among those that end in the same millisecond.
local dead, live, ends, created = {}, {}, {}, {}
for i, member in ipairs(existing) do
  local stored = redis.call('GET', KEYS[3 + i])
  if stored then
    local other = parse(stored)
    live[#live + 1] = i
    ends[i], created[i] = expiry_of(other), other.created
  else
    dead[#dead + 1] = member
  end
end
table.sort(live, function(a, b)
  if ends[a] ~= ends[b] then return ends[a] < ends[b] end
  return created[a] < created[b]
end)
remove_members(KEYS[2], dead)
local gone, revoked = {}, {}
for n = 1, #live + 1 - cap do
  local i = live[n]
  redis.call('DEL', KEYS[3 + i])
  gone[#gone + 1] = existing[i]
  revoked[#revoked + 1] = ARGV[6 + 2 * i]
end
remove_members(KEYS[2], gone)
publish_revoked(KEYS[1], user_id_of(s), revoked, 'cap')
index_session(KEYS[2], ARGV[1], s)
return {record, revoked, #dead}
"""#

    static let touchBatch = #"""
-- Touches the sessions that came due together: Redis spends most of a touch entering a script,
-- so one call serves them all. KEYS[3i-2], KEYS[3i-1], KEYS[3i]: session i's key, its user's
-- index and format-1 index; ARGV[i] its index member. Returns per session 1 (it is there), 0 (it
-- is gone), LEGACY (its user's format-1 index must be moved first) or ERR (its touch failed: an
-- index that is not a sorted set, a record that does not parse), so that one session cannot
-- sink the others'. A refusal of the whole call (Redis at maxmemory, a replica, too few
-- replicas) comes before its first write, and fails the call.

-- Reads a session and slides its idle expiry, but only when that moves it by a meaningful step
-- (a tenth of the idle timeout, at most 60 s), so most lookups only read. Returns the record,
-- false when there is none, or the error reply LEGACY.
local function slide(key, index, legacy_index, member)
  local record = redis.call('GET', key)
  if not record then return record end
  local s = parse(record)
  local format2 = string.byte(record, 1) >= 128
  -- A format-2 record's last write raised the index past its horizon (format 1's, to its end).
  local horizon = format2 and index_horizon(s)
  local before = expiry_of(s)
  local last_seen = s.last_seen
  seen_now(s)
  local expires = expiry_of(s)
  if s.last_seen - last_seen < math.min(60000, s.idle * 100) or expires <= before then
    return record
  end
  -- Only a format-1 record can still belong to the format-1 index: a format-2 one was created
  -- in the index, or rewritten when its user's format-1 index was moved.
  if not format2 then
    local legacy = refuse_legacy(legacy_index)
    if legacy then return legacy end
  end
  record = encode(s)
  redis.call('SET', key, record, 'PXAT', int(expires))
  if index_horizon(s) == horizon then
    redis.call('ZADD', index, score_of(expires), member)
  else
    index_session(index, member, s)
  end
  return record
end

local outcomes = {}
for i = 1, #ARGV do
  local ok, result = pcall(slide, KEYS[3 * i - 2], KEYS[3 * i - 1], KEYS[3 * i], ARGV[i])
  if not ok then
    local message = type(result) == 'table' and result.err or tostring(result)
    for _, refusal in ipairs({'OOM', 'READONLY', 'NOREPLICAS'}) do
      if string.sub(message, 1, #refusal) == refusal then return redis.error_reply(message) end
    end
    outcomes[i] = 'ERR'
  elseif type(result) == 'table' then
    outcomes[i] = 'LEGACY'
  else
    outcomes[i] = result and 1 or 0
  end
end
return outcomes
"""#

    static let replaceData = #"""
-- Compare-and-set of a session's data: applies only if the version is still ARGV[1].
-- The write counts as activity, so it also slides the idle expiry.
-- KEYS[1] session key, KEYS[2] its user's index, KEYS[3] the format-1 index; ARGV[2] the new
-- tail (ip, user agent and the new data, plain or sealed), ARGV[3] the index member, ARGV[4]
-- the new first byte.
-- Returns nil (no session), {0, current record} (version moved on), {1, new record}, or an
-- error reply LEGACY.
local record = redis.call('GET', KEYS[1])
if not record then return nil end
local s = parse(record)
if s.version ~= tonumber(ARGV[1]) then return {0, record} end
local legacy = refuse_legacy(KEYS[3])
if legacy then return legacy end
s.first = tonumber(ARGV[4])
s.body = user_id_field(s) .. ARGV[2]
s.version = s.version + 1
seen_now(s)
local updated = encode(s)
local expires = expiry_of(s)
redis.call('SET', KEYS[1], updated, 'PXAT', int(expires))
index_session(KEYS[2], ARGV[3], s)
return {1, updated}
"""#

    static let revoke = #"""
-- Revoke one session and drop it from its user's indexes.
-- KEYS[1] session key, KEYS[2] its user's index, KEYS[3] the format-1 index; ARGV[1] index
-- member, ARGV[2] user id, ARGV[3] the event's reason (logout or admin), ARGV[4] the handle,
-- ARGV[5] its format-1 member. Returns 1 if a session was revoked, else 0.
local record = redis.call('GET', KEYS[1])
if not record then return 0 end
local stale = check_user(parse(record), ARGV[2])
if stale then return stale end
redis.call('DEL', KEYS[1])
redis.call('ZREM', KEYS[2], ARGV[1])
redis.call('ZREM', KEYS[3], ARGV[5])
publish_revoked(KEYS[1], ARGV[2], {ARGV[4]}, ARGV[3])
return 1
"""#

    static let rotate = #"""
-- Move a session to a new handle: the old key is gone in the same step, so the old token
-- stops working at once. User, data, version and creation time (so the absolute end) carry over;
-- the tail comes from sessiond, written for the new handle (sealed data is bound to it).
-- KEYS[1] old session key, KEYS[2] new session key, KEYS[3] the user's index, KEYS[4] the
-- format-1 index; ARGV[1] old member, ARGV[2] new member, ARGV[3] user id, ARGV[4] old handle,
-- ARGV[5] the version the tail was made from, ARGV[6] the new first byte, ARGV[7] the new tail.
-- Returns the new record, nil when the old session is gone, or an error reply COLLISION,
-- STALE (another user's record, or the version moved on) or LEGACY.
local record = redis.call('GET', KEYS[1])
if not record then return nil end
local s = parse(record)
local stale = check_user(s, ARGV[3])
if stale then return stale end
if s.version ~= tonumber(ARGV[5]) then return redis.error_reply('STALE the session changed since it was read') end
local legacy = refuse_legacy(KEYS[4])
if legacy then return legacy end
s.first = tonumber(ARGV[6])
s.body = user_id_field(s) .. ARGV[7]
seen_now(s)
local rotated = encode(s)
local expires = expiry_of(s)
if not redis.call('SET', KEYS[2], rotated, 'PXAT', int(expires), 'NX') then
  return redis.error_reply('COLLISION session handle already exists')
end
redis.call('DEL', KEYS[1])
redis.call('ZREM', KEYS[3], ARGV[1])
index_session(KEYS[3], ARGV[2], s)
publish_revoked(KEYS[1], ARGV[3], {ARGV[4]}, 'rotate')
return rotated
"""#

    static let listPage = #"""
-- One page of a user's index, most recently active first: latest end first, ties by member
-- descending (byte order, as Redis sorts members). A read. KEYS[1] the user's index; ARGV[1]
-- and ARGV[2] the cursor's score and member (empty for the first page), ARGV[3] how many.
-- Returns {second, certain, edge, page}: the current second; how many members end after the
-- next second (so are live); the members ending within the next second, whose keys the caller
-- checks; and the page as member, score pairs, without members that have ended.
local function bytes_less(a, b)
  for i = 1, math.min(#a, #b) do
    local x, y = string.byte(a, i), string.byte(b, i)
    if x ~= y then return x < y end
  end
  return #a < #b
end

-- The descending rank just after (score, member): the member's own rank when it is still there
-- with that score, else a binary search, O(log n) calls either way.
local function rank_after(index, score, member)
  local current = redis.call('ZSCORE', index, member)
  if current and tonumber(current) == score then
    return redis.call('ZREVRANK', index, member) + 1
  end
  local low, high = 0, redis.call('ZCARD', index)
  while low < high do
    local middle = math.floor((low + high) / 2)
    local entry = redis.call('ZRANGE', index, middle, middle, 'REV', 'WITHSCORES')
    local entry_score = tonumber(entry[2])
    if entry_score > score or (entry_score == score and not bytes_less(entry[1], member)) then
      low = middle + 1
    else
      high = middle
    end
  end
  return low
end

local second = math.floor(now_ms() / 1000)
local certain = redis.call('ZCOUNT', KEYS[1], int(second + 2), '+inf')
local edge = redis.call('ZRANGE', KEYS[1], int(second + 1), int(second + 1), 'BYSCORE')
local start = 0
if ARGV[1] ~= '' then start = rank_after(KEYS[1], tonumber(ARGV[1]), ARGV[2]) end
local entries = redis.call('ZRANGE', KEYS[1], start, start + tonumber(ARGV[3]) - 1, 'REV', 'WITHSCORES')
local page = {}
for i = 1, #entries, 2 do
  if tonumber(entries[i + 1]) <= second then break end
  page[#page + 1] = entries[i]
  page[#page + 1] = entries[i + 1]
end
return {second, certain, edge, page}
"""#

    static let migrateIndex = #"""
-- Moves a chunk of a user's format-1 index (members are the handle's 13 characters after the
-- tag, scored by creation) into the format-2 index (binary members scored by end). KEYS[1] the
-- index, KEYS[2] the format-1 index, KEYS[3..] the chunk's session keys; ARGV the chunk's
-- format-1 member and member pairs, in the same order. A member no longer in the format-1 index
-- (revoked, or moved by another process meanwhile) is skipped; one whose session has ended is
-- dropped. Each moved record is rewritten as format 2 (its TTL kept), so that a previous
-- release still running cannot touch it and leave its index score behind. Returns how many
-- moved.
local moved, latest = 0, 0
for i = 3, #KEYS do
  local old, new = ARGV[2 * i - 5], ARGV[2 * i - 4]
  if redis.call('ZSCORE', KEYS[2], old) then
    local record = redis.call('GET', KEYS[i])
    if record then
      local s = parse(record)
      redis.call('SET', KEYS[i], encode(s), 'KEEPTTL')
      redis.call('ZADD', KEYS[1], score_of(expiry_of(s)), new)
      latest = math.max(latest, index_reach(s))
      moved = moved + 1
    end
    redis.call('ZREM', KEYS[2], old)
  end
end
if latest > 0 then extend_index(KEYS[1], latest) end
return moved
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
-- sessions and index never disagree: those created at or before the bound, ARGV[1] (ms); later
-- ones are kept. KEYS[1] the user's index, KEYS[2..] the members' session keys; ARGV[2..] the
-- members, in the same order, then their handles. Members of ended sessions are dropped.
-- Returns {how many sessions were revoked, how many were kept}.
local count = #KEYS - 1
local bound = tonumber(ARGV[1])
local gone, revoked, kept = {}, {}, 0
for i = 1, count do
  local record = redis.call('GET', KEYS[i + 1])
  if not record then
    gone[#gone + 1] = ARGV[i + 1]
  elseif created_of(record) <= bound then
    redis.call('DEL', KEYS[i + 1])
    gone[#gone + 1] = ARGV[i + 1]
    revoked[#revoked + 1] = ARGV[count + i + 1]
  else
    kept = kept + 1
  end
end
remove_members(KEYS[1], gone)
publish_revoked(KEYS[1], string.match(KEYS[1], '}i:(.*)$'), revoked, 'force_logout')
return {#revoked, kept}
"""#

    static let routingKey = #"""
-- The deployment's routing key: created once (first start), then read by every process.
-- KEYS[1] its key; ARGV[1] a fresh random key, kept only if none exists yet.
redis.call('SET', KEYS[1], ARGV[1], 'NX')
return redis.call('GET', KEYS[1])
"""#
}
