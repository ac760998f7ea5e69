import Hummingbird
import HummingbirdCore
import Logging
import NIOCore
import RedisClient
import SessionStore

/// Builds the whole service: Redis client (as a lifecycle service), store, router, middleware.
/// The executable and the tests both start sessiond through this one function. It finds out what
/// the configured Redis is first (single server, Cluster or Sentinel) and throws, with one line
/// saying why, when that cannot work. `onServerRunning` hears of the listening channel (tests
/// read the port from it).
public func buildApplication(
    configuration: ServiceConfiguration,
    logger: Logger,
    onServerRunning: @escaping @Sendable (any Channel) async -> Void = { _ in }
) async throws -> some ApplicationProtocol {
    var redisLogger = logger
    redisLogger[metadataKey: "component"] = "redis"
    let metrics = ServiceMetrics(nearCache: configuration.redis.nearCache?.usage)
    let redis = try await RedisDeployments.connect(configuration.redisTopology.reporting(to: metrics.redis), logger: redisLogger)
    let store = SessionStore(redis: redis, policy: configuration.policy, metrics: metrics.store)
    let router = Router(context: BasicRequestContext.self)
    router.add(middleware: RequestLogMiddleware(logger: logger, metrics: metrics))
    router.add(middleware: APIErrorMiddleware(routes: APIRoute.all, logger: logger))
    let cookie = SessionCookie(name: configuration.cookieName, sameSite: configuration.cookieSameSite)
    SessionRoutes<BasicRequestContext>(store: store, redis: redis, keys: configuration.apiKeys, cookie: cookie, metrics: metrics)
        .register(on: router)
    let serverName = "sessiond"
    let lookupPath = SessionLookupChannelHandler.Shared(
        store: store, keys: configuration.apiKeys, cookie: cookie, serverName: serverName, logger: logger, metrics: metrics
    )
    let idleTimeout = TimeAmount.seconds(Int64(configuration.connectionIdleTimeout))
    let drainer = ConnectionDrainer(limit: configuration.maxConnections, drained: metrics.connectionsDrained)
    var app = Application(
        router: router,
        server: HTTPServerBuilder { responder in
            SessiondHTTPChannel(responder: responder, lookup: lookupPath, idleTimeout: idleTimeout, drainer: drainer)
        },
        configuration: .init(
            address: .hostname(configuration.host, port: configuration.port), serverName: serverName,
            // Bursts of new connections must not overflow the accept queue (the kernel then drops
            // SYNs and a client waits a second for the retransmit); the kernel caps it at somaxconn.
            backlog: 4096,
            availableConnectionsDelegate: ConnectionDrainer.Limit(drainer: drainer)
        ),
        onServerRunning: { channel in
            drainer.listening(on: channel)
            await onServerRunning(channel)
        },
        logger: logger
    )
    app.addServices(redis, store)
    return app
}
