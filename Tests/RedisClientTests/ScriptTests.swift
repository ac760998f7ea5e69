import RedisClient
import Testing

@Suite("Scripts", .timeLimit(.minutes(1)))
struct ScriptTests {
    static let incrementSource = "return redis.call('INCRBY', KEYS[1], ARGV[1])"

    @Test("evaluate runs a script with keys and binary arguments")
    func evaluate() async throws {
        let configuration = try SharedRedis.configuration()
        let script = RedisScript(name: "test-set-get", source: "redis.call('SET', KEYS[1], ARGV[1]); return {redis.call('GET', KEYS[1]), #ARGV[1], ARGV[2]}")
        try await withRedisClient(configuration) { client in
            let key = uniqueKey("script")
            let value: [UInt8] = [0, 1, 2, 0, 255]
            let reply = try await client.evaluate(script, keys: [RedisArgument(key)], arguments: [RedisArgument(value), "second"])
            #expect(reply == .array([.bulkString(value), .integer(5), .bulkString(Array("second".utf8))]))
            // The second call uses the remembered SHA and gives the same answer.
            let again = try await client.evaluate(script, keys: [RedisArgument(key)], arguments: [RedisArgument(value), "second"])
            #expect(again == reply)
            _ = try await client.send("DEL", RedisArgument(key))
        }
    }

    @Test("a script's error reply throws .commandError")
    func scriptError() async throws {
        let configuration = try SharedRedis.configuration()
        let script = RedisScript(name: "test-fail", source: "return redis.error_reply('SCRIPTFAIL on purpose')")
        try await withRedisClient(configuration) { client in
            let error = await #expect(throws: RedisClientError.self) {
                try await client.evaluate(script, keys: [], arguments: [])
            }
            #expect(error?.code == .commandError)
            #expect(error?.message.hasPrefix("SCRIPTFAIL") == true, "\(String(describing: error))")
        }
    }

    @Test("EVALSHA still works after SCRIPT FLUSH (reloaded on NOSCRIPT), and EVAL is never used")
    func survivesScriptFlush() async throws {
        // Own server: SCRIPT FLUSH and CONFIG RESETSTAT would disturb other tests on the shared one.
        try await RedisServerProcess.withServer { server in
            let script = RedisScript(name: "test-incr", source: Self.incrementSource)
            try await withRedisConnection(server.configuration.forTests) { observer in
                let sha = try #require(try await observer.send(RedisCommand("SCRIPT", "LOAD", RedisArgument(Self.incrementSource))).string)
                _ = try await observer.send(RedisCommand("SCRIPT", "FLUSH"))
                _ = try await observer.send(RedisCommand("CONFIG", "RESETSTAT"))

                try await withRedisClient(server.configuration.forTests) { client async throws in
                    let key = uniqueKey("counter")
                    #expect(try await client.evaluate(script, keys: [RedisArgument(key)], arguments: [5]) == .integer(5))
                    #expect(try await observer.send(RedisCommand("SCRIPT", "EXISTS", RedisArgument(sha))) == .array([.integer(1)]))

                    #expect(try await observer.send(RedisCommand("SCRIPT", "FLUSH")) == .simpleString("OK"))
                    #expect(try await observer.send(RedisCommand("SCRIPT", "EXISTS", RedisArgument(sha))) == .array([.integer(0)]))

                    #expect(try await client.evaluate(script, keys: [RedisArgument(key)], arguments: [5]) == .integer(10))
                    #expect(try await observer.send(RedisCommand("SCRIPT", "EXISTS", RedisArgument(sha))) == .array([.integer(1)]))
                    #expect(try await client.evaluate(script, keys: [RedisArgument(key)], arguments: [1]) == .integer(11))
                }

                // The script ran through EVALSHA every time (4 calls: 3 successes, 1 NOSCRIPT),
                // loaded twice, and never as a plain EVAL.
                let evalsha = try await infoField(observer, section: "commandstats", field: "cmdstat_evalsha")
                let eval = try await infoField(observer, section: "commandstats", field: "cmdstat_eval")
                let load = try await infoField(observer, section: "commandstats", field: "cmdstat_script|load")
                #expect(evalsha?.hasPrefix("calls=4,") == true, "evalsha stats: \(String(describing: evalsha))")
                #expect(evalsha?.contains("failed_calls=1") == true, "evalsha stats: \(String(describing: evalsha))")
                #expect(eval == nil, "plain EVAL was used: \(String(describing: eval))")
                #expect(load?.hasPrefix("calls=2,") == true, "script load stats: \(String(describing: load))")
            }
        }
    }
}
