import Foundation
import NIOPosix
import RedisClient
import RedisTestSupport
import Testing

/// docs/redis-acl.md: sessiond's whole API works as the least-privilege Redis user that page
/// defines (read from the page itself, so the two cannot drift apart), and that user is refused
/// what sessiond never needs.
@Suite struct RedisACLTests {
    /// The `ACL SETUSER` line of docs/redis-acl.md, as arguments.
    static func documentedRule() throws -> [String] {
        let page = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("docs/redis-acl.md")
        let text = try String(contentsOf: page, encoding: .utf8)
        let line = try #require(text.split(separator: "\n").first { $0.hasPrefix("ACL SETUSER sessiond ") })
        return line.split(separator: " ").map(String.init)
    }

    @Test func sessiondRunsAsTheDocumentedUser() async throws {
        let redis = try await RedisServerProcess.start()
        defer { redis.stop() }
        let password = "acl-\(UUID().uuidString)"
        let rule = try Self.documentedRule().map { $0 == ">CHANGE-ME" ? ">\(password)" : $0 }
        let admin = try await RedisConnection.connect(configuration: redis.configuration.forTests, eventLoop: MultiThreadedEventLoopGroup.singleton.next())
        defer { admin.close() }
        _ = try await admin.send(RedisCommand(rule[0], rule.dropFirst().map { RedisArgument($0) }))

        let url = "redis://sessiond:\(password)@127.0.0.1:\(redis.port)/0"
        try await Sessiond.with(redisURL: url, keyPrefix: "sessiond:", settings: ["SESSIOND_MAX_SESSIONS_PER_USER": "3"]) { server in
            var sessions = [Sessiond.CreatedSession]()
            for _ in 0..<4 { sessions.append(try await server.create(user: "acl")) }  // the 4th evicts the 1st
            #expect(try await server.lookup(sessions[0].token).status == 401)
            #expect(try await server.lookup(sessions[1].token).status == 200)
            let patch = try await server.request(.PATCH, "/v1/session", key: TestKeys.app, headers: [("X-Session-Token", sessions[1].token)], json: ["a": 1])
            #expect(patch.status == 200)
            let rotate = try await server.request(.POST, "/v1/session/rotate", key: TestKeys.app, headers: [("X-Session-Token", sessions[1].token)])
            #expect(rotate.status == 200)
            #expect(try await server.list(user: "acl").json()["total"] as? Int == 3)
            #expect(try await server.request(.GET, "/v1/sessions/\(sessions[2].handle)", key: TestKeys.admin).status == 200)
            #expect(try await server.request(.DELETE, "/v1/sessions/\(sessions[2].handle)", key: TestKeys.admin).status == 200)
            let logout = try await server.request(.DELETE, "/v1/session", key: TestKeys.app, headers: [("X-Session-Token", sessions[3].token)])
            #expect(try logout.json()["revoked"] as? Bool == true)
            let forced = try await server.request(.DELETE, "/v1/users/acl/sessions", key: TestKeys.admin)
            #expect(try forced.json()["revoked"] as? Int == 1)
            #expect(try await server.client.send(.GET, "/readyz").status == 200)
            #expect(try await MetricsTests.scrape(server).samples["sessiond_redis_up"] == 1)
        }

        // ACL DRYRUN asks Redis whether the user may run a command without running it: a wrong
        // rule can never flush or stop the server under test.
        func dryRun(_ command: [String]) async throws -> String {
            let reply = try await admin.send(RedisCommand("ACL", ["DRYRUN", "sessiond"] + command.map { RedisArgument($0) }))
            return reply.string ?? "\(reply)"
        }
        #expect(try await dryRun(["GET", "sessiond:x"]) == "OK", "the check itself: an allowed command passes")
        let refused: [[String]] = [
            ["FLUSHALL"], ["CONFIG", "GET", "*"], ["KEYS", "*"], ["SCAN", "0"], ["EVAL", "return 1", "0"],
            ["GET", "other-app:secret"], ["SET", "other-app:x", "1"], ["ACL", "LIST"], ["SHUTDOWN"],
        ]
        for command in refused {
            let answer = try await dryRun(command)
            #expect(answer != "OK" && answer.contains("no permissions"), "\(command[0]) is refused: \(answer)")
        }
    }
}
