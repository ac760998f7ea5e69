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
        let port = try await RedisServerProcess.freePort()
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

        let client = HTTPTestClient(port: port)
        let ready = ContinuousClock.now + .seconds(15)
        while (try? await client.send(.GET, "/readyz"))?.status != 200 {
            guard ContinuousClock.now < ready, process.isRunning else {
                if process.isRunning { kill(process.processIdentifier, SIGKILL) }
                throw TestSetupError("sessiond did not become ready")
            }
            try await Task.sleep(for: .milliseconds(50))
        }
        return (process, client)
    }
}
