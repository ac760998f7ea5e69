import NIOCore
import NIOPosix
import NIOSSL

/// One TCP connection to Redis with pipelining. Safe to use from any task: commands are
/// handed to the channel's event loop, which owns the FIFO of pending replies.
public final class RedisConnection: Sendable {
    let channel: any Channel
    /// The server this connection is to.
    public let address: RedisNodeAddress
    private let pendingCount: PendingCommandCount

    private init(channel: any Channel, address: RedisNodeAddress, pendingCount: PendingCommandCount) {
        self.channel = channel
        self.address = address
        self.pendingCount = pendingCount
    }

    /// The socket's receive buffer, asked for before connecting (the kernel doubles it, up to
    /// twice `net.core.rmem_max`). Linux's default starts the window near 64 KB, one segment on
    /// loopback. When a large reply (a listing's 10,000-member `ZRANGE`) fills it before the loop
    /// reads, reading it frees less than twice the advertised window, so no window update goes
    /// out, and Redis holds the rest until its persist timer fires 200 ms later. A window several
    /// segments wide avoids that; 1 MB instead of 256 KB made listings slower, not faster.
    static let receiveBufferSize = 1 << 18

    /// Commands sent on this connection and waiting for their reply.
    var pendingCommands: Int { pendingCount.value }

    /// Connects, authenticates and selects the database, all within `connectTimeout`.
    /// `onMessage`, for a connection that will subscribe: receives every published message, on
    /// the connection's event loop.
    public static func connect(
        configuration: RedisConfiguration,
        eventLoop: any EventLoop,
        onMessage: (@Sendable (RESPValue) -> Void)? = nil
    ) async throws -> RedisConnection {
        let commandTimeout = configuration.commandTimeout
        let metrics = configuration.metrics
        let pendingCount = PendingCommandCount()
        if configuration.requiresTLS && configuration.tls == nil {
            throw RedisClientError(.invalidConfiguration, "rediss:// without a TLS set-up")
        }
        let tls = configuration.tls
        let host = configuration.host
        let channel: any Channel
        do {
            channel = try await ClientBootstrap(group: eventLoop)
                .connectTimeout(configuration.connectTimeout)
                .channelOption(.socketOption(.tcp_nodelay), value: 1)
                .channelOption(.socketOption(.so_rcvbuf), value: SocketOptionValue(receiveBufferSize))
                .channelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture {
                        if let tls { try channel.pipeline.syncOperations.addHandler(try tls.makeHandler(host: host)) }
                        try channel.pipeline.syncOperations.addHandler(
                            RedisChannelHandler(commandTimeout: commandTimeout, metrics: metrics, pendingCount: pendingCount, onMessage: onMessage)
                        )
                    }
                }
                .connect(host: configuration.host, port: configuration.port)
                .get()
        } catch {
            throw RedisClientError(.connectFailed, "cannot connect to Redis at \(configuration.host):\(configuration.port): \(error)")
        }
        let connection = RedisConnection(
            channel: channel, address: RedisNodeAddress(host: configuration.host, port: configuration.port), pendingCount: pendingCount
        )
        do {
            try await connection.handshake(configuration)
        } catch {
            connection.close()
            throw error
        }
        return connection
    }

    private func handshake(_ configuration: RedisConfiguration) async throws {
        do {
            if configuration.tls != nil {
                // The TLS handshake runs before the first command: a PING surfaces its failure here.
                _ = try await send(RedisCommand("PING"))
            }
            if let password = configuration.password {
                var arguments = [RedisArgument]()
                if let username = configuration.username { arguments.append(RedisArgument(username)) }
                arguments.append(RedisArgument(password))
                _ = try await send(RedisCommand("AUTH", arguments))
            }
            if configuration.database != 0 {
                _ = try await send(RedisCommand("SELECT", RedisArgument(configuration.database)))
            }
        } catch let error as RedisClientError where error.code == .commandError {
            // The server's own words (WRONGPASS, NOAUTH, ERR DB index...) say what is wrong.
            throw RedisClientError(.setupRefused, "Redis refused the connection setup: \(error.message)")
        } catch let error as RedisClientError where error.message.contains("CERTIFICATE_VERIFY_FAILED") {
            // Waiting will not fix a certificate that the configured CA did not sign.
            throw RedisClientError(
                .invalidConfiguration,
                "TLS: the certificate of Redis at \(configuration.host):\(configuration.port) does not verify against the configured CA: \(error.message)"
            )
        }
    }

    public var isActive: Bool { channel.isActive }

    /// Completes when the connection has closed, for whatever reason.
    public var closeFuture: EventLoopFuture<Void> { channel.closeFuture }

    /// Sends one command and waits for its reply. An error reply throws `.commandError`.
    public func send(_ command: RedisCommand) async throws -> RESPValue {
        try await sendRaw(command).get().checked()
    }

    /// Sends `commands` in one write on this connection, so nothing else runs between them (as
    /// `ASKING` and `WAIT` need), and returns their raw replies, error replies included.
    public func sendPipeline(_ commands: [RedisCommand]) async throws -> [RESPValue] {
        var replies = [RESPValue]()
        replies.reserveCapacity(commands.count)
        for future in sendRaw(commands) { replies.append(try await future.get()) }
        return replies
    }

    /// Writes a command and returns the future of its raw reply (error replies included).
    func sendRaw(_ command: RedisCommand) -> EventLoopFuture<RESPValue> {
        let reply = channel.eventLoop.makePromise(of: RESPValue.self)
        sendRaw(command, answer: reply.completeWith)
        return reply.futureResult
    }

    /// Writes a command; `answer` gets its raw reply (error replies included) on this
    /// connection's event loop.
    func sendRaw(_ command: RedisCommand, answer: @escaping RedisReplyHandler) {
        write(command.encoded, replies: [answer])
    }

    /// Writes `commands` as one buffer and returns the futures of their raw replies.
    func sendRaw(_ commands: [RedisCommand]) -> [EventLoopFuture<RESPValue>] {
        var buffer = channel.allocator.buffer(capacity: commands.reduce(0) { $0 + $1.encoded.readableBytes })
        for command in commands { buffer.writeImmutableBuffer(command.encoded) }
        let promises = commands.map { _ in channel.eventLoop.makePromise(of: RESPValue.self) }
        write(buffer, replies: promises.map { $0.completeWith })
        return promises.map(\.futureResult)
    }

    /// Hands encoded commands and their reply handlers to the handler, which flushes once per
    /// event-loop tick and answers each reply once. A write that never reaches the handler (its
    /// pipeline already torn down) must still fail the replies, or their callers would wait
    /// forever: the write promise, which the handler succeeds on arrival, watches for that. On
    /// the channel's loop, an active channel still has its handlers, so that write needs none.
    private func write(_ encoded: ByteBuffer, replies: [RedisReplyHandler]) {
        let request = RedisRequest(encoded: encoded, replies: replies)
        if channel.eventLoop.inEventLoop, channel.isActive {
            channel.write(request, promise: nil)
            return
        }
        let written = channel.eventLoop.makePromise(of: Void.self)
        written.futureResult.whenFailure { error in
            for reply in replies { reply(.failure(RedisClientError(.connectionClosed, "command not sent: \(error)"))) }
        }
        channel.write(request, promise: written)
    }

    public func close() {
        channel.close(promise: nil)
    }
}
