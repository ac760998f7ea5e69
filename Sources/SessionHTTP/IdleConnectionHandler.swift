import HTTPTypes
import NIOCore
import NIOHTTPTypes

/// Closes a connection that has no request in progress for `timeout`: an idle keep-alive
/// connection, or a client sending its headers slowly (no request head arrives until they are
/// complete, so it counts as idle). It sees the router's requests and answers as HTTP parts,
/// and the lookup fast path (in front of NIO's parser) tells it of its own
/// (Hummingbird's idle timeout sees only the router's, and would close busy lookup connections).
/// When a router answer has been written it tells the fast path so (`RouterAnswerEnded`).
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
        if case .head = unwrapInboundIn(data) { requestStarted() }
        context.fireChannelRead(data)
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        guard case .end = unwrapOutboundIn(data) else {
            context.write(data, promise: promise)
            return
        }
        answerEnded()
        context.write(data, promise: promise)
        // After the answer's bytes, so the fast path's next answers follow them.
        context.triggerUserOutboundEvent(RouterAnswerEnded(), promise: nil)
    }

    /// A request's head has been read (by the router's parser or the fast path).
    func requestStarted() {
        inProgress += 1
    }

    /// A request's answer has been written.
    func answerEnded() {
        inProgress = max(0, inProgress - 1)
        if inProgress == 0 { idleSince = .now() }
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
