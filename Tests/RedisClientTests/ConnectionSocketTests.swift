import Foundation
import NIOCore
@testable import RedisClient
import Testing

@Suite("Connection socket", .timeLimit(.minutes(1)))
struct ConnectionSocketTests {
    /// Linux reports twice the buffer asked for, capped at twice `net.core.rmem_max`.
    private static func expectedReceiveBuffer() throws -> Int {
        let text = try String(contentsOfFile: "/proc/sys/net/core/rmem_max", encoding: .utf8)
        let maximum = try #require(Int(text.trimmingCharacters(in: .whitespacesAndNewlines)))
        return 2 * min(RedisConnection.receiveBufferSize, maximum)
    }

    @Test("the receive buffer is set before connecting, so large replies never wait on a 64-KB window")
    func receiveBufferIsSet() async throws {
        let expected = try Self.expectedReceiveBuffer()
        try await withRedisConnection(try SharedRedis.configuration()) { connection in
            let size = try await connection.channel.getOption(.socketOption(.so_rcvbuf)).get()
            #expect(Int(size) == expected)
        }
    }

    @Test("a reply several times the receive buffer arrives whole")
    func replyLargerThanTheBuffer() async throws {
        let key = uniqueKey("large-reply")
        let value = (0..<(4 * RedisConnection.receiveBufferSize)).map { UInt8(truncatingIfNeeded: $0 &* 31) }
        try await withRedisConnection(try SharedRedis.configuration()) { connection in
            _ = try await connection.send(RedisCommand("SET", RedisArgument(key), RedisArgument(value), "EX", "60"))
            let reply = try await connection.send(RedisCommand("GET", RedisArgument(key)))
            #expect(reply.bytes == value)
            _ = try await connection.send(RedisCommand("DEL", RedisArgument(key)))
        }
    }
}
