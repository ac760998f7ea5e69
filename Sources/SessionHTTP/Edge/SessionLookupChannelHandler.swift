import HTTPTypes
import Hummingbird
import HummingbirdCore
import Logging
import NIOCore
import SessionCrypto
import SessionStore

/// The hot path of `GET /v1/session`, first in the connection's pipeline, on raw bytes: it reads
/// request heads itself (`HTTP1RequestScanner`), answers lookups through `SessionStore.lookup`
/// on the same event loop (the near cache, or one `GET` on a Redis connection of that loop), and
/// writes the answer's bytes, without NIO's HTTP parser, a task or a thread hop.
///
/// `POST /v1/sessions` with a small body is answered here too: the same validation and store
/// operation as the router's handler, through `SessionStore.create(_:on:answer:)` (one script call on
/// this loop, no task, in the common case), without the router's per-request machinery.
///
/// Every other request goes, bytes unchanged, to NIO's parser and the router, one at a time,
/// in request order. Which request goes where and when, and when reads pause, is decided by
/// the connection's `FastPathStateMachine`; this handler carries out its actions, and answers
/// the requests it is given with a `JSONAnswer`.
final class SessionLookupChannelHandler: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    /// What the handler shares across connections.
    struct Shared: Sendable {
        let store: SessionStore
        let keys: APIKeyRing
        let cookie: SessionCookie
        let serverName: String
        let logger: Logger
        let metrics: ServiceMetrics
        /// The routes answered here, with their metrics found once rather than per request.
        let lookupRoute: FastRoute
        let createRoute: FastRoute
        let requestLog: RequestLog
        /// The router's limit for a create's body; a longer one is the router's to refuse.
        let bodyLimit: Int

        init(store: SessionStore, keys: APIKeyRing, cookie: SessionCookie, serverName: String, logger: Logger, metrics: ServiceMetrics) {
            self.store = store
            self.keys = keys
            self.cookie = cookie
            self.serverName = serverName
            self.logger = logger
            self.metrics = metrics
            lookupRoute = FastRoute(method: "GET", path: APIRoute.lookupPath, metrics: metrics.route(method: "GET", path: APIRoute.lookupPath))
            createRoute = FastRoute(method: "POST", path: APIRoute.createPath, metrics: metrics.route(method: "POST", path: APIRoute.createPath))
            requestLog = RequestLog(logger: logger)
            bodyLimit = SessionRequests.bodyLimit(policy: store.policy)
        }
    }

    /// A route answered here: what its log lines and metrics are filed under.
    struct FastRoute: Sendable {
        let method: String
        let path: String
        let metrics: RouteMetrics
    }

    /// One request answered here, from its start to its answer's place in the queue.
    private struct Exchange: Sendable {
        let sequence: Int
        let requestID: String
        let start: NIODeadline
        let route: FastRoute
    }

    private let shared: Shared
    private let activity: IdleConnectionHandler
    /// The connection's state; this handler carries out its actions.
    /// Only this handler touches it, on its event loop: the exclusivity checks of a class
    /// property, on every action, are skipped.
    @exclusivity(unchecked) private var connection: FastPathStateMachine
    /// Set while actions are carried out: an event they cause (an answer ready at once, the
    /// router's answer ending) queues its actions behind them rather than nesting.
    private var isPerforming = false
    /// The last Authorization value that passed here, and its role. A keep-alive client (or a
    /// proxy's upstream connection) sends the same key with every request, and hashing it each
    /// time was 3 % of a lookup. Compared in constant time: a proxy's connection may carry
    /// several clients' keys.
    private var authorized: (header: String, role: Role)?

    /// `activity` is the connection's idle timer, told of each request answered here.
    init(shared: Shared, activity: IdleConnectionHandler) {
        self.shared = shared
        self.activity = activity
        connection = FastPathStateMachine(bodyLimit: shared.bodyLimit)
    }

    func channelInactive(context: ChannelHandlerContext) {
        connection.closed()
        context.fireChannelInactive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        connection.read(unwrapInboundIn(data))
        performActions(context: context)
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        if connection.passesReadComplete { context.fireChannelReadComplete() }
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        switch event {
        case let event as ChannelEvent where event == .inputClosed:
            connection.inputEnded()
        case is ChannelShouldQuiesceEvent:
            connection.quiesce()
        default:
            context.fireUserInboundEventTriggered(event)
            return
        }
        performActions(context: context)
    }

    func read(context: ChannelHandlerContext) {
        if connection.mayRead() { context.read() }
    }

    func triggerUserOutboundEvent(context: ChannelHandlerContext, event: Any, promise: EventLoopPromise<Void>?) {
        guard event is RouterAnswerEnded else {
            context.triggerUserOutboundEvent(event, promise: promise)
            return
        }
        promise?.succeed()
        connection.routerAnswerEnded()
        performActions(context: context)
    }

    /// Carries out the state machine's actions, in order.
    private func performActions(context: ChannelHandlerContext) {
        guard !isPerforming else { return }
        isPerforming = true
        defer { isPerforming = false }
        while let action = connection.nextAction() {
            switch action {
            case .answerLookup(let lookup, let sequence):
                answer(lookup, exchange: begin(shared.lookupRoute, sequence: sequence), context: context)
            case .answerCreate(let create, let body, let sequence):
                answer(create, body: body, exchange: begin(shared.createRoute, sequence: sequence), context: context)
            case .forward(let bytes, let completesRead):
                // A read forwarded without its own read-complete relies on the channel's.
                assert(completesRead || connection.passesReadComplete)
                context.fireChannelRead(wrapInboundOut(bytes))
                if completesRead { context.fireChannelReadComplete() }
            case .forwardInputClosed:
                context.fireUserInboundEventTriggered(ChannelEvent.inputClosed)
            case .forwardQuiesce:
                context.fireUserInboundEventTriggered(ChannelShouldQuiesceEvent())
            case .write(let bytes):
                activity.answerEnded()
                context.write(wrapOutboundOut(bytes), promise: nil)
            case .writeAndClose(let bytes):
                activity.answerEnded()
                let channel = context.channel
                context.writeAndFlush(wrapOutboundOut(bytes)).whenComplete { _ in channel.close(promise: nil) }
            case .flush:
                context.flush()
            case .read:
                context.read()
            }
        }
    }

    // MARK: - Answering lookups

    /// A request the state machine gave this handler to answer: timed, and told to the idle timer.
    private func begin(_ route: FastRoute, sequence: Int) -> Exchange {
        activity.requestStarted()
        return Exchange(sequence: sequence, requestID: RequestID.next(), start: NIODeadline.now(), route: route)
    }

    private func answer(_ lookup: HTTP1RequestScanner.Lookup, exchange: Exchange, context: ChannelHandlerContext) {
        let role: Role
        do throws(APIError) {
            role = try authorize(lookup.credentials.authorization, .reader)
        } catch {
            finish(exchange, error.answer, context: context)
            return
        }
        let token: SessionToken
        let touch: Bool
        do throws(APIError) {
            // No query (the usual lookup): the default, without parsing a URI.
            touch = lookup.hasQuery ? try LookupRequest.touch(in: URI(lookup.target)) : true
            token = try shared.cookie.token(header: lookup.credentials.sessionToken?.readableBytesView, cookies: lookup.credentials.cookies)
        } catch {
            respond(to: .failure(error), role: role, exchange, context: context)
            return
        }
        let loopBound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
        let logger = shared.logger
        shared.store.lookup(token, touch: touch, on: context.eventLoop) { result in
            let (handler, context) = loopBound.value
            switch result {
            case .success(let session):
                handler.respond(to: .success(session), role: role, exchange, context: context)
            case .failure(let error):
                handler.finish(exchange, APIError.answering(error, logger: logger).answer, context: context)
            }
        }
    }

    /// A create, checked as the router's handler checks it, answered on this channel's loop.
    private func answer(_ create: HTTP1RequestScanner.Create, body: [UInt8], exchange: Exchange, context: ChannelHandlerContext) {
        let request: NewSession
        do {
            _ = try authorize(create.authorization, .app)
            request = try SessionRequests.newSession(from: body, policy: shared.store.policy)
        } catch {
            finish(exchange, APIError.answering(error, logger: shared.logger).answer, context: context)
            return
        }
        let shared = self.shared
        let loopBound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
        shared.store.create(request, on: context.eventLoop) { result in
            let (handler, context) = loopBound.value
            switch result {
            case .success(let created):
                // As the router's create handler answers it.
                handler.finish(exchange, shared.cookie.answer(created.session, token: created.token, status: .created), context: context)
            case .failure(let error):
                handler.finish(exchange, APIError.answering(error, logger: shared.logger).answer, context: context)
            }
        }
    }

    /// The API key check, through the connection's remembered key (`authorized`) when its role
    /// suffices; otherwise the key ring answers, with the router's errors.
    private func authorize(_ header: ByteBuffer?, _ required: Role) throws(APIError) -> Role {
        if let header, let authorized, authorized.role >= required, constantTimeEquals(header.readableBytesView, authorized.header.utf8) {
            return authorized.role
        }
        let text = header.map { String(buffer: $0) }
        let role = try shared.keys.authorize(text, required)
        if let text { authorized = (text, role) }
        return role
    }

    /// What a lookup found, answered as the router's handler answers it.
    private func respond(to found: Result<Session?, APIError>, role: Role, _ exchange: Exchange, context: ChannelHandlerContext) {
        do throws(APIError) {
            finish(exchange, try LookupRequest.answer(found, role: role, metrics: shared.metrics), context: context)
        } catch {
            finish(exchange, error.answer, context: context)
        }
    }

    /// Logs and counts the answer as `RequestLogMiddleware` does, then renders it and writes
    /// it in its turn.
    private func finish(_ exchange: Exchange, _ answer: JSONAnswer, context: ChannelHandlerContext) {
        shared.requestLog.record(
            requestID: exchange.requestID, method: exchange.route.method, route: exchange.route.path,
            metrics: exchange.route.metrics, status: answer.status.code, elapsed: NIODeadline.now() - exchange.start,
            handle: answer.handle
        )
        let bytes = answer.bytes(requestID: exchange.requestID, serverName: shared.serverName, allocator: context.channel.allocator)
        connection.answerReady(bytes, sequence: exchange.sequence)
        performActions(context: context)
    }
}

/// Sent (outbound) by `IdleConnectionHandler` when the router's answer to a request has been
/// written, so the fast path in front of NIO's parser may read the next request.
struct RouterAnswerEnded: Sendable {}
