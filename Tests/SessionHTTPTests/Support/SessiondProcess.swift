import Foundation
import RedisTestSupport

/// The built `sessiond` executable (beside this test bundle; the test target depends on it),
/// started as its own process on a free port against the test deployment, with its own key
/// prefix.
enum SessiondProcess {
    static var executable: URL {
        URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath().deletingLastPathComponent().appendingPathComponent("sessiond")
    }

    /// Starts it (through `launcher`, e.g. `taskset -c 0`, when given) and waits until `/readyz`
    /// answers 200. The caller kills it when done.
    static func startReady(
        extraEnvironment: [String: String] = [:], launcher: [String] = []
    ) async throws -> (process: Process, client: HTTPTestClient) {
        // The free port can be taken by another test's server before this one binds it; that
        // server then answers the probe while this one exits. A few tries, each on a new port.
        for _ in 1...3 {
            let port = try await RedisServerProcess.freePort()
            let process = try start(port: port, extraEnvironment: extraEnvironment, launcher: launcher)
            let client = HTTPTestClient(port: port)
            let ready = ContinuousClock.now + .seconds(15)
            while (try? await client.send(.GET, "/readyz"))?.status != 200 {
                guard ContinuousClock.now < ready, process.isRunning else {
                    if process.isRunning { kill(process.processIdentifier, SIGKILL) }
                    throw TestSetupError("sessiond did not become ready")
                }
                try await Task.sleep(for: .milliseconds(50))
            }
            if listens(pid: process.processIdentifier, port: port) { return (process, client) }
            if process.isRunning { kill(process.processIdentifier, SIGKILL) }
        }
        throw TestSetupError("another process held sessiond's port in 3 tries")
    }

    private static func start(port: Int, extraEnvironment: [String: String], launcher: [String]) throws -> Process {
        var environment = ProcessInfo.processInfo.environment.filter { !$0.key.hasPrefix("SESSIOND_") && !$0.key.hasPrefix("NIO_") }
        environment.merge(try TestDeployment.settings()) { _, new in new }
        environment.merge([
            "SESSIOND_HOST": "127.0.0.1", "SESSIOND_PORT": String(port), "SESSIOND_API_KEYS": TestKeys.all,
            "SESSIOND_KEY_PREFIX": "test-\(UUID().uuidString.prefix(8)):", "SESSIOND_LOG_LEVEL": "warning",
        ]) { _, new in new }
        environment.merge(extraEnvironment) { _, new in new }
        let process = Process()
        if let program = launcher.first {
            process.executableURL = URL(fileURLWithPath: program)
            process.arguments = Array(launcher.dropFirst()) + [executable.path]
        } else {
            process.executableURL = executable
        }
        process.environment = environment
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        return process
    }

    /// Whether process `pid` holds the listening TCP socket of `port` (IPv4): the socket's inode
    /// from `/proc/net/tcp` among the process's descriptors.
    private static func listens(pid: Int32, port: Int) -> Bool {
        let local = String(format: ":%04X", port)
        let inodes = procFile("/proc/net/tcp").split(separator: "\n").dropFirst().compactMap { line -> Substring? in
            let fields = line.split(separator: " ")
            return fields.count > 9 && fields[1].hasSuffix(local) && fields[3] == "0A" ? fields[9] : nil
        }
        let descriptors = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/fd")) ?? []
        let sockets = Set(descriptors.compactMap { try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/\(pid)/fd/\($0)") })
        return inodes.contains { sockets.contains("socket:[\($0)]") }
    }

    /// The whole of a /proc file: `String(contentsOfFile:)` reads only its first page.
    private static func procFile(_ path: String) -> String {
        let descriptor = open(path, O_RDONLY)
        guard descriptor >= 0 else { return "" }
        defer { close(descriptor) }
        var bytes = [UInt8](), chunk = [UInt8](repeating: 0, count: 65536)
        while case let count = read(descriptor, &chunk, chunk.count), count > 0 { bytes += chunk[..<count] }
        return String(decoding: bytes, as: UTF8.self)
    }
}
