import NIOCore

/// The connection state of the fast path (`SessionLookupChannelHandler`), as a value without
/// NIO: the bytes read and not yet used, the answers in progress and the order they leave in,
/// when NIO's parser and the router get a request, and when reading pauses. Each event queues
/// actions; the handler takes them with `nextAction()` and carries them out in order.
///
/// - Lookups and small creates are answered here, several at once on a pipelined connection;
///   their answers leave in request order, whatever order they are ready in.
/// - Any other request goes to NIO's parser and the router once every answer before it is
///   written; the next request is read once the router's answer has ended, so the router and
///   the fast path never answer at the same time.
/// - A request the scanner cannot frame hands the connection to NIO's parser for good.
/// - Reads pause while `maxAnswersInProgress` answers are in progress or `maxPendingBytes`
///   are unread, and resume once the requests in hand are served.
struct FastPathStateMachine {
    enum Action {
        /// Answer this lookup, then report with `answerReady(_:sequence:)`.
        case answerLookup(HTTP1RequestScanner.Lookup, sequence: Int)
        /// Answer this create, then report with `answerReady(_:sequence:)`.
        case answerCreate(HTTP1RequestScanner.Create, body: [UInt8], sequence: Int)
        /// Bytes for NIO's parser (`fireChannelRead`), then `fireChannelReadComplete` when
        /// `completesRead`.
        case forward(ByteBuffer, completesRead: Bool)
        /// The client's end of input, passed on to the router's side.
        case forwardInputClosed
        /// A shutdown, passed on: the router's side closes the connection after its answer.
        case forwardQuiesce
        /// The next answer in request order.
        case write(ByteBuffer)
        /// The last answer: written and flushed, then the connection closes.
        case writeAndClose(ByteBuffer)
        case flush
        /// Ask the channel for more bytes (`context.read()`).
        case read
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
        /// A request asked to close, or the connection closed: nothing more is read.
        case closing
    }

    private enum Next {
        case route(length: Int)
        case handOver
    }

    /// An answer's place in request order; `bytes` is nil until it is ready.
    private struct PendingAnswer {
        var bytes: ByteBuffer?
        let closes: Bool
    }

    /// Most answers in progress on one connection; a client pipelining more waits (reads pause).
    static let maxAnswersInProgress = 32
    /// Most unread bytes held; beyond it reads pause until the requests in them are served.
    static let maxPendingBytes = 64 * 1024

    /// The router's limit for a create's body; a longer one is the router's to refuse.
    let bodyLimit: Int
    private var mode = Mode.scanning
    private var pending = ByteBuffer()
    private var answers = CircularBuffer<PendingAnswer>(initialCapacity: 4)
    /// The sequence number of `answers.first`.
    private var firstSequence = 0
    private var readHeld = false
    private var inputClosed = false
    private var quiescing = false
    /// A create whose head is read and whose body is still arriving: its head is not scanned
    /// again on every read.
    private var awaitedCreate: HTTP1RequestScanner.Create?
    private var actions = CircularBuffer<Action>(initialCapacity: 8)

    init(bodyLimit: Int) {
        self.bodyLimit = bodyLimit
    }

    /// The next action to carry out, oldest first.
    mutating func nextAction() -> Action? {
        actions.popFirst()
    }

    // MARK: events

    /// Bytes from the client.
    mutating func read(_ bytes: ByteBuffer) {
        switch mode {
        case .handedOver:
            actions.append(.forward(bytes, completesRead: false))
            return
        case .closing:
            return
        case .scanning, .holding, .routing:
            break
        }
        if pending.readableBytes == 0 {
            pending = bytes
        } else {
            var bytes = bytes
            pending.writeBuffer(&bytes)
        }
        if case .routing = mode {
            forwardRouted()
        } else {
            scanPending()
        }
    }

    /// The answer of request `sequence` is ready.
    mutating func answerReady(_ bytes: ByteBuffer, sequence: Int) {
        let index = sequence - firstSequence
        // The connection closed meanwhile: nothing is waiting for this answer any more.
        guard index >= 0, index < answers.count else { return }
        answers[answers.index(answers.startIndex, offsetBy: index)].bytes = bytes
        writeReadyAnswers()
    }

    /// The router's answer to the forwarded request has been written.
    mutating func routerAnswerEnded() {
        guard case .routing(let bytesLeft, _) = mode else { return }
        mode = .routing(bytesLeft: bytesLeft, answerEnded: true)
        forwardRouted()
    }

    /// The client has sent everything: what is complete is still answered; then the router's
    /// side hears of it (and closes).
    mutating func inputEnded() {
        switch mode {
        case .handedOver:
            actions.append(.forwardInputClosed)
            return
        case .routing(let bytesLeft, _) where bytesLeft > 0:
            // The routed request's body can no longer arrive: the router hears of the end
            // now (and closes), or the request would hold the connection for ever.
            actions.append(.forwardInputClosed)
        case .scanning, .holding, .routing, .closing:
            break
        }
        inputClosed = true
        finishIfIdle()
    }

    /// Shutting down: no new request is read; the connection closes once the answers read so
    /// far are written (or, while the router answers, after its answer).
    mutating func quiesce() {
        switch mode {
        case .handedOver:
            actions.append(.forwardQuiesce)
        case .routing:
            quiescing = true
            actions.append(.forwardQuiesce)
        case .scanning, .holding, .closing:
            quiescing = true
            finishIfIdle()
        }
    }

    /// Whether the channel's read-complete goes on to NIO's parser: only once the parser has the
    /// connection. Before that, every read it is given carries its own (`forward`'s
    /// `completesRead`), and after a read kept here the event would cross every handler of the
    /// router's pipeline for nothing, on every lookup.
    var passesReadComplete: Bool {
        if case .handedOver = mode { return true }
        return false
    }

    /// The channel asks whether to read: not while the requests in hand are too many; the
    /// read then resumes through a `.read` action.
    mutating func mayRead() -> Bool {
        if case .handedOver = mode { return true }
        guard answers.count < Self.maxAnswersInProgress, pending.readableBytes < Self.maxPendingBytes else {
            readHeld = true
            return false
        }
        return true
    }

    /// The connection closed: nothing more is read, and no answer is written.
    mutating func closed() {
        mode = .closing
        pending.clear()
        answers.removeAll()
        awaitedCreate = nil
    }

    // MARK: transitions

    private mutating func scanPending() {
        scan: while case .scanning = mode, !quiescing, answers.count < Self.maxAnswersInProgress, pending.readableBytes > 0 {
            switch awaitedCreate.map(HTTP1RequestScanner.Result.create) ?? HTTP1RequestScanner.scan(pending) {
            case .incomplete:
                break scan
            case .unsupported:
                mode = .holding(.handOver)
                releaseHeld()
            case .other(let length):
                mode = .holding(.route(length: length))
                releaseHeld()
            case .lookup(let lookup):
                pending.moveReaderIndex(forwardBy: lookup.length)
                if lookup.closes { mode = .closing }
                actions.append(.answerLookup(lookup, sequence: begin(closes: lookup.closes)))
            case .create(let create) where create.bodyLength > bodyLimit:
                // Over the router's limit (a small `SESSIOND_MAX_DATA_BYTES`): it answers 413.
                mode = .holding(.route(length: create.headLength + create.bodyLength))
                releaseHeld()
            case .create(let create):
                // The body may still be on its way; reads go on (it is far below the limit).
                guard pending.readableBytes >= create.headLength + create.bodyLength else {
                    if awaitedCreate == nil { awaitedCreate = create.detached() }
                    break scan
                }
                awaitedCreate = nil
                pending.moveReaderIndex(forwardBy: create.headLength)
                let body = pending.readBytes(length: create.bodyLength) ?? []
                if create.closes { mode = .closing }
                actions.append(.answerCreate(create, body: body, sequence: begin(closes: create.closes)))
            }
        }
        finishIfIdle()
        resumeReading()
    }

    /// Queues the place of a request's answer; returns its sequence number.
    private mutating func begin(closes: Bool) -> Int {
        answers.append(PendingAnswer(bytes: nil, closes: closes))
        return firstSequence + answers.count - 1
    }

    /// Passes the held request (or the whole connection) to NIO's parser once no fast answer
    /// is waiting before it.
    private mutating func releaseHeld() {
        guard case .holding(let next) = mode, answers.isEmpty else { return }
        if quiescing {
            // Not started before the shutdown began: not served, as the router does too.
            mode = .closing
            actions.append(.forwardQuiesce)
            return
        }
        switch next {
        case .route(let length):
            mode = .routing(bytesLeft: length, answerEnded: false)
            forwardRouted()
        case .handOver:
            mode = .handedOver
            if pending.readableBytes > 0 {
                actions.append(.forward(pending, completesRead: true))
                pending = ByteBuffer()
            }
            if inputClosed { actions.append(.forwardInputClosed) }
            resumeReading()
        }
    }

    /// Gives NIO's parser the routed request's bytes as they come; reads on from the next
    /// request once they are all given and the router's answer has ended.
    private mutating func forwardRouted() {
        guard case .routing(var bytesLeft, let answerEnded) = mode else { return }
        let count = min(bytesLeft, pending.readableBytes)
        if count > 0, let bytes = pending.readSlice(length: count) {
            bytesLeft -= count
            mode = .routing(bytesLeft: bytesLeft, answerEnded: answerEnded)
            actions.append(.forward(bytes, completesRead: true))
        }
        if bytesLeft == 0 && answerEnded {
            mode = .scanning
            scanPending()
        } else {
            resumeReading()
        }
    }

    /// After the client's end of input or a shutdown, once nothing is left to answer here:
    /// the router's side is told, and closes the connection.
    private mutating func finishIfIdle() {
        guard answers.isEmpty, case .scanning = mode else { return }
        if quiescing {
            mode = .closing
            actions.append(.forwardQuiesce)
        } else if inputClosed {
            mode = .holding(.handOver)
            releaseHeld()
        }
    }

    private mutating func resumeReading() {
        guard readHeld, answers.count < Self.maxAnswersInProgress, pending.readableBytes < Self.maxPendingBytes else { return }
        readHeld = false
        actions.append(.read)
    }

    /// Queues the answers that are ready, in request order, and reads on when none is left.
    private mutating func writeReadyAnswers() {
        var wrote = false
        while let first = answers.first, let bytes = first.bytes {
            answers.removeFirst()
            firstSequence += 1
            wrote = true
            if first.closes {
                actions.append(.writeAndClose(bytes))
                answers.removeAll()
                return
            }
            actions.append(.write(bytes))
        }
        guard wrote else { return }
        actions.append(.flush)
        if answers.isEmpty {
            if case .holding = mode {
                releaseHeld()
            } else {
                scanPending()
            }
        } else {
            resumeReading()
        }
    }
}
