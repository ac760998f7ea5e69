import RedisClient
import Synchronization

/// An estimate of the Redis server's clock (the clock every session time comes from), so a
/// lookup can tell on its own whether a session is due for a touch and skip the script when not.
/// The scripts still decide with Redis's own TIME: a wrong estimate can only delay or add a
/// touch, never keep a revoked one alive. Near a cached record's deadline the store asks Redis
/// (`SessionStore.expiryMargin`), so the estimate's error (a `TIME` round trip, the monotonic
/// clock's drift over 30 s) never decides an expiry. The estimate runs on the monotonic clock
/// from the last `TIME` answer, so a step of the local wall clock cannot skew it.
final class RedisClock: Sendable {
    private struct State {
        /// Redis time in ms at `measuredAt`; nil until first measured.
        var redisTime: Int64?
        var measuredAt = ContinuousClock.now
    }

    private let redis: any RedisDeployment
    /// Which server to ask on a cluster: any will do, their clocks are all NTP-close and a skew
    /// can only delay or add a touch.
    private let routingKey: RedisArgument
    private let state = Mutex(State())
    private static let refreshInterval = Duration.seconds(30)
    /// How soon a failed measurement is tried again.
    private static let retryInterval = Duration.milliseconds(200)

    init(redis: any RedisDeployment, routingKey: RedisArgument) {
        self.redis = redis
        self.routingKey = routingKey
    }

    /// Redis's current time in ms, or nil while it has not been measured yet.
    func now() -> Int64? {
        let local = ContinuousClock.now
        return state.withLock { state in
            state.redisTime.map { $0 + Self.milliseconds(local - state.measuredAt) }
        }
    }

    /// Measures at once, then every 30 s (sooner after a failure), until cancelled: a child of
    /// the store's service.
    func run() async {
        while !Task.isCancelled {
            let measured = await measure()
            try? await Task.sleep(for: measured ? Self.refreshInterval : Self.retryInterval)
        }
    }

    private func measure() async -> Bool {
        let before = ContinuousClock.now
        let reply = try? await redis.send(RedisCommand("TIME"), routingKey: routingKey)
        guard let parts = reply?.array, parts.count == 2,
              let seconds = parts[0].string.flatMap({ Int64($0) }),
              let micros = parts[1].string.flatMap({ Int64($0) })
        else { return false }
        state.withLock { state in
            // Anchored at the send: the estimate can only run ahead of Redis (by up to the round
            // trip), so a cached record is never answered after Redis has ended it.
            state.redisTime = seconds * 1000 + micros / 1000
            state.measuredAt = before
        }
        return true
    }

    private static func milliseconds(_ duration: Duration) -> Int64 {
        duration.components.seconds * 1000 + duration.components.attoseconds / 1_000_000_000_000_000
    }
}
