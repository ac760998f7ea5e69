import Foundation
import Logging
import NIOPosix
import Testing

@testable import RedisClient

/// Start-up finds out what the configured Redis is and refuses, with one line saying why, what
/// cannot work. Cluster and Sentinel cases use the topologies `scripts/test` starts.
@Suite("Redis deployment detection at start")
struct DeploymentStartupTests {
    let logger = Logger(label: "test")

    private func seeds(_ urls: [String]) throws -> RedisTopologyConfiguration {
        .seeds(try urls.map { try RedisConfiguration(url: $0).forTests })
    }

    private func refusal(_ topology: RedisTopologyConfiguration, patience: Duration = .milliseconds(600)) async -> String? {
        do {
            let deployment = try await RedisDeployments.connect(topology, logger: logger, patience: patience)
            Issue.record("accepted: \(deployment)")
            return nil
        } catch let error as RedisClientError {
            return error.message
        } catch {
            return "\(error)"
        }
    }

    private static func environment(_ name: String) throws -> String {
        try #require(ProcessInfo.processInfo.environment[name], "\(name) is not set: run the tests with scripts/test")
    }

    @Test("one plain URL is a single server; the cluster seeds are a cluster with every slot owned")
    func detectsMode() async throws {
        let single = try await RedisDeployments.connect(try seeds([SharedRedis.url()]), logger: logger)
        #expect(single is RedisClient)
        let urls = try Self.environment("SESSIOND_TEST_CLUSTER_URLS").split(separator: ",").map(String.init)
        // One seed is enough to find the whole cluster.
        let cluster = try #require(try await RedisDeployments.connect(try seeds([urls[0]]), logger: logger) as? RedisClusterClient)
        #expect(cluster.masters.count == 3)
        #expect(cluster.description.contains("0 slots unowned"))
    }

    /// A cluster client seeded with one node's URL and its slot map, not yet running.
    private func clusterClient(seedURL: String, refreshInterval: Duration) async throws -> RedisClusterClient {
        let configuration = try RedisConfiguration(url: seedURL).forTests
        let seed = RedisNodeAddress(host: configuration.host, port: configuration.port)
        let topology = try await RedisClusterClient.fetchTopology(
            from: seed, configuration: configuration, eventLoopGroup: MultiThreadedEventLoopGroup.singleton
        )
        return RedisClusterClient(configuration: configuration, seeds: [seed], topology: topology, logger: logger, refreshInterval: refreshInterval)
    }

    /// A running cluster client on the shared test cluster, with the given interval; `during` runs
    /// meanwhile. It runs for at least `duration`, and on until it has refreshed once (at most
    /// 10 s: under the parallel suite its tasks can wait a long time for a CPU). Returns how many
    /// slot-map refreshes it made, and for how long it ran.
    private func refreshes(
        interval: Duration, atLeast duration: Duration, during: @escaping @Sendable (RedisClusterClient) async -> Void = { _ in }
    ) async throws -> (count: Int, elapsed: Duration) {
        let url = try Self.environment("SESSIOND_TEST_CLUSTER_URLS").split(separator: ",").map(String.init)[0]
        let cluster = try await clusterClient(seedURL: url, refreshInterval: interval)
        let started = ContinuousClock.now
        let running = Task { try await cluster.run() }
        let driving = Task { await during(cluster) }
        try await Task.sleep(for: duration)
        while cluster.refreshesRun == 0, ContinuousClock.now - started < .seconds(10) {
            try await Task.sleep(for: .milliseconds(50))
        }
        let result = (count: cluster.refreshesRun, elapsed: ContinuousClock.now - started)
        driving.cancel()
        running.cancel()
        _ = await driving.result
        _ = await running.result
        return result
    }

    /// A refresh loop that stops waiting asks one master for `CLUSTER SLOTS` back to back: it
    /// once took most of a core, and under load starved that master's neighbours on the CPU.
    @Test("a running cluster client refreshes its slot map at its interval, not back to back")
    func topologyRefreshKeepsItsPace() async throws {
        let (count, elapsed) = try await refreshes(interval: .milliseconds(100), atLeast: .seconds(2))
        // One per 100 ms at most (500 ms while a pool is not connected yet): about 20 in 2 s.
        // The old loop ran about 2,000.
        let most = Int(elapsed / .milliseconds(100)) + 5
        #expect((1...most).contains(count), "\(count) slot-map refreshes in \(elapsed), at most \(most) expected")
    }

    /// Every command that meets a redirect or an unreachable master asks for a refresh: a burst
    /// of them is served one refresh per `requestedRefreshSpacing`, not one each.
    @Test("refreshes that requests ask for come at most one per 100 ms")
    func requestedRefreshesAreSpaced() async throws {
        let (count, elapsed) = try await refreshes(interval: .seconds(60), atLeast: .seconds(1)) { cluster in
            while !Task.isCancelled {
                cluster.requestRefresh()
                try? await Task.sleep(for: .milliseconds(1))
            }
        }
        // One per 100 ms for the requests, and one per 500 ms from the interval while a pool is
        // not connected yet: about 12 in 1 s. Without the spacing: 945.
        let most = Int(elapsed / .milliseconds(100)) + Int(elapsed / .milliseconds(500)) + 5
        #expect((1...most).contains(count), "\(count) slot-map refreshes in \(elapsed) of requests every millisecond, at most \(most) expected")
    }

    /// A master lost while no command runs asks for no refresh: the interval loop itself must see
    /// the pool down and refresh at the degraded pace, not sleep out the healthy interval.
    @Test("a master lost with no traffic is refreshed at the degraded pace, not after the healthy interval")
    func degradedWithoutTraffic() async throws {
        try await RedisClusterTopology.withCluster { topology in
            let cluster = try await clusterClient(seedURL: topology.seedURLs[0], refreshInterval: .seconds(60))
            let running = Task { try await cluster.run() }
            defer { running.cancel() }
            let start = ContinuousClock.now
            while cluster.isDegraded, ContinuousClock.now - start < .seconds(20) { try await Task.sleep(for: .milliseconds(50)) }
            try #require(!cluster.isDegraded, "the cluster client's pools did not all connect")
            // Past the degraded pace, so that a loop that picks its interval before it sleeps is
            // in its healthy 60-s sleep.
            try await Task.sleep(for: .seconds(1))
            let before = cluster.refreshesRun
            try await topology.kill(port: topology.masterPorts[0])
            try await Task.sleep(for: .seconds(3))
            #expect(cluster.refreshesRun > before, "no slot-map refresh in 3 s after a master was lost with no traffic")
        }
    }

    @Test("unreachable seeds are refused once the start-up patience has passed")
    func unreachableSeeds() async throws {
        let ports = [try await RedisServerProcess.freePort(), try await RedisServerProcess.freePort()]
        let start = ContinuousClock.now
        let message = await refusal(try seeds(ports.map { "redis://127.0.0.1:\($0)" }))
        #expect(message?.contains("no Redis seed reachable") == true, "\(message ?? "")")
        #expect(ContinuousClock.now - start < .seconds(5))
    }

    @Test("cluster and non-cluster seeds mixed are refused")
    func mixedSeeds() async throws {
        let cluster = try Self.environment("SESSIOND_TEST_CLUSTER_URLS").split(separator: ",").map(String.init)
        let message = await refusal(try seeds([cluster[0], try SharedRedis.url()]))
        #expect(message?.contains("mix cluster and non-cluster") == true, "\(message ?? "")")
    }

    @Test("several URLs that are not cluster nodes are refused")
    func severalPlainServers() async throws {
        try await RedisServerProcess.withServer { other in
            let message = await refusal(try seeds([try SharedRedis.url(), other.url]))
            #expect(message?.contains("not cluster nodes") == true, "\(message ?? "")")
        }
    }

    @Test("a cluster whose state is not ok is refused")
    func clusterNotOK() async throws {
        // A lone cluster-enabled node owns no slot: cluster_state:fail.
        try await RedisServerProcess.withServer(extraArgs: ["--cluster-enabled", "yes", "--cluster-config-file", "nodes-\(UUID().uuidString).conf"]) { lone in
            let message = await refusal(try seeds([lone.url]))
            #expect(message?.contains("cluster_state:fail") == true, "\(message ?? "")")
        }
    }

    @Test("a master name no sentinel knows is refused at once; unreachable sentinels after the patience")
    func sentinelRefusals() async throws {
        let sentinels = try Self.environment("SESSIOND_TEST_SENTINELS").split(separator: ",").compactMap { RedisNodeAddress(parsing: $0) }
        let server = try RedisConfiguration(url: "redis://127.0.0.1:6379/0").forTests
        let start = ContinuousClock.now
        // A long patience, so that "at once" is told apart from "after the patience" even when the
        // parallel suite slows the three sentinel connections on a 2-core machine.
        let unknown = await refusal(.sentinel(sentinels: sentinels, masterName: "no-such-master", server: server), patience: .seconds(30))
        #expect(unknown?.contains("no sentinel knows a master named 'no-such-master'") == true, "\(unknown ?? "")")
        #expect(ContinuousClock.now - start < .seconds(10), "refused without waiting for the 30 s patience")

        let nobody = [RedisNodeAddress(host: "127.0.0.1", port: try await RedisServerProcess.freePort())]
        let unreachable = await refusal(.sentinel(sentinels: nobody, masterName: "sessiond", server: server))
        #expect(unreachable?.contains("unreachable") == true, "\(unreachable ?? "")")

        let master = try Self.environment("SESSIOND_TEST_SENTINEL_MASTER")
        let found = try await RedisDeployments.connect(.sentinel(sentinels: sentinels, masterName: master, server: server), logger: logger)
        #expect(found is RedisClient)
    }
}
