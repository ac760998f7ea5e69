import DequeModule
import NIOCore

/// Where a command's raw reply goes (error replies included), once, on the connection's event
/// loop. A callback rather than a promise: the hot paths (a create's script call, a near-cache
/// fetch) answer their caller straight from it, with no future to allocate and chain.
public typealias RedisReplyHandler = @Sendable (Result<RESPValue, any Error>) -> Void

/// What the connection writes into the pipeline: encoded commands, written in one piece so
/// nothing else lands between them, and where their replies go, in order.
struct RedisRequest: Sendable {
    var encoded: ByteBuffer
    var replies: [RedisReplyHandler]
}

/// Pipelining: commands are written as they come and their reply handlers wait in a FIFO;
/// replies arrive in the same order, so each reply answers the oldest pending handler.
///
/// When anything goes wrong (the connection closes, a read fails, a command outlives its timeout)
/// the replies of the remaining commands can no longer be matched, so *every* pending command
/// fails and the channel is closed.
final class RedisChannelHandler: ChannelDuplexHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundIn = RedisRequest
    typealias OutboundOut = ByteBuffer

    private struct Pending {
        var reply: RedisReplyHandler
        var deadline: NIODeadline
    }

    private let reader = HiredisReplyReader()
    private let commandTimeout: TimeAmount
    private let metrics: RedisClientMetrics
    private let pendingCount: PendingCommandCount
    /// Set on a subscriber connection: where published messages go (they answer no command).
    private let onMessage: (@Sendable (RESPValue) -> Void)?
    private var pending = Deque<Pending>()
    private var timeoutCheck: Scheduled<Void>?
    private var closedWith: RedisClientError?
    private var context: ChannelHandlerContext?
    /// A flush is scheduled for the end of this event-loop tick: every command written during
    /// the tick (many HTTP requests' lookups) leaves in one `write(2)`.
    private var flushScheduled = false

    init(
        commandTimeout: TimeAmount, metrics: RedisClientMetrics, pendingCount: PendingCommandCount,
        onMessage: (@Sendable (RESPValue) -> Void)? = nil
    ) {
        self.commandTimeout = commandTimeout
        self.metrics = metrics
        self.pendingCount = pendingCount
        self.onMessage = onMessage
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        failAll(RedisClientError(.connectionClosed, "connection handler removed"))
        self.context = nil
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        let request = unwrapOutboundIn(data)
        // From here the replies are this handler's to answer, exactly once: the write promise
        // only tells the connection that the request arrived (a failure of the socket write
        // closes the channel, and `failAll` answers the pending replies).
        promise?.succeed()
        if let closedWith {
            for reply in request.replies { reply(.failure(closedWith)) }
            return
        }
        let deadline = NIODeadline.now() + commandTimeout
        for reply in request.replies { pending.append(Pending(reply: reply, deadline: deadline)) }
        pendingCount.add(request.replies.count)
        scheduleTimeoutCheckIfNeeded(context: context)
        context.write(wrapOutboundOut(request.encoded), promise: nil)
        if !flushScheduled {
            flushScheduled = true
            let loopBound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
            context.eventLoop.execute {
                let (handler, context) = loopBound.value
                handler.flushScheduled = false
                context.flush()
            }
        }
    }

    /// Flushes come from `write` (once per tick); a caller's own flush has nothing to add.
    func flush(context: ChannelHandlerContext) {}

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let buffer = unwrapInboundIn(data)
        // A command was sent at its deadline minus the timeout: its latency needs no clock of its own.
        let sentAtBase = NIODeadline.now() + commandTimeout
        do {
            try reader.feed(buffer)
            while let reply = try reader.nextReply() {
                if let onMessage, Self.isPublishedMessage(reply) {
                    onMessage(reply)
                    continue
                }
                guard let head = pending.popFirst() else {
                    throw RedisClientError(.protocolError, "reply without a pending command")
                }
                pendingCount.add(-1)
                metrics.commandDuration.recordNanoseconds(Int64(sentAtBase.uptimeNanoseconds) - Int64(head.deadline.uptimeNanoseconds))
                if case .error = reply { metrics.errorReplies.increment() }
                head.reply(.success(reply))
            }
        } catch {
            fail(context: context, with: error as? RedisClientError
                ?? RedisClientError(.protocolError, "\(error)"))
        }
    }

    /// `message <channel> <payload>`, as RESP2 delivers a publication to a subscriber.
    private static func isPublishedMessage(_ reply: RESPValue) -> Bool {
        guard case .array(let parts) = reply, parts.count == 3, let kind = parts[0].bytes else { return false }
        return kind == Array("message".utf8)
    }

    func channelInactive(context: ChannelHandlerContext) {
        failAll(RedisClientError(.connectionClosed, "connection to Redis closed"))
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        fail(context: context, with: RedisClientError(.connectionClosed, "connection error: \(error)"))
    }

    private func fail(context: ChannelHandlerContext, with error: RedisClientError) {
        failAll(error)
        context.close(promise: nil)
    }

    private func failAll(_ error: RedisClientError) {
        if closedWith == nil { closedWith = error }
        timeoutCheck?.cancel()
        timeoutCheck = nil
        let failed = pending
        pending.removeAll()
        pendingCount.add(-failed.count)
        if !failed.isEmpty { metrics.connectionLosses.increment(by: failed.count) }
        for entry in failed { entry.reply(.failure(error)) }
    }

    /// One timer per connection, aimed at the oldest pending command's deadline: cheaper than
    /// a timer per command, and the oldest command is always the first to time out.
    private func scheduleTimeoutCheckIfNeeded(context: ChannelHandlerContext) {
        guard timeoutCheck == nil, let head = pending.first else { return }
        let loopBound = NIOLoopBound(self, eventLoop: context.eventLoop)
        timeoutCheck = context.eventLoop.scheduleTask(deadline: head.deadline) {
            loopBound.value.checkTimeout()
        }
    }

    private func checkTimeout() {
        timeoutCheck = nil
        guard let context, let head = pending.first else { return }
        if head.deadline <= .now() {
            let timeout = RedisClientError(.timeout, "no reply from Redis within \(commandTimeout.nanoseconds / 1_000_000) ms")
            pendingCount.add(-1)
            metrics.timeouts.increment()
            pending.removeFirst().reply(.failure(timeout))
            fail(context: context, with: RedisClientError(.connectionClosed, "connection closed after a command timed out"))
        } else {
            scheduleTimeoutCheckIfNeeded(context: context)
        }
    }
}
