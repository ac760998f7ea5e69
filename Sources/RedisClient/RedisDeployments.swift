import Logging
import NIOCore
import NIOPosix

/// How sessiond reaches Redis, as configured (SPEC §3).
public enum RedisTopologyConfiguration: Sendable {
    /// One URL or several: a single server, or seeds of a cluster (told apart at start).
    case seeds([RedisConfiguration])
    /// A master found through Sentinels; `server` gives credentials, database and timeouts.
    case sentinel(sentinels: [RedisNodeAddress], masterName: String, server: RedisConfiguration)

    /// The same topology with every connection reporting to `metrics`.
    public func reporting(to metrics: RedisClientMetrics) -> Self {
        switch self {
        case .seeds(var seeds):
            for index in seeds.indices { seeds[index].metrics = metrics }
            return .seeds(seeds)
        case .sentinel(let sentinels, let masterName, var server):
            server.metrics = metrics
            return .sentinel(sentinels: sentinels, masterName: masterName, server: server)
        }
    }
}

/// Finds out what the configured Redis is and builds the client for it, refusing at start what
/// cannot work: no reachable seed or sentinel, cluster and non-cluster nodes mixed, a cluster
/// whose state is not ok, several URLs that are not a cluster, a master name no sentinel knows.
public enum RedisDeployments {
    /// How long start-up keeps trying while nothing answers yet (Redis starting beside sessiond).
    public static let startupPatience = Duration.seconds(10)

    public static func connect(
        _ topology: RedisTopologyConfiguration,
        eventLoopGroup: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton,
        logger: Logger,
        patience: Duration = startupPatience
    ) async throws -> any RedisDeployment {
        switch topology {
        case .seeds(let seeds):
            return try await connectSeeds(seeds, eventLoopGroup: eventLoopGroup, logger: logger, patience: patience)
        case .sentinel(let sentinels, let masterName, let server):
            let resolver = SentinelResolver(sentinels: sentinels, masterName: masterName, configuration: server, eventLoopGroup: eventLoopGroup)
            let master = try await retrying(for: patience) { try await resolver.masterAddress() }
            logger.info("redis master found through sentinel", metadata: ["master_name": "\(masterName)", "master": "\(master.host):\(master.port)"])
            return RedisClient(
                configuration: server, eventLoopGroup: eventLoopGroup, logger: logger,
                resolver: { try await resolver.masterAddress() }, requireMaster: true
            )
        }
    }

    private static func connectSeeds(
        _ seeds: [RedisConfiguration], eventLoopGroup: any EventLoopGroup, logger: Logger, patience: Duration
    ) async throws -> any RedisDeployment {
        guard let first = seeds.first else {
            throw RedisClientError(.invalidConfiguration, "no Redis URL given")
        }
        let probes = try await retrying(for: patience) { () async throws -> [(RedisConfiguration, Bool)] in
            var answered = [(RedisConfiguration, Bool)]()
            var lastError: (any Error)?
            for seed in seeds {
                do {
                    answered.append((seed, try await isClusterNode(seed, eventLoopGroup: eventLoopGroup)))
                } catch let error as RedisClientError where error.code == .setupRefused || error.code == .invalidConfiguration {
                    // A refused login, or a certificate the configured CA did not sign: waiting will not help.
                    throw StartupRefusal(error.message)
                } catch {
                    lastError = error
                }
            }
            guard !answered.isEmpty else {
                throw RedisClientError(.unavailable, "no Redis seed reachable (\(seeds.map(address).joined(separator: ", "))): \(lastError.map { "\($0)" } ?? "")")
            }
            return answered
        }
        let clusterNodes = probes.filter(\.1)
        if !clusterNodes.isEmpty && clusterNodes.count < probes.count {
            let plain = probes.filter { !$0.1 }.map { address($0.0) }
            throw RedisClientError(.invalidConfiguration, "seeds mix cluster and non-cluster nodes (not in cluster mode: \(plain.joined(separator: ", ")))")
        }
        if clusterNodes.isEmpty {
            guard seeds.count == 1 else {
                throw RedisClientError(.invalidConfiguration, "\(seeds.count) Redis URLs given but they are not cluster nodes: give one URL for a single Redis, or SESSIOND_REDIS_SENTINELS for Sentinel")
            }
            logger.info("redis mode: single server", metadata: ["redis": "\(address(first))"])
            return RedisClient(configuration: first, eventLoopGroup: eventLoopGroup, logger: logger)
        }
        guard first.database == 0 else {
            throw RedisClientError(.invalidConfiguration, "Redis Cluster has only database 0, the URL selects \(first.database)")
        }
        let asked = clusterNodes[0].0
        // A cluster still recovering (a failover under way) gets the rest of the patience.
        let deadline = ContinuousClock.now + patience
        while true {
            let state = try await clusterState(asked, eventLoopGroup: eventLoopGroup)
            if state == "ok" { break }
            guard ContinuousClock.now < deadline else {
                throw RedisClientError(.invalidConfiguration, "Redis Cluster at \(address(asked)) reports cluster_state:\(state), not ok")
            }
            try await Task.sleep(for: .milliseconds(200))
        }
        let topology = try await retrying(for: patience) {
            try await RedisClusterClient.fetchTopology(
                from: RedisNodeAddress(host: asked.host, port: asked.port), configuration: first, eventLoopGroup: eventLoopGroup
            )
        }
        logger.info("redis mode: cluster", metadata: [
            "masters": "\(topology.masters.map(\.description).joined(separator: ","))",
            "unowned_slots": "\(topology.unownedSlots)",
        ])
        return RedisClusterClient(
            configuration: first,
            seeds: seeds.map { RedisNodeAddress(host: $0.host, port: $0.port) },
            topology: topology,
            eventLoopGroup: eventLoopGroup,
            logger: logger
        )
    }

    /// `INFO cluster` says `cluster_enabled:1` on a cluster node.
    private static func isClusterNode(_ seed: RedisConfiguration, eventLoopGroup: any EventLoopGroup) async throws -> Bool {
        let info = try await oneOff(seed, RedisCommand("INFO", "cluster"), eventLoopGroup: eventLoopGroup)
        return field("cluster_enabled", in: info) == "1"
    }

    private static func clusterState(_ seed: RedisConfiguration, eventLoopGroup: any EventLoopGroup) async throws -> String {
        field("cluster_state", in: try await oneOff(seed, RedisCommand("CLUSTER", "INFO"), eventLoopGroup: eventLoopGroup)) ?? "unknown"
    }

    private static func oneOff(_ seed: RedisConfiguration, _ command: RedisCommand, eventLoopGroup: any EventLoopGroup) async throws -> String {
        let connection = try await RedisConnection.connect(configuration: seed, eventLoop: eventLoopGroup.next())
        defer { connection.close() }
        return try await connection.send(command).string ?? ""
    }

    private static func field(_ name: String, in info: String) -> String? {
        for line in info.split(whereSeparator: \.isNewline) where line.hasPrefix(name + ":") {
            return String(line.dropFirst(name.count + 1))
        }
        return nil
    }

    private static func address(_ configuration: RedisConfiguration) -> String {
        RedisNodeAddress(host: configuration.host, port: configuration.port).description
    }

    /// Runs `body` until it succeeds, it is refused for good, or `patience` has passed.
    private static func retrying<T>(for patience: Duration, _ body: () async throws -> T) async throws -> T {
        let deadline = ContinuousClock.now + patience
        while true {
            do {
                return try await body()
            } catch let refusal as StartupRefusal {
                throw RedisClientError(.invalidConfiguration, refusal.message)
            } catch let error as RedisClientError where error.code == .invalidConfiguration {
                throw error
            } catch {
                if ContinuousClock.now >= deadline { throw error }
                try await Task.sleep(for: .milliseconds(200))
            }
        }
    }
}

/// A start-up failure that waiting will not fix (wrong password, unknown master name).
struct StartupRefusal: Error {
    let message: String
    init(_ message: String) { self.message = message }
}
