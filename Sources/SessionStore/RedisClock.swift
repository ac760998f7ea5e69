import Foundation
import RedisClient
import Synchronization

/// An estimate of the Redis server's clock (the clock every session time comes from), so a
/// lookup can tell on its own whether a session is due for a touch and skip the script when not.
/// The scripts still decide with Redis's own TIME: a wrong estimate can only delay or add a
/// touch, never end a session early or keep a revoked one alive.
final class RedisClock: Sendable {
    private struct State {
        /// Redis time minus local time, in milliseconds; nil until first measured.
        var offset: Int64?
        var measuredAt: Int64 = 0
        var refreshing = false
    }

    private let redis: RedisClient
    private let state = Mutex(State())
    private static let refreshInterval: Int64 = 30_000

    init(redis: RedisClient) {
        self.redis = redis
    }

    private static func localMilliseconds() -> Int64 {
        Int64(Date().timeIntervalSince1970 * 1000)
    }

    /// Redis's current time in ms, or nil while it has not been measured yet.
    func now() -> Int64? {
        let local = Self.localMilliseconds()
        let (offset, stale) = state.withLock { state -> (Int64?, Bool) in
            let stale = !state.refreshing && local - state.measuredAt > Self.refreshInterval
            if stale { state.refreshing = true }
            return (state.offset, stale)
        }
        if stale {
            Task { await self.measure() }
        }
        return offset.map { local + $0 }
    }

    private func measure() async {
        let before = Self.localMilliseconds()
        let reply = try? await redis.send("TIME")
        let after = Self.localMilliseconds()
        state.withLock { state in
            state.refreshing = false
            guard let parts = reply?.array, parts.count == 2,
                  let seconds = parts[0].string.flatMap({ Int64($0) }),
                  let micros = parts[1].string.flatMap({ Int64($0) })
            else { return }
            state.offset = seconds * 1000 + micros / 1000 - (before + after) / 2
            state.measuredAt = after
        }
    }
}
