import Foundation
import NIOPosix
import RedisClient
import RedisTestSupport
import Testing

/// The key layout on a real 3-master cluster (the one `scripts/test` starts): one slot per user,
/// users spread over every master, and a move from one plain Redis to a cluster with
/// `redis-cli --cluster import` and no rewrite. Run once, with the single-server pass.
@Suite(.enabled(if: TestDeployment.name == "single"))
struct ClusterLayoutTests {
    private static func clusterURLs() throws -> String {
        guard let urls = ProcessInfo.processInfo.environment["SESSIOND_TEST_CLUSTER_URLS"] else {
            throw TestSetupError("SESSIOND_TEST_CLUSTER_URLS is not set: run the tests with scripts/test")
        }
        return urls
    }

    @Test func usersSpreadOverEveryMasterAndEachUserHasOneSlot() async throws {
        try await Sessiond.with(redisURL: try Self.clusterURLs()) { server in
            try await Self.checkSpreadAndSlots(server)
        }
    }

    private static func checkSpreadAndSlots(_ server: Sessiond) async throws {
        let sessions = try await createSessions(server, users: 120)
        for _ in 0..<4 { _ = try await server.create(user: "user-0") }
        var keysPerMaster = [Int: Int]()
        let masters: [RedisNodeAddress] = try await withRedis(server.redisTopology) { redis in
            guard let cluster = redis.deployment as? RedisClusterClient else { throw TestSetupError("not a cluster") }
            return cluster.masters
        }
        #expect(masters.count == 3)
        for master in masters {
            let connection = try await RedisConnection.connect(
                configuration: RedisConfiguration(host: master.host, port: master.port).forTests,
                eventLoop: MultiThreadedEventLoopGroup.singleton.next()
            )
            defer { connection.close() }
            var cursor = "0"
            repeat {
                let reply = try await connection.send(RedisCommand("SCAN", RedisArgument(cursor), "MATCH", RedisArgument(server.keyPrefix + "*"), "COUNT", "1000"))
                let parts = try #require(reply.array)
                cursor = try #require(parts[0].string)
                keysPerMaster[master.port, default: 0] += parts[1].array?.count ?? 0
            } while cursor != "0"
        }
        for master in masters {
            #expect(keysPerMaster[master.port, default: 0] >= 30, "master \(master) holds \(keysPerMaster[master.port, default: 0]) keys of 120 users")
        }
        // user-0: five sessions and the index, all under one hash tag, so one slot.
        let page = try await server.list(user: "user-0").json()
        let handles = try #require(page["sessions"] as? [[String: Any]]).compactMap { $0["handle"] as? String }
        #expect(handles.count == 5)
        let first = try #require(sessions.first { handles.contains($0.handle) })
        let tag = first.handle.prefix(3)
        #expect(handles.allSatisfy { $0.hasPrefix(tag) }, "one routing tag per user")
        let keys = try await server.redisKeys().filter { $0.hasPrefix(server.keyPrefix + "{" + tag + "}") }
        #expect(keys.contains(server.keyPrefix + "{" + tag + "}i:user-0"))
        let slots = Set(keys.map { HashSlot.of(Array($0.utf8)) })
        #expect(slots.count == 1, "user-0's keys are in slots \(slots)")
        #expect(keys.allSatisfy { $0.utf8.count <= 32 || $0.contains("}i:") }, "session keys stay within 32 bytes: \(keys)")
    }

    /// docs/redis-layout.md: the same layout on one plain Redis, so `redis-cli --cluster import`
    /// moves a deployment to a cluster; sessions, indexes and the routing key keep working.
    @Test func movesFromOneRedisToTheClusterWithClusterImport() async throws {
        let prefix = "import-\(UUID().uuidString.prefix(8)):"
        try await RedisServerProcess.withServer { single in
            let (sessions, revokedHandle) = try await Sessiond.with(redisURL: single.url, keyPrefix: prefix) { server in
                var sessions = try await createSessions(server, users: 40)
                for _ in 0..<3 { sessions.append(try await server.create(user: "user-1")) }
                let revoked = sessions.removeLast()
                #expect(try await server.request(.DELETE, "/v1/session", key: TestKeys.app, headers: [("X-Session-Token", revoked.token)]).status == 200)
                return (sessions, revoked.handle)
            }
            let seed = try #require(try Self.clusterURLs().split(separator: ",").first).dropFirst("redis://".count)
            let output = try await runRedisCLI(["--cluster", "import", String(seed), "--cluster-from", "127.0.0.1:\(single.port)", "--cluster-copy"])
            #expect(!output.contains("ERR"), "import output: \(output.suffix(500))")
            try await Sessiond.with(redisURL: try Self.clusterURLs(), keyPrefix: prefix) { server in
                for session in sessions {
                    #expect(try await server.lookup(session.token).status == 200, "session \(session.handle) survived the move")
                }
                let list = try await server.list(user: "user-1").json()
                #expect(list["total"] as? Int == 3)
                let listed = (list["sessions"] as? [[String: Any]])?.compactMap { $0["handle"] as? String } ?? []
                #expect(!listed.contains(revokedHandle))
                // The routing key came along: a new session of user-1 joins the same index.
                let fresh = try await server.create(user: "user-1")
                #expect(try await server.list(user: "user-1").json()["total"] as? Int == 4)
                let logout = try await server.request(.DELETE, "/v1/users/user-1/sessions", key: TestKeys.admin)
                #expect(try logout.json()["revoked"] as? Int == 4)
                #expect(try await server.lookup(fresh.token).status == 401)
            }
        }
    }
}

/// Runs redis-cli with `arguments` and returns what it printed; throws on a non-zero exit.
func runRedisCLI(_ arguments: [String]) async throws -> String {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    process.arguments = ["redis-cli"] + arguments
    let output = Pipe()
    process.standardOutput = output
    process.standardError = output
    process.standardInput = FileHandle.nullDevice
    try process.run()
    let data = try await onOwnThread {
        let data = try output.fileHandleForReading.readToEnd() ?? Data()
        process.waitUntilExit()
        return data
    }
    let text = String(decoding: data, as: UTF8.self)
    guard process.terminationStatus == 0 else {
        throw TestSetupError("redis-cli \(arguments.joined(separator: " ")) exited \(process.terminationStatus): \(text.suffix(500))")
    }
    return text
}
