import HTTPTypes
import NIOCore
import NIOHTTPTypes

/// Closes a connection that has no request in progress for `timeout`: an idle keep-alive
/// connection, or a client sending its headers slowly (no request head arrives until they are
/// complete, so it counts as idle). It sits in front of the lookup fast path, so it sees every
/// request and every answer, both the fast path's and the router's (Hummingbird's own idle
/// timeout sits behind the fast path and would close busy lookup connections).
final class IdleConnectionHandler: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPRequestPart
    typealias InboundOut = HTTPRequestPart
    typealias OutboundIn = HTTPResponsePart
    typealias OutboundOut = HTTPResponsePart

    private let timeout: TimeAmount
    /// Requests whose head arrived and whose answer has not ended yet.
    private var inProgress = 0
    /// When the last answer ended (or the connection opened): the idle time counts from here.
    private var idleSince = NIODeadline.now()
    /// One timer per connection, re-armed only when it fires: a request costs a clock read, not
    /// a timer cancelled and scheduled again (which the lookup fast path would feel).
    private var idleTimer: Scheduled<Void>?

    init(timeout: TimeAmount) {
        self.timeout = timeout
    }

    func handlerAdded(context: ChannelHandlerContext) {
        if context.channel.isActive { startTimer(context: context) }
    }

    func channelActive(context: ChannelHandlerContext) {
        startTimer(context: context)
        context.fireChannelActive()
    }

    func channelInactive(context: ChannelHandlerContext) {
        idleTimer?.cancel()
        idleTimer = nil
        context.fireChannelInactive()
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        idleTimer?.cancel()
        idleTimer = nil
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        if case .head = unwrapInboundIn(data) { inProgress += 1 }
        context.fireChannelRead(data)
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        if case .end = unwrapOutboundIn(data) {
            inProgress = max(0, inProgress - 1)
            if inProgress == 0 { idleSince = .now() }
        }
        context.write(data, promise: promise)
    }

    private func startTimer(context: ChannelHandlerContext) {
        guard idleTimer == nil else { return }
        idleSince = .now()
        arm(at: idleSince + timeout, context: context)
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
