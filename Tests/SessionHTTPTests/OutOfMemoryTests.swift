import Foundation
import NIOPosix
import RedisClient
import RedisTestSupport
import Testing

/// A Redis at `maxmemory` with `noeviction` (README, "Memory policy"): writes that need memory
/// answer 507 `store_full`, never 500 and never a lost session; lookups, logouts and
/// force-logouts still work, and creates work again once there is room.
@Suite struct OutOfMemoryTests {
    @Test func fullRedisRefusesWritesAndKeepsServing() async throws {
        let redis = try await RedisServerProcess.start(extraArgs: ["--maxmemory-policy", "noeviction"])
        defer { redis.stop() }
        let admin = try await RedisConnection.connect(configuration: redis.configuration.forTests, eventLoop: MultiThreadedEventLoopGroup.singleton.next())
        defer { admin.close() }
        try await Sessiond.with(redisURL: redis.url, settings: ["SESSIOND_IDLE_TIMEOUT": "10"]) { server in
            let kept = try await server.create(user: "kept")
            var others = [Sessiond.CreatedSession]()
            for _ in 0..<3 { others.append(try await server.create(user: "filler")) }
            // Any memory in use is now over the limit: every write that needs memory is refused.
            _ = try await admin.send(RedisCommand("CONFIG", "SET", "maxmemory", "1"))

            let refused = try await server.request(.POST, "/v1/sessions", key: TestKeys.app, json: ["user_id": "filler"])
            #expect(refused.status == 507)
            #expect(refused.errorCode == "store_full")
            #expect(refused.headers["Retry-After"].first == "5")
            let patch = try await server.request(.PATCH, "/v1/session", key: TestKeys.app, headers: [("X-Session-Token", kept.token)], json: ["a": 1])
            #expect(patch.status == 507 && patch.errorCode == "store_full")
            let rotate = try await server.request(.POST, "/v1/session/rotate", key: TestKeys.app, headers: [("X-Session-Token", kept.token)])
            #expect(rotate.status == 507 && rotate.errorCode == "store_full")

            #expect(try await server.lookup(kept.token, touch: false).json()["version"] as? Int == 1, "refused writes wrote nothing")
            // Due for a touch (a tenth of the 10 s idle timeout): the touch's write is refused,
            // the lookup still answers the session.
            try await Task.sleep(for: .milliseconds(1100))
            #expect(try await server.lookup(kept.token).status == 200)
            #expect(try await server.list(user: "filler").json()["total"] as? Int == 3)

            let logout = try await server.request(.DELETE, "/v1/session", key: TestKeys.app, headers: [("X-Session-Token", kept.token)])
            #expect(logout.status == 200)
            #expect(try logout.json()["revoked"] as? Bool == true)
            #expect(try await server.request(.DELETE, "/v1/sessions/\(others[0].handle)", key: TestKeys.admin).status == 200)
            let forced = try await server.request(.DELETE, "/v1/users/filler/sessions", key: TestKeys.admin)
            #expect(forced.status == 200)
            #expect(try forced.json()["revoked"] as? Int == 2)
            #expect(try await server.lookup(others[1].token).status == 401)

            _ = try await admin.send(RedisCommand("CONFIG", "SET", "maxmemory", "0"))
            #expect(try await server.create(user: "after").response.status == 201, "room again: creates work")
        }
    }
}
