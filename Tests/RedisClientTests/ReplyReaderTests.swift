import NIOCore
import Testing

@testable import RedisClient

/// The reader on its own: RESP bytes in, replies out, however the bytes are split into reads.
@Suite("hiredis reply reader")
struct ReplyReaderTests {
    /// Replies of every shape, back to back, as Redis would send them on one connection.
    static let stream = Array((
        "+OK\r\n" + "-ERR wrong\r\n" + ":-42\r\n" + "$-1\r\n" + "$0\r\n\r\n" + "$4\r\na\r\nb\r\n"
            + "*0\r\n" + "*-1\r\n" + "*3\r\n$1\r\nx\r\n$-1\r\n:7\r\n"
            // Arrays that close several levels at once, an empty one inside, a nil one inside.
            + "*2\r\n*1\r\n*1\r\n$1\r\na\r\n*2\r\n*0\r\n*-1\r\n"
            + "*1\r\n*2\r\n-ERR inside\r\n+QUEUED\r\n"
    ).utf8)

    static let expected: [RESPValue] = [
        .simpleString("OK"), .error("ERR wrong"), .integer(-42), .null, .bulkString([]),
        .bulkString(Array("a\r\nb".utf8)), .array([]), .null,
        .array([.bulkString([120]), .null, .integer(7)]),
        .array([.array([.array([.bulkString([97])])]), .array([.array([]), .null])]),
        .array([.array([.error("ERR inside"), .simpleString("QUEUED")])]),
    ]

    static func read(_ chunks: [ArraySlice<UInt8>]) throws -> [RESPValue] {
        let reader = HiredisReplyReader()
        var replies = [RESPValue]()
        for chunk in chunks {
            try reader.feed(ByteBuffer(bytes: chunk))
            while let reply = try reader.nextReply() { replies.append(reply) }
        }
        return replies
    }

    @Test("every reply shape, fed at once")
    func whole() throws {
        #expect(try Self.read([Self.stream[...]]) == Self.expected)
    }

    @Test("the same bytes fed one at a time, and split in two at every offset")
    func split() throws {
        #expect(try Self.read(Self.stream.indices.map { Self.stream[$0...$0] }) == Self.expected)
        for offset in 1..<Self.stream.count {
            let replies = try Self.read([Self.stream[..<offset], Self.stream[offset...]])
            #expect(replies == Self.expected, "split at \(offset)")
        }
    }

    @Test("an array of 10,000 members, fed in reads of 1,000 bytes")
    func largeArray() throws {
        let members = (0..<10_000).map { Array("member-\($0)".utf8) }
        var bytes = Array("*\(members.count)\r\n".utf8)
        for member in members { bytes += Array("$\(member.count)\r\n".utf8) + member + [13, 10] }
        let chunks = stride(from: 0, to: bytes.count, by: 1000).map { bytes[$0..<min($0 + 1000, bytes.count)] }
        #expect(try Self.read(chunks) == [.array(members.map { .bulkString($0) })])
    }

    @Test("a byte that starts no RESP type is a protocol error")
    func protocolError() throws {
        let error = #expect(throws: RedisClientError.self) { try Self.read([Array("*2\r\n:1\r\n?x\r\n".utf8)[...]]) }
        #expect(error?.code == .protocolError)
    }
}
