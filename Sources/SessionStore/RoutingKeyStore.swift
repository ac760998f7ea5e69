import RedisClient
import SessionCrypto
import Synchronization

/// The deployment's routing key (user id → routing tag), kept in Redis so every sessiond process
/// sharing the store uses the same one without any configuration: the first process to need it
/// creates it (`SET NX`, confirmed by a replica when there is one), the others read it. Read on
/// first need (a create, a list, a force-logout; lookups never need it) and kept: it never
/// changes while sessions live. On a cluster, until a process has read it, those operations
/// answer 503 while the `{routing}` slot has no master.
final class RoutingKeyStore: Sendable {
    private let redis: any RedisDeployment
    private let key: RedisArgument
    private let script: RedisScript
    private let cached = Mutex<RoutingKey?>(nil)

    init(redis: any RedisDeployment, key: RedisArgument, script: RedisScript) {
        self.redis = redis
        self.key = key
        self.script = script
    }

    /// The key once a call of `key()` has read it.
    var known: RoutingKey? { cached.withLock { $0 } }

    func key() async throws -> RoutingKey {
        if let known { return known }
        let reply = try await redis.evaluate(
            script, keys: [key], arguments: [RedisArgument(RoutingKey.generate().bytes)], replicated: true
        )
        guard let bytes = reply.bytes, let stored = RoutingKey(bytes: bytes) else {
            throw SessionStoreError.unexpectedReply("the routing key in Redis is not \(RoutingKey.byteCount) bytes")
        }
        cached.withLock { $0 = stored }
        return stored
    }
}
