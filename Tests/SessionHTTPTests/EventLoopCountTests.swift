import Foundation
import RedisTestSupport
import Testing

/// The `sessiond` executable runs one event loop per CPU it may run on: under `taskset -c 0`
/// one loop, not one per CPU of the machine; `NIO_SINGLETON_GROUP_LOOP_COUNT` still decides
/// when it is set.
@Suite(.timeLimit(.minutes(1))) struct EventLoopCountTests {
    @Test func oneLoopPerCPUOfTheAffinityMask() async throws {
        #expect(try await eventLoops(cpus: "0", extra: [:]) == 1)
    }

    @Test func theNIOVariableStillDecides() async throws {
        #expect(try await eventLoops(cpus: "0", extra: ["NIO_SINGLETON_GROUP_LOOP_COUNT": "3"]) == 3)
    }

    /// Starts sessiond under `taskset -c CPUS`, waits until it answers a lookup, and counts its
    /// event-loop threads (NIO names them `NIO-SGLTN-<group>-#<n>`; the blocking pool is not started).
    private func eventLoops(cpus: String, extra: [String: String]) async throws -> Int {
        let port = try await RedisServerProcess.freePort()
        var environment = ProcessInfo.processInfo.environment.filter { !$0.key.hasPrefix("SESSIOND_") && !$0.key.hasPrefix("NIO_") }
        environment.merge(try TestDeployment.settings()) { _, new in new }
        environment.merge([
            "SESSIOND_HOST": "127.0.0.1", "SESSIOND_PORT": String(port), "SESSIOND_API_KEYS": TestKeys.all,
            "SESSIOND_KEY_PREFIX": "test-\(UUID().uuidString.prefix(8)):", "SESSIOND_LOG_LEVEL": "warning",
        ]) { _, new in new }
        environment.merge(extra) { _, new in new }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/taskset")
        process.arguments = ["-c", cpus, ShutdownTests.executable.path]
        process.environment = environment
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        defer { if process.isRunning { kill(process.processIdentifier, SIGKILL) } }

        let client = HTTPTestClient(port: port)
        let ready = ContinuousClock.now + .seconds(15)
        while (try? await client.send(.GET, "/v1/session", headers: [("Authorization", "Bearer \(TestKeys.reader)"), ("X-Session-Token", "x")]))?.status != 401 {
            guard ContinuousClock.now < ready, process.isRunning else { throw TestSetupError("sessiond did not start") }
            try await Task.sleep(for: .milliseconds(50))
        }
        let tasks = try FileManager.default.contentsOfDirectory(atPath: "/proc/\(process.processIdentifier)/task")
        let names = tasks.compactMap { try? String(contentsOfFile: "/proc/\(process.processIdentifier)/task/\($0)/comm", encoding: .utf8) }
        return names.filter { $0.hasPrefix("NIO-SGLTN-") }.count
    }
}
