import HTTPTypes
import NIOCore
import NIOHTTPTypes

/// Closes a connection that has no request in progress for `timeout`: an idle keep-alive
/// connection, or a client sending its headers or its body slowly (a request counts from the
/// moment it is complete, so until then the connection is idle). It sees the router's requests
/// and answers as HTTP parts, and the lookup fast path (in front of NIO's parser) tells it of its
/// own (Hummingbird's idle timeout sees only the router's, and would close busy lookup
/// connections).
/// When a router answer has been written it tells the fast path so (`RouterAnswerEnded`).
/// It also keeps the connection's entry in the `ConnectionDrainer`, which may close it to make
/// room for a new client while it has no request in flight.
final class IdleConnectionHandler: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPRequestPart
    typealias InboundOut = HTTPRequestPart
    typealias OutboundIn = HTTPResponsePart
    typealias OutboundOut = HTTPResponsePart

    private let timeout: TimeAmount
    /// Requests received whole whose answer has not ended yet.
    private var inProgress = 0
    /// Where the router's current request is (it handles one at a time).
    private var routed = RoutedRequest.none
    /// When the last answer ended (or the connection opened): the idle time counts from here.
    private var idleSince = NIODeadline.now()
    /// One timer per connection, re-armed only when it fires: a request costs a clock read, not
    /// a timer cancelled and scheduled again (which the lookup fast path would feel).
    private var idleTimer: Scheduled<Void>?
    private let drainer: ConnectionDrainer
    /// This connection in the drainer, from the moment it is active until it closes.
    private var drained: ConnectionDrainer.Connection?
    /// Chosen to make room while a request was in flight: closes once none is.
    private var closeWhenIdle = false
    /// Accepted while every connection was busy at the limit: nothing is read, and no idle time
    /// counts, until the drainer admits it (`ConnectionDrainer`).
    private var parked = false
    /// A read asked for while parked, issued on admission.
    private var readWhenAdmitted = false
    private var context: ChannelHandlerContext?

    init(timeout: TimeAmount, drainer: ConnectionDrainer) {
        self.timeout = timeout
        self.drainer = drainer
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        if context.channel.isActive { opened(context: context) }
    }

    func channelActive(context: ChannelHandlerContext) {
        opened(context: context)
        context.fireChannelActive()
    }

    func channelInactive(context: ChannelHandlerContext) {
        closed()
        context.fireChannelInactive()
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        closed()
        self.context = nil
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch (unwrapInboundIn(data), routed) {
        case (.head, _):
            routed = .receiving
        case (.end, .receiving):
            routed = .inFlight
            requestStarted()
        case (.end, .answeredEarly):
            routed = .none
        default:
            break
        }
        context.fireChannelRead(data)
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        guard case .end = unwrapOutboundIn(data) else {
            context.write(data, promise: promise)
            return
        }
        switch routed {
        case .inFlight:
            routed = .none
            answerEnded()
        case .receiving:
            // Answered before the body ended (a refused key, a body over the limit): the request
            // never counted, and its end, if it comes, does not start one.
            routed = .answeredEarly
        case .none, .answeredEarly:
            break
        }
        context.write(data, promise: promise)
        // After the answer's bytes, so the fast path's next answers follow them.
        context.triggerUserOutboundEvent(RouterAnswerEnded(), promise: nil)
    }

    /// A request has been read whole (by the router's parser or the fast path).
    func requestStarted() {
        inProgress += 1
        if inProgress == 1, let drained { drainer.markBusy(drained) }
    }

    /// A request's answer is being written (the caller writes it right after).
    func answerEnded() {
        inProgress = max(0, inProgress - 1)
        guard inProgress == 0 else { return }
        idleSince = .now()
        if let drained { drainer.markIdle(drained, since: idleSince) }
        if closeWhenIdle, let context {
            // On the next turn of the loop: the answer just handed over is written first.
            onLoop(context) { $0.closeToMakeRoom(context: $1) }()
        }
    }

    private func opened(context: ChannelHandlerContext) {
        guard drained == nil else { return }
        let connection = ConnectionDrainer.Connection(
            drain: onLoop(context) { $0.drain(context: $1) },
            admit: onLoop(context) { $0.admitted(context: $1) }
        )
        drained = connection
        parked = !drainer.register(connection)
        if !parked { startIdleTime(context: context) }
    }

    /// Runs `body` with this handler and its context on the connection's loop, when called from
    /// any thread.
    private func onLoop(
        _ context: ChannelHandlerContext, _ body: @escaping (IdleConnectionHandler, ChannelHandlerContext) -> Void
    ) -> @Sendable () -> Void {
        let loopBound = NIOLoopBound((self, context, body), eventLoop: context.eventLoop)
        let eventLoop = context.eventLoop
        return {
            eventLoop.execute {
                let (handler, context, body) = loopBound.value
                body(handler, context)
            }
        }
    }

    private func startIdleTime(context: ChannelHandlerContext) {
        idleSince = .now()
        arm(at: idleSince + timeout, context: context)
    }

    private func admitted(context: ChannelHandlerContext) {
        guard parked, context.channel.isActive else { return }
        parked = false
        startIdleTime(context: context)
        if readWhenAdmitted {
            readWhenAdmitted = false
            context.read()
        }
    }

    func read(context: ChannelHandlerContext) {
        guard !parked else {
            readWhenAdmitted = true
            return
        }
        context.read()
    }

    private func closed() {
        idleTimer?.cancel()
        idleTimer = nil
        // The entry's closure holds this handler: dropping both ends the cycle.
        if let drained { drainer.deregister(drained) }
        drained = nil
    }

    /// The drainer chose this connection to make room: it closes now, or after its requests.
    private func drain(context: ChannelHandlerContext) {
        guard context.channel.isActive, drained != nil else { return }
        if inProgress == 0 {
            closeToMakeRoom(context: context)
        } else {
            closeWhenIdle = true
        }
    }

    private func closeToMakeRoom(context: ChannelHandlerContext) {
        guard context.channel.isActive, inProgress == 0 else { return }
        drainer.drained.increment()
        context.close(promise: nil)
    }

    private func arm(at deadline: NIODeadline, context: ChannelHandlerContext) {
        let loopBound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
        idleTimer = context.eventLoop.scheduleTask(deadline: deadline) {
            let (handler, context) = loopBound.value
            handler.timerFired(context: context)
        }
    }

    private func timerFired(context: ChannelHandlerContext) {
        let due = idleSince + timeout
        if inProgress == 0 && due <= .now() {
            idleTimer = nil
            context.close(promise: nil)
        } else {
            // Busy, or active since the timer was set: look again one timeout after the last answer.
            arm(at: inProgress == 0 ? due : .now() + timeout, context: context)
        }
    }
}

/// The router's request as the idle timeout and the drainer see it.
private enum RoutedRequest {
    case none
    /// The head has arrived, the body not all of it: the connection still counts as idle.
    case receiving
    /// Received whole and not answered yet.
    case inFlight
    /// Answered while its body was still arriving.
    case answeredEarly
}
