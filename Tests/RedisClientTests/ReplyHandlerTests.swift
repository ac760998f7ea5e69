import Dispatch
import NIOCore
@testable import RedisClient
import Synchronization
import Testing

/// Each command's reply handler runs exactly once, however its connection ends: a caller
/// answered twice would log and count a request twice, or answer it twice.
@Suite("Reply handlers", .timeLimit(.minutes(1)))
struct ReplyHandlerTests {
    private final class Answers: Sendable {
        private let results = Mutex([Result<RESPValue, any Error>]())

        func record(_ result: Result<RESPValue, any Error>) {
            results.withLock { $0.append(result) }
        }

        var all: [Result<RESPValue, any Error>] { results.withLock { $0 } }
    }

    @Test("commands written from another thread and closed on before their flush are each answered once, with a failure")
    func closedBeforeTheFlush() async throws {
        let answers = Answers()
        let count = 50
        try await withRedisConnection(try SharedRedis.configuration()) { connection in
            #expect(!connection.channel.eventLoop.inEventLoop)
            // Each write reaches the handler in a task of the loop, and the close follows them
            // there. The loop is held until all of them are queued, so that it runs them in one
            // go, with no read in between: no reply is read before the close.
            let held = DispatchSemaphore(value: 0)
            connection.channel.eventLoop.execute { held.wait() }
            for _ in 0..<count {
                connection.sendRaw(RedisCommand("PING"), answer: answers.record)
            }
            connection.close()
            held.signal()
            try await connection.closeFuture.get()
            // Whatever the close left queued on the loop runs, then a little longer.
            try await connection.channel.eventLoop.submit {}.get()
            try await Task.sleep(for: .milliseconds(100))
        }
        let results = answers.all
        #expect(results.count == count, "\(results.count) answers for \(count) commands")
        #expect(results.allSatisfy { if case .failure = $0 { true } else { false } })
    }
}
