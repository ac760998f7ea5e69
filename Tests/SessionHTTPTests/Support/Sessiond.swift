import Foundation
import Hummingbird
import Logging
import NIOCore
import NIOHTTP1
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
            let text = String(buffer: line)
            self.lines.withLock { $0.append(text) }
        }
    }

    var text: String { lines.withLock { $0.joined() } }
}

/// Where the shared test Redis is: `scripts/test` sets SESSIOND_TEST_REDIS_URL.
func sharedRedisURL() throws -> String {
    guard let url = ProcessInfo.processInfo.environment["SESSIOND_TEST_REDIS_URL"], !url.isEmpty else {
        throw TestSetupError("SESSIOND_TEST_REDIS_URL is not set: run the tests with scripts/test")
    }
    return url
}

struct TestSetupError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

/// A real sessiond (the application the executable runs) on a free loopback port.
struct Sessiond: Sendable {
    let client: HTTPTestClient
    let keyPrefix: String
    let redisURL: String

    /// Runs sessiond with its own key prefix on the shared Redis (or `redisURL`), calls `body`,
    /// then shuts it down. `settings` overrides SESSIOND_* values.
    static func with<T: Sendable>(
        redisURL: String? = nil,
        keyPrefix: String = "test-\(UUID().uuidString.prefix(8)):",
        settings: [String: String] = [:],
        logs: LogCapture? = nil,
        waitForRedis: Bool = true,
        _ body: @Sendable (Sessiond) async throws -> T
    ) async throws -> T {
        let url = try redisURL ?? sharedRedisURL()
        var values = [
            "SESSIOND_HOST": "127.0.0.1", "SESSIOND_PORT": "0", "SESSIOND_REDIS_URL": url,
            "SESSIOND_API_KEYS": TestKeys.all, "SESSIOND_KEY_PREFIX": keyPrefix,
        ]
        values.merge(settings) { _, new in new }
        var configuration = try ServiceConfiguration(values: values)
        // The whole suite runs in parallel on a small machine and shares one Redis: a command
        // can wait longer than production's 1 s there. Outages still answer fast, because a
        // dead server closes the connections (the outage test checks that bound).
        configuration.redis.commandTimeout = .seconds(10)
        let capture = logs ?? LogCapture()
        let logger = Logger(label: "sessiond-test") { label in
            JSONLogHandler(label: label, level: .trace, output: capture.output)
        }
        let port = PortBox()
        let app = buildApplication(configuration: configuration, logger: logger) { channel in
            port.set(channel.localAddress?.port ?? 0)
        }
        return try await withThrowingTaskGroup(of: Void.self) { group in
            let serviceGroup = ServiceGroup(services: [app], logger: logger)
            group.addTask { try await serviceGroup.run() }
            defer { group.cancelAll() }
            let listening = try await port.wait()
            let server = Sessiond(client: HTTPTestClient(port: listening), keyPrefix: keyPrefix, redisURL: url)
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

    /// Every Redis key under this server's prefix (SCAN, never KEYS on a shared server).
    func redisKeys() async throws -> [String] {
        try await withRedis(url: redisURL) { redis in
            var cursor = "0"
            var keys = [String]()
            repeat {
                let reply = try await redis.send("SCAN", RedisArgument(cursor), "MATCH", RedisArgument(keyPrefix + "*"), "COUNT", "1000")
                guard let parts = reply.array, parts.count == 2, let next = parts[0].string, let batch = parts[1].array else {
                    throw TestSetupError("unexpected SCAN reply \(reply)")
                }
                cursor = next
                keys += batch.compactMap(\.string)
            } while cursor != "0"
            return keys
        }
    }
}

/// Runs `body` with a connected RedisClient, for looking at what sessiond stored.
func withRedis<T: Sendable>(url: String, _ body: @Sendable (RedisClient) async throws -> T) async throws -> T {
    var configuration = try RedisConfiguration(url: url)
    configuration.commandTimeout = .seconds(10)
    let client = RedisClient(configuration: configuration)
    return try await withThrowingTaskGroup(of: Void.self) { group in
        group.addTask { try await client.run() }
        defer { group.cancelAll() }
        guard await client.waitUntilConnected(timeout: .seconds(5)) else {
            throw TestSetupError("cannot connect to Redis at \(url)")
        }
        return try await body(client)
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
