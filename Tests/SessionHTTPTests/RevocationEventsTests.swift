import Foundation
import RedisClient
import Testing

/// docs/events.md: every revocation, force-logout, rotation and cap eviction is published on
/// `<prefix>events`, with handles and never a token, heard here by a real subscriber
/// (`redis-cli SUBSCRIBE`) on the deployment under test.
@Suite struct RevocationEventsTests {
    @Test func everyWayASessionEndsIsPublished() async throws {
        let user = "events-\(UUID().uuidString.prefix(8))"
        try await Sessiond.with(settings: ["SESSIOND_MAX_SESSIONS_PER_USER": "2"]) { server in
            let subscriber = try await Subscriber.start(channel: server.keyPrefix + "events", topology: server.redisTopology)
            defer { subscriber.stop() }
            let first = try await server.create(user: user)
            let second = try await server.create(user: user)
            let third = try await server.create(user: user)  // over the cap: `first` goes
            let rotated = try await server.request(.POST, "/v1/session/rotate", key: TestKeys.app, headers: [("X-Session-Token", second.token)])
            let rotatedJSON = try rotated.json()
            let newToken = try #require(rotatedJSON["token"] as? String)
            let newHandle = try #require(rotatedJSON["handle"] as? String)
            _ = try await server.request(.DELETE, "/v1/session", key: TestKeys.app, headers: [("X-Session-Token", newToken)])
            _ = try await server.request(.DELETE, "/v1/sessions/\(third.handle)", key: TestKeys.admin)
            let fourth = try await server.create(user: user)
            let fifth = try await server.create(user: user)
            _ = try await server.request(.DELETE, "/v1/users/\(user)/sessions?except=\(fifth.handle)", key: TestKeys.admin)
            // A revocation of nothing publishes nothing.
            _ = try await server.request(.DELETE, "/v1/session", key: TestKeys.app, headers: [("X-Session-Token", first.token)])

            let events = try await subscriber.messages(count: 5)
            let expected: [(reason: String, handles: [String])] = [
                ("cap", [first.handle]), ("rotate", [second.handle]), ("logout", [newHandle]),
                ("admin", [third.handle]), ("force_logout", [fourth.handle]),
            ]
            #expect(events.count == expected.count)
            for (event, want) in zip(events, expected) {
                let json = try #require(try JSONSerialization.jsonObject(with: Data(event.utf8)) as? [String: Any], "\(event)")
                #expect(json["event"] as? String == "revoked")
                #expect(json["reason"] as? String == want.reason)
                #expect(json["handles"] as? [String] == want.handles, "\(want.reason): \(event)")
                #expect(json["user_id"] as? String == user)
                #expect((json["time_ms"] as? Double ?? 0) > 1.7e12)
                for token in [first.token, second.token, third.token, fourth.token, fifth.token, newToken] {
                    #expect(!event.contains(token))
                }
            }
            try await Task.sleep(for: .milliseconds(200))
            #expect(try await subscriber.messages(count: 5).count == 5, "nothing more was published")
        }
    }
}

/// `redis-cli SUBSCRIBE` writing to a file: one line per reply element.
private struct Subscriber {
    let process: Process
    let output: URL

    static func start(channel: String, topology: RedisTopologyConfiguration) async throws -> Subscriber {
        let (host, port) = try await address(of: topology)
        let output = FileManager.default.temporaryDirectory.appendingPathComponent("events-\(UUID().uuidString).txt")
        guard FileManager.default.createFile(atPath: output.path, contents: nil) else { throw TestSetupError("cannot create \(output.path)") }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["redis-cli", "-h", host, "-p", String(port), "SUBSCRIBE", channel]
        process.standardOutput = try FileHandle(forWritingTo: output)
        process.standardError = FileHandle.nullDevice
        try process.run()
        let subscriber = Subscriber(process: process, output: output)
        let deadline = ContinuousClock.now + .seconds(10)
        while subscriber.lines().count < 3 {
            guard ContinuousClock.now < deadline, process.isRunning else {
                subscriber.stop()
                throw TestSetupError("redis-cli did not subscribe to \(channel) at \(host):\(port)")
            }
            try await Task.sleep(for: .milliseconds(20))
        }
        return subscriber
    }

    /// A server of the deployment: any node hears a classic PUBLISH (a cluster's bus carries it
    /// to every node); with Sentinel, the current master.
    private static func address(of topology: RedisTopologyConfiguration) async throws -> (String, Int) {
        switch topology {
        case .seeds(let seeds):
            let seed = try #require(seeds.first)
            return (seed.host, seed.port)
        case .sentinel:
            return try await withRedis(topology) { redis in
                guard let client = redis.deployment as? RedisClient, let address = client.connectedAddress else {
                    throw TestSetupError("no master found through the Sentinels")
                }
                return (address.host, address.port)
            }
        }
    }

    func lines() -> [String] {
        let text = (try? String(contentsOf: output, encoding: .utf8)) ?? ""
        return text.split(separator: "\n", omittingEmptySubsequences: false).dropLast().map(String.init)
    }

    /// The payloads received so far, waiting up to 10 s for `count` of them.
    func messages(count: Int) async throws -> [String] {
        let deadline = ContinuousClock.now + .seconds(10)
        while true {
            // Three lines for the subscription, then three per message: "message", channel, payload.
            let received = lines().dropFirst(3)
            let payloads = stride(from: received.startIndex + 2, to: received.endIndex, by: 3).map { received[$0] }
            if payloads.count >= count || ContinuousClock.now >= deadline { return payloads }
            try await Task.sleep(for: .milliseconds(20))
        }
    }

    func stop() {
        // SIGKILL: the test process ignores SIGTERM (ServiceLifecycle watches it), and children
        // inherit that.
        if process.isRunning { kill(process.processIdentifier, SIGKILL) }
        process.waitUntilExit()
        try? FileManager.default.removeItem(at: output)
    }
}
