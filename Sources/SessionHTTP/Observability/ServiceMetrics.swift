import CoreMetrics
import Foundation
import NIOCore
import Prometheus
import RedisClient
import SessionStore
import Synchronization

/// sessiond's metrics (README, "Metrics"): swift-metrics objects on a Prometheus registry of the
/// service's own (so that several services in one process, as in the tests, never mix), read by
/// `GET /metrics`. Every label comes from a fixed set: route templates, status codes, roles and
/// reasons, never a token, handle, user id or API key.
public final class ServiceMetrics: Sendable {
    public static let version = "1.0.0"

    private let registry: PrometheusCollectorRegistry
    let store: SessionStoreMetrics
    let redis: RedisClientMetrics
    private let routes: [String: RouteMetrics]
    private let unmatched: RouteMetrics
    private let invalidSessionLookups: [Role: CoreMetrics.Counter]
    /// Idle connections closed to make room for a new one at SESSIOND_MAX_CONNECTIONS.
    let connectionsDrained: CoreMetrics.Counter
    private let redisUp: CoreMetrics.Meter
    private let poolConfigured: CoreMetrics.Meter
    private let poolOpen: CoreMetrics.Meter
    private let poolBusy: CoreMetrics.Meter
    private let commandsPending: CoreMetrics.Meter
    private let uptime: CoreMetrics.Meter
    private let nearCacheEntries: CoreMetrics.Meter
    private let nearCacheBytes: CoreMetrics.Meter
    private let nearCacheUsage: NearCacheUsage?
    private let started = ContinuousClock.now

    /// `nearCache`: the near cache's process-wide usage, when it is on.
    public init(nearCache: NearCacheUsage? = nil) {
        let registry = PrometheusCollectorRegistry()
        var factory = PrometheusMetricsFactory(registry: registry)
        // A lookup takes a fraction of a millisecond; the default buckets start at 5 ms.
        factory.defaultDurationHistogramBuckets = [
            .microseconds(250), .microseconds(500), .milliseconds(1), .milliseconds(2), .milliseconds(5), .milliseconds(10),
            .milliseconds(25), .milliseconds(50), .milliseconds(100), .milliseconds(250), .milliseconds(500), .seconds(1),
            .milliseconds(2500),
        ]
        self.registry = registry
        store = SessionStoreMetrics(factory: factory)
        redis = RedisClientMetrics(factory: factory)
        var routes = [String: RouteMetrics]()
        for route in APIRoute.all {
            let metrics = RouteMetrics(
                method: route.method.rawValue, route: route.path, success: route.method == .post && route.path == "/v1/sessions" ? 201 : 200,
                needsKey: route.role != nil, factory: factory
            )
            // Keyed by the router's names for the route, labelled with the documented template.
            for endpoint in route.endpointPaths { routes[Self.routeKey(route.method.rawValue, endpoint)] = metrics }
        }
        self.routes = routes
        unmatched = RouteMetrics(method: "any", route: "unmatched", success: 404, needsKey: false, factory: factory)
        var invalid = [Role: CoreMetrics.Counter]()
        for role in Role.allCases {
            invalid[role] = CoreMetrics.Counter(label: "sessiond_invalid_session_lookups_total", dimensions: [("role", role.name)], factory: factory)
        }
        invalidSessionLookups = invalid
        connectionsDrained = CoreMetrics.Counter(label: "sessiond_connections_drained_total", dimensions: [], factory: factory)
        redisUp = CoreMetrics.Meter(label: "sessiond_redis_up", dimensions: [], factory: factory)
        let pool = "sessiond_redis_pool_connections"
        poolConfigured = CoreMetrics.Meter(label: pool, dimensions: [("state", "configured")], factory: factory)
        poolOpen = CoreMetrics.Meter(label: pool, dimensions: [("state", "open")], factory: factory)
        poolBusy = CoreMetrics.Meter(label: pool, dimensions: [("state", "busy")], factory: factory)
        commandsPending = CoreMetrics.Meter(label: "sessiond_redis_commands_pending", dimensions: [], factory: factory)
        uptime = CoreMetrics.Meter(label: "sessiond_uptime_seconds", dimensions: [], factory: factory)
        nearCacheUsage = nearCache
        nearCacheEntries = CoreMetrics.Meter(label: "sessiond_near_cache_entries", dimensions: [], factory: factory)
        nearCacheBytes = CoreMetrics.Meter(label: "sessiond_near_cache_bytes", dimensions: [], factory: factory)
        CoreMetrics.Meter(label: "sessiond_process_start_time_seconds", dimensions: [], factory: factory).set(Date().timeIntervalSince1970)
        CoreMetrics.Meter(label: "sessiond_build_info", dimensions: [("version", Self.version)], factory: factory).set(1)
    }

    /// The metrics of a route as the router names it (method and template), or of `unmatched`.
    func route(method: String, path: String?) -> RouteMetrics {
        guard let path, let metrics = routes[Self.routeKey(method, path)] else { return unmatched }
        return metrics
    }

    /// A lookup answered `invalid_session`: the token was malformed, unknown, expired or
    /// revoked. Counted by the role of the key that asked, as a brute-force signal.
    func recordInvalidSessionLookup(role: Role) {
        invalidSessionLookups[role]?.increment()
    }

    /// The Prometheus text exposition, with the gauges read now: Redis answering (a `PING` on
    /// a cluster reaches at least one master), the pools, and the uptime.
    func exposition(redis deployment: any RedisDeployment) async -> ByteBuffer {
        let answers = (try? await deployment.ping()) != nil
        redisUp.set(answers ? 1.0 : 0.0)
        let pool = deployment.poolStatistics
        poolConfigured.set(pool.configured)
        poolOpen.set(pool.open)
        poolBusy.set(pool.busy)
        commandsPending.set(pool.pending)
        nearCacheEntries.set(nearCacheUsage?.entries ?? 0)
        nearCacheBytes.set(nearCacheUsage?.bytes ?? 0)
        let elapsed = (ContinuousClock.now - started).components
        uptime.set(Double(elapsed.seconds) + Double(elapsed.attoseconds) / 1e18)
        var bytes = [UInt8]()
        bytes.reserveCapacity(16384)
        registry.emit(into: &bytes)
        return ByteBuffer(bytes: bytes)
    }

    private static func routeKey(_ method: String, _ path: String) -> String {
        method + " " + path
    }
}

/// One route's request count by status and its latency histogram.
final class RouteMetrics: Sendable {
    private let method: String
    private let route: String
    private let factory: PrometheusMetricsFactory
    private let duration: CoreMetrics.Timer
    /// The statuses most of the route's requests get (its success, and 401 where a key is
    /// needed), made up front so that counting them takes no lock.
    private let usual: [(status: Int, counter: CoreMetrics.Counter)]
    private let others = Mutex<[Int: CoreMetrics.Counter]>([:])

    init(method: String, route: String, success: Int, needsKey: Bool, factory: PrometheusMetricsFactory) {
        self.method = method
        self.route = route
        self.factory = factory
        duration = CoreMetrics.Timer(label: "sessiond_http_request_duration_seconds", dimensions: [("method", method), ("route", route)], factory: factory)
        usual = (needsKey ? [success, 401] : [success]).map { ($0, Self.counter(method, route, $0, factory)) }
    }

    func record(status: Int, nanoseconds: Int64) {
        duration.recordNanoseconds(nanoseconds)
        if let known = usual.first(where: { $0.status == status }) {
            known.counter.increment()
            return
        }
        // Statuses come from a fixed set (SPEC's table and the server's own 4xx), so this
        // dictionary stays small.
        let counter = others.withLock { counters in
            if let counter = counters[status] { return counter }
            let counter = Self.counter(method, route, status, factory)
            counters[status] = counter
            return counter
        }
        counter.increment()
    }

    private static func counter(_ method: String, _ route: String, _ status: Int, _ factory: PrometheusMetricsFactory) -> CoreMetrics.Counter {
        CoreMetrics.Counter(
            label: "sessiond_http_requests_total",
            dimensions: [("method", method), ("route", route), ("status", String(status))],
            factory: factory
        )
    }
}
