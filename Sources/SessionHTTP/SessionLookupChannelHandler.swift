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
/// `POST /v1/sessions` with a small body is answered here too: the same validation and
/// `SessionStore.create` as the router's handler, in a task, without the router's per-request
/// machinery, which was most of a create's cost.
///
/// Every other request goes, bytes unchanged, to NIO's parser and the router, one at a time: it
/// is passed on once the answers before it are written, and the fast path reads on only once
/// the router's answer has ended (`RouterAnswerEnded`). Answers therefore leave in request
/// order, pipelined or not. A request the scanner cannot frame hands the connection to NIO's
/// parser for good.
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

    private enum Mode {
        /// Reading request heads from `pending`.
        case scanning
        /// A request for the router (or the hand-over), waiting for the answers before it.
        case holding(Next)
        /// A request's bytes going to NIO's parser; fast answers wait for the router's answer.
        case routing(bytesLeft: Int, answerEnded: Bool)
        /// NIO's parser has the connection.
        case handedOver
        /// A lookup asked to close: nothing after it is read.
        case closing
    }

    private enum Next {
        case route(length: Int)
        case handOver
    }

    /// A lookup's answer, in request order; `bytes` is nil until it is ready.
    private struct PendingAnswer {
        var bytes: ByteBuffer?
        let closes: Bool
    }

    /// Most lookups in progress on one connection; a client pipelining more waits (reads stop).
    private static let maxAnswersInProgress = 32
    /// Most unread bytes held; beyond it reads stop until the requests in them are served.
    private static let maxPendingBytes = 64 * 1024

    private let shared: Shared
    private let activity: IdleConnectionHandler
    private var mode = Mode.scanning
    private var pending = ByteBuffer()
    private var answers = CircularBuffer<PendingAnswer>(initialCapacity: 4)
    /// The sequence number of `answers.first`.
    private var firstSequence = 0
    private var isScanning = false
    private var readHeld = false
    private var inputClosed = false
    private var quiescing = false
    /// The last Authorization value that passed here, and its role. A keep-alive client (or a
    /// proxy's upstream connection) sends the same key with every request, and hashing it each
    /// time was 3 % of a lookup. Compared in constant time: a proxy's connection may carry
    /// several clients' keys.
    private var authorized: (header: String, role: Role)?
    /// A create whose head is read and whose body is still arriving: its head is not scanned
    /// again on every read.
    private var awaitedCreate: HTTP1RequestScanner.Create?

    /// `activity` is the connection's idle timer, told of each request answered here.
    init(shared: Shared, activity: IdleConnectionHandler) {
        self.shared = shared
        self.activity = activity
    }

    func channelInactive(context: ChannelHandlerContext) {
        mode = .closing
        pending.clear()
        answers.removeAll()
        awaitedCreate = nil
        context.fireChannelInactive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var bytes = unwrapInboundIn(data)
        switch mode {
        case .handedOver:
            context.fireChannelRead(data)
            return
        case .closing:
            return
        case .scanning, .holding, .routing:
            break
        }
        if pending.readableBytes == 0 {
            pending = bytes
        } else {
            pending.writeBuffer(&bytes)
        }
        if case .routing = mode {
            forwardRouted(context: context)
        } else {
            scanPending(context: context)
        }
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        context.fireChannelReadComplete()
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        switch (event, mode) {
        case (_, .handedOver):
            context.fireUserInboundEventTriggered(event)
        case (let event as ChannelEvent, _) where event == .inputClosed:
            // The client has sent everything: what is complete is still answered; then the
            // router's side hears of it (and closes).
            inputClosed = true
            if case .routing(let bytesLeft, _) = mode, bytesLeft > 0 {
                // The routed request's body can no longer arrive: the router hears of the end
                // now (and closes), or the request would hold the connection for ever.
                context.fireUserInboundEventTriggered(event)
            }
            finishIfIdle(context: context)
        case (is ChannelShouldQuiesceEvent, .routing):
            // The router's side closes after the answer it is writing.
            quiescing = true
            context.fireUserInboundEventTriggered(event)
        case (is ChannelShouldQuiesceEvent, _):
            // Shutting down: no new request is read; the connection closes once the answers
            // read so far are written.
            quiescing = true
            finishIfIdle(context: context)
        default:
            context.fireUserInboundEventTriggered(event)
        }
    }

    func read(context: ChannelHandlerContext) {
        if case .handedOver = mode {
            context.read()
        } else if answers.count >= Self.maxAnswersInProgress || pending.readableBytes >= Self.maxPendingBytes {
            readHeld = true
        } else {
            context.read()
        }
    }

    func triggerUserOutboundEvent(context: ChannelHandlerContext, event: Any, promise: EventLoopPromise<Void>?) {
        guard event is RouterAnswerEnded else {
            context.triggerUserOutboundEvent(event, promise: promise)
            return
        }
        promise?.succeed()
        if case .routing(let bytesLeft, _) = mode {
            mode = .routing(bytesLeft: bytesLeft, answerEnded: true)
            forwardRouted(context: context)
        }
    }

    // MARK: - Reading requests

    private func scanPending(context: ChannelHandlerContext) {
        // Answers that are ready at once would come back here; the loop below goes on instead.
        guard !isScanning else { return }
        isScanning = true
        defer { isScanning = false }
        scan: while case .scanning = mode, !quiescing, answers.count < Self.maxAnswersInProgress, pending.readableBytes > 0 {
            switch awaitedCreate.map(HTTP1RequestScanner.Result.create) ?? HTTP1RequestScanner.scan(pending) {
            case .incomplete:
                break scan
            case .unsupported:
                mode = .holding(.handOver)
                releaseHeld(context: context)
            case .other(let length):
                mode = .holding(.route(length: length))
                releaseHeld(context: context)
            case .lookup(let lookup):
                pending.moveReaderIndex(forwardBy: lookup.length)
                if lookup.closes { mode = .closing }
                answer(lookup, context: context)
            case .create(let create) where create.bodyLength > shared.bodyLimit:
                // Over the router's limit (a small `SESSIOND_MAX_DATA_BYTES`): it answers 413.
                mode = .holding(.route(length: create.headLength + create.bodyLength))
                releaseHeld(context: context)
            case .create(let create):
                // The body may still be on its way; reads go on (it is far below the limit).
                guard pending.readableBytes >= create.headLength + create.bodyLength else {
                    awaitedCreate = create
                    break scan
                }
                awaitedCreate = nil
                pending.moveReaderIndex(forwardBy: create.headLength)
                let body = pending.readBytes(length: create.bodyLength) ?? []
                if create.closes { mode = .closing }
                answer(create, body: body, context: context)
            }
        }
        finishIfIdle(context: context)
        resumeReading(context: context)
    }

    /// Passes the held request (or the whole connection) to NIO's parser once no fast answer
    /// is waiting before it.
    private func releaseHeld(context: ChannelHandlerContext) {
        guard case .holding(let next) = mode, answers.isEmpty else { return }
        if quiescing {
            // Not started before the shutdown began: not served, as the router does too.
            mode = .closing
            context.fireUserInboundEventTriggered(ChannelShouldQuiesceEvent())
            return
        }
        switch next {
        case .route(let length):
            mode = .routing(bytesLeft: length, answerEnded: false)
            forwardRouted(context: context)
        case .handOver:
            mode = .handedOver
            if pending.readableBytes > 0 {
                context.fireChannelRead(wrapInboundOut(pending))
                pending = ByteBuffer()
                context.fireChannelReadComplete()
            }
            if inputClosed { context.fireUserInboundEventTriggered(ChannelEvent.inputClosed) }
            resumeReading(context: context)
        }
    }

    /// Gives NIO's parser the routed request's bytes as they come; reads on from the next
    /// request once they are all given and the router's answer has ended.
    private func forwardRouted(context: ChannelHandlerContext) {
        guard case .routing(var bytesLeft, let answerEnded) = mode else { return }
        let count = min(bytesLeft, pending.readableBytes)
        if count > 0, let bytes = pending.readSlice(length: count) {
            bytesLeft -= count
            mode = .routing(bytesLeft: bytesLeft, answerEnded: answerEnded)
            context.fireChannelRead(wrapInboundOut(bytes))
            context.fireChannelReadComplete()
        }
        guard case .routing = mode else { return }
        if bytesLeft == 0 && answerEnded {
            mode = .scanning
            scanPending(context: context)
        } else {
            resumeReading(context: context)
        }
    }

    /// After the client's end of input or a shutdown, once nothing is left to answer here:
    /// the router's side is told, and closes the connection.
    private func finishIfIdle(context: ChannelHandlerContext) {
        guard answers.isEmpty, case .scanning = mode else { return }
        if quiescing {
            mode = .closing
            context.fireUserInboundEventTriggered(ChannelShouldQuiesceEvent())
        } else if inputClosed {
            mode = .holding(.handOver)
            releaseHeld(context: context)
        }
    }

    private func resumeReading(context: ChannelHandlerContext) {
        guard readHeld, answers.count < Self.maxAnswersInProgress, pending.readableBytes < Self.maxPendingBytes else { return }
        readHeld = false
        context.read()
    }

    // MARK: - Answering lookups

    /// Queues the place of a request's answer.
    private func begin(_ route: FastRoute, closes: Bool) -> Exchange {
        let exchange = Exchange(sequence: firstSequence + answers.count, requestID: RequestID.next(), start: NIODeadline.now(), route: route)
        answers.append(PendingAnswer(bytes: nil, closes: closes))
        activity.requestStarted()
        return exchange
    }

    private func answer(_ lookup: HTTP1RequestScanner.Lookup, context: ChannelHandlerContext) {
        let exchange = begin(shared.lookupRoute, closes: lookup.closes)
        let role: Role
        do throws(APIError) {
            role = try authorize(lookup.credentials.authorization, .reader)
        } catch {
            respond(error: error, exchange, context: context)
            return
        }
        let token: SessionToken
        let touch: Bool
        do throws(APIError) {
            // No query (the usual lookup): the default, without parsing a URI.
            touch = lookup.hasQuery ? try LookupRequest.touch(in: URI(lookup.target)) : true
            token = try shared.cookie.token(header: lookup.credentials.sessionToken, cookies: lookup.credentials.cookies)
        } catch {
            // A malformed or missing token counts as an invalid-session lookup too.
            if error.code == LookupRequest.noSession.code { shared.metrics.recordInvalidSessionLookup(role: role) }
            respond(error: error, exchange, context: context)
            return
        }
        let loopBound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
        let logger = shared.logger
        shared.store.lookup(token, touch: touch, on: context.eventLoop).whenComplete { result in
            let (handler, context) = loopBound.value
            switch result {
            case .success(let session):
                handler.respond(found: session, role: role, exchange, context: context)
            case .failure(let error):
                handler.respond(error: APIError.answering(error, logger: logger), exchange, context: context)
            }
        }
    }

    /// A create, checked as the router's handler checks it; the store's work runs in a task.
    private func answer(_ create: HTTP1RequestScanner.Create, body: [UInt8], context: ChannelHandlerContext) {
        let exchange = begin(shared.createRoute, closes: create.closes)
        let request: NewSession
        do {
            _ = try authorize(create.authorization, .app)
            request = try SessionRequests.newSession(from: body, policy: shared.store.policy)
        } catch {
            respond(error: APIError.answering(error, logger: shared.logger), exchange, context: context)
            return
        }
        let shared = self.shared
        let promise = context.eventLoop.makePromise(of: SessionStore.Created.self)
        promise.completeWithTask { try await shared.store.create(request) }
        let loopBound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
        promise.futureResult.whenComplete { result in
            let (handler, context) = loopBound.value
            switch result {
            case .success(let created):
                handler.respond(created: created, exchange, context: context)
            case .failure(let error):
                handler.respond(error: APIError.answering(error, logger: shared.logger), exchange, context: context)
            }
        }
    }

    /// The API key check, through the connection's remembered key (`authorized`) when its role
    /// suffices; otherwise the key ring answers, with the router's errors.
    private func authorize(_ header: String?, _ required: Role) throws(APIError) -> Role {
        if let header, let authorized, authorized.role >= required, constantTimeEquals(header.utf8, authorized.header.utf8) {
            return authorized.role
        }
        let role = try shared.keys.authorize(header, required)
        if let header { authorized = (header, role) }
        return role
    }

    /// The session as 200, or no session as `invalid_session` (counted for the asking key's
    /// role), as the router's handler answers.
    private func respond(found session: Session?, role: Role, _ exchange: Exchange, context: ChannelHandlerContext) {
        guard let session else {
            shared.metrics.recordInvalidSessionLookup(role: role)
            respond(error: LookupRequest.noSession, exchange, context: context)
            return
        }
        let body = SessionJSON.render(session)
        finish(exchange, status: .ok, handle: session.handle.encoded, context: context) { allocator in
            HTTP1ResponseBytes.render(
                status: .ok, body: body, requestID: exchange.requestID, serverName: shared.serverName, allocator: allocator
            ) { LookupRequest.writeHeaders(for: session, into: &$0) }
        }
    }

    /// The new session with its token, as the router's create handler answers it.
    private func respond(created: SessionStore.Created, _ exchange: Exchange, context: ChannelHandlerContext) {
        let session = created.session
        let token = created.token.encoded
        let body = SessionJSON.render(session, token: token, setCookie: shared.cookie.set(token: token, session: session))
        finish(exchange, status: .created, handle: session.handle.encoded, context: context) { allocator in
            HTTP1ResponseBytes.render(
                status: .created, body: body, requestID: exchange.requestID, serverName: shared.serverName, allocator: allocator
            ) { HTTP1ResponseBytes.writeSessionHeaders(for: session, into: &$0) }
        }
    }

    private func respond(error: APIError, _ exchange: Exchange, context: ChannelHandlerContext) {
        finish(exchange, status: error.status, handle: nil, context: context) { allocator in
            HTTP1ResponseBytes.render(
                status: error.status, body: error.body, requestID: exchange.requestID, serverName: shared.serverName, allocator: allocator
            ) { buffer in
                for field in error.responseHeaders { HTTP1ResponseBytes.write(field, into: &buffer) }
            }
        }
    }

    /// Logs and counts the answer as `RequestLogMiddleware` does, then renders it and writes
    /// it in its turn.
    private func finish(
        _ exchange: Exchange, status: HTTPResponse.Status, handle: String?, context: ChannelHandlerContext,
        render: (ByteBufferAllocator) -> ByteBuffer
    ) {
        let elapsed = NIODeadline.now() - exchange.start
        exchange.route.metrics.record(status: status.code, nanoseconds: elapsed.nanoseconds)
        shared.requestLog.record(
            requestID: exchange.requestID, method: exchange.route.method, route: exchange.route.path,
            status: status.code, elapsed: elapsed, handle: handle
        )
        let index = exchange.sequence - firstSequence
        // The connection closed meanwhile: nothing is waiting for this answer any more.
        guard index >= 0, index < answers.count else { return }
        answers[answers.index(answers.startIndex, offsetBy: index)].bytes = render(context.channel.allocator)
        writeReadyAnswers(context: context)
    }

    /// Writes the answers that are ready, in request order, and reads on when none is left.
    private func writeReadyAnswers(context: ChannelHandlerContext) {
        var wrote = false
        while let first = answers.first, let bytes = first.bytes {
            answers.removeFirst()
            firstSequence += 1
            activity.answerEnded()
            wrote = true
            if first.closes {
                let channel = context.channel
                context.writeAndFlush(wrapOutboundOut(bytes)).whenComplete { _ in channel.close(promise: nil) }
                answers.removeAll()
                return
            }
            context.write(wrapOutboundOut(bytes), promise: nil)
        }
        guard wrote else { return }
        context.flush()
        if answers.isEmpty {
            if case .holding = mode {
                releaseHeld(context: context)
            } else {
                scanPending(context: context)
            }
        } else {
            resumeReading(context: context)
        }
    }
}

/// Sent (outbound) by `IdleConnectionHandler` when the router's answer to a request has been
/// written, so the fast path in front of NIO's parser may read the next request.
struct RouterAnswerEnded: Sendable {}

/// An HTTP/1.1 answer as bytes, with the headers every answer carries.
enum HTTP1ResponseBytes {
    /// The status line, the answer's own headers (`writeHeaders`), then request id, date,
    /// server and length, as the router's path adds them.
    static func render(
        status: HTTPResponse.Status, body: ByteBuffer, requestID: String, serverName: String, allocator: ByteBufferAllocator,
        writeHeaders: (inout ByteBuffer) -> Void
    ) -> ByteBuffer {
        var buffer = allocator.buffer(capacity: 320 + body.readableBytes)
        buffer.writeStaticString("HTTP/1.1 ")
        buffer.writeString(String(status.code))
        buffer.writeStaticString(" ")
        buffer.writeString(status.reasonPhrase)
        buffer.writeStaticString("\r\n")
        writeHeaders(&buffer)
        buffer.writeStaticString("X-Request-Id: ")
        buffer.writeString(requestID)
        buffer.writeStaticString("\r\nDate: ")
        buffer.writeString(HTTPDate.now())
        buffer.writeStaticString("\r\nServer: ")
        buffer.writeString(serverName)
        buffer.writeStaticString("\r\nContent-Length: ")
        buffer.writeString(String(body.readableBytes))
        buffer.writeStaticString("\r\n\r\n")
        buffer.writeImmutableBuffer(body)
        return buffer
    }

    /// The headers of an answer that carries a session, as `SessionRoutes.json(_:_:session:)`
    /// sets them: type, no caching, handle and version.
    static func writeSessionHeaders(for session: Session, into buffer: inout ByteBuffer) {
        buffer.writeStaticString("Content-Type: application/json\r\nCache-Control: no-store\r\nX-Session-Handle: ")
        buffer.writeString(session.handle.encoded)
        buffer.writeStaticString("\r\nETag: \"")
        buffer.writeString(String(session.version))
        buffer.writeStaticString("\"\r\n")
    }

    static func write(_ field: HTTPField, into buffer: inout ByteBuffer) {
        buffer.writeString(field.name.rawName)
        buffer.writeStaticString(": ")
        buffer.writeString(field.value)
        buffer.writeStaticString("\r\n")
    }
}
