import Logging
import NIOCore
import NIOPosix
import ServiceLifecycle
import Synchronization

/// A Redis Cluster client: a slot map from `CLUSTER SLOTS`, one pipelined `RedisClient` pool per
/// master, and the cluster's redirects handled where they arise:
/// - `MOVED`: the slot has a new owner; the map takes it at once, a full refresh follows, retry.
/// - `ASK`: one command goes to the importing node after `ASKING`; the map stays.
/// - `TRYAGAIN`, `CLUSTERDOWN`, `READONLY`: retried after a short pause, within a bounded
///   budget, then answered as `.unavailable`.
/// A slot whose master cannot be reached fails at once with `.unavailable` (never a guess) and
/// asks for a refresh, so a promoted replica is found without a restart; the map is also
/// refreshed every few seconds, faster while part of the cluster is down.
public final class RedisClusterClient: RedisDeployment, Sendable {
    private struct State: Sendable {
        var topology: ClusterTopology
        var pools: [RedisNodeAddress: RedisClient] = [:]
        var stopped = false
    }

    private let configuration: RedisConfiguration
    private let seeds: [RedisNodeAddress]
    private let eventLoopGroup: any EventLoopGroup
    private let logger: Logger
    private let state: Mutex<State>
    private let refreshing = Atomic<Bool>(false)
    private let refreshCount = Atomic<Int>(0)
    /// How often the slot map is asked for while the cluster is healthy.
    private let refreshInterval: Duration
    /// Pools to run: `run()` runs each as a child task, so none outlives the service group.
    private let poolStarts = AsyncStream<RedisClient>.makeStream()
    /// Asks `run()`'s refresh loop for a refresh now (a redirect, an unreachable master).
    private let refreshRequests = AsyncStream<Void>.makeStream(bufferingPolicy: .bufferingNewest(1))

    /// Redirects and retries one command may take before it is answered as unavailable.
    static let maxAttempts = 6
    static let degradedRefreshInterval = Duration.milliseconds(500)
    /// The least time between two refreshes that requests ask for: a burst of redirects, or every
    /// command to an unreachable master, asks at once, and each refresh is a round trip.
    static let requestedRefreshSpacing = Duration.milliseconds(100)

    /// `configuration` gives credentials, timeouts and pool size for every node; `topology` is
    /// the map found at start (`RedisDeployments.connect`); `refreshInterval`, how often a healthy
    /// cluster's slot map is asked for.
    init(
        configuration: RedisConfiguration,
        seeds: [RedisNodeAddress],
        topology: ClusterTopology,
        eventLoopGroup: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton,
        logger: Logger,
        refreshInterval: Duration = .seconds(5)
    ) {
        precondition(refreshInterval > .zero, "the slot map's refresh interval must be positive")
        self.refreshInterval = refreshInterval
        self.configuration = configuration
        self.seeds = seeds
        self.eventLoopGroup = eventLoopGroup
        self.logger = logger
        self.state = Mutex(State(topology: topology))
    }

    /// Connects a pool to every master, then keeps the slot map fresh until shut down: every
    /// few seconds, faster while degraded, and at once when a request asks. Node pools run as
    /// child tasks, and a retired one (no longer a master) returns.
    public func run() async throws {
        let masters = state.withLock { $0.topology.masters }
        for master in masters { _ = pool(for: master) }
        await cancelWhenGracefulShutdown {
            await withDiscardingTaskGroup { group in
                group.addTask { await self.refreshAtInterval() }
                group.addTask { await self.refreshOnRequest() }
                for await client in self.poolStarts.stream {
                    group.addTask { try? await client.run() }
                }
            }
        }
        let pools = state.withLock { state in
            state.stopped = true
            defer { state.pools.removeAll() }
            return Array(state.pools.values)
        }
        for pool in pools { pool.retire() }
    }

    /// Refreshes every `refreshInterval`, every `degradedRefreshInterval` (or the interval, if
    /// shorter) while degraded, until cancelled. It looks at the state at least that often, so a
    /// cluster that degrades with no traffic (which would ask for a refresh) is refreshed at the
    /// degraded pace from then on, not after the healthy interval.
    private func refreshAtInterval() async {
        var lastRefresh = ContinuousClock.now
        while !Task.isCancelled {
            let due = lastRefresh + (isDegraded ? min(Self.degradedRefreshInterval, refreshInterval) : refreshInterval)
            let now = ContinuousClock.now
            if now < due {
                try? await Task.sleep(for: min(Self.degradedRefreshInterval, due - now))
                continue
            }
            await refreshTopology()
            lastRefresh = .now
        }
    }

    /// Refreshes when a request asks (a redirect, an unreachable master), at most once per
    /// `requestedRefreshSpacing`, until cancelled. The requests are one stream, iterated by this
    /// task for its whole life: an iteration cancelled midway would finish the stream, and a loop
    /// waiting on it would stop waiting. A request still buffered at cancellation is dropped: a
    /// refresh may try every node, at up to a connect timeout each.
    private func refreshOnRequest() async {
        for await _ in refreshRequests.stream {
            if Task.isCancelled { break }
            await refreshTopology()
            try? await Task.sleep(for: Self.requestedRefreshSpacing)
        }
    }

    /// Refreshes run so far: the pace of the two loops above, which tests watch.
    var refreshesRun: Int { refreshCount.load(ordering: .relaxed) }

    /// A slot unowned or a master not connected: the slot map is then refreshed more often.
    var isDegraded: Bool {
        state.withLock { state in
            state.topology.unownedSlots > 0 || state.topology.masters.contains { state.pools[$0]?.isConnected != true }
        }
    }

    // MARK: routing

    public func send(_ command: RedisCommand, routingKey: RedisArgument) async throws -> RESPValue {
        try await routed(slot: HashSlot.of(routingKey.bytes)) { node, asking in
            asking ? try await node.sendAsking(command) : try await node.send(command)
        }
    }

    /// One EVALSHA attempt on the slot's master, on `eventLoop`; a redirect comes back as its
    /// `.commandError` for the caller to retry through the routed `evaluate`.
    public func evaluate(
        _ script: RedisScript, keys: [RedisArgument], arguments: [RedisArgument], on eventLoop: any EventLoop,
        answer: @escaping RedisReplyHandler
    ) {
        do {
            try ownerPool(of: HashSlot.of(keys.first?.bytes ?? [])).evaluate(script, keys: keys, arguments: arguments, on: eventLoop, answer: answer)
        } catch {
            eventLoop.deliver(.failure(error), to: answer)
        }
    }

    /// One near-cache read on the slot's master (see `evaluate(_:keys:arguments:on:answer:)`).
    public func nearGet(_ key: RedisArgument, on eventLoop: any EventLoop, answer: @escaping NearAnswer) {
        do {
            try ownerPool(of: HashSlot.of(key.bytes)).nearGet(key, on: eventLoop, answer: answer)
        } catch {
            eventLoop.deliver(.failure(error), to: answer)
        }
    }

    /// Every master's shards forget `keys`: a key's entry may sit with a former owner.
    public func forgetNear(_ keys: [RedisArgument]) {
        for client in state.withLock({ Array($0.pools.values) }) { client.forgetNear(keys) }
    }

    public func evaluate(_ script: RedisScript, keys: [RedisArgument], arguments: [RedisArgument], replicated: Bool) async throws -> RESPValue {
        guard let first = keys.first else {
            throw RedisClientError(.invalidConfiguration, "script \(script.name) needs a key to be routed on a cluster")
        }
        return try await routed(slot: HashSlot.of(first.bytes)) { node, asking in
            try await node.evaluate(script, keys: keys, arguments: arguments, replicated: replicated, asking: asking)
        }
    }

    private func routed(slot: Int, _ operation: (RedisClient, _ asking: Bool) async throws -> RESPValue) async throws -> RESPValue {
        var askTarget: RedisClient?
        var lastRedirect = ""
        for attempt in 0..<Self.maxAttempts {
            let node = try askTarget ?? ownerPool(of: slot)
            await node.waitForFirstConnection(timeout: .nanoseconds(configuration.connectTimeout.nanoseconds))
            do {
                return try await operation(node, askTarget != nil)
            } catch let error as RedisClientError where error.code == .commandError {
                guard let reply = error.reply, let redirect = ClusterRedirect(reply, askedHost: node.configuration.host) else { throw error }
                lastRedirect = error.message
                askTarget = nil
                switch redirect {
                case .moved(let movedSlot, let address):
                    // The node no longer owns the slot: what it cached may miss invalidations.
                    node.flushNearCache()
                    state.withLock { $0.topology.assign(movedSlot, to: address) }
                    requestRefresh()
                case .ask(let address):
                    askTarget = pool(for: address)
                case .tryAgain:
                    if attempt + 1 < Self.maxAttempts { try? await Task.sleep(for: Self.pause(attempt)) }
                case .clusterDown(slotUnserved: true):
                    // The slot has no master: nothing to wait for within one request.
                    requestRefresh()
                    throw RedisClientError(.unavailable, "cluster slot \(slot) is not served")
                case .clusterDown(slotUnserved: false), .readOnly:
                    requestRefresh()
                    if attempt + 1 < Self.maxAttempts { try? await Task.sleep(for: Self.pause(attempt)) }
                }
            } catch let error as RedisClientError where error.isUnavailability && error.code != .notReplicated {
                requestRefresh()
                throw error
            }
        }
        throw RedisClientError(.unavailable, "cluster slot \(slot) did not settle after \(Self.maxAttempts) attempts (last: \(lastRedirect))")
    }

    /// 10, 20, 40, 80, 160 ms: the whole budget stays well under a second.
    private static func pause(_ attempt: Int) -> Duration {
        .milliseconds(10 << min(attempt, 4))
    }

    /// The pool of the slot's master; a slot without one is `.unavailable` and asks for a refresh.
    private func ownerPool(of slot: Int) throws -> RedisClient {
        guard let owner = state.withLock({ $0.topology.owner(of: slot) }) else {
            requestRefresh()
            throw RedisClientError(.unavailable, "cluster slot \(slot) has no master")
        }
        return pool(for: owner)
    }

    /// The pool of `address`, started on first use (by `run()`).
    private func pool(for address: RedisNodeAddress) -> RedisClient {
        state.withLock { state in
            if let existing = state.pools[address] { return existing }
            var nodeConfiguration = configuration
            nodeConfiguration.host = address.host
            nodeConfiguration.port = address.port
            var nodeLogger = logger
            nodeLogger[metadataKey: "node"] = "\(address)"
            // A master demoted while reachable (a manual failover) would still answer reads and
            // near-cache barriers: its connections close at the next role check.
            let client = RedisClient(configuration: nodeConfiguration, eventLoopGroup: eventLoopGroup, logger: nodeLogger, requireMaster: true)
            // After shutdown a pool is never started: callers get `.unavailable` from it.
            if !state.stopped { poolStarts.continuation.yield(client) }
            state.pools[address] = client
            return client
        }
    }

    // MARK: topology

    func requestRefresh() {
        guard !refreshing.load(ordering: .relaxed) else { return }
        refreshRequests.continuation.yield()
    }

    /// Asks a reachable node for `CLUSTER SLOTS` (connected masters first, then every known
    /// node and the seeds) and applies the answer. One refresh runs at a time.
    func refreshTopology() async {
        guard refreshing.compareExchange(expected: false, desired: true, ordering: .acquiring).exchanged else { return }
        defer { refreshing.store(false, ordering: .releasing) }
        refreshCount.add(1, ordering: .relaxed)
        let (masterPools, known) = state.withLock { state in
            (
                state.topology.masters.compactMap { state.pools[$0] }.filter(\.isConnected),
                state.topology.masters + state.topology.replicas
            )
        }
        for client in masterPools {
            if let reply = try? await client.send(RedisCommand("CLUSTER", "SLOTS")),
               let topology = try? ClusterTopology(clusterSlots: reply, askedHost: client.configuration.host) {
                apply(topology)
                return
            }
        }
        var tried = Set(masterPools.map { RedisNodeAddress(host: $0.configuration.host, port: $0.configuration.port) })
        for address in known + seeds where tried.insert(address).inserted {
            // Each try may wait a connect timeout: a shutdown does not sit through them all.
            if Task.isCancelled { return }
            if let topology = try? await Self.fetchTopology(from: address, configuration: configuration, eventLoopGroup: eventLoopGroup) {
                apply(topology)
                return
            }
        }
        logger.warning("cluster topology refresh failed: no node answered CLUSTER SLOTS")
    }

    private func apply(_ topology: ClusterTopology) {
        // Pools of nodes that are no longer masters are closed: a demoted node would only answer MOVED.
        let (changed, retired) = state.withLock { state -> (Bool, [RedisClient]) in
            guard state.topology != topology else { return (false, []) }
            state.topology = topology
            var retired = [RedisClient]()
            for (address, pool) in state.pools where !topology.masters.contains(address) {
                retired.append(pool)
                state.pools[address] = nil
            }
            return (true, retired)
        }
        guard changed else { return }
        for pool in retired { pool.retire() }
        // Slots moved: an entry cached from a node that lost a slot may miss its invalidations.
        for client in state.withLock({ Array($0.pools.values) }) { client.flushNearCache() }
        for master in topology.masters { _ = pool(for: master) }
        logger.info("cluster topology changed", metadata: [
            "masters": "\(topology.masters.map(\.description).joined(separator: ","))",
            "unowned_slots": "\(topology.unownedSlots)",
        ])
    }

    /// `CLUSTER SLOTS` over a one-off connection.
    static func fetchTopology(
        from address: RedisNodeAddress, configuration: RedisConfiguration, eventLoopGroup: any EventLoopGroup
    ) async throws -> ClusterTopology {
        var nodeConfiguration = configuration
        nodeConfiguration.host = address.host
        nodeConfiguration.port = address.port
        let connection = try await RedisConnection.connect(configuration: nodeConfiguration, eventLoop: eventLoopGroup.next())
        defer { connection.close() }
        return try ClusterTopology(clusterSlots: try await connection.send(RedisCommand("CLUSTER", "SLOTS")), askedHost: address.host)
    }

    // MARK: health

    /// Succeeds while at least one master answers: slots of the others fail request by request.
    public func ping() async throws {
        let masters = state.withLock { state in state.topology.masters.compactMap { state.pools[$0] } }
        var lastError: (any Error)?
        for master in masters {
            do {
                try await master.ping()
                return
            } catch {
                lastError = error
            }
        }
        throw RedisClientError(.unavailable, "no cluster master answers\(lastError.map { ": \($0)" } ?? "")")
    }

    /// `RedisDeployment`: each call's keys must share a slot.
    public var keysMaySpanSlots: Bool { false }

    public var poolStatistics: RedisPoolStatistics {
        let clients = state.withLock { state in state.topology.masters.compactMap { state.pools[$0] } }
        return clients.reduce(RedisPoolStatistics()) { $0 + $1.poolStatistics }
    }

    /// Masters and slot coverage, for tests and logs.
    public var masters: [RedisNodeAddress] { state.withLock { $0.topology.masters } }

    public var description: String {
        let (masters, unowned) = state.withLock { ($0.topology.masters.count, $0.topology.unownedSlots) }
        return "Redis Cluster with \(masters) masters (\(unowned) slots unowned)"
    }
}
