import RedisClient
import Testing

@Suite("Redis URL parsing")
struct ConfigurationTests {
    struct Good: Sendable, CustomTestStringConvertible {
        var url: String
        var host: String
        var port: Int
        var database: Int
        var username: String?
        var password: String?
        var testDescription: String { url }
    }

    static let good: [Good] = [
        Good(url: "redis://127.0.0.1:6379/0", host: "127.0.0.1", port: 6379, database: 0),
        Good(url: "redis://localhost", host: "localhost", port: 6379, database: 0),
        Good(url: "redis://localhost/", host: "localhost", port: 6379, database: 0),
        Good(url: "redis://cache.internal:6380/5", host: "cache.internal", port: 6380, database: 5),
        Good(url: "redis://[::1]:6380/1", host: "::1", port: 6380, database: 1),
        Good(url: "redis://[::1]", host: "::1", port: 6379, database: 0),
        Good(url: "redis://:s3cret@host:1/2", host: "host", port: 1, database: 2, password: "s3cret"),
        Good(url: "redis://s3cret@host:65535", host: "host", port: 65535, database: 0, password: "s3cret"),
        Good(url: "redis://alice:p%40ss%3Aw%2Frd%25@host:6379/0", host: "host", port: 6379, database: 0,
             username: "alice", password: "p@ss:w/rd%"),
        Good(url: "redis://user%40corp:pw@[fe80::1]:7000/15", host: "fe80::1", port: 7000, database: 15,
             username: "user@corp", password: "pw"),
    ]

    @Test("good URLs", arguments: good)
    func parsesGood(_ expected: Good) throws {
        let configuration = try RedisConfiguration(url: expected.url)
        #expect(configuration.host == expected.host)
        #expect(configuration.port == expected.port)
        #expect(configuration.database == expected.database)
        #expect(configuration.username == expected.username)
        #expect(configuration.password == expected.password)
        #expect(!configuration.requiresTLS)
    }

    @Test func redissAsksForTLS() throws {
        let configuration = try RedisConfiguration(url: "rediss://alice:pw@cache.internal:6380/2")
        #expect(configuration.requiresTLS)
        #expect(configuration.host == "cache.internal" && configuration.port == 6380 && configuration.database == 2)
        #expect(configuration.username == "alice" && configuration.password == "pw")
    }

    static let bad: [String] = [
        "",
        "127.0.0.1:6379",
        "http://127.0.0.1:6379/0",
        "redisss://127.0.0.1:6379/0",
        "unix:///tmp/redis.sock",
        "redis://",
        "redis:///0",
        "redis://:6379/0",
        "redis://:pw@:6379/0",
        "redis://[]:6379",
        "redis://host:",
        "redis://host:abc",
        "redis://host:0",
        "redis://host:65536",
        "redis://host:-1",
        "redis://host/abc",
        "redis://host/-1",
        "redis://host/1/2",
        "redis://[::1",
        "redis://[::1]x",
        "redis://[::1]:",
        "redis://[::1]:port",
        "redis://u:%zz@host",
        "redis://u:%4@host",
    ]

    @Test("bad URLs throw .invalidConfiguration", arguments: bad)
    func rejectsBad(_ url: String) {
        let error = #expect(throws: RedisClientError.self) { try RedisConfiguration(url: url) }
        #expect(error?.code == .invalidConfiguration)
    }

    @Test("an error about a bad URL does not repeat the password")
    func errorHidesPassword() {
        let error = #expect(throws: RedisClientError.self) { try RedisConfiguration(url: "redis://u:topsecret@host:99999") }
        #expect(error?.message.contains("topsecret") == false)
    }
}
