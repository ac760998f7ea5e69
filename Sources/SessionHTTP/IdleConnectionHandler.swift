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
    private var idleTimer: Scheduled<Void>?

    init(timeout: TimeAmount) {
        self.timeout = timeout
    }

    func handlerAdded(context: ChannelHandlerContext) {
        if context.channel.isActive { scheduleIdleTimer(context: context) }
    }

    func channelActive(context: ChannelHandlerContext) {
        scheduleIdleTimer(context: context)
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
        if case .head = unwrapInboundIn(data) {
            inProgress += 1
            idleTimer?.cancel()
            idleTimer = nil
        }
        context.fireChannelRead(data)
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        if case .end = unwrapOutboundIn(data) {
            inProgress = max(0, inProgress - 1)
            if inProgress == 0 { scheduleIdleTimer(context: context) }
        }
        context.write(data, promise: promise)
    }

    private func scheduleIdleTimer(context: ChannelHandlerContext) {
        idleTimer?.cancel()
        let loopBound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
        idleTimer = context.eventLoop.scheduleTask(in: timeout) {
            let (handler, context) = loopBound.value
            handler.idleTimer = nil
            if handler.inProgress == 0 { context.close(promise: nil) }
        }
    }
}
