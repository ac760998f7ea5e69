import Logging
import NIOCore
import NIOPosix
import ServiceLifecycle
import Synchronization

/// A pool of pipelined connections to one Redis server, kept alive by `run()` (a
/// swift-service-lifecycle `Service`). While no connection is up, commands fail at once with
/// `.unavailable` instead of queueing: callers get a fast, explicit answer during an outage.
///
/// The server is the configured host and port, or, with a `resolver`, whatever address it names
/// at each connect (Sentinel: the current master). With `requireMaster`, a connection whose server
/// says `ROLE` is not master is dropped, so a demoted master is left within one role check.
public final class RedisClient: RedisDeployment, Sendable {
    public typealias AddressResolver = @Sendable () async throws -> (host: String, port: Int)

    public let configuration: RedisConfiguration
    private let eventLoopGroup: any EventLoopGroup
    private let logger: Logger
    private let resolver: AddressResolver?
    private let requireMaster: Bool
    /// The pool's connections, then one more for writes that wait for a replica (`WAIT` holds a
    /// connection's pipeline until a replica answers, so it never shares one with lookups).
    private let slots: [PoolSlot]
    private var regularSlots: ArraySlice<PoolSlot> { slots.dropLast() }
    private var replicatedWriteSlot: PoolSlot { slots[slots.count - 1] }
    private let nextSlot = Atomic<Int>(0)
    private let everConnected = Atomic<Bool>(false)
    private let createdAt = ContinuousClock.now
    /// How often `ROLE` is asked, for the replica count and, with `requireMaster`, the role.
    static let roleCheckInterval = Duration.seconds(1)

    public init(
        configuration: RedisConfiguration,
        eventLoopGroup: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton,
        logger: Logger = Logger(label: "sessiond.redis"),
        resolver: AddressResolver? = nil,
        requireMaster: Bool = false
    ) {
        self.configuration = configuration
        self.eventLoopGroup = eventLoopGroup
        self.logger = logger
        self.resolver = resolver
        self.requireMaster = requireMaster
        // Slot i lives on event loop i (round robin): with one slot per loop, every HTTP channel
        // finds a connection on its own loop, and the lookup fast path never changes thread.
        let loops = Array(eventLoopGroup.makeIterator())
        let poolSize = max(1, configuration.poolSize ?? loops.count)
        // One more slot than the pool size: the last one carries the writes that wait for a replica.
        // The near cache has a shard per regular slot: the reads of that slot's connection.
        self.slots = (0...poolSize).map { index in
            let eventLoop = loops[index % loops.count]
            let shard = index < poolSize ? configuration.nearCache.map {
                NearCacheShard(eventLoop: eventLoop, configuration: $0, metrics: configuration.metrics.nearCache)
            } : nil
            return PoolSlot(eventLoop: eventLoop, nearCache: shard)
        }
    }

    /// Ends `run()`: a cluster node that is no longer a master.
    private let retirement = AsyncStream<Never>.makeStream()

    /// Keeps every pool slot connected until cancelled, retired, or the service group shuts down.
    public func run() async throws {
        await cancelWhenGracefulShutdown {
            await withTaskGroup(of: Bool.self) { group in
                for index in self.slots.indices {
                    group.addTask {
                        await self.maintainConnection(slot: index)
                        return false
                    }
                }
                group.addTask {
                    await self.checkRoles()
                    return false
                }
                group.addTask {
                    for await _ in self.retirement.stream {}
                    return !Task.isCancelled
                }
                for await retired in group where retired { group.cancelAll() }
            }
        }
    }

    /// Closes the pool for good: `run()` returns and commands fail as unavailable.
    func retire() {
        retirement.continuation.finish()
    }

    private func maintainConnection(slot index: Int) async {
        let eventLoop = slots[index].eventLoop
        var backoff = configuration.reconnectBackoffInitial
        var failures = 0
        while !Task.isCancelled {
            do {
                let (connection, replicas) = try await connect(on: eventLoop)
                slots[index].replicas.store(replicas, ordering: .relaxed)
                slots[index].connection.withLock { $0 = connection }
                everConnected.store(true, ordering: .relaxed)
                if failures > 0 {
                    logger.info("redis connection restored", metadata: ["slot": "\(index)", "failed_attempts": "\(failures)"])
                }
                failures = 0
                backoff = configuration.reconnectBackoffInitial
                await withTaskCancellationHandler {
                    if let shard = slots[index].nearCache {
                        await keepTracking(connection, shard: shard)
                    } else {
                        try? await connection.closeFuture.get()
                    }
                } onCancel: {
                    connection.close()
                }
                slots[index].connection.withLock { $0 = nil }
                if Task.isCancelled { break }
                logger.warning("redis connection lost", metadata: ["slot": "\(index)"])
            } catch {
                failures += 1
                // One line per outage, then every 100th attempt, so a long outage does not flood logs.
                if failures == 1 || failures % 100 == 0 {
                    logger.error("redis connect failed", metadata: ["slot": "\(index)", "attempt": "\(failures)", "error": "\(error)"])
                }
            }
            try? await Task.sleep(nanoseconds: UInt64.random(in: 0...UInt64(max(1, backoff.nanoseconds))))
            backoff = min(backoff * 2, configuration.reconnectBackoffMaximum)
        }
    }

    /// While `data` is up, keeps the near-cache shard linked to it: a subscriber connection to
    /// the same server is told of every write of a key under the key prefix (broadcast tracking,
    /// redirected to itself), so the shard may keep any value `data` reads. Losing the subscriber
    /// drops the shard's entries and connects another; losing `data` ends the link and returns.
    /// A server that refuses tracking (an ACL without `CLIENT`, Redis before 6) is served without
    /// the cache, with a warning.
    private func keepTracking(_ data: RedisConnection, shard: NearCacheShard) async {
        var backoff = configuration.reconnectBackoffInitial
        var target = configuration
        (target.host, target.port) = (data.address.host, data.address.port)
        // Losing the data connection ends whichever link is current (registered once, not per link).
        let current = Mutex<(epoch: Int, lost: EventLoopPromise<Void>)?>(nil)
        data.closeFuture.whenComplete { _ in
            guard let link = current.withLock({ $0 }) else { return }
            shard.unlink(epoch: link.epoch)
            link.lost.succeed()
        }
        var attempt = 0
        while data.isActive && !Task.isCancelled {
            if attempt > 0 {
                // Every retry waits, so a subscriber that keeps being closed cannot spin.
                try? await Task.sleep(nanoseconds: UInt64.random(in: 0...UInt64(max(1, backoff.nanoseconds))))
                backoff = min(backoff * 2, configuration.reconnectBackoffMaximum)
            }
            attempt += 1
            let subscriber: RedisConnection
            do {
                subscriber = try await RedisConnection.connect(configuration: target, eventLoop: shard.eventLoop) { shard.receive($0) }
            } catch {
                logger.warning("near-cache subscriber connect failed", metadata: ["server": "\(data.address)", "error": "\(error)"])
                continue
            }
            do {
                if try await Self.writesRepliesMidTurn(subscriber) {
                    subscriber.close()
                    logger.warning("near cache off: the server runs I/O threads (io-threads > 1), which can send a reply before its write's invalidation", metadata: ["server": "\(data.address)"])
                    try? await data.closeFuture.get()
                    return
                }
                // The subscriber is the tracking client itself: a barrier's PONG on it then also
                // shows that the client Redis sends the invalidations for is alive.
                let id = try await subscriber.send(RedisCommand("CLIENT", "ID"))
                _ = try await subscriber.send(RedisCommand(
                    "CLIENT", "TRACKING", "ON", "REDIRECT", RedisArgument(id.integer ?? -1), "BCAST", "PREFIX", RedisArgument(shard.keyPrefix)
                ))
                _ = try await subscriber.send(RedisCommand("SUBSCRIBE", "__redis__:invalidate"))
            } catch let error as RedisClientError where error.reply == .noPermission || error.reply == .unknownCommand {
                subscriber.close()
                logger.warning("near cache off: Redis refused client tracking", metadata: ["server": "\(data.address)", "error": "\(error.message)"])
                try? await data.closeFuture.get()
                return
            } catch {
                // A passing refusal (LOADING, too many clients) or a lost connection: try again.
                logger.warning("near-cache tracking set-up failed", metadata: ["server": "\(data.address)", "error": "\(error)"])
                subscriber.close()
                continue
            }
            let linkedAt = ContinuousClock.now
            let epoch = shard.link(subscriber: subscriber, data: data)
            let lost = shard.eventLoop.makePromise(of: Void.self)
            current.withLock { $0 = (epoch, lost) }
            if !data.isActive {
                // Closed before `current` was set: its callback found nothing to end.
                shard.unlink(epoch: epoch)
                lost.succeed()
            }
            subscriber.closeFuture.whenComplete { _ in
                shard.unlink(epoch: epoch)
                lost.succeed()
            }
            try? await lost.futureResult.get()
            current.withLock { $0 = nil }
            subscriber.close()
            if ContinuousClock.now - linkedAt > .seconds(1) { backoff = configuration.reconnectBackoffInitial }
            if data.isActive { logger.warning("near-cache subscriber connection lost; entries dropped", metadata: ["server": "\(data.address)"]) }
        }
    }

    /// Whether the server may send a write's reply before the write's broadcast invalidation
    /// (docs/near-cache.md, "Why strict holds"): with I/O threads, Valkey 8 writes a reply right
    /// after its command, before the turn's broadcast. Any `io-threads` above 1 counts, on Redis
    /// too. A server that refuses `CONFIG GET` is taken at its default (one thread).
    private static func writesRepliesMidTurn(_ connection: RedisConnection) async throws -> Bool {
        let reply: RESPValue
        do {
            reply = try await connection.send(RedisCommand("CONFIG", "GET", "io-threads"))
        } catch let error as RedisClientError where error.code == .commandError {
            return false
        }
        guard let parts = reply.array, parts.count == 2, let threads = parts[1].string.flatMap({ Int($0) }) else { return false }
        return threads > 1
    }

    /// A new connection and the replicas its server has (from `ROLE`).
    private func connect(on eventLoop: any EventLoop) async throws -> (RedisConnection, Int) {
        var target = configuration
        if let resolver {
            (target.host, target.port) = try await resolver()
        }
        let connection = try await RedisConnection.connect(configuration: target, eventLoop: eventLoop)
        do {
            let role = try await RedisRole(reply: connection.send(RedisCommand("ROLE")))
            if requireMaster && !role.isMaster {
                throw RedisClientError(.connectFailed, "Redis at \(target.host):\(target.port) is a \(role.name), not a master")
            }
            return (connection, role.connectedReplicas)
        } catch let error as RedisClientError where error.code == .commandError && !requireMaster {
            // A server that refuses ROLE (an ACL without it) still serves; it is taken to have no replicas.
            logger.warning("ROLE refused: writes will not wait for replicas", metadata: ["error": "\(error.message)"])
            return (connection, 0)
        } catch {
            connection.close()
            throw error
        }
    }

    /// Every `roleCheckInterval`, on every connection: learn how many replicas its server has,
    /// and close it when its server must be the master and is not (a failover demoted it, or
    /// the Sentinels now name another server); it then reconnects to the current master.
    private func checkRoles() async {
        while !Task.isCancelled {
            try? await Task.sleep(for: Self.roleCheckInterval)
            let current = try? await resolver?()
            for slot in slots {
                guard let connection = slot.connection.withLock({ $0 }), connection.isActive,
                      let role = try? await RedisRole(reply: connection.send(RedisCommand("ROLE")))
                else { continue }
                slot.replicas.store(role.isMaster ? role.connectedReplicas : 0, ordering: .relaxed)
                let moved = current.map { RedisNodeAddress(host: $0.host, port: $0.port) != connection.address } ?? false
                if requireMaster && (!role.isMaster || moved) {
                    logger.warning("redis server is no longer the master; reconnecting", metadata: [
                        "server": "\(connection.address)", "role": "\(role.name)",
                    ])
                    connection.close()
                }
            }
        }
    }

    /// A live connection, starting from a rotating slot so load spreads over the pool.
    private func liveSlot() -> (slot: PoolSlot, connection: RedisConnection)? {
        let start = nextSlot.wrappingAdd(1, ordering: .relaxed).oldValue
        let pool = regularSlots
        for offset in 0..<pool.count {
            let slot = pool[pool.startIndex + (start &+ offset) % pool.count]
            if let connection = slot.connection.withLock({ $0 }), connection.isActive {
                return (slot, connection)
            }
        }
        return nil
    }

    /// The connection for writes that wait for a replica, or a regular one while it is down.
    private func replicatedWriteConnection() throws -> (slot: PoolSlot, connection: RedisConnection) {
        if let connection = replicatedWriteSlot.connection.withLock({ $0 }), connection.isActive {
            return (replicatedWriteSlot, connection)
        }
        return try requireSlot()
    }

    private func requireSlot() throws -> (slot: PoolSlot, connection: RedisConnection) {
        guard let live = liveSlot() else { throw unavailable }
        return live
    }

    private var unavailable: RedisClientError {
        RedisClientError(.unavailable, "Redis at \(configuration.host):\(configuration.port) is unavailable")
    }

    /// A live connection on `eventLoop`, or any live one.
    private func liveConnection(preferring eventLoop: any EventLoop) -> RedisConnection? {
        for slot in regularSlots where slot.eventLoop === eventLoop {
            if let connection = slot.connection.withLock({ $0 }), connection.isActive { return connection }
        }
        return liveSlot()?.connection
    }

    /// The command on a connection of `eventLoop` when the pool has one, so neither the request
    /// nor its reply changes thread; `answer` runs on `eventLoop`. Error replies fail.
    private func send(_ command: RedisCommand, on eventLoop: any EventLoop, answer: @escaping RedisReplyHandler) {
        guard let connection = liveConnection(preferring: eventLoop) else {
            eventLoop.deliver(.failure(unavailable), to: answer)
            return
        }
        connection.sendRaw(command) { raw in
            eventLoop.deliver(raw.flatMap { reply in Result { try reply.checked() } }, to: answer)
        }
    }

    /// `RedisDeployment`: EVALSHA of an already loaded script, on a connection of `eventLoop`.
    public func evaluate(
        _ script: RedisScript, keys: [RedisArgument], arguments: [RedisArgument], on eventLoop: any EventLoop,
        answer: @escaping RedisReplyHandler
    ) {
        guard let sha = script.sha else {
            eventLoop.deliver(.failure(RedisClientError(.unavailable, "script \(script.name) is not loaded yet")), to: answer)
            return
        }
        send(RedisCommand("EVALSHA", [RedisArgument(sha), RedisArgument(keys.count)] + keys + arguments), on: eventLoop, answer: answer)
    }

    /// `RedisDeployment`: `GET key` through the near-cache shard of `eventLoop`'s connection, or
    /// a plain `GET` when the cache is off or not linked. Error replies fail.
    public func nearGet(_ key: RedisArgument, on eventLoop: any EventLoop, answer: @escaping NearAnswer) {
        if configuration.nearCache != nil,
           let shard = regularSlots.first(where: { $0.eventLoop === eventLoop })?.nearCache ?? liveSlot()?.slot.nearCache,
           shard.read(key.bytes, on: eventLoop, answer: answer) {
            return
        }
        send(RedisCommand("GET", key), on: eventLoop) { answer($0.map { NearRead(reply: $0, cached: false) }) }
    }

    /// `RedisDeployment`: this process wrote `keys`; no shard keeps or fetches an older value.
    public func forgetNear(_ keys: [RedisArgument]) {
        let names = keys.map { NearCacheKey($0.bytes) }
        for slot in regularSlots { slot.nearCache?.forget(names) }
    }

    /// Drops every near-cache entry of this server (a slot map change or `MOVED` on a cluster).
    public func flushNearCache() {
        for slot in regularSlots { slot.nearCache?.flush() }
    }

    /// `RedisDeployment`: one server holds every key.
    public var keysMaySpanSlots: Bool { true }

    /// True when at least one pooled connection is up.
    public var isConnected: Bool { liveSlot() != nil }

    public var poolStatistics: RedisPoolStatistics {
        var statistics = RedisPoolStatistics(configured: slots.count)
        for slot in slots {
            guard let connection = slot.connection.withLock({ $0 }), connection.isActive else { continue }
            let pending = connection.pendingCommands
            statistics.open += 1
            statistics.pending += pending
            if pending > 0 { statistics.busy += 1 }
        }
        return statistics
    }

    /// The server a live connection is to: with a resolver (Sentinel), the current master.
    public var connectedAddress: RedisNodeAddress? { liveSlot()?.connection.address }

    /// Waits (polling) until a connection is up; false when `timeout` passes first.
    public func waitUntilConnected(timeout: Duration) async -> Bool {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if isConnected { return true }
            try? await Task.sleep(for: .milliseconds(5))
        }
        return isConnected
    }

    /// Like `waitUntilConnected`, but only while the pool is new: a pool that was up and is down
    /// now, or that has had a connect timeout's time to come up and has not, is an outage, to be
    /// answered fast, not waited for by every request.
    public func waitForFirstConnection(timeout: Duration) async {
        if everConnected.load(ordering: .relaxed) { return }
        let left = createdAt + timeout - ContinuousClock.now
        guard left > .zero else { return }
        _ = await waitUntilConnected(timeout: left)
    }

    public func send(_ name: String, _ arguments: RedisArgument...) async throws -> RESPValue {
        try await send(RedisCommand(name, arguments))
    }

    /// Sends a command on a pooled connection (one server holds every key: `routingKey` is not
    /// needed). Error replies throw `.commandError`.
    public func send(_ command: RedisCommand, routingKey: RedisArgument = "") async throws -> RESPValue {
        try await requireSlot().connection.send(command)
    }

    /// Sends `command` right after `ASKING` on the same connection (a cluster's `ASK` redirect).
    public func sendAsking(_ command: RedisCommand) async throws -> RESPValue {
        let replies = try await requireSlot().connection.sendPipeline([RedisCommand("ASKING"), command])
        return try replies[1].checked()
    }

    public func evaluate(_ script: RedisScript, keys: [RedisArgument], arguments: [RedisArgument], replicated: Bool = false) async throws -> RESPValue {
        try await evaluate(script, keys: keys, arguments: arguments, replicated: replicated, asking: false)
    }

    /// Runs a script with EVALSHA, loading it first when this client or Redis does not know it.
    /// `replicated`: the script's writes must reach a replica before it counts as done (`WAIT`
    /// right after it on the same connection), when the server has replicas.
    /// `asking`: preceded by `ASKING` (a cluster's `ASK` redirect).
    public func evaluate(
        _ script: RedisScript, keys: [RedisArgument], arguments: [RedisArgument], replicated: Bool, asking: Bool
    ) async throws -> RESPValue {
        let sha: String
        if let known = script.sha {
            sha = known
        } else {
            sha = try await load(script)
        }
        do {
            return try await runScript(sha, keys: keys, arguments: arguments, replicated: replicated, asking: asking)
        } catch let error as RedisClientError where error.reply == .noScript {
            let reloaded = try await load(script)
            return try await runScript(reloaded, keys: keys, arguments: arguments, replicated: replicated, asking: asking)
        }
    }

    private func runScript(
        _ sha: String, keys: [RedisArgument], arguments: [RedisArgument], replicated: Bool, asking: Bool
    ) async throws -> RESPValue {
        var commands = [RedisCommand]()
        if asking { commands.append(RedisCommand("ASKING")) }
        commands.append(RedisCommand("EVALSHA", [RedisArgument(sha), RedisArgument(keys.count)] + keys + arguments))
        let (slot, connection) = replicated ? try replicatedWriteConnection() : try requireSlot()
        let waitForReplica = replicated && slot.replicas.load(ordering: .relaxed) > 0
        if waitForReplica {
            commands.append(RedisCommand("WAIT", "1", RedisArgument(configuration.replicationTimeoutMilliseconds)))
        }
        let replies = try await connection.sendPipeline(commands)
        let result = try replies[asking ? 1 : 0].checked()
        if waitForReplica {
            guard let acknowledged = replies[replies.count - 1].integer, acknowledged >= 1 else {
                throw RedisClientError(
                    .notReplicated,
                    "no replica acknowledged the write within \(configuration.replicationTimeoutMilliseconds) ms"
                )
            }
        } else if replicated {
            // Done only once Redis has finished the turn of its event loop that ran the script:
            // the near caches' invalidations of that turn are queued at its end, and a reply can
            // leave before them (docs/near-cache.md). A PING sent after the reply is read on a
            // later turn; WAIT's reply, which needs a replica's answer, always is.
            _ = try await connection.send(RedisCommand("PING"))
        }
        return result
    }

    private func load(_ script: RedisScript) async throws -> String {
        let reply = try await send("SCRIPT", "LOAD", RedisArgument(script.source))
        guard let sha = reply.string else {
            throw RedisClientError(.unexpectedReply, "SCRIPT LOAD of \(script.name) returned \(reply)")
        }
        script.remember(sha: sha)
        return sha
    }

    /// PING, for readiness checks.
    public func ping() async throws {
        let reply = try await send("PING")
        guard reply.string == "PONG" else {
            throw RedisClientError(.unexpectedReply, "PING returned \(reply)")
        }
    }

    public var description: String { "single Redis at \(configuration.host):\(configuration.port)" }
}

/// One place in the pool: the connection its maintenance task keeps up on `eventLoop`, or nil
/// while down.
private final class PoolSlot: Sendable {
    let eventLoop: any EventLoop
    let connection = Mutex<RedisConnection?>(nil)
    /// Replicas the connection's server reported at the last role check.
    let replicas = Atomic<Int>(0)
    /// The cached reads of this slot's connection, when the near cache is on.
    let nearCache: NearCacheShard?

    init(eventLoop: any EventLoop, nearCache: NearCacheShard?) {
        self.eventLoop = eventLoop
        self.nearCache = nearCache
    }
}
