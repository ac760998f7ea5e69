import NIOCore
import NIOPosix
import RedisClient
import Testing

@Suite("Pipelining", .timeLimit(.minutes(2)))
struct PipeliningTests {
    static let commandCount = 10_000

    @Test("10,000 concurrent commands over a pool of 2 each get their own reply")
    func concurrentCommandsOverPool() async throws {
        var configuration = try SharedRedis.configuration()
        configuration.poolSize = 2
        configuration.commandTimeout = .seconds(20)
        let prefix = uniqueKey("pipeline")
        let count = Self.commandCount

        try await withRedisClient(configuration) { client in
            // Both connections carry traffic: exactly two server-side client ids.
            let ids = try await waitForPool(client, count: 2)
            #expect(ids.count == 2)

            // INCRBY on fresh keys answers each command with its own, distinct number.
            let wrongIncr = try await withThrowingTaskGroup(of: String?.self) { group in
                for i in 0..<count {
                    group.addTask {
                        let expected = Int64(i) * 3 + 1
                        let reply = try await client.send("INCRBY", RedisArgument("\(prefix):\(i)"), RedisArgument(Int(expected)))
                        return reply == .integer(expected) ? nil : "INCRBY #\(i): expected \(expected), got \(reply)"
                    }
                }
                return try await group.reduce(into: [String]()) { if let wrong = $1 { $0.append(wrong) } }
            }
            #expect(wrongIncr.isEmpty, "\(wrongIncr.count) mismatched replies, first: \(wrongIncr.prefix(3))")

            // GET of the same keys, concurrently again, in a different order.
            let wrongGet = try await withThrowingTaskGroup(of: String?.self) { group in
                for i in (0..<count).reversed() {
                    group.addTask {
                        let reply = try await client.send("GET", RedisArgument("\(prefix):\(i)"))
                        let expected = String(i * 3 + 1)
                        return reply == .bulkString(Array(expected.utf8)) ? nil : "GET #\(i): expected \(expected), got \(reply)"
                    }
                }
                return try await group.reduce(into: [String]()) { if let wrong = $1 { $0.append(wrong) } }
            }
            #expect(wrongGet.isEmpty, "\(wrongGet.count) mismatched replies, first: \(wrongGet.prefix(3))")

            try await deleteKeys(client, prefix: prefix, count: count)
        }
    }

    @Test("10,000 concurrent commands on one connection come back in order")
    func concurrentCommandsOnOneConnection() async throws {
        var configuration = try SharedRedis.configuration()
        configuration.commandTimeout = .seconds(20)
        let count = Self.commandCount
        try await withRedisConnection(configuration) { connection in
            let wrong = try await withThrowingTaskGroup(of: String?.self) { group in
                for i in 0..<count {
                    group.addTask {
                        let payload = "echo-\(i)-" + String(repeating: "x", count: i % 50)
                        let reply = try await connection.send(RedisCommand("ECHO", RedisArgument(payload)))
                        return reply.string == payload ? nil : "ECHO #\(i): got \(reply)"
                    }
                }
                return try await group.reduce(into: [String]()) { if let w = $1 { $0.append(w) } }
            }
            #expect(wrong.isEmpty, "\(wrong.count) mismatched replies, first: \(wrong.prefix(3))")
        }
    }

    @Test("error replies inside a pipeline fail only their own command")
    func errorsInsidePipeline() async throws {
        let configuration = try SharedRedis.configuration()
        let text = uniqueKey("text")
        try await withRedisConnection(configuration) { connection in
            _ = try await connection.send(RedisCommand("SET", RedisArgument(text), "not a number"))
            let wrong = try await withThrowingTaskGroup(of: String?.self) { group in
                for i in 0..<2_000 {
                    group.addTask {
                        if i % 2 == 0 {
                            do {
                                let reply = try await connection.send(RedisCommand("INCR", RedisArgument(text)))
                                return "INCR #\(i) should fail, got \(reply)"
                            } catch let error as RedisClientError {
                                return error.reply == .other("ERR") ? nil : "INCR #\(i): \(error)"
                            }
                        } else {
                            let reply = try await connection.send(RedisCommand("ECHO", RedisArgument("ok-\(i)")))
                            return reply.string == "ok-\(i)" ? nil : "ECHO #\(i): got \(reply)"
                        }
                    }
                }
                return try await group.reduce(into: [String]()) { if let w = $1 { $0.append(w) } }
            }
            #expect(wrong.isEmpty, "\(wrong.count) wrong outcomes, first: \(wrong.prefix(3))")
            _ = try await connection.send(RedisCommand("DEL", RedisArgument(text)))
        }
    }

    private func deleteKeys(_ client: RedisClient, prefix: String, count: Int) async throws {
        for start in stride(from: 0, to: count, by: 1000) {
            let keys = (start..<min(start + 1000, count)).map { RedisArgument("\(prefix):\($0)") }
            _ = try await client.send(RedisCommand("UNLINK", keys))
        }
    }
}
