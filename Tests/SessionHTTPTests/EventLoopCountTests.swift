import Foundation
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

    /// Starts sessiond under `taskset -c CPUS`, waits until it is ready, and counts its
    /// event-loop threads (NIO names them `NIO-SGLTN-<group>-#<n>`; the blocking pool is not started).
    private func eventLoops(cpus: String, extra: [String: String]) async throws -> Int {
        let (process, _) = try await SessiondProcess.startReady(extraEnvironment: extra, launcher: ["/usr/bin/taskset", "-c", cpus])
        defer { if process.isRunning { kill(process.processIdentifier, SIGKILL) } }
        let tasks = try FileManager.default.contentsOfDirectory(atPath: "/proc/\(process.processIdentifier)/task")
        let names = tasks.compactMap { try? String(contentsOfFile: "/proc/\(process.processIdentifier)/task/\($0)/comm", encoding: .utf8) }
        return names.filter { $0.hasPrefix("NIO-SGLTN-") }.count
    }
}
