import CoreMetrics
import NIOCore
import Synchronization

/// What the Redis client reports through swift-metrics: every command's latency (written to
/// reply) and the commands that failed, by kind. Labels carry no key, argument or reply.
public struct RedisClientMetrics: Sendable {
    let commandDuration: Timer
    let errorReplies: Counter
    let timeouts: Counter
    let connectionLosses: Counter
    let nearCache: NearCacheMetrics

    public init(factory: any MetricsFactory) {
        nearCache = NearCacheMetrics(factory: factory)
        commandDuration = Timer(label: "sessiond_redis_command_duration_seconds", dimensions: [], factory: factory)
        let failures = "sessiond_redis_command_failures_total"
        errorReplies = Counter(label: failures, dimensions: [("kind", "error_reply")], factory: factory)
        timeouts = Counter(label: failures, dimensions: [("kind", "timeout")], factory: factory)
        connectionLosses = Counter(label: failures, dimensions: [("kind", "connection_lost")], factory: factory)
    }

    /// Reports nothing (tests and tools that have no metrics endpoint).
    public static let none = RedisClientMetrics(factory: NOOPMetricsHandler.instance)
}

/// The pool at one instant, for the metrics endpoint. With pipelining nothing waits for a
/// connection: a command waits for its reply on a connection that may carry many.
public struct RedisPoolStatistics: Sendable, Equatable {
    /// Connections the pools keep (one per event loop and one for replicated writes, per master).
    public var configured = 0
    /// Of those, the ones connected now.
    public var open = 0
    /// Connections with at least one command waiting for its reply.
    public var busy = 0
    /// Commands sent and waiting for their reply.
    public var pending = 0

    static func + (lhs: Self, rhs: Self) -> Self {
        Self(configured: lhs.configured + rhs.configured, open: lhs.open + rhs.open,
             busy: lhs.busy + rhs.busy, pending: lhs.pending + rhs.pending)
    }
}

/// A connection's commands in flight, written by its event loop and read by the metrics scrape.
final class PendingCommandCount: Sendable {
    private let count = Atomic<Int>(0)

    var value: Int { count.load(ordering: .relaxed) }

    func add(_ delta: Int) {
        count.add(delta, ordering: .relaxed)
    }
}
