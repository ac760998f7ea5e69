import Foundation
import RedisClient
import Synchronization
import Testing

/// SPEC §5, one test per guarantee, against real servers and a real Redis.
@Suite struct GuaranteeTests {
    /// §5.1: idle (sliding) and absolute timeouts both end a session, the session leaves every
    /// list, and Redis frees every key by TTL.
    @Test func expiryEndsSessionsAndLeavesNoKey() async throws {
        // Idle 8 s, absolute 16 s. Every check is timed from the session's own created_at (the
        // Redis clock, on this machine) and keeps at least 3 s from a boundary it must not cross,
        // so a slow request or a late wake-up on a loaded machine does not turn it into a race.
        try await Sessiond.with(settings: ["SESSIOND_IDLE_TIMEOUT": "8", "SESSIOND_ABSOLUTE_TIMEOUT": "16"]) { server in
            let kept = try await server.create(user: "exp")
            let idle = try await server.create(user: "exp")
            let created = try Self.time(kept, "created_at")
            #expect(try Self.time(kept, "expires_at").timeIntervalSince(created) == 16)
            #expect(try await server.list(user: "exp").json()["total"] as? Int == 2)
            try await Self.sleep(until: created + 4)
            #expect(try await server.lookup(kept.token).status == 200, "touch at 4 s slides the idle end past 12 s")
            try await Self.sleep(until: try Self.time(idle, "idle_expires_at") + 1)
            #expect(try await server.lookup(idle.token, touch: false).status == 401, "untouched session ended after 8 s idle")
            #expect(try await server.lookup(kept.token).status == 200, "sliding idle expiry keeps an active session")
            #expect(try await server.list(user: "exp").json()["total"] as? Int == 1)
            try await Self.sleep(until: created + 16.6)
            #expect(try await server.lookup(kept.token).status == 401, "absolute timeout (16 s) ended the active session")
            let list = try await server.list(user: "exp").json()
            #expect(list["total"] as? Int == 0)
            #expect((list["sessions"] as? [Any])?.isEmpty == true)
            #expect(try await server.redisKeys() == [], "Redis freed every key of the user by TTL")
            #expect(try await server.allRedisKeys() == [server.routingKeyName], "only the routing key stays")
        }
    }

    static func time(_ session: Sessiond.CreatedSession, _ field: String) throws -> Date {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        let text = try #require(try session.response.json()[field] as? String)
        return try #require(formatter.date(from: text))
    }

    static func sleep(until date: Date) async throws {
        let seconds = date.timeIntervalSinceNow
        if seconds > 0 { try await Task.sleep(for: .milliseconds(Int(seconds * 1000))) }
    }

    /// The index outlives its session by at most a quarter of the idle timeout (1.5 s here).
    @Test func idleOnlySessionFreesIndexWithoutAnyRead() async throws {
        try await Sessiond.with(settings: ["SESSIOND_IDLE_TIMEOUT": "6"]) { server in
            let session = try await server.create(user: "quiet")
            #expect(try await server.redisKeys().count == 2)
            try await Self.sleep(until: try Self.time(session, "idle_expires_at") + 2.5)
            // Nothing touched the keys after create: only Redis TTLs can have freed them.
            #expect(try await server.redisKeys() == [])
        }
    }

    /// §5.3's "no valid session outside the index" under steady touches: a touch raises the
    /// index's TTL only when the session's horizon moves (docs/redis-layout.md), so the index
    /// must still reach past the session's end after every touch, over several horizons. Three
    /// users of one session each, so that touches in the quarter of the create come too.
    @Test func touchesKeepTheIndexPastTheSessionsEnd() async throws {
        // Idle 4 s: a touch is due every 0.4 s, and the horizon moves every second.
        try await Sessiond.with(settings: ["SESSIOND_IDLE_TIMEOUT": "4"]) { server in
            var sessions: [(session: Sessiond.CreatedSession, record: String, index: String)] = []
            for user in ["steady-a", "steady-b", "steady-c"] {
                let session = try await server.create(user: user)
                sessions.append((session, server.sessionKey(session.handle), server.indexKey(user: user, handle: session.handle)))
            }
            let end = try Self.time(sessions[0].session, "created_at") + 9
            let checked = sessions
            let slides = try await withRedis(server.redisTopology) { redis in
                var slides = 0, lastRecordEnds = [Int64](repeating: 0, count: checked.count)
                while Date() < end {
                    for (n, session) in checked.enumerated() {
                        #expect(try await server.lookup(session.session.token).status == 200)
                        try await Task.sleep(for: .milliseconds(50))
                        // The record first: the index's TTL only grows, so it must reach this end.
                        let recordEnd = try await redis.send("PEXPIRETIME", key: session.record).integer ?? -1
                        let indexEnd = try await redis.send("PEXPIRETIME", key: session.index).integer ?? -1
                        #expect(recordEnd > 0 && indexEnd >= recordEnd, "record ends \(recordEnd), index \(indexEnd)")
                        if recordEnd > lastRecordEnds[n] { slides += 1 }
                        lastRecordEnds[n] = recordEnd
                    }
                }
                return slides
            }
            #expect(slides >= 30, "the sessions slid \(slides) times")
        }
    }

    /// §5.2: two sessiond processes on one Redis agree on revocation at once.
    @Test func twoInstancesAgreeOnRevocation() async throws {
        let prefix = "test-\(UUID().uuidString.prefix(8)):"
        try await Sessiond.with(keyPrefix: prefix) { first in
            try await Sessiond.with(keyPrefix: prefix) { second in
                let session = try await first.create(user: "twin")
                #expect(try await second.lookup(session.token).status == 200)
                #expect(try await first.lookup(session.token).status == 200)
                let revoke = try await second.request(.DELETE, "/v1/session", key: TestKeys.app, headers: [("X-Session-Token", session.token)])
                #expect(try revoke.json()["revoked"] as? Bool == true)
                #expect(try await first.lookup(session.token).status == 401)

                let other = try await second.create(user: "twin")
                _ = try await first.request(.DELETE, "/v1/users/twin/sessions", key: TestKeys.admin)
                #expect(try await second.lookup(other.token).status == 401)
            }
        }
    }

    /// §5.3: force-logout while creates run: every session created before the request is
    /// invalid when the answer comes, and no valid session is outside the user index.
    @Test func forceLogoutUnderConcurrentCreates() async throws {
        try await Sessiond.with { server in
            let user = "busy"
            for _ in 0..<300 { _ = try await server.create(user: user) }
            let load = CreateLoad()
            try await withThrowingTaskGroup(of: Void.self) { group in
                for _ in 0..<4 {
                    group.addTask {
                        while !load.stop.load(ordering: .relaxed) {
                            let session = try await server.create(user: user)
                            load.created.withLock { $0.append(session) }
                        }
                    }
                }
                try await Task.sleep(for: .milliseconds(200))
                // Everything whose create answer arrived before this line was created before the request.
                let createdBeforeRequest = load.created.withLock { $0.map(\.token) }
                let response = try await server.request(.DELETE, "/v1/users/\(user)/sessions", key: TestKeys.admin)
                #expect(response.status == 200)
                let revoked = try #require(try response.json()["revoked"] as? Int)
                #expect(revoked >= 300 + createdBeforeRequest.count)
                for token in createdBeforeRequest {
                    #expect(try await server.lookup(token, touch: false).status == 401)
                }
                try await Task.sleep(for: .milliseconds(100))
                load.stop.store(true, ordering: .relaxed)
                try await group.waitForAll()
            }
            // No orphans: every still-valid session is in the index.
            let listed = try await server.list(user: user, query: "?limit=1000").json()
            let indexed = Set((listed["sessions"] as? [[String: Any]] ?? []).compactMap { $0["handle"] as? String })
            var valid = 0
            for session in load.created.withLock({ $0 }) where try await server.lookup(session.token, touch: false).status == 200 {
                valid += 1
                #expect(indexed.contains(session.handle))
            }
            #expect(listed["total"] as? Int == valid)
        }
    }

    /// §5.5: concurrent merge patches lose nothing.
    @Test func concurrentPatchesLoseNothing() async throws {
        try await Sessiond.with { server in
            let session = try await server.create(user: "patchy")
            let writers = 24
            try await withThrowingTaskGroup(of: Int.self) { group in
                for index in 0..<writers {
                    group.addTask {
                        let response = try await server.request(.PATCH, "/v1/session", key: TestKeys.app,
                                                                headers: [("X-Session-Token", session.token)], json: ["k\(index)": index])
                        return response.status
                    }
                }
                for try await status in group { #expect(status == 200) }
            }
            let json = try await server.lookup(session.token).json()
            let data = try #require(json["data"] as? [String: Any])
            #expect(data.count == writers)
            for index in 0..<writers { #expect(data["k\(index)"] as? Int == index) }
            #expect(json["version"] as? Int == writers + 1)
        }
    }

    /// §5.4 and §5.6: what Redis holds is exactly a record and an index entry per session, and
    /// never the token, in text or as bytes.
    @Test func redisNeverHoldsTheToken() async throws {
        try await Sessiond.with { server in
            let session = try await server.create(["user_id": "secretive", "data": ["a": 1]])
            let rotated = try await server.request(.POST, "/v1/session/rotate", key: TestKeys.app, headers: [("X-Session-Token", session.token)])
            let token = try #require(try rotated.json()["token"] as? String)
            let keys = try await server.redisKeys()
            #expect(keys.count == 2)
            let tokenBytes = try #require(Data(base64Encoded: token.replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/") + "="))
            try await withRedis(server.redisTopology) { redis in
                for key in keys {
                    #expect(!key.contains(token) && !key.contains(session.token))
                    let type = try await redis.send("TYPE", key: key).string
                    let dump: [UInt8]
                    if type == "string" {
                        dump = try await redis.send("GET", key: key).bytes ?? []
                    } else {
                        dump = try await redis.send("ZRANGE", key: key, "0", "-1").array?.flatMap { $0.bytes ?? [] } ?? []
                    }
                    let text = String(decoding: dump, as: UTF8.self)
                    #expect(!text.contains(token) && !text.contains(session.token))
                    #expect(Data(dump).range(of: tokenBytes) == nil)
                    #expect(try await redis.send("PTTL", key: key).integer ?? -1 > 0, "every key has a TTL")
                }
            }
        }
    }

    /// §5.6: captured logs of a busy run hold no token and no API key, even a wrong one.
    @Test func logsHoldNoSecrets() async throws {
        let logs = LogCapture()
        let wrongKey = "wrong-key-" + UUID().uuidString
        let tokens = try await Sessiond.with(logs: logs) { server in
            var seen = [String]()
            let session = try await server.create(["user_id": "logged", "data": ["a": 1]])
            seen.append(session.token)
            _ = try await server.lookup(session.token)
            _ = try await server.request(.PATCH, "/v1/session", key: TestKeys.app, headers: [("X-Session-Token", session.token)], json: ["b": 2])
            let rotated = try await server.request(.POST, "/v1/session/rotate", key: TestKeys.app, headers: [("X-Session-Token", session.token)])
            if let token = try rotated.json()["token"] as? String { seen.append(token) }
            _ = try await server.request(.GET, "/v1/session", key: wrongKey, headers: [("X-Session-Token", session.token)])
            _ = try await server.request(.GET, "/v1/session", key: TestKeys.reader, headers: [("X-Session-Token", String(session.token.dropLast()) + "!")])
            _ = try await server.request(.DELETE, "/v1/session", key: TestKeys.app, headers: [("Cookie", "__Host-session=\(seen[1])")])
            return seen
        }
        let text = logs.text
        #expect(text.contains("\"route\":\"/v1/session\""), "the capture did record request lines")
        for secret in tokens + [TestKeys.reader, TestKeys.app, TestKeys.admin, wrongKey] {
            #expect(!text.contains(secret))
            #expect(!text.contains(String(secret.prefix(20))))
        }
    }
}

/// Sessions created by the background load of the force-logout test.
private final class CreateLoad: Sendable {
    let created = Mutex<[Sessiond.CreatedSession]>([])
    let stop = Atomic<Bool>(false)
}
