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

    /// A running cluster client on the shared test cluster, with the given interval, for `duration`;
    /// `during` runs meanwhile. Returns how many slot-map refreshes it made.
    private func refreshes(interval: Duration, for duration: Duration, during: @escaping @Sendable (RedisClusterClient) async -> Void = { _ in }) async throws -> Int {
        let url = try Self.environment("SESSIOND_TEST_CLUSTER_URLS").split(separator: ",").map(String.init)[0]
        let configuration = try RedisConfiguration(url: url).forTests
        let seed = RedisNodeAddress(host: configuration.host, port: configuration.port)
        let topology = try await RedisClusterClient.fetchTopology(
            from: seed, configuration: configuration, eventLoopGroup: MultiThreadedEventLoopGroup.singleton
        )
        let cluster = RedisClusterClient(configuration: configuration, seeds: [seed], topology: topology, logger: logger, refreshInterval: interval)
        let running = Task { try await cluster.run() }
        let driving = Task { await during(cluster) }
        try await Task.sleep(for: duration)
        driving.cancel()
        running.cancel()
        _ = await driving.result
        _ = await running.result
        return cluster.refreshesRun
    }

    /// A refresh loop that stops waiting asks one master for `CLUSTER SLOTS` back to back: it
    /// once took most of a core, and under load starved that master's neighbours on the CPU.
    @Test("a running cluster client refreshes its slot map at its interval, not back to back")
    func topologyRefreshKeepsItsPace() async throws {
        let count = try await refreshes(interval: .milliseconds(100), for: .seconds(2))
        // At most about 20 in 2 s: 100 ms apart, 500 ms while a pool is not connected yet (under
        // the parallel suite that can be most of the 2 s). The old loop ran about 2,000.
        #expect((1...40).contains(count), "\(count) slot-map refreshes in 2 s")
    }

    /// Every command that meets a redirect or an unreachable master asks for a refresh: a burst
    /// of them is served one refresh per `requestedRefreshSpacing`, not one each.
    @Test("refreshes that requests ask for come at most one per 100 ms")
    func requestedRefreshesAreSpaced() async throws {
        let count = try await refreshes(interval: .seconds(60), for: .seconds(1)) { cluster in
            while !Task.isCancelled {
                cluster.requestRefresh()
                try? await Task.sleep(for: .milliseconds(1))
            }
        }
        // About 10 in 1 s, and 2 more from the 500-ms interval while a pool is not connected.
        #expect((1...16).contains(count), "\(count) slot-map refreshes in 1 s of requests every millisecond")
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
