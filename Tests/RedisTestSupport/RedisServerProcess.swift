import Foundation
import NIOCore
import NIOPosix
import RedisClient
import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A private `redis-server` for tests that kill, pause, restart or reconfigure Redis, so the
/// shared test server is never disturbed. It runs from PATH on a loopback port, in its own
/// temporary directory, without persistence (`--save '' --appendonly no`).
///
/// Use `RedisServerProcess.withServer { ... }`: the server is killed when the body ends, whether
/// it returned or threw. `deinit` kills it too, as a last resort.
public final class RedisServerProcess: Sendable {
    public let port: Int
    let extraArgs: [String]
    /// The port takes TLS connections only (`--port 0 --tls-port <port>`).
    let tls: Bool
    /// Its `--dir`: where a save or an AOF goes, and what `restart()` starts from.
    public let directory: URL
    private let process = Mutex<Process?>(nil)

    private init(port: Int, extraArgs: [String], tls: Bool, directory: URL) {
        self.port = port
        self.extraArgs = extraArgs
        self.tls = tls
        self.directory = directory
    }

    deinit {
        stop()
    }

    /// A client configuration for this server (no password, database 0).
    public var configuration: RedisConfiguration {
        RedisConfiguration(host: "127.0.0.1", port: port)
    }

    public var url: String { "redis://127.0.0.1:\(port)/0" }

    /// Starts a server on `port`, or on a free port (retrying when another process takes the
    /// port first), and waits until it says it is ready. With `tls`, the port takes TLS
    /// connections only; `extraArgs` name the certificates.
    public static func start(port: Int? = nil, extraArgs: [String] = [], tls: Bool = false) async throws -> RedisServerProcess {
        var lastError: (any Error)?
        for _ in 0..<(port == nil ? 5 : 1) {
            let chosen: Int
            if let port { chosen = port } else { chosen = try await freePort() }
            let directory = FileManager.default.temporaryDirectory
                .appendingPathComponent("sessiond-redis-test-\(UUID().uuidString)", isDirectory: true)
            try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
            let server = RedisServerProcess(port: chosen, extraArgs: extraArgs, tls: tls, directory: directory)
            do {
                try await server.launch()
                return server
            } catch {
                server.stop()
                lastError = error
            }
        }
        throw lastError ?? RedisServerError("redis-server did not start")
    }

    /// Runs `body` with a fresh server and always stops the server afterwards.
    public static func withServer<T>(
        extraArgs: [String] = [],
        _ body: (RedisServerProcess) async throws -> T
    ) async throws -> T {
        let server = try await start(extraArgs: extraArgs)
        defer { server.stop() }
        return try await body(server)
    }

    /// Kills the server with SIGKILL (no clean shutdown, sockets reset by the kernel) and waits
    /// for it to exit. The temporary directory stays, for `restart()`.
    public func kill() {
        process.withLock { process in
            guard let running = process else { return }
            if running.isRunning {
                sendKillSignal(to: running.processIdentifier)
            }
            running.waitUntilExit()
            process = nil
        }
    }

    /// Kills the server (if running) and starts a new one on the same port with the same
    /// arguments and directory.
    public func restart() async throws {
        kill()
        try await launch()
    }

    /// SIGSTOP: the server keeps its connections but answers nothing (a stalled replica).
    public func pause() { signal(SIGSTOP) }

    /// SIGCONT after `pause()`.
    public func resume() { signal(SIGCONT) }

    private func signal(_ number: Int32) {
        process.withLock { process in
            guard let running = process, running.isRunning else { return }
            #if canImport(Glibc)
            _ = Glibc.kill(running.processIdentifier, number)
            #elseif canImport(Darwin)
            _ = Darwin.kill(running.processIdentifier, number)
            #endif
        }
    }

    /// Kills the server and removes its directory. Safe to call more than once.
    public func stop() {
        kill()
        try? FileManager.default.removeItem(at: directory)
    }

    public var isRunning: Bool {
        process.withLock { $0?.isRunning ?? false }
    }

    private var logFile: URL { directory.appendingPathComponent("redis.log") }

    private func launch() async throws {
        // SESSIOND_TEST_REDIS_SERVER names another server with redis-server's flags
        // (scripts/test-valkey: valkey-server).
        let executable = try ProcessInfo.processInfo.environment["SESSIOND_TEST_REDIS_SERVER"].map { URL(fileURLWithPath: $0) }
            ?? Self.findExecutable("redis-server")
        let listening = tls ? ["--port", "0", "--tls-port", String(port)] : ["--port", String(port)]
        let arguments = listening + [
            "--bind", "127.0.0.1",
            "--dir", directory.path,
            "--save", "",
            "--appendonly", "no",
            "--daemonize", "no",
            "--logfile", logFile.path,
        ] + extraArgs
        // Readiness is the server's own log line, not a TCP connect: under a parallel suite another
        // process may take the port first, and its listener would answer the connect. A restart
        // appends to the same log, so only a line after the earlier ones counts.
        let readyBefore = readyLines()
        try process.withLock { process in
            let new = Process()
            new.executableURL = executable
            new.arguments = arguments
            new.standardInput = FileHandle.nullDevice
            new.standardOutput = FileHandle.nullDevice
            new.standardError = FileHandle.nullDevice
            try new.run()
            process = new
        }
        let deadline = ContinuousClock.now + .seconds(10)
        while ContinuousClock.now < deadline {
            guard isRunning else {
                kill()
                throw RedisServerError("redis-server on port \(port) exited during start-up\n\(logTail())")
            }
            if readyLines() > readyBefore { return }
            try await Task.sleep(for: .milliseconds(20))
        }
        kill()
        throw RedisServerError("redis-server on port \(port) was not ready within 10 s\n\(logTail())")
    }

    /// How many times the log says the server is ready (it does once its ports are bound).
    private func readyLines() -> Int {
        guard let text = try? String(contentsOf: logFile, encoding: .utf8) else { return 0 }
        return text.components(separatedBy: "Ready to accept connections").count - 1
    }

    private func logTail() -> String {
        guard let text = try? String(contentsOf: logFile, encoding: .utf8) else { return "(no log)" }
        return text.split(separator: "\n").suffix(20).joined(separator: "\n")
    }

    /// A loopback TCP port that nobody listens on right now.
    public static func freePort() async throws -> Int {
        let channel = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .bind(host: "127.0.0.1", port: 0)
            .get()
        let port = channel.localAddress?.port
        try await channel.close()
        guard let port else { throw RedisServerError("could not pick a free port") }
        return port
    }

    static func findExecutable(_ name: String) throws -> URL {
        let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/local/bin:/usr/bin:/bin"
        for directory in path.split(separator: ":") {
            let candidate = URL(fileURLWithPath: String(directory)).appendingPathComponent(name)
            if FileManager.default.isExecutableFile(atPath: candidate.path) { return candidate }
        }
        throw RedisServerError("\(name) not found in PATH (\(path)); install it (scripts/test does)")
    }
}

private func sendKillSignal(to pid: Int32) {
    #if canImport(Glibc)
    _ = Glibc.kill(pid, SIGKILL)
    #elseif canImport(Darwin)
    _ = Darwin.kill(pid, SIGKILL)
    #endif
}

extension RedisConfiguration {
    /// Generous timeouts for tests that are not about timeouts: the whole suite (and maybe a
    /// build) shares two cores, and a 1 s default would fail tests for the wrong reason.
    public var forTests: RedisConfiguration {
        var configuration = self
        configuration.connectTimeout = .seconds(5)
        configuration.commandTimeout = .seconds(10)
        // A test reads what is in Redis now, never a cached copy.
        configuration.nearCache = nil
        return configuration
    }
}

public struct RedisServerError: Error, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}
