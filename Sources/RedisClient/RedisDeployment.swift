import NIOCore
import ServiceLifecycle

/// What the session store needs from Redis, whatever its shape: one server (`RedisClient`, also
/// behind Sentinel) or a Redis Cluster (`RedisClusterClient`). Keys route commands: every key
/// of one call must share a hash slot, as on a cluster, unless `keysMaySpanSlots`.
public protocol RedisDeployment: Service, Sendable, CustomStringConvertible {
    /// Sends `command` to the server that holds `routingKey`. Error replies throw `.commandError`.
    func send(_ command: RedisCommand, routingKey: RedisArgument) async throws -> RESPValue

    /// The hot path for a script: EVALSHA sent from and answered on `eventLoop` (the HTTP
    /// channel's), with no task, future or thread hop when a connection lives there, when the
    /// script was loaded before (its SHA1 is known); error replies fail. No loading, retries or
    /// redirects: on any failure, `NOSCRIPT` included, the caller falls back to
    /// `evaluate(_:keys:arguments:replicated:)`.
    func evaluate(
        _ script: RedisScript, keys: [RedisArgument], arguments: [RedisArgument], on eventLoop: any EventLoop,
        answer: @escaping RedisReplyHandler
    )

    /// Runs `script` (EVALSHA, loaded where needed) on the server that holds `keys`, which must
    /// share one slot unless `keysMaySpanSlots`. With `replicated`, the writes must reach a replica (`WAIT`) before the call
    /// returns, when the server has replicas; otherwise it throws `.notReplicated`.
    func evaluate(_ script: RedisScript, keys: [RedisArgument], arguments: [RedisArgument], replicated: Bool) async throws -> RESPValue

    /// `GET key` from the near cache when it holds the key and the mode's barrier allows
    /// (docs/near-cache.md), otherwise from Redis, tracked; answered once, on `eventLoop`. Like
    /// `evaluate(_:keys:arguments:on:answer:)`: no retries and no redirects.
    func nearGet(_ key: RedisArgument, on eventLoop: any EventLoop, answer: @escaping NearAnswer)

    /// This process wrote `keys`: the near cache drops them before the write is answered.
    func forgetNear(_ keys: [RedisArgument])

    /// Whether one server holds every key (a single server, also behind Sentinel), so that one
    /// call may name keys of different hash slots; false on a cluster.
    var keysMaySpanSlots: Bool { get }

    /// Succeeds while Redis answers (on a cluster: at least one master).
    func ping() async throws

    /// The connection pools now (on a cluster: every master's, summed), for the metrics endpoint.
    var poolStatistics: RedisPoolStatistics { get }
}
