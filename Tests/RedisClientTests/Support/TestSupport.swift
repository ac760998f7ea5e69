@_exported import RedisTestSupport
import Foundation
import NIOCore
import NIOPosix
import RedisClient
import Synchronization
import Testing

/// Where the shared test Redis is, set by `scripts/test`. Never flushed: every test uses its own
/// random keys.
enum SharedRedis {
    static let environmentVariable = "SESSIOND_TEST_REDIS_URL"

    static func url() throws -> String {
        let url = ProcessInfo.processInfo.environment[environmentVariable]
        return try #require(
            url,
            "\(environmentVariable) is not set: run the tests with scripts/test, which starts a throw-away redis-server and sets it"
        )
    }

    static func configuration() throws -> RedisConfiguration {
        try RedisConfiguration(url: url()).forTests
    }
}

/// A key nobody else uses: `test:<UUID>:<name>`.
func uniqueKey(_ name: String = "key") -> String {
    "test:\(UUID().uuidString):\(name)"
}

/// Runs `body` with a running `RedisClient`: `run()` in a child task, then (unless told not to)
/// waits up to 10 s for a connection (the whole test suite shares two cores). The client is cancelled when the body ends or throws.
func withRedisClient<T>(
    _ configuration: RedisConfiguration,
    waitForConnection: Bool = true,
    _ body: (RedisClient) async throws -> T
) async throws -> T {
    let client = RedisClient(configuration: configuration)
    return try await withThrowingTaskGroup(of: Void.self, returning: T.self) { group in
        group.addTask { try await client.run() }
        defer { group.cancelAll() }
        if waitForConnection {
            let connected = await client.waitUntilConnected(timeout: .seconds(10))
            try #require(connected, "RedisClient did not connect to \(configuration.host):\(configuration.port) within 10 s")
        }
        return try await body(client)
    }
}

/// Opens one plain connection (no pool), for checking what a client did from the outside.
func withRedisConnection<T>(
    _ configuration: RedisConfiguration,
    _ body: (RedisConnection) async throws -> T
) async throws -> T {
    let connection = try await RedisConnection.connect(
        configuration: configuration,
        eventLoop: MultiThreadedEventLoopGroup.singleton.next()
    )
    defer { connection.close() }
    return try await body(connection)
}

/// Retries `attempt` until it succeeds or `timeout` passes; returns the elapsed time of the
/// success, or records an issue with the last error and throws it.
@discardableResult
func eventually<T>(
    within timeout: Duration = .seconds(5),
    every interval: Duration = .milliseconds(50),
    _ what: String,
    _ attempt: () async throws -> T
) async throws -> T {
    let deadline = ContinuousClock.now + timeout
    var lastError: (any Error)?
    while true {
        do {
            return try await attempt()
        } catch {
            lastError = error
        }
        if ContinuousClock.now >= deadline { break }
        try await Task.sleep(for: interval)
    }
    Issue.record("\(what) did not succeed within \(timeout): last error \(String(describing: lastError))")
    throw lastError ?? RedisServerError("\(what) timed out")
}

struct NotYet: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

/// Waits until `CLIENT ID` has come back from `count` different connections, i.e. the whole
/// pool is up (commands rotate over the live connections).
func waitForPool(_ client: RedisClient, count: Int) async throws -> Set<Int64> {
    try await eventually("all \(count) pool connections up") {
        var ids = Set<Int64>()
        for _ in 0..<(count * 8) {
            if let id = try await client.send("CLIENT", "ID").integer { ids.insert(id) }
        }
        guard ids.count == count else { throw NotYet("saw \(ids.count) connections: \(ids)") }
        return ids
    }
}

/// A field of `INFO section`, e.g. `blocked_clients`.
func infoField(_ connection: RedisConnection, section: String, field: String) async throws -> String? {
    let info = try await connection.send(RedisCommand("INFO", RedisArgument(section))).string ?? ""
    for line in info.split(whereSeparator: \.isNewline) where line.hasPrefix(field + ":") {
        return String(line.dropFirst(field.count + 1))
    }
    return nil
}

extension Duration {
    var milliseconds: Double {
        let (seconds, attoseconds) = components
        return Double(seconds) * 1000 + Double(attoseconds) / 1e15
    }
}

/// Runs `operation` in an unstructured task and waits at most `timeout` for its result; nil when
/// the time is up. A command that never completes (a client bug: a promise nobody fails) then
/// fails the test instead of hanging the whole run; the stuck task is abandoned.
func withDeadline<T: Sendable>(
    _ timeout: Duration,
    _ operation: @escaping @Sendable () async -> T
) async -> T? {
    let once = ResumeOnce<T?>()
    return await withCheckedContinuation { continuation in
        once.install(continuation)
        Task { once.resume(with: await operation()) }
        Task {
            try? await Task.sleep(for: timeout)
            once.resume(with: nil)
        }
    }
}

private final class ResumeOnce<T: Sendable>: Sendable {
    private let continuation = Mutex<CheckedContinuation<T, Never>?>(nil)

    func install(_ continuation: CheckedContinuation<T, Never>) {
        self.continuation.withLock { $0 = continuation }
    }

    func resume(with value: T) {
        continuation.withLock { $0.take() }?.resume(returning: value)
    }
}

/// The outcome of one command: its reply, or the RedisClientError it failed with.
typealias CommandOutcome = Result<RESPValue, RedisClientError>

func outcome(_ command: () async throws -> RESPValue) async -> CommandOutcome {
    do {
        return .success(try await command())
    } catch let error as RedisClientError {
        return .failure(error)
    } catch {
        return .failure(RedisClientError(.unexpectedReply, "not a RedisClientError: \(error)"))
    }
}

extension Result where Failure == RedisClientError {
    var errorCode: RedisClientError.Code? {
        if case .failure(let error) = self { return error.code }
        return nil
    }
}
