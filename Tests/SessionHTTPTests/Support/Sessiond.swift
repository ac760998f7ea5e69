import Foundation
import Hummingbird
import Logging
import NIOCore
import NIOHTTP1
import NIOPosix
import RedisClient
import RedisTestSupport
import ServiceLifecycle
import SessionHTTP
import Synchronization
import Testing

/// API keys the test servers accept, one per role.
enum TestKeys {
    static let reader = "reader-key-0123456789abcdefghij"
    static let app = "app-key-0123456789abcdefghijklmn"
    static let admin = "admin-key-0123456789abcdefghijkl"
    static var all: String { "reader:\(reader),app:\(app),admin:\(admin)" }
}

/// Collects every JSON log line a test server writes, to check that no secret leaks.
final class LogCapture: Sendable {
    private let lines = Mutex<[String]>([])

    var output: JSONLineOutput {
        JSONLineOutput { line in
            let text = String(decoding: line, as: UTF8.self)
            self.lines.withLock { $0.append(text) }
        }
    }

    var text: String { lines.withLock { $0.joined() } }
}

/// Which shared Redis the HTTP tests run against, from `SESSIOND_TEST_DEPLOYMENT`: `single`
/// (the default, SESSIOND_TEST_REDIS_URL), `cluster` (SESSIOND_TEST_CLUSTER_URLS) or `sentinel`
/// (SESSIOND_TEST_SENTINELS and SESSIOND_TEST_SENTINEL_MASTER). `scripts/test` starts all three
/// and runs the HTTP suite once against each.
enum TestDeployment {
    static var name: String { ProcessInfo.processInfo.environment["SESSIOND_TEST_DEPLOYMENT"] ?? "single" }

    /// The SESSIOND_* values that point sessiond at the shared deployment.
    static func settings() throws -> [String: String] {
        switch name {
        case "single":
            return ["SESSIOND_REDIS_URL": try environment("SESSIOND_TEST_REDIS_URL")]
        case "cluster":
            return ["SESSIOND_REDIS_URL": try environment("SESSIOND_TEST_CLUSTER_URLS")]
        case "sentinel":
            return [
                // Sentinel mode takes only credentials and the database from the URL.
                "SESSIOND_REDIS_URL": "redis://127.0.0.1:6379/0",
                "SESSIOND_REDIS_SENTINELS": try environment("SESSIOND_TEST_SENTINELS"),
                "SESSIOND_REDIS_MASTER_NAME": try environment("SESSIOND_TEST_SENTINEL_MASTER"),
            ]
        default:
            throw TestSetupError("SESSIOND_TEST_DEPLOYMENT must be single, cluster or sentinel, not \(name)")
        }
    }

    private static func environment(_ variable: String) throws -> String {
        guard let value = ProcessInfo.processInfo.environment[variable], !value.isEmpty else {
            throw TestSetupError("\(variable) is not set: run the tests with scripts/test")
        }
        return value
    }
}

struct TestSetupError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

/// A real sessiond (the application the executable runs) on a free loopback port.
struct Sessiond: Sendable {
    let client: HTTPTestClient
    let keyPrefix: String
    /// Where this server's Redis is, for looking at what it stored.
    let redisTopology: RedisTopologyConfiguration

    /// Runs sessiond with its own key prefix on the shared deployment (or the single Redis at
    /// `redisURL`), calls `body`,
    /// then shuts it down. `settings` overrides SESSIOND_* values.
    static func with<T: Sendable>(
        redisURL: String? = nil,
        keyPrefix: String = "test-\(UUID().uuidString.prefix(8)):",
        settings: [String: String] = [:],
        logs: LogCapture? = nil,
        waitForRedis: Bool = true,
        replicationTimeout: TimeAmount = .seconds(5),
        _ body: @Sendable (Sessiond) async throws -> T
    ) async throws -> T {
        var values = [
            "SESSIOND_HOST": "127.0.0.1", "SESSIOND_PORT": "0",
            "SESSIOND_API_KEYS": TestKeys.all, "SESSIOND_KEY_PREFIX": keyPrefix,
        ]
        values.merge(try redisURL.map { ["SESSIOND_REDIS_URL": $0] } ?? TestDeployment.settings()) { _, new in new }
        values.merge(settings) { _, new in new }
        var configuration = try ServiceConfiguration(values: values)
        // The whole suite runs in parallel on a small machine and shares one Redis: a command
        // can wait longer than production's 1 s there. Outages still answer fast, because a
        // dead server closes the connections (the outage test checks that bound).
        configuration.redis.commandTimeout = .seconds(10)
        // Likewise a replica's acknowledgement (WAIT) on a loaded machine: 5 s, not production's
        // 1 s, or a replica starved of CPU would turn a revoke into a 503.
        configuration.redis.replicationTimeout = replicationTimeout
        let capture = logs ?? LogCapture()
        let logger = Logger(label: "sessiond-test") { label in
            JSONLogHandler(label: label, level: .trace, output: capture.output)
        }
        let port = PortBox()
        let app = try await buildApplication(configuration: configuration, logger: logger) { channel in
            port.set(channel.localAddress?.port ?? 0)
        }
        return try await withThrowingTaskGroup(of: Void.self) { group in
            let serviceGroup = ServiceGroup(services: [app], logger: logger)
            group.addTask { try await serviceGroup.run() }
            defer { group.cancelAll() }
            let listening = try await port.wait()
            let server = Sessiond(client: HTTPTestClient(port: listening), keyPrefix: keyPrefix, redisTopology: configuration.redisTopology)
            if waitForRedis { try await server.waitUntilReady() }
            let result = try await body(server)
            await serviceGroup.triggerGracefulShutdown()
            return result
        }
    }

    func waitUntilReady() async throws {
        let deadline = ContinuousClock.now + .seconds(10)
        while ContinuousClock.now < deadline {
            if (try? await client.send(.GET, "/readyz"))?.status == 200 { return }
            try await Task.sleep(for: .milliseconds(20))
        }
        throw TestSetupError("sessiond did not become ready within 10 s")
    }

    // MARK: requests with the right key

    func request(
        _ method: HTTPMethod, _ path: String, key: String?, headers: [(String, String)] = [], json: Any? = nil
    ) async throws -> HTTPTestClient.Response {
        var all = headers
        if let key { all.append(("Authorization", "Bearer \(key)")) }
        var body: [UInt8]?
        if let json {
            body = JSONObject.bytes(json)
            all.append(("Content-Type", "application/json"))
        }
        return try await client.send(method, path, headers: all, body: body)
    }

    struct CreatedSession: Sendable {
        let token: String
        let handle: String
        let response: HTTPTestClient.Response
    }

    func create(_ fields: [String: Any]) async throws -> CreatedSession {
        let response = try await request(.POST, "/v1/sessions", key: TestKeys.app, json: fields)
        guard response.status == 201 else {
            throw TestSetupError("create answered \(response.status): \(response.text)")
        }
        let json = try response.json()
        guard let token = json["token"] as? String, let handle = json["handle"] as? String else {
            throw TestSetupError("create answer lacks token or handle: \(response.text)")
        }
        return CreatedSession(token: token, handle: handle, response: response)
    }

    func create(user: String) async throws -> CreatedSession {
        try await create(["user_id": user])
    }

    func lookup(_ token: String, touch: Bool = true) async throws -> HTTPTestClient.Response {
        try await request(.GET, touch ? "/v1/session" : "/v1/session?touch=false", key: TestKeys.reader, headers: [("X-Session-Token", token)])
    }

    func list(user: String, query: String = "") async throws -> HTTPTestClient.Response {
        try await request(.GET, "/v1/users/\(user)/sessions\(query)", key: TestKeys.admin)
    }

    /// The key of a session, as docs/redis-layout.md describes it.
    func sessionKey(_ handle: String) -> String {
        keyPrefix + "{" + handle.prefix(3) + "}" + handle.dropFirst(3)
    }

    /// The user index holding a session, as docs/redis-layout.md describes it.
    func indexKey(user: String, handle: String) -> String {
        keyPrefix + "{" + handle.prefix(3) + "}i:" + user
    }

    /// The deployment's routing key: the one key without a TTL, created on first use.
    var routingKeyName: String { keyPrefix + "{routing}key" }

    /// Every session and index key under this server's prefix (SCAN, never KEYS on a shared
    /// server); the routing key, which lives for the deployment's lifetime, is left out.
    func redisKeys() async throws -> [String] {
        try await allRedisKeys().filter { $0 != routingKeyName }
    }

    func allRedisKeys() async throws -> [String] {
        try await withRedis(redisTopology) { redis in try await redis.keys(matching: keyPrefix + "*") }
    }
}

/// A view of the deployment a test server uses, for looking at what sessiond stored: commands
/// go to the server holding their key; `keys(matching:)` scans every master.
struct TestRedis: Sendable {
    let deployment: any RedisDeployment

    func send(_ name: String, key: String, _ arguments: RedisArgument...) async throws -> RESPValue {
        try await deployment.send(RedisCommand(name, [RedisArgument(key)] + arguments), routingKey: RedisArgument(key))
    }

    /// SCAN, never KEYS on a shared server.
    func keys(matching pattern: String) async throws -> [String] {
        let servers: [RedisConfiguration]
        if let cluster = deployment as? RedisClusterClient {
            servers = cluster.masters.map { RedisConfiguration(host: $0.host, port: $0.port) }
        } else if let single = deployment as? RedisClient {
            let address = single.connectedAddress ?? RedisNodeAddress(host: single.configuration.host, port: single.configuration.port)
            var server = single.configuration
            (server.host, server.port) = (address.host, address.port)
            servers = [server]
        } else {
            throw TestSetupError("unknown deployment \(deployment)")
        }
        var keys = [String]()
        for server in servers {
            let connection = try await RedisConnection.connect(configuration: server.forTests, eventLoop: MultiThreadedEventLoopGroup.singleton.next())
            defer { connection.close() }
            var cursor = "0"
            repeat {
                let reply = try await connection.send(RedisCommand("SCAN", RedisArgument(cursor), "MATCH", RedisArgument(pattern), "COUNT", "1000"))
                guard let parts = reply.array, parts.count == 2, let next = parts[0].string, let batch = parts[1].array else {
                    throw TestSetupError("unexpected SCAN reply \(reply)")
                }
                cursor = next
                keys += batch.compactMap(\.string)
            } while cursor != "0"
        }
        return keys
    }
}

/// Runs `body` with a client of `topology`, for looking at what sessiond stored.
func withRedis<T: Sendable>(_ topology: RedisTopologyConfiguration, _ body: @Sendable (TestRedis) async throws -> T) async throws -> T {
    let inspecting: RedisTopologyConfiguration
    switch topology {
    case .seeds(let seeds): inspecting = .seeds(seeds.map(\.forTests))
    case .sentinel(let sentinels, let name, let server): inspecting = .sentinel(sentinels: sentinels, masterName: name, server: server.forTests)
    }
    let deployment = try await RedisDeployments.connect(inspecting, logger: Logger(label: "test-inspection") { _ in SwiftLogNoOpLogHandler() })
    return try await withThrowingTaskGroup(of: Void.self) { group in
        group.addTask { try await deployment.run() }
        defer { group.cancelAll() }
        let deadline = ContinuousClock.now + .seconds(10)
        while (try? await deployment.ping()) == nil {
            guard ContinuousClock.now < deadline else { throw TestSetupError("cannot reach \(deployment)") }
            try await Task.sleep(for: .milliseconds(20))
        }
        return try await body(TestRedis(deployment: deployment))
    }
}

private final class PortBox: Sendable {
    private let port = Mutex<Int?>(nil)

    func set(_ value: Int) { port.withLock { $0 = value } }

    func wait() async throws -> Int {
        let deadline = ContinuousClock.now + .seconds(10)
        while ContinuousClock.now < deadline {
            if let value = port.withLock({ $0 }) { return value }
            try await Task.sleep(for: .milliseconds(5))
        }
        throw TestSetupError("sessiond did not start listening within 10 s")
    }
}
