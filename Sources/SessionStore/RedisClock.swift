import RedisClient
import Synchronization

/// An estimate of the Redis server's clock (the clock every session time comes from), so a
/// lookup can tell on its own whether a session is due for a touch and skip the script when not.
/// The scripts still decide with Redis's own TIME: a wrong estimate can only delay or add a
/// touch, never end a session early or keep a revoked one alive. The estimate runs on the
/// monotonic clock from the last `TIME` answer, so a step of the local wall clock cannot skew it.
final class RedisClock: Sendable {
    private struct State {
        /// Redis time in ms at `measuredAt`; nil until first measured.
        var redisTime: Int64?
        var measuredAt = ContinuousClock.now
        var refreshing = false
    }

    private let redis: any RedisDeployment
    /// Which server to ask on a cluster: any will do, their clocks are all NTP-close and a skew
    /// can only delay or add a touch.
    private let routingKey: RedisArgument
    private let state = Mutex(State())
    private static let refreshInterval = Duration.seconds(30)

    init(redis: any RedisDeployment, routingKey: RedisArgument) {
        self.redis = redis
        self.routingKey = routingKey
    }

    /// Redis's current time in ms, or nil while it has not been measured yet.
    func now() -> Int64? {
        let local = ContinuousClock.now
        let (estimate, stale) = state.withLock { state -> (Int64?, Bool) in
            let stale = !state.refreshing && (state.redisTime == nil || local - state.measuredAt > Self.refreshInterval)
            if stale { state.refreshing = true }
            return (state.redisTime.map { $0 + Self.milliseconds(local - state.measuredAt) }, stale)
        }
        if stale {
            Task { await self.measure() }
        }
        return estimate
    }

    private func measure() async {
        let before = ContinuousClock.now
        let reply = try? await redis.send(RedisCommand("TIME"), routingKey: routingKey)
        let after = ContinuousClock.now
        state.withLock { state in
            state.refreshing = false
            guard let parts = reply?.array, parts.count == 2,
                  let seconds = parts[0].string.flatMap({ Int64($0) }),
                  let micros = parts[1].string.flatMap({ Int64($0) })
            else { return }
            // TIME was read about half-way through the round trip.
            state.redisTime = seconds * 1000 + micros / 1000
            state.measuredAt = before + (after - before) / 2
        }
    }

    private static func milliseconds(_ duration: Duration) -> Int64 {
        duration.components.seconds * 1000 + duration.components.attoseconds / 1_000_000_000_000_000
    }
}
