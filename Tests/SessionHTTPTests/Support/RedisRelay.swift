import NIOCore
import NIOPosix
import Synchronization

/// A TCP relay in front of Redis that can hold what Redis sends to subscriber connections (those
/// that subscribed to `__redis__:invalidate`), or to the others, without closing them: a sessiond
/// behind it then hears of invalidations, gets its barrier PONGs, or gets its replies, late, as
/// if it were far from Redis while everyone else is near (../shared/TESTING.md, "a relay with
/// latency").
final class RedisRelay: Sendable {
    let port: Int
    private let server: any Channel
    private let state: RelayState

    private init(port: Int, server: any Channel, state: RelayState) {
        self.port = port
        self.server = server
        self.state = state
    }

    var url: String { "redis://127.0.0.1:\(port)/0" }

    static func start(toPort redisPort: Int) async throws -> RedisRelay {
        let state = RelayState()
        let server = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { inbound in
                ClientBootstrap(group: inbound.eventLoop)
                    .connect(host: "127.0.0.1", port: redisPort)
                    .flatMapThrowing { outbound in
                        // Both channels are on the inbound channel's event loop.
                        let link = RelayLink(client: inbound, redis: outbound, state: state)
                        state.add(link)
                        inbound.closeFuture.whenComplete { _ in outbound.close(promise: nil) }
                        outbound.closeFuture.whenComplete { _ in inbound.close(promise: nil) }
                        try outbound.pipeline.syncOperations.addHandler(RedisSide(link: link))
                        try inbound.pipeline.syncOperations.addHandler(ClientSide(link: link))
                    }
            }
            .bind(host: "127.0.0.1", port: 0)
            .get()
        return RedisRelay(port: server.localAddress?.port ?? 0, server: server, state: state)
    }

    /// From now on, what Redis sends to subscriber connections waits in the relay.
    func holdSubscribers() {
        state.holdingSubscribers.store(true, ordering: .sequentiallyConsistent)
    }

    /// From now on, what Redis sends to the other connections (replies) waits in the relay.
    func holdReplies() {
        state.holdingReplies.store(true, ordering: .sequentiallyConsistent)
    }

    /// Delivers what was held, in order, and stops holding.
    func release() {
        state.holdingSubscribers.store(false, ordering: .sequentiallyConsistent)
        state.holdingReplies.store(false, ordering: .sequentiallyConsistent)
        for link in state.all() {
            link.client.eventLoop.execute { link.deliverHeld() }
        }
    }

    func close() async {
        try? await server.close()
        for link in state.all() { link.client.close(promise: nil) }
    }
}

private final class RelayState: Sendable {
    let holdingSubscribers = Atomic<Bool>(false)
    let holdingReplies = Atomic<Bool>(false)
    private let links = Mutex<[RelayLink]>([])

    func add(_ link: RelayLink) { links.withLock { $0.append(link) } }
    func all() -> [RelayLink] { links.withLock { $0 } }
}

/// One relayed connection; its state is touched only on its event loop.
private final class RelayLink: @unchecked Sendable {
    let client: any Channel
    let redis: any Channel
    let state: RelayState
    var isSubscriber = false
    var held: [ByteBuffer] = []

    init(client: any Channel, redis: any Channel, state: RelayState) {
        self.client = client
        self.redis = redis
        self.state = state
    }

    private var holding: Bool {
        isSubscriber
            ? state.holdingSubscribers.load(ordering: .sequentiallyConsistent)
            : state.holdingReplies.load(ordering: .sequentiallyConsistent)
    }

    func fromRedis(_ buffer: ByteBuffer) {
        if holding || !held.isEmpty {
            held.append(buffer)
        } else {
            client.writeAndFlush(buffer, promise: nil)
        }
    }

    func deliverHeld() {
        guard !holding else { return }
        for buffer in held { client.write(buffer, promise: nil) }
        held.removeAll()
        client.flush()
    }
}

private final class ClientSide: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    private let link: RelayLink

    init(link: RelayLink) { self.link = link }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let buffer = unwrapInboundIn(data)
        if !link.isSubscriber, String(buffer: buffer).contains("__redis__:invalidate") { link.isSubscriber = true }
        link.redis.writeAndFlush(buffer, promise: nil)
    }
}

private final class RedisSide: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    private let link: RelayLink

    init(link: RelayLink) { self.link = link }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        link.fromRedis(unwrapInboundIn(data))
    }
}
