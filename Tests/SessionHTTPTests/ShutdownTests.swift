import Foundation
import Synchronization
import Testing

/// SIGTERM under load, to the real `sessiond` executable: it stops accepting, answers every
/// request it had started, closes Redis and exits 0 within its shutdown timeout. No client sees
/// a connection cut in the middle of an answer.
@Suite struct ShutdownTests {
    @Test func sigtermDrainsRequestsInFlightAndExitsZero() async throws {
        let (process, client) = try await SessiondProcess.startReady(extraEnvironment: ["SESSIOND_SHUTDOWN_TIMEOUT": "5"])
        defer { if process.isRunning { kill(process.processIdentifier, SIGKILL) } }

        let created = try await client.send(.POST, "/v1/sessions", headers: [("Authorization", "Bearer \(TestKeys.app)"), ("Content-Type", "application/json")],
                                            body: Array(#"{"user_id":"drain"}"#.utf8))
        let token = try #require(try created.json()["token"] as? String)

        let outcomes = Outcomes()
        try await withThrowingTaskGroup(of: Void.self) { group in
            for _ in 0..<8 {
                group.addTask {
                    while !outcomes.stop.load(ordering: .relaxed) {
                        do {
                            let response = try await client.send(.GET, "/v1/session", headers: [
                                ("Authorization", "Bearer \(TestKeys.reader)"), ("X-Session-Token", token),
                            ])
                            outcomes.record(response.status == 200 ? "200" : "status \(response.status)")
                        } catch HTTPTestClientError.closedMidResponse {
                            outcomes.record("cut mid-response")
                        } catch HTTPTestClientError.closedWithoutResponse {
                            outcomes.record("not served")
                        } catch {
                            outcomes.record("refused")
                        }
                    }
                }
            }
            // The load runs until it has had answers (a loaded machine may take a while).
            let warmUp = ContinuousClock.now + .seconds(10)
            while outcomes.count("200") < 20 && ContinuousClock.now < warmUp {
                try await Task.sleep(for: .milliseconds(50))
            }
            let before = outcomes.count("200")
            let signalled = ContinuousClock.now
            kill(process.processIdentifier, SIGTERM)
            while process.isRunning && ContinuousClock.now - signalled < .seconds(8) {
                try await Task.sleep(for: .milliseconds(10))
            }
            let exited = ContinuousClock.now - signalled
            // The load goes on until a new connection has been refused (at once, unless the
            // machine is loaded; a fixed 300 ms was not always enough in the cluster pass).
            let refusedBy = ContinuousClock.now + .seconds(5)
            while outcomes.count("refused") == 0 && ContinuousClock.now < refusedBy {
                try await Task.sleep(for: .milliseconds(20))
            }
            outcomes.stop.store(true, ordering: .relaxed)
            try await group.waitForAll()

            #expect(!process.isRunning, "sessiond exited within 8 s of SIGTERM")
            #expect(exited < .seconds(5), "well within its 5 s shutdown timeout: \(exited)")
            #expect(process.terminationStatus == 0)
            #expect(process.terminationReason == .exit)
            #expect(before >= 20, "the load ran before the signal")
            let counts = outcomes.all()
            #expect(counts["cut mid-response"] == nil, "no answer was cut: \(counts)")
            #expect(counts.keys.allSatisfy { ["200", "refused", "not served"].contains($0) }, "\(counts)")
            #expect(counts["refused", default: 0] > 0, "after the signal, new connections are refused: \(counts)")
        }
    }
}

private final class Outcomes: Sendable {
    let stop = Atomic<Bool>(false)
    private let counts = Mutex<[String: Int]>([:])

    func record(_ outcome: String) {
        counts.withLock { $0[outcome, default: 0] += 1 }
    }

    func count(_ outcome: String) -> Int { counts.withLock { $0[outcome, default: 0] } }

    func all() -> [String: Int] { counts.withLock { $0 } }
}
