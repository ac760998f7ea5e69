import Foundation
import NIOPosix
import RedisClient
import RedisTestSupport
import Synchronization
import Testing

/// SPEC §5.7 and §5.8 under real faults, each on a private topology the test may break: a
/// resharding, a master SIGKILLed on a cluster, a Sentinel failover. Every answer is counted: no
/// wrong answer (a revoked session valid again, a live one refused), 503 only while the data's
/// master is away, and recovery without a restart. They load both cores for a minute or two, so
/// they run only in a pass of their own (SESSIOND_TEST_FAILOVER=1, which scripts/test sets for
/// its failover pass and when its arguments name FailoverTests), never beside the timing tests.
@Suite(
    .serialized,
    .enabled(
        if: TestDeployment.name == "single" && ProcessInfo.processInfo.environment["SESSIOND_TEST_FAILOVER"] == "1",
        "runs in its own pass: scripts/test, or scripts/test --filter FailoverTests"
    )
)
struct FailoverTests {
    @Test func reshardingUnderLookupLoadAnswersEverything() async throws {
        let cluster = try await RedisClusterTopology.start()
        defer { cluster.stop() }
        try await Sessiond.with(redisURL: cluster.seeds) { server in
            let sessions = try await createSessions(server, users: 300)
            let load = MixedLoad(server: server, live: sessions, revoked: [])
            let done = Atomic<Bool>(false)
            async let traffic: Void = load.run(workers: 8, revokes: false) { done.load(ordering: .relaxed) }
            let from = try await cluster.redisCLI(["-p", String(cluster.masterPorts[0]), "cluster", "myid"]).trimmingCharacters(in: .whitespacesAndNewlines)
            let to = try await cluster.redisCLI(["-p", String(cluster.masterPorts[1]), "cluster", "myid"]).trimmingCharacters(in: .whitespacesAndNewlines)
            _ = try await cluster.redisCLI([
                "--cluster", "reshard", "127.0.0.1:\(cluster.masterPorts[0])",
                "--cluster-from", from, "--cluster-to", to, "--cluster-slots", "3000", "--cluster-yes",
            ])
            try await Task.sleep(for: .milliseconds(500))
            done.store(true, ordering: .relaxed)
            await traffic
            let counts = load.counts
            #expect(counts.wrong.isEmpty, "wrong answers: \(counts.wrong.prefix(5))")
            #expect(counts.unavailable == 0, "a resharding is not an outage: \(counts.unavailable) answers were 503")
            #expect(counts.answered > 300, "the load ran (\(counts.answered) answers)")
            try await load.verifyFinalState()
            // The moved slots hold some users' sessions now on the other master, and the index
            // operations still find them.
            let list = try await server.list(user: "user-7")
            #expect(list.status == 200)
            #expect(try list.json()["total"] as? Int == 1)
        }
    }

    @Test func clusterMasterKilledUnderMixedLoad() async throws {
        let cluster = try await RedisClusterTopology.start()
        defer { cluster.stop() }
        try await Sessiond.with(redisURL: cluster.seeds) { server in
            let victim = cluster.masterPorts[0]
            let victimSlots = try await slots(ownedBy: victim, cluster: cluster)
            let counts = try await survivesFailover("cluster", server: server, users: 300, recoveryBudget: .seconds(20)) {
                try await cluster.kill(port: victim)
            } recovered: { probes in
                // A session on the lost master answers again once its replica took over.
                let probe = try #require(probes.first { victimSlots.contains(slot(of: $0, server: server)) })
                return try await server.lookup(probe.token, touch: false).status == 200
            }
            let elsewhere = counts.unavailableHandles.filter { handle in
                !victimSlots.contains(HashSlot.of(Array(server.sessionKey(handle).utf8)))
            }
            #expect(elsewhere.isEmpty, "healthy slots kept serving; 503 for \(elsewhere.count) sessions of other masters")
        }
    }

    @Test func sentinelFailoverUnderMixedLoad() async throws {
        let topology = try await RedisSentinelTopology.start()
        defer { topology.stop() }
        let settings = [
            "SESSIOND_REDIS_URL": "redis://127.0.0.1:6379/0",
            "SESSIOND_REDIS_SENTINELS": topology.sentinels,
            "SESSIOND_REDIS_MASTER_NAME": topology.masterName,
        ]
        try await Sessiond.with(settings: settings) { server in
            _ = try await survivesFailover("sentinel", server: server, users: 200, recoveryBudget: .seconds(30)) {
                try await topology.kill(port: topology.masterPort)
            } recovered: { _ in
                try await server.request(.POST, "/v1/sessions", key: TestKeys.app, json: ["user_id": "probe"]).status == 201
            }
        }
    }

    /// Creates a session for each of `users` users and revokes a fifth of them (confirmed 200),
    /// runs mixed load, calls `fault` after 1 s and polls `recovered` (given another fifth, which
    /// the load leaves alone) until it says so. Checks:
    /// no wrong answer, 503 only between the fault and the recovery, recovery within
    /// `recoveryBudget`, and every session in its right state afterwards. Returns the tally.
    private func survivesFailover(
        _ label: String,
        server: Sessiond,
        users: Int,
        recoveryBudget: Duration,
        fault: () async throws -> Void,
        recovered: ([Sessiond.CreatedSession]) async throws -> Bool
    ) async throws -> MixedLoad.Tally {
        var sessions = try await createSessions(server, users: users)
        let revoked = Array(sessions.suffix(users / 5))
        sessions.removeLast(users / 5)
        // Probes tell recovery; the load never revokes them.
        let probes = Array(sessions.suffix(users / 5))
        sessions.removeLast(users / 5)
        for session in revoked {
            let response = try await server.request(.DELETE, "/v1/session", key: TestKeys.app, headers: [("X-Session-Token", session.token)])
            #expect(response.status == 200)
        }
        let load = MixedLoad(server: server, live: sessions, revoked: revoked)
        let done = Atomic<Bool>(false)
        async let traffic: Void = load.run(workers: 8) { done.load(ordering: .relaxed) }
        try await Task.sleep(for: .seconds(1))
        let faultAt = load.elapsed
        try await fault()
        let start = ContinuousClock.now
        var isRecovered = false
        while ContinuousClock.now - start < recoveryBudget {
            if try await recovered(probes) { isRecovered = true; break }
            try await Task.sleep(for: .milliseconds(50))
        }
        let recoveredAt = load.elapsed
        try await Task.sleep(for: .seconds(1))
        done.store(true, ordering: .relaxed)
        await traffic
        let counts = load.counts
        print("\(label) failover: \(counts.answered) answers, \(counts.unavailable) x 503 from \(counts.firstUnavailable ?? -1) to \(counts.lastUnavailable ?? -1) s, fault at \(faultAt) s, recovered at \(recoveredAt) s, wrong \(counts.wrong.count)")
        #expect(isRecovered, "service came back by itself within \(recoveryBudget)")
        #expect(counts.wrong.isEmpty, "wrong answers: \(counts.wrong.prefix(5))")
        if let first = counts.firstUnavailable { #expect(first >= faultAt, "503 only after the fault") }
        if let last = counts.lastUnavailable { #expect(last <= recoveredAt + 0.5, "503 only until the data has a master again") }
        try await load.verifyFinalState()
        return counts
    }

    private func slot(of session: Sessiond.CreatedSession, server: Sessiond) -> Int {
        HashSlot.of(Array(server.sessionKey(session.handle).utf8))
    }

    /// The slots `port` serves, from its own CLUSTER SLOTS.
    private func slots(ownedBy port: Int, cluster: RedisClusterTopology) async throws -> Set<Int> {
        let connection = try await RedisConnection.connect(
            configuration: RedisConfiguration(host: "127.0.0.1", port: port).forTests,
            eventLoop: MultiThreadedEventLoopGroup.singleton.next()
        )
        defer { connection.close() }
        var owned = Set<Int>()
        for range in try await connection.send(RedisCommand("CLUSTER", "SLOTS")).array ?? [] {
            guard let parts = range.array, parts.count >= 3, let start = parts[0].integer, let end = parts[1].integer,
                  let master = parts[2].array, master.count >= 2, master[1].integer == Int64(port)
            else { continue }
            owned.formUnion(Int(start)...Int(end))
        }
        return owned
    }
}
