import NIOPosix
import RedisClient
import Testing

@Suite("AUTH, ACL users and SELECT", .timeLimit(.minutes(1)))
struct AuthTests {
    /// Needs percent-encoding in a URL: '@', ':', '/', '%' and a space.
    static let password = "p@ss:w/rd% 42"
    static let encodedPassword = "p%40ss%3Aw%2Frd%25%2042"

    @Test("a server with --requirepass: the right password works, none gives NOAUTH, a wrong one a clear .setupRefused")
    func requirePass() async throws {
        try await RedisServerProcess.withServer(extraArgs: ["--requirepass", Self.password]) { server in
            let configuration = try RedisConfiguration(url: "redis://:\(Self.encodedPassword)@127.0.0.1:\(server.port)/0").forTests
            #expect(configuration.password == Self.password)
            #expect(configuration.username == nil)
            try await withRedisClient(configuration) { client async throws in
                let key = uniqueKey("auth")
                #expect(try await client.send("SET", RedisArgument(key), "v") == .simpleString("OK"))
                #expect(try await client.send("GET", RedisArgument(key)) == .bulkString([118]))
                #expect(try await client.send("ACL", "WHOAMI") == .bulkString(Array("default".utf8)))
            }

            // Without a password Redis refuses commands.
            try await withRedisConnection(server.configuration.forTests) { connection in
                let error = await #expect(throws: RedisClientError.self) {
                    try await connection.send(RedisCommand("GET", "x"))
                }
                #expect(error?.code == .commandError)
                #expect(error?.message.hasPrefix("NOAUTH") == true, "\(String(describing: error))")
            }

            // A wrong password: the connection setup fails with the server's own words.
            var wrong = server.configuration.forTests
            wrong.password = "not-the-password"
            let error = await #expect(throws: RedisClientError.self) {
                try await RedisConnection.connect(configuration: wrong, eventLoop: MultiThreadedEventLoopGroup.singleton.next())
            }
            #expect(error?.code == .setupRefused, "\(String(describing: error))")
            #expect(error?.message.contains("WRONGPASS") == true || error?.message.contains("invalid password") == true,
                    "\(String(describing: error))")
            #expect(error?.message.contains("not-the-password") == false, "the password leaked into the error")

            // A pooled client with the wrong password never counts as connected and fails fast.
            try await withRedisClient(wrong, waitForConnection: false) { client in
                #expect(await client.waitUntilConnected(timeout: .milliseconds(500)) == false)
                let unavailable = await #expect(throws: RedisClientError.self) { try await client.send("PING") }
                #expect(unavailable?.code == .unavailable)
            }
        }
    }

    @Test("an ACL user from the URL authenticates as that user, and SELECT follows AUTH")
    func aclUser() async throws {
        try await RedisServerProcess.withServer { server in
            try await withRedisConnection(server.configuration.forTests) { admin async throws in
                #expect(try await admin.send(RedisCommand("ACL", "SETUSER", "alice", "on", ">secretpw", "~*", "+@all")) == .simpleString("OK"))
                #expect(try await admin.send(RedisCommand("ACL", "SETUSER", "bob", "on", ">bobpw", "~bob:*", "+get", "+set")) == .simpleString("OK"))
            }

            let alice = try RedisConfiguration(url: "redis://alice:secretpw@127.0.0.1:\(server.port)/2").forTests
            #expect(alice.username == "alice")
            #expect(alice.database == 2)
            try await withRedisClient(alice) { client in
                #expect(try await client.send("ACL", "WHOAMI") == .bulkString(Array("alice".utf8)))
                let info = try #require(try await client.send("CLIENT", "INFO").string)
                #expect(info.contains(" db=2 "), "\(info)")
                #expect(info.contains(" user=alice "), "\(info)")
                let key = uniqueKey("alice")
                #expect(try await client.send("SET", RedisArgument(key), "a") == .simpleString("OK"))
                #expect(try await client.send("GET", RedisArgument(key)) == .bulkString([97]))
            }

            // The user's permissions apply: bob may only touch bob:* keys.
            let bob = try RedisConfiguration(url: "redis://bob:bobpw@127.0.0.1:\(server.port)").forTests
            try await withRedisClient(bob) { client async throws in
                #expect(try await client.send("SET", "bob:1", "b") == .simpleString("OK"))
                let denied = await #expect(throws: RedisClientError.self) { try await client.send("SET", "alice:1", "b") }
                #expect(denied?.code == .commandError)
                #expect(denied?.reply == .noPermission, "\(String(describing: denied))")
            }

            // A wrong password for the ACL user.
            let wrong = try RedisConfiguration(url: "redis://alice:nope@127.0.0.1:\(server.port)/0").forTests
            let error = await #expect(throws: RedisClientError.self) {
                try await RedisConnection.connect(configuration: wrong, eventLoop: MultiThreadedEventLoopGroup.singleton.next())
            }
            #expect(error?.code == .setupRefused)
            #expect(error?.message.contains("WRONGPASS") == true, "\(String(describing: error))")
        }
    }

    @Test("a URL with /3 writes to database 3")
    func selectDatabase() async throws {
        let shared = try SharedRedis.configuration()
        var db3 = shared
        db3.database = 3
        let key = uniqueKey("db3")
        try await withRedisClient(db3) { client async throws in
            #expect(try await client.send("SET", RedisArgument(key), "three") == .simpleString("OK"))
            #expect(try await client.send("GET", RedisArgument(key)) == .bulkString(Array("three".utf8)))
        }
        var db0 = shared
        db0.database = 0
        try await withRedisConnection(db0) { connection in
            #expect(try await connection.send(RedisCommand("GET", RedisArgument(key))) == .null)
            #expect(try await connection.send(RedisCommand("SELECT", 3)) == .simpleString("OK"))
            #expect(try await connection.send(RedisCommand("GET", RedisArgument(key))) == .bulkString(Array("three".utf8)))
            _ = try await connection.send(RedisCommand("DEL", RedisArgument(key)))
        }
    }

    @Test("a database Redis does not have fails the connection setup with .setupRefused")
    func selectMissingDatabase() async throws {
        var configuration = try SharedRedis.configuration()
        configuration.database = 100_000
        let error = await #expect(throws: RedisClientError.self) {
            try await RedisConnection.connect(configuration: configuration, eventLoop: MultiThreadedEventLoopGroup.singleton.next())
        }
        #expect(error?.code == .setupRefused)
        #expect(error?.message.contains("DB index") == true, "\(String(describing: error))")
    }
}
