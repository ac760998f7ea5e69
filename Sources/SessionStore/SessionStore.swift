import NIOCore
import NIOPosix
import ServiceLifecycle
import RedisClient
import SessionCrypto
import Synchronization

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

/// Where to continue a listing: the last session of the previous page, by its place in the
/// user index (the second it ends, then its index member).
public struct SessionListCursor: Sendable, Equatable {
    public var endSecond: Int64
    public var handle: SessionHandle

    public init(endSecond: Int64, handle: SessionHandle) {
        self.endSecond = endSecond
        self.handle = handle
    }

    /// `<end second>.<handle>`: opaque to clients, strictly parsed.
    public var encoded: String { "\(endSecond).\(handle.encoded)" }

    public init?(parsing text: some StringProtocol) {
        let parts = text.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 2, parts[0].count <= 12, !parts[0].isEmpty, parts[0].utf8.allSatisfy({ (48...57).contains($0) }),
              let endSecond = Int64(parts[0]), let handle = SessionHandle(parsing: parts[1])
        else { return nil }
        self.init(endSecond: endSecond, handle: handle)
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
/// every key in KEYS, all under the user's hash tag (touches due together on one server share a
/// call across users), so a crash at any instant leaves sessions and user indexes consistent, on
/// one server and on a cluster alike (docs/redis-layout.md).
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
    /// Concurrent unconditional patches retry their compare-and-set this often before giving up.
    private let patchAttempts = 100
    /// A capped create retries this often when other creates keep changing the user's index.
    private let cappedCreateAttempts = 20

    /// Batches of touches to retry through the routed script call. Bounded: while Redis is away,
    /// the oldest are dropped and the next due lookup touches again.
    private let touchRetries = AsyncStream<TouchRetry>.makeStream(bufferingPolicy: .bufferingNewest(1024))

    /// Touches whose quick call failed, or that `touch_batch` answered `LEGACY`: their users'
    /// format-1 indexes are moved before they are sent again.
    private struct TouchRetry: Sendable {
        var touches: [Touch]
        var legacy: Bool
    }

    /// One session's touch: the keys (the session's, its user's index and format-1 index) and
    /// the index member `touch_batch` takes for it.
    private struct Touch: Sendable {
        var keys: [RedisArgument]
        var member: RedisArgument
        var tag: RoutingTag
        var userID: String
    }

    /// The touches of one hash slot (of all slots when one server holds every key) waiting for
    /// their call; `id` tells the batch's timer that the batch is still the one it was set for.
    private struct TouchBatch {
        var touches: [Touch]
        let id: UInt64
    }

    private let pendingTouches = Mutex<(batches: [Int: TouchBatch], lastID: UInt64)>(([:], 0))
    /// How long the first touch of a batch waits for others. A due touch does not hold its
    /// answer, and a session near its end (`touchBatchMargin`) is touched at once.
    static let touchBatchWindow = TimeAmount.milliseconds(10)
    /// A session due for a touch that ends within this many milliseconds is touched at once:
    /// waiting for a batch could let it end first.
    static let touchBatchMargin: Int64 = 1000
    /// Touches per call at the most: a batch that reaches it is sent at once.
    static let touchBatchLimit = 64

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
                for await retry in self.touchRetries.stream {
                    group.addTask { await self.retryTouches(retry) }
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
        taggedKey(tagText, "", member)
    }

    /// `{prefix}{TAG}i:user`: the user's index, in the same slot as the user's sessions. Its
    /// members are `SessionHandle.indexMember`, scored by the second the session ends.
    private func indexKey(tagText: some StringProtocol, userID: String) -> RedisArgument {
        taggedKey(tagText, "i:", userID)
    }

    /// `{prefix}{TAG}u:user`: the index as format 1 kept it (members are a handle's text after the
    /// tag, scored by creation). Read only to move it into the index (`migrateLegacyIndex`).
    private func legacyIndexKey(tagText: some StringProtocol, userID: String) -> RedisArgument {
        taggedKey(tagText, "u:", userID)
    }

    /// `{prefix}{TAG}kindname`, written as bytes: joined as a String first, each key cost a second
    /// allocation, on every lookup.
    private func taggedKey(_ tagText: some StringProtocol, _ kind: StaticString, _ name: some StringProtocol) -> RedisArgument {
        var key = [UInt8]()
        key.reserveCapacity(policy.keyPrefix.utf8.count + tagText.utf8.count + kind.utf8CodeUnitCount + name.utf8.count + 2)
        key += policy.keyPrefix.utf8
        key.append(UInt8(ascii: "{"))
        key += tagText.utf8
        key.append(UInt8(ascii: "}"))
        key += UnsafeBufferPointer(start: kind.utf8Start, count: kind.utf8CodeUnitCount)
        key += name.utf8
        return RedisArgument(key)
    }

    /// The index and the format-1 index, as every script that indexes a session is given them.
    private func indexKeys(tagText: some StringProtocol, userID: String) -> [RedisArgument] {
        [indexKey(tagText: tagText, userID: userID), legacyIndexKey(tagText: tagText, userID: userID)]
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

    /// One script call's worth of a create: a fresh token, and the keys and arguments of the
    /// create scripts (the capped one appends the index's members).
    private struct CreateCall {
        var token: SessionToken
        var keys: [RedisArgument]
        var arguments: [RedisArgument]
    }

    private func createCall(_ request: NewSession, tag: RoutingTag) -> CreateCall {
        let token = SessionToken.generate(tag: tag)
        let handle = token.handle
        let stored = SessionRecord.stored(
            SessionRecord.tail(ip: request.ip, userAgent: request.userAgent, data: request.data),
            handle: handle, userID: request.userID, keys: policy.dataKeys
        )
        return CreateCall(
            token: token,
            keys: [sessionKey(handle), indexKey(tagText: tag.text, userID: request.userID)],
            arguments: [
                RedisArgument(handle.indexMember),
                RedisArgument(request.idleTimeout ?? policy.idleTimeout),
                RedisArgument(request.absoluteTimeout ?? policy.absoluteTimeout),
                RedisArgument(Int(stored.first)), RedisArgument(SessionRecord.userIDField(request.userID) + stored.bytes),
            ]
        )
    }

    /// The create scripts' reply `{record, {revoked handles}, ended members dropped}`, counted.
    private func created(_ call: CreateCall, reply: RESPValue) throws -> Created {
        guard let parts = reply.array, parts.count == 3, let record = parts[0].bytes, let revoked = parts[1].array,
              let ended = parts[2].integer
        else { throw SessionStoreError.unexpectedReply("create: unexpected reply shape") }
        let revokedHandles = revoked.compactMap(\.string)
        metrics.created.increment()
        if ended > 0 { metrics.expiredFound.increment(by: Int(ended)) }
        metrics.record(.cap, count: revokedHandles.count)
        return Created(
            token: call.token, session: try SessionRecord.decode(record, handle: call.token.handle, keys: policy.dataKeys), revoked: revokedHandles
        )
    }

    /// A create as the byte fast path makes it: without a cap and once the routing key is known,
    /// its first attempt is one script call sent from and answered on `eventLoop`, with no task
    /// or future; `answer` runs once, on `eventLoop`. Anything else goes on through `create(_:)`
    /// in a task: the first creates (the routing key is read then), a cap, and an attempt Redis
    /// did not run (a refusal such as a handle collision, a script to load, a redirect, no
    /// connection on this loop). A failure after the call was sent is the answer: trying again
    /// could leave a second session.
    public func create(_ request: NewSession, on eventLoop: any EventLoop, answer: @escaping @Sendable (Result<Created, any Error>) -> Void) {
        guard policy.maxSessionsPerUser == 0, let routingKey = routing.known else {
            eventLoop.makeFutureWithTask { try await self.create(request) }.whenComplete(answer)
            return
        }
        let call = createCall(request, tag: routingKey.tag(forUser: request.userID))
        redis.evaluate(scripts.create, keys: call.keys, arguments: call.arguments, on: eventLoop) { result in
            switch result {
            case .success(let reply):
                answer(Result { try self.created(call, reply: reply) })
            case .failure(let error as RedisClientError) where error.code == .commandError || error.code == .unavailable:
                eventLoop.makeFutureWithTask { try await self.create(request) }.whenComplete(answer)
            case .failure(let error):
                answer(.failure(error))
            }
        }
    }

    public func create(_ request: NewSession) async throws -> Created {
        let tag = try await userTag(request.userID)
        let legacy = legacyIndexKey(tagText: tag.text, userID: request.userID)
        let capped = policy.maxSessionsPerUser > 0
        // A handle collision is astronomically unlikely, but a fresh token costs nothing; a capped
        // create reads the index again when another write changed it meanwhile, and a user's
        // format-1 index is moved before the next attempt.
        for _ in 0..<(capped ? cappedCreateAttempts : 3) {
            var call = createCall(request, tag: tag)
            if capped {
                call.keys.append(legacy)
                call.arguments.append(RedisArgument(policy.maxSessionsPerUser))
                let members = try await indexMembers(call.keys[1], "0", "-1")
                let handles = try self.handles(members, tag: tag)
                call.keys += handles.map(sessionKey)
                for (member, handle) in zip(members, handles) {
                    call.arguments += [RedisArgument(member), RedisArgument(handle.encoded)]
                }
            }
            let reply: RESPValue
            do {
                reply = try await redis.evaluate(capped ? scripts.createCapped : scripts.create, keys: call.keys, arguments: call.arguments, replicated: false)
            } catch let error as RedisClientError where SessionScriptRefusal(error) != nil {
                if SessionScriptRefusal(error) == .legacyIndex { try await migrateLegacyIndex(tag: tag, userID: request.userID) }
                continue
            }
            let created = try created(call, reply: reply)
            if !created.revoked.isEmpty {
                redis.forgetNear(created.revoked.compactMap(SessionHandle.init(parsing:)).map(sessionKey))
                // Evicting sessions over the cap is a revocation: it must survive a failover.
                try await confirmReplicated(tagText: tag.text)
            }
            return created
        }
        throw capped ? SessionStoreError.tooMuchContention : SessionStoreError.unexpectedReply("create: three handle collisions in a row")
    }

    private func indexMembers(_ index: RedisArgument, _ arguments: RedisArgument...) async throws -> [[UInt8]] {
        let reply = try await redis.send(RedisCommand("ZRANGE", [index] + arguments), routingKey: index)
        guard let members = reply.array else { throw SessionStoreError.unexpectedReply("ZRANGE: unexpected reply shape") }
        return members.compactMap(\.bytes)
    }

    private func handles(_ members: [[UInt8]], tag: RoutingTag) throws -> [SessionHandle] {
        try members.map { member in
            guard let handle = SessionHandle(tag: tag, member: member) else { throw SessionStoreError.unexpectedReply("index member") }
            return handle
        }
    }

    /// A script call that writes the user's index. A user whose format-1 index still exists
    /// (sessions made before the upgrade) has it moved first, then the call is made again.
    private func evaluateIndexing(
        _ script: RedisScript, keys: [RedisArgument], arguments: [RedisArgument], replicated: Bool, tag: RoutingTag, userID: String
    ) async throws -> RESPValue {
        do {
            return try await redis.evaluate(script, keys: keys, arguments: arguments, replicated: replicated)
        } catch let error as RedisClientError where SessionScriptRefusal(error) == .legacyIndex {
            try await migrateLegacyIndex(tag: tag, userID: userID)
            return try await redis.evaluate(script, keys: keys, arguments: arguments, replicated: replicated)
        }
    }

    // MARK: read

    /// The session of `token`, sliding its idle expiry when `touch` is set and a touch is due;
    /// nil when the session does not exist, expired or was revoked. The one lookup, answered on
    /// `eventLoop`: from the near cache, or one `GET` on a connection of that loop, with no task
    /// and no thread change. Only a failed read (Redis away, a cluster redirect, a lost link)
    /// goes to the routed `GET` in a task, with its retries and redirects; its error is the answer.
    ///
    /// A due touch does not hold the answer: the session is answered as read (as stored at that
    /// instant, like every lookup between touches), and slid afterwards (`slide`). Waiting for
    /// it doubled the latency of the lookups that touch.
    ///
    /// `answer` is called once, on `eventLoop`: the byte fast path calls this form, with no future
    /// of its own.
    public func lookup(_ token: SessionToken, touch: Bool, on eventLoop: any EventLoop, answer: @escaping @Sendable (Result<Session?, any Error>) -> Void) {
        let key = sessionKey(token.handle)
        redis.nearGet(key, on: eventLoop) { result in
            switch result {
            case .success(let read):
                do {
                    try self.answer(read, token, touch: touch, key: key, on: eventLoop, answer: answer)
                } catch {
                    answer(.failure(error))
                }
            case .failure:
                self.readRouted(token, touch: touch, key: key, on: eventLoop, answer: answer)
            }
        }
    }

    /// `lookup(_:touch:on:answer:)` as a future, completed on `eventLoop`.
    public func lookup(_ token: SessionToken, touch: Bool, on eventLoop: any EventLoop) -> EventLoopFuture<Session?> {
        let promise = eventLoop.makePromise(of: Session?.self)
        lookup(token, touch: touch, on: eventLoop, answer: promise.completeWith)
        return promise.futureResult
    }

    /// Near a cached record's end, Redis decides: the clock estimate's error (see `RedisClock`)
    /// must not answer a session Redis has already ended.
    static let expiryMargin: Int64 = 1000

    /// The lookup's read through the routed `GET` (retries, redirects), in a task.
    private func readRouted(
        _ token: SessionToken, touch: Bool, key: RedisArgument, on eventLoop: any EventLoop,
        answer: @escaping @Sendable (Result<Session?, any Error>) -> Void
    ) {
        eventLoop.makeFutureWithTask {
            let reply = try await self.redis.send(RedisCommand("GET", key), routingKey: key)
            return self.touchIfDue(try self.session(from: reply, handle: token.handle), token, touch: touch, key: key, on: eventLoop)
        }.whenComplete(answer)
    }

    private func answer(
        _ read: NearRead, _ token: SessionToken, touch: Bool, key: RedisArgument, on eventLoop: any EventLoop,
        answer: @escaping @Sendable (Result<Session?, any Error>) -> Void
    ) throws {
        guard let session = try session(from: read.reply, handle: token.handle) else {
            answer(.success(nil))
            return
        }
        // Expiry is enforced from the record, never trusted to an invalidation. Near its end,
        // or before Redis's time is known (the first instants after start), Redis decides.
        if read.cached {
            guard let now = clock.now(), session.endsAt - now > Self.expiryMargin else {
                readRouted(token, touch: touch, key: key, on: eventLoop, answer: answer)
                return
            }
        }
        answer(.success(touchIfDue(session, token, touch: touch, key: key, on: eventLoop)))
    }

    /// `lookup(_:touch:on:)` from a task.
    public func lookup(_ token: SessionToken, touch: Bool) async throws -> Session? {
        let eventLoop = MultiThreadedEventLoopGroup.currentEventLoop ?? MultiThreadedEventLoopGroup.singleton.any()
        return try await lookup(token, touch: touch, on: eventLoop).get()
    }

    private func touchIfDue(_ session: Session?, _ token: SessionToken, touch: Bool, key: RedisArgument, on eventLoop: any EventLoop) -> Session? {
        if let session, touch, dueForTouch(session) { slide(token, key: key, session: session, on: eventLoop) }
        return session
    }

    /// Touches a session due for one, without waiting for it. The touches that come due within
    /// `touchBatchWindow` of the first go to Redis together, one `touch_batch` call per hash
    /// slot (one in all on a single server): Redis spends most of a touch entering a script
    /// (docs/performance.md). When the quick call fails (script not loaded yet, a redirect, a
    /// lost connection), `run()` tries again through the routed call (`retryTouches`); if that
    /// fails too, or the process stops first, or Redis refuses one session's touch alone (`ERR`:
    /// an index that is not a sorted set), the touch is lost and the next due lookup makes it
    /// (failed calls show in `sessiond_redis_command_failures_total`). The written records leave
    /// this process's near cache; Redis invalidates the other processes' copies.
    private func slide(_ token: SessionToken, key: RedisArgument, session: Session, on eventLoop: any EventLoop) {
        let touch = Touch(
            keys: [key] + indexKeys(tagText: token.handle.tagText, userID: session.userID),
            member: RedisArgument(token.handle.indexMember), tag: token.tag, userID: session.userID
        )
        guard let now = clock.now(), session.endsAt - now > Self.touchBatchMargin else {
            send([touch], on: eventLoop)
            return
        }
        let group = redis.keysMaySpanSlots ? 0 : HashSlot.of(key.bytes)
        let (full, newBatch) = pendingTouches.withLock { state -> ([Touch]?, UInt64?) in
            guard var batch = state.batches[group] else {
                state.lastID &+= 1
                state.batches[group] = TouchBatch(touches: [touch], id: state.lastID)
                return (nil, state.lastID)
            }
            // A session looked up again while its touch waits is touched once.
            guard !batch.touches.contains(where: { $0.keys[0].bytes == key.bytes }) else { return (nil, nil) }
            batch.touches.append(touch)
            guard batch.touches.count < Self.touchBatchLimit else {
                state.batches[group] = nil
                return (batch.touches, nil)
            }
            state.batches[group] = batch
            return (nil, nil)
        }
        if let full { send(full, on: eventLoop) }
        if let id = newBatch {
            eventLoop.scheduleTask(in: Self.touchBatchWindow) { self.sendTouches(group, id: id, on: eventLoop) }
        }
    }

    private func sendTouches(_ group: Int, id: UInt64, on eventLoop: any EventLoop) {
        let batch = pendingTouches.withLock { state -> [Touch]? in
            guard state.batches[group]?.id == id else { return nil }
            return state.batches.removeValue(forKey: group)?.touches
        }
        if let batch { send(batch, on: eventLoop) }
    }

    private func send(_ batch: [Touch], on eventLoop: any EventLoop) {
        redis.evaluate(scripts.touchBatch, keys: batch.flatMap(\.keys), arguments: batch.map(\.member), on: eventLoop) { result in
            switch result {
            case .success(let reply):
                self.redis.forgetNear(batch.map { $0.keys[0] })
                let legacy = Self.legacyTouches(batch, reply)
                if !legacy.isEmpty { self.touchRetries.continuation.yield(TouchRetry(touches: legacy, legacy: true)) }
            case .failure(let error as RedisClientError) where error.isOutOfMemory:
                // Redis at maxmemory refuses the touches' writes; the next due lookups try again.
                return
            case .failure:
                self.touchRetries.continuation.yield(TouchRetry(touches: batch, legacy: false))
            }
        }
    }

    /// The routed form of `send(_:on:)`, in a task of `run()`: the script loaded where needed,
    /// redirects followed. The sessions whose users still have a format-1 index (`LEGACY`) are
    /// touched again once the indexes are moved.
    private func retryTouches(_ retry: TouchRetry) async {
        defer { redis.forgetNear(retry.touches.map { $0.keys[0] }) }
        var touches = retry.touches
        var legacy = retry.legacy
        for attempt in 1...2 {
            if legacy {
                var moved = Set<String>()
                for touch in touches where moved.insert(touch.userID).inserted {
                    try? await migrateLegacyIndex(tag: touch.tag, userID: touch.userID)
                }
            }
            guard let reply = try? await redis.evaluate(
                scripts.touchBatch, keys: touches.flatMap(\.keys), arguments: touches.map(\.member), replicated: false
            ) else { return }
            touches = Self.legacyTouches(touches, reply)
            guard attempt == 1, !touches.isEmpty else { return }
            legacy = true
        }
    }

    /// The touches of `batch` that `touch_batch` answered `LEGACY`: their users' format-1
    /// indexes must move first.
    private static func legacyTouches(_ batch: [Touch], _ reply: RESPValue) -> [Touch] {
        zip(batch, reply.array ?? []).filter { $0.1.bytes == Array("LEGACY".utf8) }.map(\.0)
    }

    /// The `touch_batch` script's rule: slide when the last touch is a tenth of the idle timeout old
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
        return try SessionRecord.decode(record, handle: handle, keys: policy.dataKeys)
    }

    // MARK: update

    /// Applies `patch` (RFC 7396) to the session's data. With `ifMatch`, only if the version is
    /// still that one; without, the compare-and-set is retried until no concurrent write slips in,
    /// so no write is ever lost.
    public func updateData(_ token: SessionToken, ifMatch: Int?, patch: JSONValue) async throws -> DataUpdateResult {
        let handle = token.handle
        guard var current = try await session(handle: handle) else { return .noSession }
        let keys = [sessionKey(handle)] + indexKeys(tagText: handle.tagText, userID: current.userID)
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
            var updated = current
            updated.data = data
            let tail = SessionRecord.stored(updated, handle: handle, keys: policy.dataKeys)
            let reply = try await evaluateIndexing(
                scripts.replaceData, keys: keys,
                arguments: [RedisArgument(current.version), RedisArgument(tail.bytes), RedisArgument(handle.indexMember), RedisArgument(Int(tail.first))],
                // Replicated as a revocation is: a confirmed patch survives a failover, and is
                // confirmed only after Redis has queued its invalidation (docs/near-cache.md).
                replicated: true, tag: token.tag, userID: current.userID
            )
            if reply.isNull { return .noSession }
            guard let parts = reply.array, parts.count == 2, let applied = parts[0].integer, let record = parts[1].bytes else {
                throw SessionStoreError.unexpectedReply("replace_data: unexpected reply shape")
            }
            let session = try SessionRecord.decode(record, handle: handle, keys: policy.dataKeys)
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
        let key = sessionKey(handle)
        defer { redis.forgetNear([key]) }
        let read = try await redis.send(RedisCommand("GET", key), routingKey: key)
        guard let record = read.bytes else {
            // Perhaps an earlier attempt deleted it and then answered 503: confirm before a 2xx.
            try await confirmReplicated(tagText: handle.tagText)
            return false
        }
        // The user id alone: a session whose data key is gone can still be logged out.
        let userID = try SessionRecord.userID(of: record, handle: handle)
        let reply = try await redis.evaluate(
            scripts.revoke,
            keys: [key] + indexKeys(tagText: handle.tagText, userID: userID),
            arguments: [
                RedisArgument(handle.indexMember), RedisArgument(userID), RedisArgument(reason.rawValue),
                RedisArgument(handle.encoded), RedisArgument(String(handle.rest)),
            ],
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
    /// keeps the old one's routing tag, so the session stays in its user's slot. The record's
    /// tail is written anew for the new handle (sealed data is bound to its handle), under a
    /// compare-and-set of the version read.
    public func rotate(_ token: SessionToken) async throws -> (token: SessionToken, session: Session)? {
        let old = token.handle
        defer { redis.forgetNear([sessionKey(old)]) }
        for _ in 0..<patchAttempts {
            guard let current = try await session(handle: old) else { return nil }
            let fresh = SessionToken.generate(tag: token.tag)
            let tail = SessionRecord.stored(current, handle: fresh.handle, keys: policy.dataKeys)
            let reply: RESPValue
            do {
                reply = try await evaluateIndexing(
                    scripts.rotate,
                    keys: [sessionKey(old), sessionKey(fresh.handle)] + indexKeys(tagText: old.tagText, userID: current.userID),
                    arguments: [
                        RedisArgument(old.indexMember), RedisArgument(fresh.handle.indexMember), RedisArgument(current.userID),
                        RedisArgument(old.encoded), RedisArgument(current.version), RedisArgument(Int(tail.first)), RedisArgument(tail.bytes),
                    ],
                    replicated: true, tag: token.tag, userID: current.userID
                )
            } catch let error as RedisClientError where [.collision, .stale].contains(SessionScriptRefusal(error)) {
                // A new handle that exists, or a patch between the read and the script: again.
                continue
            }
            guard let session = try session(from: reply, handle: fresh.handle) else { return nil }
            metrics.record(.rotate)
            return (fresh, session)
        }
        throw SessionStoreError.tooMuchContention
    }

    // MARK: per-user index

    /// One page of the user's live sessions, most recently active first (the latest end first,
    /// then index member, descending), in O(log n + page): the index is scored by each session's
    /// end, so a page is a range of it and `total` is a count (`ZCOUNT`, plus a check of the few
    /// keys that end within the next second). Entries whose second has passed have ended; they
    /// are dropped (`ZREMRANGEBYSCORE`: an ended session never comes back) and never listed.
    /// `total` counts the index as first read: a session created or revoked while the call runs
    /// may be listed and not counted, or counted and not listed.
    public func list(userID: String, limit: Int, after cursor: SessionListCursor?) async throws -> SessionPage {
        let tag = try await userTag(userID)
        try await migrateLegacyIndexIfPresent(tag: tag, userID: userID)
        let index = indexKey(tagText: tag.text, userID: userID)
        var after = cursor.map { (score: $0.endSecond, member: $0.handle.indexMember) }
        var sessions = [Session]()
        var total: Int?
        var more = false
        // A session that ends between the page's read and its MGET is skipped, and the page is
        // filled from the entries after it.
        while sessions.count < limit {
            let wanted = limit - sessions.count
            let reply = try await redis.evaluate(
                scripts.listPage, keys: [index],
                arguments: [after.map { RedisArgument($0.score) } ?? RedisArgument(""), RedisArgument(after?.member ?? []), RedisArgument(wanted + 1)],
                replicated: false
            )
            guard let parts = reply.array, parts.count == 4, let second = parts[0].integer, let certain = parts[1].integer,
                  let edge = parts[2].array?.compactMap(\.bytes), let entries = parts[3].array, entries.count % 2 == 0
            else { throw SessionStoreError.unexpectedReply("list_page: unexpected reply shape") }
            if total == nil {
                async let edgeLive = liveCount(try handles(edge, tag: tag), index: index)
                try await dropEnded(from: index, upTo: second)
                total = Int(certain) + (try await edgeLive)
            }
            var candidates = [(member: [UInt8], score: Int64)]()
            for position in stride(from: 0, to: entries.count, by: 2) {
                guard let member = entries[position].bytes, let score = entries[position + 1].string.flatMap({ Int64($0) }) else {
                    throw SessionStoreError.unexpectedReply("list_page: unexpected entry")
                }
                candidates.append((member, score))
            }
            let batch = candidates.prefix(wanted)
            more = candidates.count > batch.count
            if batch.isEmpty { break }
            let batchHandles = try handles(batch.map(\.member), tag: tag)
            let records = try await redis.send(RedisCommand("MGET", batchHandles.map(sessionKey)), routingKey: index)
            guard let values = records.array, values.count == batch.count else { throw SessionStoreError.unexpectedReply("MGET: unexpected reply shape") }
            for ((entry, handle), value) in zip(zip(batch, batchHandles), values) {
                after = (entry.score, entry.member)
                guard let record = value.bytes else { continue }
                sessions.append(try SessionRecord.decode(record, handle: handle, keys: policy.dataKeys))
            }
            if !more { break }
        }
        let next = (more && !sessions.isEmpty)
            ? SessionListCursor(endSecond: after!.score, handle: sessions[sessions.count - 1].handle)
            : nil
        return SessionPage(sessions: sessions, total: total ?? 0, nextCursor: next)
    }

    /// How many of these sessions still exist: one multi-key EXISTS.
    private func liveCount(_ handles: [SessionHandle], index: RedisArgument) async throws -> Int {
        if handles.isEmpty { return 0 }
        let reply = try await redis.send(RedisCommand("EXISTS", handles.map(sessionKey)), routingKey: index)
        guard let live = reply.integer else { throw SessionStoreError.unexpectedReply("EXISTS") }
        return Int(live)
    }

    /// Removes the index entries of sessions that ended by `second` and counts them as expired:
    /// a revoked session's entry is removed with it, so an entry that outlives its session has
    /// expired. Counted once: a concurrent listing that removed the same entries gets 0.
    private func dropEnded(from index: RedisArgument, upTo second: Int64) async throws {
        let removed = try await redis.send(RedisCommand("ZREMRANGEBYSCORE", index, "-inf", RedisArgument(second)), routingKey: index)
        metrics.expiredFound.increment(by: removed.integer.map(Int.init) ?? 0)
    }

    /// Revokes every session of the user that existed when this call began (all but `except`):
    /// chunks of index entries, the soonest to end first, each chunk one atomic script with
    /// every key in KEYS that revokes the sessions created up to a bound and keeps later ones,
    /// confirmed by a replica when there is one (SPEC §5.8). It ends when a chunk holds only
    /// sessions created after the bound and no more entries lie beyond it. Returns how many
    /// live sessions were revoked.
    public func forceLogout(userID: String, except: SessionHandle?) async throws -> Int {
        let tag = try await userTag(userID)
        try await migrateLegacyIndexIfPresent(tag: tag, userID: userID)
        let index = indexKey(tagText: tag.text, userID: userID)
        let keep = except.flatMap { $0.tagText == tag.text ? $0.indexMember : nil }
        // The Redis time of the user's node: TIME routed by the index's key.
        let time = try await redis.send(RedisCommand("TIME"), routingKey: index)
        guard let parts = time.array, parts.count == 2, let seconds = parts[0].string.flatMap({ Int64($0) }),
              let micros = parts[1].string.flatMap({ Int64($0) })
        else { throw SessionStoreError.unexpectedReply("TIME: unexpected reply shape") }
        let bound = seconds * 1000 + micros / 1000 + Self.forceLogoutClockMargin
        // While the user keeps logging in, the chunks revoke the new sessions up to the bound,
        // then keep them; a client that keeps rotating or logging in cannot keep this going for ever.
        let deadline = ContinuousClock.now + .milliseconds(Self.forceLogoutClockMargin) + .seconds(10)
        var revoked = 0
        for round in 0... {
            if ContinuousClock.now >= deadline { break }
            let window = try await indexMembers(index, "0", RedisArgument(forceLogoutChunk))
            let members = window.filter { $0 != keep }
            if members.isEmpty {
                if round == 0 { try await confirmReplicated(tagText: tag.text) }
                return revoked
            }
            let chunk = try handles(members, tag: tag)
            let memberKeys = chunk.map(sessionKey)
            defer { redis.forgetNear(memberKeys) }
            let reply = try await redis.evaluate(
                scripts.revokeMembers, keys: [index] + memberKeys,
                arguments: [RedisArgument(bound)] + members.map { RedisArgument($0) } + chunk.map { RedisArgument($0.encoded) }, replicated: true
            )
            guard let counts = reply.array, counts.count == 2, let count = counts[0].integer, let kept = counts[1].integer else {
                throw SessionStoreError.unexpectedReply("revoke_members: unexpected reply shape")
            }
            revoked += Int(count)
            metrics.record(.forceLogout, count: Int(count))
            if kept == members.count {
                // Only sessions created after the bound are left in the window. If the window was
                // full, entries beyond it may still be older: more than a chunk of sessions was
                // created while this ran, and the caller is told to try again.
                if window.count <= forceLogoutChunk { return revoked }
                throw SessionStoreError.tooMuchContention
            }
        }
        throw SessionStoreError.tooMuchContention
    }

    /// How far force-logout's bound lies after the Redis time at its start, in ms: a session
    /// stamped by another node's clock (before a failover or a slot move) is still caught when
    /// that clock ran up to this much ahead. Sessions created in that margin are revoked too.
    static let forceLogoutClockMargin: Int64 = 1000

    // MARK: format 1

    private func migrateLegacyIndexIfPresent(tag: RoutingTag, userID: String) async throws {
        let legacy = legacyIndexKey(tagText: tag.text, userID: userID)
        if try await redis.send(RedisCommand("EXISTS", legacy), routingKey: legacy).integer == 1 {
            try await migrateLegacyIndex(tag: tag, userID: userID)
        }
    }

    /// Moves the user's format-1 index (written before the upgrade) into the index, a chunk per
    /// script call, so that a user with many sessions never holds Redis up for long. The
    /// records stay as they are until their own next write rewrites them as format 2.
    private func migrateLegacyIndex(tag: RoutingTag, userID: String) async throws {
        let index = indexKey(tagText: tag.text, userID: userID)
        let legacy = legacyIndexKey(tagText: tag.text, userID: userID)
        let initial = try await redis.send(RedisCommand("ZCARD", legacy), routingKey: legacy).integer ?? 0
        for _ in 0..<(Int(initial) / forceLogoutChunk * 2 + 10) {
            let members = try await indexMembers(legacy, "0", RedisArgument(forceLogoutChunk - 1)).map { String(decoding: $0, as: UTF8.self) }
            if members.isEmpty { return }
            let chunk = try members.map { member in
                guard let handle = SessionHandle(tag: tag, rest: member) else { throw SessionStoreError.unexpectedReply("format-1 index member") }
                return handle
            }
            var arguments = [RedisArgument]()
            for (member, handle) in zip(members, chunk) {
                arguments += [RedisArgument(member), RedisArgument(handle.indexMember)]
            }
            _ = try await redis.evaluate(scripts.migrateIndex, keys: [index, legacy] + chunk.map(sessionKey), arguments: arguments, replicated: false)
        }
        throw SessionStoreError.tooMuchContention
    }
}
