import NIOCore
@testable import SessionHTTP
import Testing

/// The fast path's connection state machine, driven with plain values: no socket, no NIO
/// pipeline, no Redis. Each test feeds events and checks the actions, in order.
@Suite struct FastPathStateMachineTests {
    static let lookup = "GET /v1/session HTTP/1.1\r\nHost: h\r\nX-Session-Token: t\r\n\r\n"
    static let closingLookup = "GET /v1/session HTTP/1.1\r\nHost: h\r\nConnection: close\r\nX-Session-Token: t\r\n\r\n"
    static let patch = "PATCH /v1/session HTTP/1.1\r\nHost: h\r\nContent-Length: 2\r\n\r\n{}"
    static let chunked = "POST /v1/session/rotate HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"
    static func create(body: String) -> String {
        "POST /v1/sessions HTTP/1.1\r\nHost: h\r\nContent-Length: \(body.utf8.count)\r\n\r\n\(body)"
    }

    /// The machine under test, with its actions written out one line each.
    final class Driver {
        var machine = FastPathStateMachine(bodyLimit: 64)

        func actions() -> [String] {
            var lines: [String] = []
            while let action = machine.nextAction() {
                switch action {
                case .answerLookup(_, let sequence): lines.append("lookup \(sequence)")
                case .answerCreate(_, let body, let sequence): lines.append("create \(sequence) \(String(decoding: body, as: UTF8.self))")
                case .forward(let bytes, let completesRead): lines.append("forward\(completesRead ? "" : " (read goes on)") \(String(buffer: bytes))")
                case .forwardInputClosed: lines.append("input closed")
                case .forwardQuiesce: lines.append("quiesce")
                case .write(let bytes): lines.append("write \(String(buffer: bytes))")
                case .writeAndClose(let bytes): lines.append("write and close \(String(buffer: bytes))")
                case .flush: lines.append("flush")
                case .read: lines.append("read")
                }
            }
            return lines
        }

        func read(_ text: String) -> [String] {
            machine.read(ByteBuffer(string: text))
            return actions()
        }

        func answer(_ sequence: Int, _ text: String) -> [String] {
            machine.answerReady(ByteBuffer(string: text), sequence: sequence)
            return actions()
        }

        func mayRead() -> Bool {
            machine.mayRead()
        }
    }

    let connection = Driver()

    @Test func pipelinedAnswersLeaveInRequestOrder() {
        #expect(connection.read(Self.lookup + Self.lookup + Self.lookup) == ["lookup 0", "lookup 1", "lookup 2"])
        #expect(connection.answer(2, "C") == [])
        #expect(connection.answer(1, "B") == [])
        #expect(connection.answer(0, "A") == ["write A", "write B", "write C", "flush"])
    }

    @Test func aHeadSplitAcrossReadsIsAnsweredOnceWhole() {
        let cut = Self.lookup.index(Self.lookup.startIndex, offsetBy: 20)
        #expect(connection.read(String(Self.lookup[..<cut])) == [])
        #expect(connection.read(String(Self.lookup[cut...])) == ["lookup 0"])
        #expect(connection.answer(0, "A") == ["write A", "flush"])
    }

    @Test func aCreateWaitsForItsWholeBody() {
        let request = Self.create(body: #"{"user_id":"u1"}"#)
        #expect(connection.read(String(request.dropLast(4))) == [])
        #expect(connection.read(String(request.suffix(4))) == [#"create 0 {"user_id":"u1"}"#])
    }

    @Test func aCreateOverTheBodyLimitIsTheRoutersToRefuse() {
        let request = Self.create(body: String(repeating: "x", count: 65))
        #expect(connection.read(request) == ["forward \(request)"])
    }

    /// A request for the router in the middle of a connection: it goes to NIO's parser only
    /// after the answers before it, and the requests after it wait for the router's answer.
    @Test func aRoutedRequestWaitsForTheAnswersBeforeIt() {
        #expect(connection.read(Self.lookup + Self.patch + Self.lookup) == ["lookup 0"])
        #expect(connection.answer(0, "A") == ["write A", "flush", "forward \(Self.patch)"])
        #expect(connection.read(Self.lookup) == [])
        connection.machine.routerAnswerEnded()
        #expect(connection.actions() == ["lookup 1", "lookup 2"])
        #expect(connection.answer(1, "B") == ["write B", "flush"])
    }

    @Test func aRoutedBodyIsForwardedAsItArrives() {
        #expect(connection.read(String(Self.patch.dropLast())) == ["forward \(Self.patch.dropLast())"])
        #expect(connection.read("}" + Self.lookup) == ["forward }"])
        connection.machine.routerAnswerEnded()
        #expect(connection.actions() == ["lookup 0"])
    }

    @Test func anUnframedRequestHandsTheConnectionOverForGood() {
        #expect(connection.read(Self.lookup + Self.chunked) == ["lookup 0"])
        #expect(!connection.machine.passesReadComplete)
        #expect(connection.answer(0, "A") == ["write A", "flush", "forward \(Self.chunked)"])
        #expect(connection.machine.passesReadComplete)
        #expect(connection.read(Self.lookup) == ["forward (read goes on) \(Self.lookup)"])
        #expect(connection.mayRead())
    }

    /// Before the hand-over, a read is answered here or forwarded with its own read-complete:
    /// the channel's is not passed on.
    @Test func readCompleteStaysHereUntilTheHandOver() {
        #expect(connection.read(Self.lookup) == ["lookup 0"])
        #expect(!connection.machine.passesReadComplete)
        #expect(connection.read(Self.patch) == [])
        #expect(connection.answer(0, "A") == ["write A", "flush", "forward \(Self.patch)"])
        #expect(!connection.machine.passesReadComplete)
    }

    @Test func readsPauseAtTheLimitOfAnswersInProgress() {
        let limit = FastPathStateMachine.maxAnswersInProgress
        let requests = connection.read(String(repeating: Self.lookup, count: limit + 1))
        #expect(requests == (0..<limit).map { "lookup \($0)" })
        #expect(!connection.mayRead())
        #expect(connection.answer(0, "A") == ["write A", "flush", "read"])
        for sequence in 1..<(limit - 1) { _ = connection.answer(sequence, "A") }
        #expect(connection.answer(limit - 1, "Z") == ["write Z", "flush", "lookup \(limit)"])
    }

    /// Requests pipelined behind a routed one pile up unread: reads pause at the byte limit.
    @Test func readsPauseWhileTooManyBytesAreUnread() {
        #expect(connection.read(Self.patch) == ["forward \(Self.patch)"])
        let count = FastPathStateMachine.maxPendingBytes / Self.lookup.utf8.count + 1
        #expect(connection.read(String(repeating: Self.lookup, count: count)) == [])
        #expect(!connection.mayRead())
        connection.machine.routerAnswerEnded()
        #expect(connection.actions() == (0..<FastPathStateMachine.maxAnswersInProgress).map { "lookup \($0)" })
        #expect(!connection.mayRead())
    }

    @Test func connectionCloseEndsTheConnectionAfterItsAnswer() {
        #expect(connection.read(Self.lookup + Self.closingLookup + Self.lookup) == ["lookup 0", "lookup 1"])
        #expect(connection.answer(1, "B") == [])
        #expect(connection.answer(0, "A") == ["write A", "write and close B"])
        #expect(connection.read(Self.lookup) == [])
    }

    @Test func theClientsEndOfInputReachesTheRouterAfterTheAnswers() {
        #expect(connection.read(Self.lookup) == ["lookup 0"])
        connection.machine.inputEnded()
        #expect(connection.actions() == [])
        #expect(connection.answer(0, "A") == ["write A", "flush", "input closed"])
    }

    @Test func theEndOfInputCutsARoutedBodyShort() {
        #expect(connection.read(String(Self.patch.dropLast())) == ["forward \(Self.patch.dropLast())"])
        connection.machine.inputEnded()
        #expect(connection.actions() == ["input closed"])
    }

    @Test func aShutdownLetsTheAnswersInProgressFinish() {
        #expect(connection.read(Self.lookup) == ["lookup 0"])
        connection.machine.quiesce()
        #expect(connection.actions() == [])
        #expect(connection.answer(0, "A") == ["write A", "flush", "quiesce"])
        #expect(connection.read(Self.lookup) == [])
    }

    @Test func aShutdownWhileTheRouterAnswersIsPassedOn() {
        #expect(connection.read(Self.patch) == ["forward \(Self.patch)"])
        connection.machine.quiesce()
        #expect(connection.actions() == ["quiesce"])
        #expect(connection.read(Self.lookup) == [])
    }

    @Test func aHeldRequestIsNotServedOnceTheShutdownBegan() {
        #expect(connection.read(Self.lookup + Self.patch) == ["lookup 0"])
        connection.machine.quiesce()
        #expect(connection.answer(0, "A") == ["write A", "flush", "quiesce"])
    }

    @Test func anAnswerAfterTheConnectionClosedIsDropped() {
        #expect(connection.read(Self.lookup) == ["lookup 0"])
        connection.machine.closed()
        #expect(connection.answer(0, "A") == [])
        #expect(connection.read(Self.lookup) == [])
    }
}
