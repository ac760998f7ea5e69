import NIOCore
import NIOPosix
import RedisClient
import Testing

/// Restarts, timeouts and outages, each on its own redis-server. Serialized: the timing bounds
/// should not compete with each other for the machine's two cores.
@Suite("Outages", .serialized, .timeLimit(.minutes(2)))
struct OutageTests {
    @Test("SIGKILL fails in-flight commands with .connectionClosed at once; after restart the same client works")
    func killAndRestart() async throws {
        try await RedisServerProcess.withServer { server in
            var configuration = server.configuration
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

                let observer = try await RedisConnection.connect(configuration: server.configuration, eventLoop: MultiThreadedEventLoopGroup.singleton.next())
                defer { observer.close() }

                var killedAt = ContinuousClock.now
                let outcomes = try await withThrowingTaskGroup(of: (RedisClientError?, ContinuousClock.Instant).self) { group in
                    // Each connection blocks on its first BLPOP; the others wait behind it in the pipeline.
                    for i in 0..<20 {
                        group.addTask {
                            do {
                                let reply = try await client.send("BLPOP", RedisArgument("\(listPrefix):\(i)"), 0)
                                Issue.record("BLPOP #\(i) answered \(reply) although nothing was pushed")
                                return (nil, .now)
                            } catch let error as RedisClientError {
                                return (error, .now)
                            }
                        }
                    }
                    try await eventually("both pool connections blocked in BLPOP") {
                        let blocked = try await infoField(observer, section: "clients", field: "blocked_clients")
                        guard blocked == "2" else { throw NotYet("blocked_clients=\(blocked ?? "?")") }
                    }
                    // Give every task time to have written its command.
                    try await Task.sleep(for: .milliseconds(200))
                    killedAt = .now
                    server.kill()
                    return try await group.reduce(into: [(RedisClientError?, ContinuousClock.Instant)]()) { $0.append($1) }
                }

                #expect(outcomes.count == 20)
                for (index, (error, failedAt)) in outcomes.enumerated() {
                    #expect(error?.code == .connectionClosed, "in-flight command \(index): \(String(describing: error))")
                    #expect(failedAt >= killedAt, "in-flight command \(index) failed before the kill")
                    #expect(failedAt - killedAt < .seconds(2), "in-flight command \(index) failed only \(failedAt - killedAt) after the kill")
                }

                // While the server is down, commands fail (connection gone, not hanging).
                let whileDown = await #expect(throws: RedisClientError.self) {
                    try await client.send("PING")
                }
                #expect(whileDown?.code == .unavailable || whileDown?.code == .connectionClosed, "\(String(describing: whileDown))")

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
            var configuration = server.configuration
            configuration.poolSize = 1
            configuration.commandTimeout = .milliseconds(300)
            try await withRedisClient(configuration) { client in
                try await client.ping()

                let start = ContinuousClock.now
                async let behind: RedisClientError? = {
                    // Pipelined behind the stalled command on the same (only) connection.
                    try? await Task.sleep(for: .milliseconds(50))
                    do {
                        _ = try await client.send("PING")
                        return nil
                    } catch let error as RedisClientError {
                        return error
                    } catch {
                        return nil
                    }
                }()
                let error = await #expect(throws: RedisClientError.self) {
                    try await client.send("DEBUG", "SLEEP", "1")
                }
                let elapsed = ContinuousClock.now - start
                #expect(error?.code == .timeout, "\(String(describing: error))")
                #expect(elapsed >= .milliseconds(280), "timed out too early: \(elapsed)")
                #expect(elapsed < .milliseconds(900), "timed out too late: \(elapsed)")

                // The command behind it cannot be matched to a reply any more: its connection closed.
                let behindError = await behind
                #expect(behindError?.code == .connectionClosed, "\(String(describing: behindError))")

                // Usable again once Redis answers, without a new client.
                try await eventually("PING after the timeout") { try await client.ping() }
                let key = uniqueKey("after-timeout")
                #expect(try await client.send("SET", RedisArgument(key), "v") == .simpleString("OK"))
                #expect(try await client.send("GET", RedisArgument(key)) == .bulkString([118]))
            }
        }
    }

    @Test("a command stalled by CLIENT PAUSE fails with .timeout within its bound; the client recovers")
    func timeoutWithClientPause() async throws {
        try await RedisServerProcess.withServer { server in
            var configuration = server.configuration
            configuration.poolSize = 1
            configuration.commandTimeout = .milliseconds(300)
            try await withRedisClient(configuration) { client in
                try await client.ping()
                try await withRedisConnection(server.configuration) { admin async throws in
                    #expect(try await admin.send(RedisCommand("CLIENT", "PAUSE", "1500", "ALL")) == .simpleString("OK"))
                }
                let start = ContinuousClock.now
                let error = await #expect(throws: RedisClientError.self) {
                    try await client.send("GET", RedisArgument(uniqueKey("paused")))
                }
                let elapsed = ContinuousClock.now - start
                #expect(error?.code == .timeout, "\(String(describing: error))")
                #expect(error?.isUnavailability == true)
                #expect(elapsed >= .milliseconds(280), "timed out too early: \(elapsed)")
                #expect(elapsed < .milliseconds(900), "timed out too late: \(elapsed)")

                try await eventually("GET after the pause") {
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
            let errors = try await withThrowingTaskGroup(of: RedisClientError?.self) { group in
                for _ in 0..<100 {
                    group.addTask {
                        do {
                            _ = try await client.send("INCR", RedisArgument(key))
                            return nil
                        } catch let error as RedisClientError {
                            return error
                        }
                    }
                }
                return try await group.reduce(into: [RedisClientError?]()) { $0.append($1) }
            }
            let elapsed = ContinuousClock.now - start
            #expect(errors.count == 100)
            #expect(errors.allSatisfy { $0?.code == .unavailable }, "\(errors.prefix(3))")
            #expect(elapsed < .milliseconds(500), "100 failing commands took \(elapsed)")

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
            var configuration = server.configuration
            configuration.poolSize = 2
            try await withRedisClient(configuration) { client in
                try await client.ping()
                server.kill()
                try await eventually(within: .seconds(2), "client notices the server is gone") {
                    guard !client.isConnected else { throw NotYet("still connected") }
                }
                let start = ContinuousClock.now
                var codes = [RedisClientError.Code?]()
                for _ in 0..<100 {
                    do {
                        _ = try await client.send("PING")
                        codes.append(nil)
                    } catch let error as RedisClientError {
                        codes.append(error.code)
                    }
                }
                let elapsed = ContinuousClock.now - start
                #expect(codes.allSatisfy { $0 == .unavailable }, "\(codes.prefix(5))")
                #expect(elapsed < .milliseconds(500), "100 failing commands took \(elapsed)")
            }
        }
    }
}
