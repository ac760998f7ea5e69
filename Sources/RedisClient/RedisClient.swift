import Logging
import NIOCore
import NIOPosix
import ServiceLifecycle
import Synchronization

/// A pool of pipelined connections to one Redis, kept alive by `run()` (a swift-service-lifecycle
/// `Service`). While no connection is up, commands fail at once with `.unavailable` instead of
/// queueing: callers get a fast, explicit answer during an outage.
public final class RedisClient: Service, Sendable {
    public let configuration: RedisConfiguration
    private let eventLoopGroup: any EventLoopGroup
    private let logger: Logger
    private let slots: [PoolSlot]
    private let nextSlot = Atomic<Int>(0)

    public init(
        configuration: RedisConfiguration,
        eventLoopGroup: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton,
        logger: Logger = Logger(label: "sessiond.redis")
    ) {
        self.configuration = configuration
        self.eventLoopGroup = eventLoopGroup
        self.logger = logger
        self.slots = (0..<configuration.resolvedPoolSize).map { _ in PoolSlot() }
    }

    /// Keeps every pool slot connected until cancelled or the service group shuts down.
    public func run() async throws {
        await cancelWhenGracefulShutdown {
            await withDiscardingTaskGroup { group in
                for index in self.slots.indices {
                    group.addTask { await self.maintainConnection(slot: index) }
                }
            }
        }
    }

    private func maintainConnection(slot index: Int) async {
        let eventLoop = eventLoopGroup.next()
        var backoff = configuration.reconnectBackoffInitial
        var failures = 0
        while !Task.isCancelled {
            do {
                let connection = try await RedisConnection.connect(configuration: configuration, eventLoop: eventLoop)
                slots[index].connection.withLock { $0 = connection }
                if failures > 0 {
                    logger.info("redis connection restored", metadata: ["slot": "\(index)", "failed_attempts": "\(failures)"])
                }
                failures = 0
                backoff = configuration.reconnectBackoffInitial
                await withTaskCancellationHandler {
                    try? await connection.closeFuture.get()
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
            let jittered = TimeAmount.nanoseconds(Int64.random(in: 0...max(1, backoff.nanoseconds)))
            try? await Task.sleep(nanoseconds: UInt64(jittered.nanoseconds))
            backoff = min(backoff * 2, configuration.reconnectBackoffMaximum)
        }
    }

    /// A live connection, starting from a rotating slot so load spreads over the pool.
    private func liveConnection() -> RedisConnection? {
        let start = nextSlot.wrappingAdd(1, ordering: .relaxed).oldValue
        for offset in 0..<slots.count {
            let slot = slots[(start &+ offset) % slots.count]
            if let connection = slot.connection.withLock({ $0 }), connection.isActive {
                return connection
            }
        }
        return nil
    }

    /// True when at least one pooled connection is up.
    public var isConnected: Bool { liveConnection() != nil }

    /// Waits (polling) until a connection is up; false when `timeout` passes first.
    public func waitUntilConnected(timeout: Duration) async -> Bool {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if isConnected { return true }
            try? await Task.sleep(for: .milliseconds(5))
        }
        return isConnected
    }

    /// Sends a command on a pooled connection. Error replies throw `.commandError`.
    public func send(_ command: RedisCommand) async throws -> RESPValue {
        guard let connection = liveConnection() else {
            throw RedisClientError(.unavailable, "Redis at \(configuration.host):\(configuration.port) is unavailable")
        }
        return try await connection.send(command)
    }

    public func send(_ name: String, _ arguments: RedisArgument...) async throws -> RESPValue {
        try await send(RedisCommand(name, arguments))
    }

    /// Runs a script with EVALSHA, loading it first when this client or Redis does not know it.
    public func evaluate(_ script: RedisScript, keys: [RedisArgument], arguments: [RedisArgument]) async throws -> RESPValue {
        let sha: String
        if let known = script.sha {
            sha = known
        } else {
            sha = try await load(script)
        }
        do {
            return try await send(Self.evalsha(sha, keys: keys, arguments: arguments))
        } catch let error as RedisClientError where error.code == .commandError && error.message.hasPrefix("NOSCRIPT") {
            let reloaded = try await load(script)
            return try await send(Self.evalsha(reloaded, keys: keys, arguments: arguments))
        }
    }

    private func load(_ script: RedisScript) async throws -> String {
        let reply = try await send("SCRIPT", "LOAD", RedisArgument(script.source))
        guard let sha = reply.string else {
            throw RedisClientError(.unexpectedReply, "SCRIPT LOAD of \(script.name) returned \(reply)")
        }
        script.remember(sha: sha)
        return sha
    }

    private static func evalsha(_ sha: String, keys: [RedisArgument], arguments: [RedisArgument]) -> RedisCommand {
        RedisCommand("EVALSHA", [RedisArgument(sha), RedisArgument(keys.count)] + keys + arguments)
    }

    /// PING, for readiness checks.
    public func ping() async throws {
        let reply = try await send("PING")
        guard reply.string == "PONG" else {
            throw RedisClientError(.unexpectedReply, "PING returned \(reply)")
        }
    }
}

/// One place in the pool: the connection its maintenance task keeps up, or nil while down.
private final class PoolSlot: Sendable {
    let connection = Mutex<RedisConnection?>(nil)
}
