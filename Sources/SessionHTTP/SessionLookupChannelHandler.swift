import HTTPTypes
import Hummingbird
import HummingbirdCore
import Logging
import NIOCore
import NIOHTTPTypes
import SessionCrypto
import SessionStore

/// The hot path of `GET /v1/session`, in the HTTP channel's pipeline in front of the router:
/// it parses the request exactly as the router's handler does (`LookupRequest`, the API key
/// ring, the cookie), reads the record with one `GET` on a Redis connection of the same event
/// loop (and the touch script the same way when a touch is due), and writes the answer, all
/// without a task or thread hop. Every other request, and any lookup it cannot finish alone (a
/// Redis error to retry or answer, a script to load), goes the normal way: passed on to the
/// router, or run through `SessionStore.lookup` in a task.
///
/// NIO's pipelining assistance (upstream) hands on one request at a time and holds the next
/// until the answer's end is written, so answers never overtake each other.
final class SessionLookupChannelHandler: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPRequestPart
    typealias InboundOut = HTTPRequestPart
    typealias OutboundIn = HTTPResponsePart
    typealias OutboundOut = HTTPResponsePart

    /// What the handler shares across connections.
    struct Shared: Sendable {
        let store: SessionStore
        let keys: APIKeyRing
        let cookie: SessionCookie
        let serverName: String
        let logger: Logger
        let metrics: ServiceMetrics
        /// The lookup route's metrics, found once rather than per request.
        let lookupMetrics: RouteMetrics

        init(store: SessionStore, keys: APIKeyRing, cookie: SessionCookie, serverName: String, logger: Logger, metrics: ServiceMetrics) {
            self.store = store
            self.keys = keys
            self.cookie = cookie
            self.serverName = serverName
            self.logger = logger
            self.metrics = metrics
            lookupMetrics = metrics.route(method: "GET", path: APIRoute.lookupPath)
        }
    }

    private enum State {
        case idle
        /// A request for the router: its parts go on until its end.
        case passing
        /// A lookup being read (a body, if any, is ignored, as the router's handler ignores it).
        case reading(HTTPRequest)
        case answering
    }

    private let shared: Shared
    private var state = State.idle

    init(shared: Shared) {
        self.shared = shared
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let part = unwrapInboundIn(data)
        switch (state, part) {
        case (.idle, .head(let head)):
            if Self.isLookup(head) {
                state = .reading(head)
            } else {
                state = .passing
                context.fireChannelRead(data)
            }
        case (.passing, .end):
            state = .idle
            context.fireChannelRead(data)
        case (.passing, _):
            context.fireChannelRead(data)
        case (.reading(let head), .end):
            state = .answering
            answer(head, context: context)
        case (.reading, _):
            break
        case (.idle, _), (.answering, _):
            // Not a request's start, or a request before the answer (the pipelining handler
            // upstream prevents that): let the router's side report it.
            state = .passing
            context.fireChannelRead(data)
        }
    }

    /// `GET /v1/session[?...]` without a body. The path must be exact: anything else (a
    /// trailing slash, `HEAD`) is the router's to answer.
    private static func isLookup(_ head: HTTPRequest) -> Bool {
        guard head.method == .get, let path = head.path else { return false }
        let route = path.utf8.firstIndex(of: UInt8(ascii: "?")).map { path[..<$0] } ?? Substring(path)
        return route == "/v1/session" && head.headerFields[.contentLength] == nil && head.headerFields[.transferEncoding] == nil
    }

    private func answer(_ head: HTTPRequest, context: ChannelHandlerContext) {
        let start = NIODeadline.now()
        let requestID = RequestID.next()
        let role: Role
        do throws(APIError) {
            role = try shared.keys.authorize(head.headerFields[.authorization], .reader)
        } catch {
            respond(error: error, head: head, requestID: requestID, start: start, context: context)
            return
        }
        let token: SessionToken
        let touch: Bool
        do throws(APIError) {
            touch = try LookupRequest.touch(in: URI(head.path ?? "/"))
            token = try shared.cookie.token(in: head.headerFields)
        } catch {
            // A malformed or missing token counts as an invalid-session lookup too.
            if error.code == LookupRequest.noSession.code { shared.metrics.recordInvalidSessionLookup(role: role) }
            respond(error: error, head: head, requestID: requestID, start: start, context: context)
            return
        }
        let loopBound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
        shared.store.quickLookup(token, touch: touch, on: context.eventLoop).whenComplete { result in
            let (handler, context) = loopBound.value
            switch result {
            case .success(.found(let session)):
                handler.respond(found: session, role: role, head: head, requestID: requestID, start: start, context: context)
            case .success(.notFound):
                handler.respond(found: nil, role: role, head: head, requestID: requestID, start: start, context: context)
            case .failure:
                handler.lookUpFully(token, touch: touch, role: role, head: head, requestID: requestID, start: start, context: context)
            }
        }
    }

    /// The full lookup (touch script, retries, redirects, error answers) in a task; the answer
    /// is written back on the channel's event loop.
    private func lookUpFully(
        _ token: SessionToken, touch: Bool, role: Role, head: HTTPRequest, requestID: String, start: NIODeadline, context: ChannelHandlerContext
    ) {
        let shared = self.shared
        let promise = context.eventLoop.makePromise(of: Session?.self)
        promise.completeWithTask { try await shared.store.lookup(token, touch: touch) }
        let loopBound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
        promise.futureResult.whenComplete { result in
            let (handler, context) = loopBound.value
            switch result {
            case .success(let session):
                handler.respond(found: session, role: role, head: head, requestID: requestID, start: start, context: context)
            case .failure(let error):
                handler.respond(
                    error: APIError.answering(error, logger: shared.logger),
                    head: head, requestID: requestID, start: start, context: context
                )
            }
        }
    }

    /// The session as 200, or no session as `invalid_session` (counted for the asking key's
    /// role), as the router's handler answers.
    private func respond(
        found session: Session?, role: Role, head: HTTPRequest, requestID: String, start: NIODeadline, context: ChannelHandlerContext
    ) {
        guard let session else {
            shared.metrics.recordInvalidSessionLookup(role: role)
            respond(error: LookupRequest.noSession, head: head, requestID: requestID, start: start, context: context)
            return
        }
        write(
            status: .ok, headers: LookupRequest.headers(for: session), body: SessionJSON.render(session),
            handle: session.handle.encoded, head: head, requestID: requestID, start: start, context: context
        )
    }

    private func respond(error: APIError, head: HTTPRequest, requestID: String, start: NIODeadline, context: ChannelHandlerContext) {
        write(
            status: error.status, headers: error.responseHeaders, body: error.body,
            handle: nil, head: head, requestID: requestID, start: start, context: context
        )
    }

    /// Writes the answer with the headers the router's path adds (request id, date, server,
    /// length), logs it as `RequestLogMiddleware` does, and closes when the client asked to.
    private func write(
        status: HTTPResponse.Status, headers: HTTPFields, body: ByteBuffer, handle: String?,
        head: HTTPRequest, requestID: String, start: NIODeadline, context: ChannelHandlerContext
    ) {
        var fields = headers
        fields[.requestID] = requestID
        fields[.date] = HTTPDate.now()
        fields[.server] = shared.serverName
        fields[.contentLength] = String(body.readableBytes)
        context.write(wrapOutboundOut(.head(HTTPResponse(status: status, headerFields: fields))), promise: nil)
        context.write(wrapOutboundOut(.body(body)), promise: nil)
        let closing = head.headerFields[.connection] == "close"
        if closing {
            let channel = context.channel
            context.writeAndFlush(wrapOutboundOut(.end(nil))).whenComplete { _ in channel.close(promise: nil) }
        } else {
            context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
        }
        state = .idle
        let elapsed = NIODeadline.now() - start
        shared.lookupMetrics.record(status: status.code, nanoseconds: elapsed.nanoseconds)
        RequestLog.record(
            logger: shared.logger, requestID: requestID, method: head.method.rawValue, route: APIRoute.lookupPath,
            status: status.code, elapsed: elapsed, handle: handle
        )
    }
}
