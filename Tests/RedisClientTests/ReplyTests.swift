import RedisClient
import Testing

@Suite("Values and replies", .timeLimit(.minutes(1)))
struct ReplyTests {
    @Test("binary-safe keys and values: NUL, CR LF, every byte value, empty")
    func binarySafe() async throws {
        let configuration = try SharedRedis.configuration()
        try await withRedisClient(configuration) { client in
            let key = Array(uniqueKey("bin").utf8) + [0, 13, 10, 0xFF, 0]
            let value: [UInt8] = [0, 0, 13, 10] + Array(0...255) + Array("\r\n$-1\r\n*3\r\n".utf8) + [0]
            #expect(try await client.send("SET", RedisArgument(key), RedisArgument(value)) == .simpleString("OK"))
            #expect(try await client.send("GET", RedisArgument(key)) == .bulkString(value))
            #expect(try await client.send("STRLEN", RedisArgument(key)) == .integer(Int64(value.count)))

            // The key with its NUL bytes is one key, not a prefix of it.
            #expect(try await client.send("EXISTS", RedisArgument(Array(key.prefix(key.count - 1)))) == .integer(0))

            // An empty value is an empty bulk string, not nil.
            let empty = uniqueKey("empty")
            _ = try await client.send("SET", RedisArgument(empty), RedisArgument([UInt8]()))
            let reply = try await client.send("GET", RedisArgument(empty))
            #expect(reply == .bulkString([]))
            #expect(!reply.isNull)

            _ = try await client.send("DEL", RedisArgument(key), RedisArgument(empty))
        }
    }

    @Test("argument lengths and counts at every decimal boundary reach Redis as sent")
    func lengthBoundaries() async throws {
        let configuration = try SharedRedis.configuration()
        try await withRedisClient(configuration) { client in
            for length in [0, 1, 9, 10, 11, 99, 100, 101, 999, 1000, 9999, 10_000, 100_001] {
                let value = (0..<length).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ 7) }
                #expect(try await client.send("ECHO", RedisArgument(value)) == .bulkString(value), "length \(length)")
            }
            // 1, 9, 10, 11 and 100 arguments after the name: the array's count in one to three digits.
            for count in [1, 9, 10, 11, 100] {
                let values = (0..<count).map { RedisArgument("v\($0)") }
                let key = uniqueKey("list")
                #expect(try await client.send(RedisCommand("RPUSH", [RedisArgument(key)] + values)) == .integer(Int64(count)))
                let stored = try await client.send("LRANGE", RedisArgument(key), 0, -1)
                #expect(stored == .array(values.map { .bulkString($0.bytes) }), "count \(count)")
                _ = try await client.send("DEL", RedisArgument(key))
            }
        }
    }

    @Test("a 1 MiB value round-trips byte for byte")
    func oneMebibyte() async throws {
        let configuration = try SharedRedis.configuration()
        try await withRedisClient(configuration) { client in
            let key = uniqueKey("mib")
            // Random bytes, with RESP-looking fragments and NULs planted through them.
            var generator = SystemRandomNumberGenerator()
            var value = (0..<(1 << 20)).map { _ in UInt8.random(in: 0...255, using: &generator) }
            let fragment = Array("\r\n$5\r\n\0\0\0\r\n:-1\r\n".utf8)
            for offset in stride(from: 0, to: value.count - fragment.count, by: 65_537) {
                value.replaceSubrange(offset..<(offset + fragment.count), with: fragment)
            }
            #expect(value.count == 1_048_576)
            #expect(try await client.send("SET", RedisArgument(key), RedisArgument(value)) == .simpleString("OK"))
            #expect(try await client.send("STRLEN", RedisArgument(key)) == .integer(1_048_576))
            let reply = try await client.send("GET", RedisArgument(key))
            let bytes = try #require(reply.bytes)
            #expect(bytes.count == value.count)
            #expect(bytes == value)
            // The connection is still in step after the large reply.
            #expect(try await client.send("ECHO", "after") == .bulkString(Array("after".utf8)))
            _ = try await client.send("DEL", RedisArgument(key))
        }
    }

    @Test("integer replies, including negative numbers and Int64.max")
    func integerReplies() async throws {
        let configuration = try SharedRedis.configuration()
        try await withRedisClient(configuration) { client in
            let key = uniqueKey("int")
            #expect(try await client.send("INCR", RedisArgument(key)) == .integer(1))
            #expect(try await client.send("DECRBY", RedisArgument(key), 5) == .integer(-4))
            #expect(try await client.send("INCRBY", RedisArgument(key), 4).integer == 0)
            _ = try await client.send("SET", RedisArgument(key), RedisArgument(String(Int64.max - 1)))
            #expect(try await client.send("INCR", RedisArgument(key)) == .integer(Int64.max))
            #expect(try await client.send("DEL", RedisArgument(key)) == .integer(1))
            #expect(try await client.send("DEL", RedisArgument(key)) == .integer(0))
        }
    }

    @Test("nil and status replies")
    func nilAndStatusReplies() async throws {
        let configuration = try SharedRedis.configuration()
        try await withRedisClient(configuration) { client in
            let key = uniqueKey("status")
            let missing = try await client.send("GET", RedisArgument(key))
            #expect(missing == .null)
            #expect(missing.isNull)
            #expect(missing.string == nil)
            #expect(try await client.send("SET", RedisArgument(key), "v") == .simpleString("OK"))
            #expect(try await client.send("TYPE", RedisArgument(key)) == .simpleString("string"))
            #expect(try await client.send("PING") == .simpleString("PONG"))
            try await client.ping()
            // SET NX on an existing key answers nil.
            #expect(try await client.send("SET", RedisArgument(key), "w", "NX") == .null)
            _ = try await client.send("DEL", RedisArgument(key))
        }
    }

    @Test("array replies: flat, empty, with nil elements, nested")
    func arrayReplies() async throws {
        let configuration = try SharedRedis.configuration()
        try await withRedisClient(configuration) { client in
            let list = uniqueKey("list")
            let missing = uniqueKey("missing")
            #expect(try await client.send("RPUSH", RedisArgument(list), "a", RedisArgument([UInt8]()), RedisArgument([0, 98])) == .integer(3))
            #expect(try await client.send("LRANGE", RedisArgument(list), 0, -1) == .array([
                .bulkString([97]), .bulkString([]), .bulkString([0, 98]),
            ]))
            #expect(try await client.send("LRANGE", RedisArgument(missing), 0, -1) == .array([]))
            #expect(try await client.send("MGET", RedisArgument(missing), RedisArgument(list)).array?.count == 2)

            let plain = uniqueKey("plain")
            _ = try await client.send("SET", RedisArgument(plain), "p")
            #expect(try await client.send("MGET", RedisArgument(plain), RedisArgument(missing)) == .array([.bulkString([112]), .null]))

            let nested = try await client.send("EVAL", "return {1, {'x', -2, {}}, 'y'}", 0)
            #expect(nested == .array([
                .integer(1),
                .array([.bulkString([120]), .integer(-2), .array([])]),
                .bulkString([121]),
            ]))
            _ = try await client.send("DEL", RedisArgument(list), RedisArgument(plain))
        }
    }

    @Test("an error reply throws RedisClientError(.commandError) with Redis's message, and the client goes on")
    func errorReplies() async throws {
        let configuration = try SharedRedis.configuration()
        try await withRedisClient(configuration) { client in
            let key = uniqueKey("err")
            _ = try await client.send("SET", RedisArgument(key), "not a number")

            let notInteger = await #expect(throws: RedisClientError.self) {
                try await client.send("INCR", RedisArgument(key))
            }
            #expect(notInteger?.code == .commandError)
            #expect(notInteger?.message.hasPrefix("ERR value is not an integer") == true, "\(String(describing: notInteger))")

            let wrongType = await #expect(throws: RedisClientError.self) {
                try await client.send("LPUSH", RedisArgument(key), "x")
            }
            #expect(wrongType?.code == .commandError)
            #expect(wrongType?.message.hasPrefix("WRONGTYPE") == true, "\(String(describing: wrongType))")

            let unknown = await #expect(throws: RedisClientError.self) {
                try await client.send("NOSUCHCOMMAND", "x")
            }
            #expect(unknown?.code == .commandError)
            #expect(unknown?.message.contains("unknown command") == true, "\(String(describing: unknown))")
            #expect(unknown?.isUnavailability == false)

            // A script error is a command error too.
            let scriptError = await #expect(throws: RedisClientError.self) {
                try await client.send("EVAL", "return redis.error_reply('MYERR custom failure')", 0)
            }
            #expect(scriptError?.code == .commandError)
            #expect(scriptError?.message.hasPrefix("MYERR custom failure") == true, "\(String(describing: scriptError))")

            // The next command gets its own reply, not a leftover.
            #expect(try await client.send("GET", RedisArgument(key)) == .bulkString(Array("not a number".utf8)))
            _ = try await client.send("DEL", RedisArgument(key))
        }
    }

    @Test("an error inside an array reply (EXEC) is a value, not a thrown error")
    func errorInsideArray() async throws {
        let configuration = try SharedRedis.configuration()
        let key = uniqueKey("multi")
        // MULTI needs one connection for all its commands.
        try await withRedisConnection(configuration) { connection in
            #expect(try await connection.send(RedisCommand("MULTI")) == .simpleString("OK"))
            #expect(try await connection.send(RedisCommand("SET", RedisArgument(key), "text")) == .simpleString("QUEUED"))
            #expect(try await connection.send(RedisCommand("INCR", RedisArgument(key))) == .simpleString("QUEUED"))
            let reply = try await connection.send(RedisCommand("EXEC"))
            let elements = try #require(reply.array)
            #expect(elements.count == 2)
            #expect(elements.first == .simpleString("OK"))
            guard case .error(let message)? = elements.last else {
                Issue.record("expected an error element, got \(reply)")
                return
            }
            #expect(message.hasPrefix("ERR"))
            _ = try await connection.send(RedisCommand("DEL", RedisArgument(key)))
        }
    }
}
