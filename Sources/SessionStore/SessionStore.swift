import NIOCore
import NIOPosix
import ServiceLifecycle
import RedisClient
import SessionCrypto

/// What a caller asks for when creating a session; already validated by the HTTP layer.
public struct NewSession: Sendable {
    public var userID: String
    public var data: [UInt8]
    public var idleTimeout: Int?
    public var absoluteTimeout: Int?
    public var ip: String?
    public var userAgent: String?

    public init(userID: String, data: [UInt8] = [], idleTimeout: Int? = nil, absoluteTimeout: Int? = nil, ip: String? = nil, userAgent: String? = nil) {
        self.userID = userID
        self.data = data
        self.idleTimeout = idleTimeout
        self.absoluteTimeout = absoluteTimeout
        self.ip = ip
        self.userAgent = userAgent
    }
}

/// Where to continue a listing: the last session of the previous page.
public struct SessionListCursor: Sendable, Equatable {
    public var createdAt: Int64
    public var handle: SessionHandle

    public init(createdAt: Int64, handle: SessionHandle) {
        self.createdAt = createdAt
        self.handle = handle
    }

    /// `<created ms>.<handle>`: opaque to clients, strictly parsed.
    public var encoded: String { "\(createdAt).\(handle.encoded)" }

    public init?(parsing text: some StringProtocol) {
        let parts = text.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 2, parts[0].count <= 15, !parts[0].isEmpty, parts[0].utf8.allSatisfy({ (48...57).contains($0) }),
              let createdAt = Int64(parts[0]), let handle = SessionHandle(parsing: parts[1])
        else { return nil }
        self.init(createdAt: createdAt, handle: handle)
    }
}

public struct SessionPage: Sendable {
    public var sessions: [Session]
    public var total: Int
    public var nextCursor: SessionListCursor?
}

public enum DataUpdateResult: Sendable {
    case updated(Session)
    case noSession
    case versionMismatch(current: Int)
    case dataTooLarge(bytes: Int)
}

/// Sessions in Redis. Every operation that touches more than one key is one script call with
/// every key in KEYS, all under the user's hash tag, so a crash at any instant leaves sessions
/// and user indexes consistent, on one server and on a cluster alike (docs/redis-layout.md).
///
/// A swift-service-lifecycle `Service`: `run()` keeps the Redis clock estimate fresh and retries
/// the touches whose quick script call failed, as child tasks of the service group.
public final class SessionStore: Service, Sendable {
    public let policy: SessionPolicy
    private let redis: any RedisDeployment
    private let metrics: SessionStoreMetrics
    private let scripts = SessionScripts()
    private let clock: RedisClock
    private let routing: RoutingKeyStore
    /// Force-logout revokes up to this many sessions (one more when the kept one is among them)
    /// per script call, keeping each call short.
    private let forceLogoutChunk = 500
    /// List checks this many session keys per multi-key EXISTS.
    private let existsBatch = 500
    /// Concurrent unconditional patches retry their compare-and-set this often before giving up.
    private let patchAttempts = 100
    /// A capped create retries this often when other creates keep changing the user's index.
    private let cappedCreateAttempts = 20

    /// Touches to retry through the routed script call (keys of the `lookup` script). Bounded:
    /// while Redis is away, the oldest are dropped and the next due lookup touches again.
    private let slideRetries = AsyncStream<[RedisArgument]>.makeStream(bufferingPolicy: .bufferingNewest(1024))

    public init(redis: any RedisDeployment, policy: SessionPolicy, metrics: SessionStoreMetrics = .none) {
        self.redis = redis
        self.policy = policy
        self.metrics = metrics
        self.clock = RedisClock(redis: redis, routingKey: RedisArgument(policy.keyPrefix + "{clock}"))
        self.routing = RoutingKeyStore(redis: redis, key: RedisArgument(policy.keyPrefix + "{routing}key"), script: scripts.routingKey)
    }

    public func run() async throws {
        await cancelWhenGracefulShutdown {
            await withDiscardingTaskGroup { group in
                group.addTask { await self.clock.run() }
                for await keys in self.slideRetries.stream {
                    group.addTask {
                        _ = try? await self.redis.evaluate(self.scripts.lookup, keys: keys, arguments: [], replicated: false)
                        self.redis.forgetNear([keys[0]])
                    }
                }
            }
        }
    }

    // MARK: keys

    /// `{prefix}{TAG}rest`: the handle with its tag as the hash tag (27 bytes with the default prefix).
    private func sessionKey(_ handle: SessionHandle) -> RedisArgument {
        sessionKey(tagText: handle.tagText, member: handle.rest)
    }

    private func sessionKey(tagText: some StringProtocol, member: some StringProtocol) -> RedisArgument {
        RedisArgument(policy.keyPrefix + "{" + tagText + "}" + member)
    }

    /// What the session keys of one tag start with: `{prefix}{TAG}`, to which a member is appended.
    private func sessionKeyPrefix(tagText: some StringProtocol) -> [UInt8] {
        var prefix = Array(policy.keyPrefix.utf8)
        prefix.append(UInt8(ascii: "{"))
        prefix.append(contentsOf: tagText.utf8)
        prefix.append(UInt8(ascii: "}"))
        return prefix
    }

    /// The session keys of index members, built as bytes: a force-logout chunk builds 500, and
    /// String concatenation was a fifth of a listing's time when it built them that way.
    private func sessionKeys(tagText: some StringProtocol, members: some Collection<String>) -> [RedisArgument] {
        let prefix = sessionKeyPrefix(tagText: tagText)
        return members.map { member in
            var key = [UInt8]()
            key.reserveCapacity(prefix.count + member.utf8.count)
            key.append(contentsOf: prefix)
            key.append(contentsOf: member.utf8)
            return RedisArgument(key)
        }
    }

    /// `{prefix}{TAG}u:user`: the user's index, in the same slot as the user's sessions.
    private func indexKey(tagText: some StringProtocol, userID: String) -> RedisArgument {
        RedisArgument(policy.keyPrefix + "{" + tagText + "}u:" + userID)
    }

    private func userTag(_ userID: String) async throws -> RoutingTag {
        try await routing.key().tag(forUser: userID)
    }

    // MARK: create

    public struct Created: Sendable {
        public var token: SessionToken
        public var session: Session
        /// Handles of older sessions revoked to respect the per-user cap.
        public var revoked: [String]
    }

    public func create(_ request: NewSession) async throws -> Created {
        let tail = SessionRecord.tail(userID: request.userID, ip: request.ip, userAgent: request.userAgent, data: request.data)
        let tag = try await userTag(request.userID)
        let index = indexKey(tagText: tag.text, userID: request.userID)
        let capped = policy.maxSessionsPerUser > 0
        // A handle collision is astronomically unlikely, but a fresh token costs nothing; a capped
        // create reads the index again when another write changed it meanwhile.
        for _ in 0..<(capped ? cappedCreateAttempts : 3) {
            let token = SessionToken.generate(tag: tag)
            let handle = token.handle
            var keys = [sessionKey(handle), index]
            var arguments = [
                RedisArgument(String(handle.rest)),
                RedisArgument(request.idleTimeout ?? policy.idleTimeout),
                RedisArgument(request.absoluteTimeout ?? policy.absoluteTimeout),
                RedisArgument(tail), RedisArgument(policy.maxSessionsPerUser),
            ]
            if capped {
                let members = try await indexMembers(index, "0", "-1")
                keys += sessionKeys(tagText: tag.text, members: members)
                arguments += members.map { RedisArgument($0) }
            }
            let reply: RESPValue
            do {
                reply = try await redis.evaluate(scripts.create, keys: keys, arguments: arguments, replicated: false)
            } catch let error as RedisClientError where SessionScriptRefusal(error) != nil {
                continue
            }
            guard let parts = reply.array, parts.count == 2, let record = parts[0].bytes, let revoked = parts[1].array else {
                throw SessionStoreError.unexpectedReply("create: unexpected reply shape")
            }
            metrics.created.increment()
            metrics.record(.cap, count: revoked.count)
            if !revoked.isEmpty {
                redis.forgetNear(sessionKeys(tagText: tag.text, members: revoked.compactMap(\.string)))
            }
            // Evicting sessions over the cap is a revocation: it must survive a failover.
            if !revoked.isEmpty { try await confirmReplicated(tagText: tag.text) }
            return Created(
                token: token,
                session: try SessionRecord.decode(record, handle: handle),
                revoked: revoked.compactMap { $0.string.map { tag.text + $0 } }
            )
        }
        throw capped ? SessionStoreError.tooMuchContention : SessionStoreError.unexpectedReply("create: three handle collisions in a row")
    }

    private func indexMembers(_ index: RedisArgument, _ arguments: RedisArgument...) async throws -> [String] {
        let reply = try await redis.send(RedisCommand("ZRANGE", [index] + arguments), routingKey: index)
        guard let members = reply.array else { throw SessionStoreError.unexpectedReply("ZRANGE: unexpected reply shape") }
        return members.compactMap(\.string)
    }

    // MARK: read

    /// The session of `token`, sliding its idle expiry when `touch` is set and a touch is due;
    /// nil when the session does not exist, expired or was revoked. The one lookup, answered on
    /// `eventLoop`: from the near cache, or one `GET` on a connection of that loop, with no task
    /// and no thread change. Only a failed read (Redis away, a cluster redirect, a lost link)
    /// goes to the routed `GET` in a task, with its retries and redirects; its error is the answer.
    ///
    /// A due touch does not hold the answer: the session is answered as read (as stored at that
    /// instant, like every lookup between touches), and the `lookup` script slides it right
    /// after. Waiting for it doubled the latency of the lookups that touch.
    public func lookup(_ token: SessionToken, touch: Bool, on eventLoop: any EventLoop) -> EventLoopFuture<Session?> {
        let handle = token.handle
        let key = sessionKey(handle)
        let answer = eventLoop.makePromise(of: Session?.self)
        redis.nearGet(key, on: eventLoop).whenComplete { result in
            switch result {
            case .success(let read):
                do {
                    try self.answer(read, token, touch: touch, key: key, on: eventLoop, into: answer)
                } catch {
                    answer.fail(error)
                }
            case .failure:
                self.readRouted(token, touch: touch, key: key, on: eventLoop, into: answer)
            }
        }
        return answer.futureResult
    }

    /// Near a cached record's end, Redis decides: the clock estimate's error (see `RedisClock`)
    /// must not answer a session Redis has already ended.
    static let expiryMargin: Int64 = 1000

    /// The lookup's read through the routed `GET` (retries, redirects), in a task.
    private func readRouted(_ token: SessionToken, touch: Bool, key: RedisArgument, on eventLoop: any EventLoop, into answer: EventLoopPromise<Session?>) {
        answer.completeWithTask {
            let reply = try await self.redis.send(RedisCommand("GET", key), routingKey: key)
            return self.touchIfDue(try self.session(from: reply, handle: token.handle), token, touch: touch, key: key, on: eventLoop)
        }
    }

    private func answer(
        _ read: NearRead, _ token: SessionToken, touch: Bool, key: RedisArgument, on eventLoop: any EventLoop,
        into answer: EventLoopPromise<Session?>
    ) throws {
        guard let session = try session(from: read.reply, handle: token.handle) else {
            answer.succeed(nil)
            return
        }
        // Expiry is enforced from the record, never trusted to an invalidation. Near its end,
        // or before Redis's time is known (the first instants after start), Redis decides.
        if read.cached {
            guard let now = clock.now(), session.endsAt - now > Self.expiryMargin else {
                readRouted(token, touch: touch, key: key, on: eventLoop, into: answer)
                return
            }
        }
        answer.succeed(touchIfDue(session, token, touch: touch, key: key, on: eventLoop))
    }

    /// `lookup(_:touch:on:)` from a task.
    public func lookup(_ token: SessionToken, touch: Bool) async throws -> Session? {
        let eventLoop = MultiThreadedEventLoopGroup.currentEventLoop ?? MultiThreadedEventLoopGroup.singleton.any()
        return try await lookup(token, touch: touch, on: eventLoop).get()
    }

    private func touchIfDue(_ session: Session?, _ token: SessionToken, touch: Bool, key: RedisArgument, on eventLoop: any EventLoop) -> Session? {
        if let session, touch, dueForTouch(session) { slide(token, key: key, userID: session.userID, on: eventLoop) }
        return session
    }

    /// Runs the `lookup` script for a session due for a touch, without waiting for it. When the
    /// quick script call fails (script not loaded yet, a redirect, a lost connection), `run()`
    /// tries again through the routed call, with its loading, retries and redirects; if that fails too, the
    /// slide is lost and the next due lookup makes it (failures show in
    /// `sessiond_redis_command_failures_total`). The written record leaves this process's near
    /// cache; Redis invalidates the other processes' copies.
    private func slide(_ token: SessionToken, key: RedisArgument, userID: String, on eventLoop: any EventLoop) {
        let keys = [key, indexKey(tagText: token.handle.tagText, userID: userID)]
        redis.evaluate(scripts.lookup, keys: keys, arguments: [], on: eventLoop).whenComplete { result in
            switch result {
            case .success:
                self.redis.forgetNear([key])
            case .failure(let error as RedisClientError) where error.isOutOfMemory:
                // Redis at maxmemory refuses the touch's write; the next due lookup tries again.
                return
            case .failure:
                self.slideRetries.continuation.yield(keys)
            }
        }
    }

    /// The lookup script's rule: slide when the last touch is a tenth of the idle timeout old
    /// (at most 60 s) and sliding would move the end. Unknown Redis time: ask the script.
    private func dueForTouch(_ session: Session) -> Bool {
        guard let now = clock.now() else { return true }
        let step = min(60000, Int64(session.idleTimeout) * 100)
        let slidEnd = min(now + Int64(session.idleTimeout) * 1000, session.expiresAt)
        return now - session.lastSeenAt >= step && slidEnd > session.endsAt
    }

    /// An admin read by handle; never slides the expiry.
    public func session(handle: SessionHandle) async throws -> Session? {
        let key = sessionKey(handle)
        return try session(from: try await redis.send(RedisCommand("GET", key), routingKey: key), handle: handle)
    }

    private func session(from reply: RESPValue, handle: SessionHandle) throws -> Session? {
        if reply.isNull { return nil }
        guard let record = reply.bytes else { throw SessionStoreError.unexpectedReply("record: unexpected reply shape") }
        return try SessionRecord.decode(record, handle: handle)
    }

    // MARK: update

    /// Applies `patch` (RFC 7396) to the session's data. With `ifMatch`, only if the version is
    /// still that one; without, the compare-and-set is retried until no concurrent write slips in,
    /// so no write is ever lost.
    public func updateData(_ token: SessionToken, ifMatch: Int?, patch: JSONValue) async throws -> DataUpdateResult {
        let handle = token.handle
        guard var current = try await session(handle: handle) else { return .noSession }
        let keys = [sessionKey(handle), indexKey(tagText: handle.tagText, userID: current.userID)]
        defer { redis.forgetNear([keys[0]]) }
        for _ in 0..<patchAttempts {
            if let ifMatch, ifMatch != current.version { return .versionMismatch(current: current.version) }
            let existing: JSONValue
            do {
                existing = current.data.isEmpty ? .object([:]) : try JSONValue.parse(current.data)
            } catch {
                throw SessionStoreError.corruptRecord(handle)
            }
            let merged = existing.merged(with: patch)
            var data = merged.serialized()
            if data == Array("{}".utf8) { data = [] }
            if data.count > policy.maxDataBytes { return .dataTooLarge(bytes: data.count) }
            let reply = try await redis.evaluate(
                scripts.replaceData, keys: keys, arguments: [RedisArgument(current.version), RedisArgument(data)], replicated: false
            )
            if reply.isNull { return .noSession }
            guard let parts = reply.array, parts.count == 2, let applied = parts[0].integer, let record = parts[1].bytes else {
                throw SessionStoreError.unexpectedReply("replace_data: unexpected reply shape")
            }
            let session = try SessionRecord.decode(record, handle: handle)
            if applied == 1 { return .updated(session) }
            current = session
        }
        throw SessionStoreError.tooMuchContention
    }

    // MARK: revoke and rotate

    /// A logout.
    public func revoke(_ token: SessionToken) async throws -> Bool {
        try await revoke(handle: token.handle, reason: .logout)
    }

    /// An admin's revocation of one session.
    public func revoke(handle: SessionHandle) async throws -> Bool {
        try await revoke(handle: handle, reason: .admin)
    }

    /// Revokes by handle. The record is read first for its user id, which names the index.
    /// Confirmed only once a replica has it, when there are replicas (SPEC §5.8).
    private func revoke(handle: SessionHandle, reason: RevocationReason) async throws -> Bool {
        // Dropped from this process's near cache whatever the outcome, even a 503 after the
        // script ran (an unconfirmed replica) and the retry that finds the record gone.
        defer { redis.forgetNear([sessionKey(handle)]) }
        guard let current = try await session(handle: handle) else {
            // Perhaps an earlier attempt deleted it and then answered 503: confirm before a 2xx.
            try await confirmReplicated(tagText: handle.tagText)
            return false
        }
        let reply = try await redis.evaluate(
            scripts.revoke,
            keys: [sessionKey(handle), indexKey(tagText: handle.tagText, userID: current.userID)],
            arguments: [RedisArgument(String(handle.rest)), RedisArgument(current.userID), RedisArgument(reason.rawValue)],
            replicated: true
        )
        let revoked = reply.integer == 1
        if revoked { metrics.record(reason) }
        return revoked
    }

    /// Waits until a replica has every write made so far on the slot of `tagText` (SPEC §5.8),
    /// through a fence write confirmed by `WAIT`; a no-op without replicas.
    private func confirmReplicated(tagText: some StringProtocol) async throws {
        _ = try await redis.evaluate(
            scripts.fence, keys: [RedisArgument(policy.keyPrefix + "{" + tagText + "}fence")], arguments: [], replicated: true
        )
    }

    /// Replaces the token; the old one stops working in the same atomic step. The new token
    /// keeps the old one's routing tag, so the session stays in its user's slot.
    public func rotate(_ token: SessionToken) async throws -> (token: SessionToken, session: Session)? {
        let old = token.handle
        defer { redis.forgetNear([sessionKey(old)]) }
        guard let current = try await session(handle: old) else { return nil }
        for _ in 0..<3 {
            let fresh = SessionToken.generate(tag: token.tag)
            let reply: RESPValue
            do {
                reply = try await redis.evaluate(
                    scripts.rotate,
                    keys: [sessionKey(old), sessionKey(fresh.handle), indexKey(tagText: old.tagText, userID: current.userID)],
                    arguments: [RedisArgument(String(old.rest)), RedisArgument(String(fresh.handle.rest)), RedisArgument(current.userID)],
                    replicated: true
                )
            } catch let error as RedisClientError where SessionScriptRefusal(error) == .collision {
                continue
            }
            guard let session = try session(from: reply, handle: fresh.handle) else { return nil }
            metrics.record(.rotate)
            return (fresh, session)
        }
        throw SessionStoreError.unexpectedReply("rotate: three handle collisions in a row")
    }

    // MARK: per-user index

    /// One page of the user's live sessions, newest first (created, then handle, descending).
    /// A read: the index and liveness are read with plain commands, and index entries whose
    /// session has ended are dropped (`ZREM`; an ended handle never comes back), so no ended
    /// session is listed or counted. `total` counts the index as it was read: a session created
    /// or revoked while the call runs may be listed and not counted, or counted and not listed.
    public func list(userID: String, limit: Int, after cursor: SessionListCursor?) async throws -> SessionPage {
        let tag = try await userTag(userID)
        let index = indexKey(tagText: tag.text, userID: userID)
        // Members only: with WITHSCORES Redis formats every score as a double, which cost 5 ms of
        // the 6.5 ms that ZRANGE took for 10,000 members. The page finds its place by score below.
        let keyPrefix = sessionKeyPrefix(tagText: tag.text)
        let members = try await indexMembers(index, "0", "-1")
        let dead = try await endedMembers(members, keyPrefix: keyPrefix, index: index)
        try await dropEnded(dead, from: index)
        // Read the page's records; a session that ended since the check is skipped, not counted,
        // dropped from the index like the others, and the page is filled from the members after it.
        var vanished = Set<String>()
        var sessions = [Session]()
        var after = cursor.map { (createdAt: $0.createdAt, member: String($0.handle.rest)) }
        var more = false
        while sessions.count < limit {
            let wanted = limit - sessions.count
            // The members dropped above are gone from the index; those read again here may include
            // the vanished ones. One more than the page can then use says whether a next page exists.
            let fetched = wanted + vanished.count + 1
            let candidates = try await membersNewestFirst(index, after: after, count: fetched)
            let live = candidates.filter { !vanished.contains($0) }
            let batch = live.prefix(wanted)
            more = live.count > batch.count
            if batch.isEmpty { break }
            let records = try await redis.send(
                RedisCommand("MGET", prefix: keyPrefix, suffixes: batch), routingKey: index
            )
            guard let values = records.array, values.count == batch.count else { throw SessionStoreError.unexpectedReply("MGET: unexpected reply shape") }
            for (member, value) in zip(batch, values) {
                guard let record = value.bytes else {
                    vanished.insert(member)
                    continue
                }
                guard let handle = SessionHandle(tag: tag, rest: member) else { throw SessionStoreError.unexpectedReply("index member") }
                let session = try SessionRecord.decode(record, handle: handle)
                sessions.append(session)
                after = (session.createdAt, member)
            }
            if candidates.count < fetched && !more { break }
        }
        try await dropEnded(vanished, from: index)
        var total = members.count - dead.count
        if !vanished.isEmpty { total -= Set(members).intersection(vanished).count }
        let next = (more && !sessions.isEmpty)
            ? SessionListCursor(createdAt: sessions[sessions.count - 1].createdAt, handle: sessions[sessions.count - 1].handle)
            : nil
        return SessionPage(sessions: sessions, total: total, nextCursor: next)
    }

    /// Removes the index entries of sessions found ended and counts them as expired: a revoked
    /// session's entry is removed with it, so an entry that outlives its session has expired.
    /// Counted once: a concurrent listing that removed the same entries gets 0 from `ZREM`.
    private func dropEnded(_ ended: Set<String>, from index: RedisArgument) async throws {
        if ended.isEmpty { return }
        let removed = try await redis.send(RedisCommand("ZREM", [index] + ended.map { RedisArgument($0) }), routingKey: index)
        metrics.expiredFound.increment(by: removed.integer.map(Int.init) ?? 0)
    }

    /// Up to `count` index members in page order (newest first, ties by member descending) that
    /// come after `after`. Found by score rather than by position, so members added or removed
    /// meanwhile cannot shift the page: the members created in the same millisecond as `after`,
    /// then the older ones.
    private func membersNewestFirst(_ index: RedisArgument, after: (createdAt: Int64, member: String)?, count: Int) async throws -> [String] {
        guard let after else {
            return try await indexMembers(index, "0", RedisArgument(count - 1), "REV")
        }
        let score = RedisArgument(after.createdAt)
        async let sameMillisecond = indexMembers(index, score, score, "BYSCORE")
        async let older = indexMembers(index, RedisArgument("(\(after.createdAt)"), "-inf", "BYSCORE", "REV", "LIMIT", "0", RedisArgument(count))
        let ties = try await sameMillisecond.filter { $0.utf8.lexicographicallyPrecedes(after.member.utf8) }
        return Array((ties.reversed() + (try await older)).prefix(count))
    }

    /// Members whose session key no longer exists: one multi-key EXISTS per batch (all sent at
    /// once, pipelined), and only a batch that comes up short is looked into.
    private func endedMembers(_ members: [String], keyPrefix: [UInt8], index: RedisArgument) async throws -> Set<String> {
        try await withThrowingTaskGroup(of: [String].self) { group in
            for start in stride(from: 0, to: members.count, by: existsBatch) {
                let batch = members[start..<min(start + existsBatch, members.count)]
                group.addTask { try await self.ended(batch, keyPrefix: keyPrefix, index: index) }
            }
            var dead = Set<String>()
            for try await batch in group { dead.formUnion(batch) }
            return dead
        }
    }

    /// The members of `batch` whose session key no longer exists, by halving: a batch that comes
    /// up short is split and both halves are counted again, concurrently, so k ended sessions
    /// among n cost about 2k·log₂(n) small EXISTS in log₂(n) rounds, not n round trips.
    private func ended(_ batch: ArraySlice<String>, keyPrefix: [UInt8], index: RedisArgument) async throws -> [String] {
        let reply = try await redis.send(RedisCommand("EXISTS", prefix: keyPrefix, suffixes: batch), routingKey: index)
        guard let live = reply.integer else { throw SessionStoreError.unexpectedReply("EXISTS") }
        if live == batch.count { return [] }
        if live == 0 { return Array(batch) }
        let middle = batch.startIndex + batch.count / 2
        async let lower = ended(batch[..<middle], keyPrefix: keyPrefix, index: index)
        let upper = try await ended(batch[middle...], keyPrefix: keyPrefix, index: index)
        return try await lower + upper
    }

    /// Revokes every session of the user that existed when this call began (all but `except`).
    /// The bound is the Redis time at the start; chunks of index members up to it are revoked,
    /// each chunk one atomic script with every key in KEYS, confirmed by a replica when there is
    /// one (SPEC §5.8). Returns how many live sessions were revoked.
    public func forceLogout(userID: String, except: SessionHandle?) async throws -> Int {
        let tag = try await userTag(userID)
        let index = indexKey(tagText: tag.text, userID: userID)
        let keep = except.flatMap { $0.tagText == tag.text ? String($0.rest) : nil }
        let boundReply = try await redis.evaluate(scripts.clock, keys: [index], arguments: [], replicated: false)
        guard let parts = boundReply.array, parts.count == 2, let bound = parts[0].string.flatMap({ Int64($0) }),
              let initial = parts[1].integer
        else { throw SessionStoreError.unexpectedReply("clock: unexpected reply shape") }
        // Each round removes every member it read, so the rounds needed are bounded by the
        // initial size; a writer that keeps adding members at or below the bound (rotating in a
        // loop) cannot keep this going for ever.
        let maxRounds = Int(initial) / forceLogoutChunk * 2 + 10
        var revoked = 0
        for round in 0..<maxRounds {
            let members = try await indexMembers(index, "-inf", RedisArgument(bound), "BYSCORE", "LIMIT", "0", RedisArgument(forceLogoutChunk + 1))
                .filter { $0 != keep }
            if members.isEmpty {
                if round == 0 { try await confirmReplicated(tagText: tag.text) }
                return revoked
            }
            let memberKeys = sessionKeys(tagText: tag.text, members: members)
            defer { redis.forgetNear(memberKeys) }
            let reply = try await redis.evaluate(
                scripts.revokeMembers, keys: [index] + memberKeys, arguments: members.map { RedisArgument($0) }, replicated: true
            )
            guard let count = reply.integer else { throw SessionStoreError.unexpectedReply("revoke_members: unexpected reply shape") }
            revoked += Int(count)
            metrics.record(.forceLogout, count: Int(count))
        }
        throw SessionStoreError.tooMuchContention
    }
}
