import NIOCore
import NIOPosix
import RedisClient
import Testing

/// Restarts, timeouts and outages, each on its own redis-server. Serialized: the timing bounds
/// should not compete with each other for the machine's two cores.
///
/// Commands that a broken client could leave pending forever run under `withDeadline`, so such a
/// bug fails the test instead of hanging the run.
@Suite("Outages", .serialized, .timeLimit(.minutes(2)))
struct OutageTests {
    @Test("SIGKILL fails in-flight commands with .connectionClosed at once; after restart the same client works")
    func killAndRestart() async throws {
        try await RedisServerProcess.withServer { server in
            var configuration = server.configuration.forTests
            configuration.poolSize = 2
            // Far longer than the test waits: in-flight commands must fail because the
            // connection broke, not because they timed out.
            configuration.commandTimeout = .seconds(30)
            let script = RedisScript(name: "test-restart", source: "return redis.call('INCR', KEYS[1])")
            let counter = uniqueKey("counter")
            let listPrefix = uniqueKey("list")

            try await withRedisClient(configuration) { client in
                _ = try await waitForPool(client, count: 2)
                #expect(try await client.evaluate(script, keys: [RedisArgument(counter)], arguments: []) == .integer(1))

                // Each connection blocks on its first BLPOP; the others wait behind it in the pipeline.
                let inFlight = Task {
                    await withTaskGroup(of: (CommandOutcome, ContinuousClock.Instant).self) { group in
                        for i in 0..<20 {
                            group.addTask {
                                let result = await outcome { try await client.send("BLPOP", RedisArgument("\(listPrefix):\(i)"), 0) }
                                return (result, .now)
                            }
                        }
                        return await group.reduce(into: [(CommandOutcome, ContinuousClock.Instant)]()) { $0.append($1) }
                    }
                }
                try await withRedisConnection(server.configuration.forTests) { observer in
                    try await eventually("both pool connections blocked in BLPOP") {
                        let blocked = try await infoField(observer, section: "clients", field: "blocked_clients")
                        guard blocked == "2" else { throw NotYet("blocked_clients=\(blocked ?? "?")") }
                    }
                }
                // 20, or 21 once the client's role check (a ROLE every second on each connection)
                // has queued behind a blocked BLPOP too.
                try await eventually("all 20 BLPOPs written") {
                    let pending = client.poolStatistics.pending
                    guard pending >= 20 else { throw NotYet("pending=\(pending)") }
                }
                let killedAt = ContinuousClock.now
                server.kill()

                let outcomes = try #require(
                    await withDeadline(.seconds(10)) { await inFlight.value },
                    "in-flight commands still pending 10 s after the server was killed"
                )
                #expect(outcomes.count == 20)
                for (index, (result, failedAt)) in outcomes.enumerated() {
                    #expect(result.errorCode == .connectionClosed, "in-flight command \(index): \(result)")
                    #expect(failedAt >= killedAt, "in-flight command \(index) failed before the kill: \(result)")
                    #expect(failedAt - killedAt < .seconds(5), "in-flight command \(index) failed only \(failedAt - killedAt) after the kill")
                }

                // While the server is down, commands fail (connection gone, not hanging).
                let whileDown = await withDeadline(.seconds(5)) { await outcome { try await client.send("PING") } }
                #expect(whileDown?.errorCode == .unavailable || whileDown?.errorCode == .connectionClosed,
                        "\(String(describing: whileDown))")

                try await server.restart()

                // The same client object recovers by itself.
                try await eventually("SET after restart") {
                    _ = try await client.send("SET", RedisArgument(counter + ":after"), "1")
                }
                #expect(try await client.send("GET", RedisArgument(counter + ":after")) == .bulkString([49]))
                // A fresh server (no persistence): the old counter is gone, the script cache too,
                // and evaluate reloads the script by itself.
                #expect(try await client.send("GET", RedisArgument(counter)) == .null)
                #expect(try await client.evaluate(script, keys: [RedisArgument(counter)], arguments: []) == .integer(1))
                // Both pool connections come back.
                let ids = try await waitForPool(client, count: 2)
                #expect(ids.count == 2)
            }
        }
    }

    @Test("a command stalled by DEBUG SLEEP fails with .timeout within its bound; the client recovers")
    func timeoutWithDebugSleep() async throws {
        try await RedisServerProcess.withServer(extraArgs: ["--enable-debug-command", "local"]) { server in
            var configuration = server.configuration.forTests
            configuration.poolSize = 1
            // The stall (5 s) is far longer than the timeout (1 s), and the bound between them
            // leaves room for a loaded machine: only a timeout can end the command in time.
            configuration.commandTimeout = .seconds(1)
            try await withRedisClient(configuration) { client in
                try await client.ping()

                let start = ContinuousClock.now
                // Pipelined behind the stalled command on the same (only) connection, once that
                // one is written.
                let behind = Task {
                    try? await eventually("DEBUG SLEEP written") {
                        guard client.poolStatistics.pending >= 1 else { throw NotYet("nothing pending") }
                    }
                    return await outcome { try await client.send("PING") }
                }
                let stalled = await withDeadline(.seconds(10)) {
                    let result = await outcome { try await client.send("DEBUG", "SLEEP", "5") }
                    return (result, ContinuousClock.now)
                }
                let (result, end) = try #require(stalled, "DEBUG SLEEP 5 still pending after 10 s")
                let elapsed = end - start
                #expect(result.errorCode == .timeout, "\(result)")
                #expect(elapsed >= .milliseconds(980), "timed out too early: \(elapsed)")
                #expect(elapsed < .seconds(4), "timed out too late: \(elapsed)")

                // The command behind it cannot be matched to a reply any more: its connection closed.
                let behindResult = await withDeadline(.seconds(5)) { await behind.value }
                #expect(behindResult?.errorCode == .connectionClosed, "\(String(describing: behindResult))")

                // Usable again once Redis answers, without a new client.
                try await eventually(within: .seconds(15), "PING after the timeout") { try await client.ping() }
                let key = uniqueKey("after-timeout")
                #expect(try await client.send("SET", RedisArgument(key), "v") == .simpleString("OK"))
                #expect(try await client.send("GET", RedisArgument(key)) == .bulkString([118]))
            }
        }
    }

    @Test("a command stalled by CLIENT PAUSE fails with .timeout within its bound; the client recovers")
    func timeoutWithClientPause() async throws {
        try await RedisServerProcess.withServer { server in
            var configuration = server.configuration.forTests
            configuration.poolSize = 1
            configuration.commandTimeout = .milliseconds(300)
            try await withRedisClient(configuration) { client in
                try await client.ping()
                try await withRedisConnection(server.configuration.forTests) { admin async throws in
                    #expect(try await admin.send(RedisCommand("CLIENT", "PAUSE", "5000", "ALL")) == .simpleString("OK"))
                }
                let start = ContinuousClock.now
                let stalled = await withDeadline(.seconds(5)) {
                    let result = await outcome { try await client.send("GET", RedisArgument(uniqueKey("paused"))) }
                    return (result, ContinuousClock.now)
                }
                let (result, end) = try #require(stalled, "GET still pending after 5 s")
                let elapsed = end - start
                #expect(result.errorCode == .timeout, "\(result)")
                if case .failure(let error) = result { #expect(error.isUnavailability) }
                #expect(elapsed >= .milliseconds(280), "timed out too early: \(elapsed)")
                #expect(elapsed < .seconds(3), "timed out too late: \(elapsed)")

                try await eventually(within: .seconds(15), "GET after the pause") {
                    _ = try await client.send("GET", RedisArgument(uniqueKey("resumed")))
                }
            }
        }
    }

    @Test("with nothing listening, 100 commands fail with .unavailable at once and none is queued for later")
    func nothingListening() async throws {
        let port = try await RedisServerProcess.freePort()
        var configuration = RedisConfiguration(host: "127.0.0.1", port: port)
        configuration.poolSize = 2
        configuration.connectTimeout = .milliseconds(200)
        let key = uniqueKey("queued")

        try await withRedisClient(configuration, waitForConnection: false) { client in
            #expect(await client.waitUntilConnected(timeout: .milliseconds(300)) == false)

            let start = ContinuousClock.now
            let results = try #require(
                await withDeadline(.seconds(5)) {
                    await withTaskGroup(of: CommandOutcome.self) { group in
                        for _ in 0..<100 {
                            group.addTask { await outcome { try await client.send("INCR", RedisArgument(key)) } }
                        }
                        return await group.reduce(into: [CommandOutcome]()) { $0.append($1) }
                    }
                },
                "commands still pending 5 s into the outage: they were queued"
            )
            let elapsed = ContinuousClock.now - start
            #expect(results.count == 100)
            #expect(results.allSatisfy { $0.errorCode == .unavailable }, "\(results.prefix(3))")
            #expect(elapsed < .seconds(2), "100 failing commands took \(elapsed)")

            // Redis appears on that port: the client connects by itself, and none of the 100
            // INCRs was kept and replayed.
            let server = try await RedisServerProcess.start(port: port)
            defer { server.stop() }
            #expect(await client.waitUntilConnected(timeout: .seconds(5)))
            try await eventually("GET once Redis is up") {
                _ = try await client.send("GET", RedisArgument(key))
            }
            try await Task.sleep(for: .milliseconds(300))
            #expect(try await client.send("GET", RedisArgument(key)) == .null)
        }
    }

    @Test("after a SIGKILL, 100 commands fail with .unavailable at once")
    func killedServer() async throws {
        try await RedisServerProcess.withServer { server in
            var configuration = server.configuration.forTests
            configuration.poolSize = 2
            try await withRedisClient(configuration) { client in
                try await client.ping()
                server.kill()
                try await eventually(within: .seconds(5), "client notices the server is gone") {
                    guard !client.isConnected else { throw NotYet("still connected") }
                }
                let start = ContinuousClock.now
                let codes = try #require(
                    await withDeadline(.seconds(5)) {
                        var codes = [RedisClientError.Code?]()
                        for _ in 0..<100 {
                            codes.append(await outcome { try await client.send("PING") }.errorCode)
                        }
                        return codes
                    },
                    "commands still pending 5 s into the outage: they were queued"
                )
                let elapsed = ContinuousClock.now - start
                #expect(codes.allSatisfy { $0 == .unavailable }, "\(codes.prefix(5))")
                #expect(elapsed < .seconds(2), "100 failing commands took \(elapsed)")
            }
        }
    }
}
