import Foundation
import RedisTestSupport
import Testing

/// SPEC §5.8: a revocation is confirmed only once a replica has it. A stalled replica (SIGSTOP:
/// still listed by ROLE, acknowledging nothing) turns revocations into 503 within the WAIT bound,
/// while lookups, on other connections, keep answering; a retry after the replica is back is
/// confirmed before its 2xx.
@Suite(.enabled(if: TestDeployment.name == "single"))
struct ReplicationTests {
    @Test func revocationWaitsForTheReplicaAndLookupsDoNot() async throws {
        try await RedisServerProcess.withServer { master in
            try await RedisServerProcess.withServer(extraArgs: ["--replicaof", "127.0.0.1", String(master.port)]) { replica in
                try await waitForReplication(master: master)
                // A WAIT bound long enough that lookups are sure to run while the WAIT is pending.
                try await Sessiond.with(redisURL: master.url, replicationTimeout: .seconds(8)) { server in
                    let session = try await server.create(user: "replicated")
                    let other = try await server.create(user: "replicated")
                    // ROLE is read at connect and every second: let sessiond see the replica.
                    try await Task.sleep(for: .milliseconds(1500))
                    let confirmed = try await server.request(.DELETE, "/v1/session", key: TestKeys.app, headers: [("X-Session-Token", other.token)])
                    #expect(confirmed.status == 200)
                    let kept = try await server.create(user: "replicated")

                    replica.pause()
                    defer { replica.resume() }
                    let start = ContinuousClock.now
                    async let pendingRevoke = server.request(.DELETE, "/v1/session", key: TestKeys.app, headers: [("X-Session-Token", session.token)])
                    try await Task.sleep(for: .milliseconds(200))
                    // Lookups do not queue behind the WAIT: they use other connections.
                    for _ in 0..<20 { #expect(try await server.lookup(kept.token).status == 200) }
                    let lookupsDone = ContinuousClock.now - start
                    let revoke = try await pendingRevoke
                    let elapsed = ContinuousClock.now - start
                    #expect(revoke.status == 503, "no replica acknowledged: not confirmed (\(revoke.text))")
                    #expect(elapsed >= .milliseconds(7900), "the revoke waited for the WAIT bound: \(elapsed)")
                    #expect(elapsed < .seconds(14), "answered within the WAIT bound (8 s here): \(elapsed)")
                    #expect(lookupsDone < .seconds(7), "20 lookups ended while the WAIT was pending: \(lookupsDone)")
                    // The retry finds nothing to delete, and still answers 503 until the replica has it.
                    let retry = try await server.request(.DELETE, "/v1/session", key: TestKeys.app, headers: [("X-Session-Token", session.token)])
                    #expect(retry.status == 503)

                    replica.resume()
                    var final = 0
                    let deadline = ContinuousClock.now + .seconds(10)
                    while final != 200 && ContinuousClock.now < deadline {
                        final = try await server.request(.DELETE, "/v1/session", key: TestKeys.app, headers: [("X-Session-Token", session.token)]).status
                        if final != 200 { try await Task.sleep(for: .milliseconds(100)) }
                    }
                    #expect(final == 200, "confirmed once the replica acknowledges")
                    #expect(try await server.lookup(session.token).status == 401)
                }
            }
        }
    }

    private func waitForReplication(master: RedisServerProcess) async throws {
        let deadline = ContinuousClock.now + .seconds(10)
        while ContinuousClock.now < deadline {
            let info = try await runRedisCLI(["-p", String(master.port), "info", "replication"])
            if info.contains("connected_slaves:1") && info.contains("state=online") { return }
            try await Task.sleep(for: .milliseconds(50))
        }
        throw TestSetupError("the replica did not come online within 10 s")
    }
}
