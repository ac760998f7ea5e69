import Foundation
import NIOPosix
import RedisClient
import Synchronization
import Testing

/// docs/events.md: every revocation, force-logout, rotation and cap eviction is published on
/// `<prefix>events`, with handles and never a token, heard here by a real subscriber
/// connection on the deployment under test.
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

/// A subscriber connection of the project's Redis client, in this process: each published
/// payload is kept in order. (Not a `redis-cli SUBSCRIBE` child: launching one crashed inside
/// Foundation's `Process.run` on a loaded CI machine.)
private final class Subscriber: Sendable {
    private let connection: RedisConnection
    private let received: Received

    private init(connection: RedisConnection, received: Received) {
        self.connection = connection
        self.received = received
    }

    static func start(channel: String, topology: RedisTopologyConfiguration) async throws -> Subscriber {
        let (host, port) = try await address(of: topology)
        let received = Received()
        let connection = try await RedisConnection.connect(
            configuration: RedisConfiguration(host: host, port: port),
            eventLoop: MultiThreadedEventLoopGroup.singleton.next()
        ) { message in
            guard case .array(let parts) = message, let payload = parts.last?.bytes else { return }
            received.payloads.withLock { $0.append(String(decoding: payload, as: UTF8.self)) }
        }
        let reply = try await connection.send(RedisCommand("SUBSCRIBE", RedisArgument(channel)))
        guard case .array(let parts) = reply, parts.first?.bytes == Array("subscribe".utf8) else {
            connection.close()
            throw TestSetupError("SUBSCRIBE \(channel) at \(host):\(port) answered \(reply)")
        }
        return Subscriber(connection: connection, received: received)
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

    /// The payloads received so far, waiting up to 10 s for `count` of them.
    func messages(count: Int) async throws -> [String] {
        let deadline = ContinuousClock.now + .seconds(10)
        while true {
            let payloads = received.payloads.withLock { $0 }
            if payloads.count >= count || ContinuousClock.now >= deadline { return payloads }
            try await Task.sleep(for: .milliseconds(20))
        }
    }

    func stop() {
        connection.close()
    }
}

/// Where the subscriber's handler puts what it hears (the handler runs on the connection's loop).
private final class Received: Sendable {
    let payloads = Mutex<[String]>([])
}
