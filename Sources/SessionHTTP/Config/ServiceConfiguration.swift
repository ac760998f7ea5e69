import Foundation
import Logging
import RedisClient
import SessionCrypto
import SessionStore

/// A configuration value that cannot be used; `description` is the one line start-up prints.
public struct ConfigurationError: Error, CustomStringConvertible, Sendable {
    public struct Reason: Error, Sendable {
        public let text: String
        public init(_ text: String) { self.text = text }
    }

    public let variable: String
    public let reason: String

    public var description: String { "\(variable): \(reason)" }
}

public enum CookieSameSite: String, Sendable {
    case strict = "Strict"
    case lax = "Lax"
}

/// Everything sessiond is configured with (SPEC §3), read from `SESSIOND_*` values.
public struct ServiceConfiguration: Sendable {
    public var host: String
    public var port: Int
    /// The first Redis URL: credentials, database and timeouts, for every node.
    public var redis: RedisConfiguration
    /// Every URL's address: one server, or the seeds of a cluster.
    public var redisSeeds: [RedisNodeAddress]
    /// Sentinels and the master's name, when the master is found through Sentinel.
    public var sentinels: (addresses: [RedisNodeAddress], masterName: String)?
    public var apiKeys: APIKeyRing
    public var policy: SessionPolicy
    public var cookieName: String
    public var cookieSameSite: CookieSameSite
    public var logLevel: Logger.Level
    /// Seconds a SIGTERM or SIGINT waits for requests in flight before the process gives up on them.
    public var shutdownTimeout: Int
    /// Seconds a connection may sit without a complete request (idle keep-alive, or a client
    /// sending its headers slowly) before it is closed.
    public var connectionIdleTimeout: Int
    /// Connections served at once; beyond it new connections wait in the listen backlog.
    public var maxConnections: Int

    public static let variables = [
        "SESSIOND_HOST", "SESSIOND_PORT", "SESSIOND_REDIS_URL", "SESSIOND_REDIS_SENTINELS",
        "SESSIOND_REDIS_MASTER_NAME", "SESSIOND_API_KEYS", "SESSIOND_KEY_PREFIX",
        "SESSIOND_IDLE_TIMEOUT", "SESSIOND_ABSOLUTE_TIMEOUT", "SESSIOND_MAX_SESSIONS_PER_USER",
        "SESSIOND_MAX_DATA_BYTES", "SESSIOND_COOKIE_NAME", "SESSIOND_COOKIE_SAMESITE", "SESSIOND_LOG_LEVEL",
        "SESSIOND_SHUTDOWN_TIMEOUT", "SESSIOND_CONNECTION_IDLE_TIMEOUT", "SESSIOND_MAX_CONNECTIONS",
        "SESSIOND_REDIS_TLS_CA_FILE", "SESSIOND_REDIS_TLS_CERT_FILE", "SESSIOND_REDIS_TLS_KEY_FILE",
        "SESSIOND_NEAR_CACHE", "SESSIOND_NEAR_CACHE_MAX_STALENESS_MS", "SESSIOND_NEAR_CACHE_MAX_ENTRIES",
        "SESSIOND_DATA_KEYS",
    ]

    /// How sessiond reaches Redis: Sentinel when configured, else the URL(s).
    public var redisTopology: RedisTopologyConfiguration {
        if let sentinels {
            return .sentinel(sentinels: sentinels.addresses, masterName: sentinels.masterName, server: redis)
        }
        return .seeds(redisSeeds.map { seed in
            var configuration = redis
            configuration.host = seed.host
            configuration.port = seed.port
            return configuration
        })
    }

    /// Reads the configuration from variables named as in SPEC §3 (environment, with command-line
    /// flags already merged over it). Throws for the first bad value, naming its variable.
    public init(values: [String: String]) throws(ConfigurationError) {
        func value(_ name: String) -> String? {
            guard let text = values[name], !text.isEmpty else { return nil }
            return text
        }
        func check<T>(_ name: String, _ body: () throws(ConfigurationError.Reason) -> T) throws(ConfigurationError) -> T {
            do {
                return try body()
            } catch {
                throw ConfigurationError(variable: name, reason: error.text)
            }
        }
        func integer(_ name: String, default fallback: Int, in range: ClosedRange<Int>) throws(ConfigurationError) -> Int {
            try check(name) { () throws(ConfigurationError.Reason) -> Int in
                guard let text = value(name) else { return fallback }
                guard let number = Int(text), range.contains(number) else {
                    throw .init("must be a whole number from \(range.lowerBound) to \(range.upperBound), got '\(text.prefix(32))'")
                }
                return number
            }
        }

        host = value("SESSIOND_HOST") ?? "127.0.0.1"
        port = try integer("SESSIOND_PORT", default: 8080, in: 0...65535)
        let redisURLs = (value("SESSIOND_REDIS_URL") ?? "redis://127.0.0.1:6379/0").split(separator: ",", omittingEmptySubsequences: false)
        let parsedURLs = try check("SESSIOND_REDIS_URL") { () throws(ConfigurationError.Reason) -> [RedisConfiguration] in
            var parsed = [RedisConfiguration]()
            for url in redisURLs {
                do {
                    parsed.append(try RedisConfiguration(url: String(url.trimmingASCIISpaces())))
                } catch let error as RedisClientError {
                    throw .init(error.message)
                } catch {
                    throw .init("\(error)")
                }
            }
            let first = parsed[0]
            guard parsed.allSatisfy({ $0.username == first.username && $0.password == first.password && $0.database == first.database }) else {
                throw .init("every seed URL must have the same user, password and database")
            }
            guard parsed.allSatisfy({ $0.requiresTLS == first.requiresTLS }) else {
                throw .init("every seed URL must use the same scheme (redis:// or rediss://)")
            }
            return parsed
        }
        redis = parsedURLs[0]
        let tlsFiles = ["SESSIOND_REDIS_TLS_CA_FILE", "SESSIOND_REDIS_TLS_CERT_FILE", "SESSIOND_REDIS_TLS_KEY_FILE"]
        if redis.requiresTLS {
            redis.tls = try check("SESSIOND_REDIS_TLS_CA_FILE") { () throws(ConfigurationError.Reason) -> RedisTLS in
                do {
                    return try RedisTLS(
                        caFile: value("SESSIOND_REDIS_TLS_CA_FILE"), certificateFile: value("SESSIOND_REDIS_TLS_CERT_FILE"),
                        keyFile: value("SESSIOND_REDIS_TLS_KEY_FILE")
                    )
                } catch let error as RedisClientError {
                    throw .init(error.message)
                } catch {
                    throw .init("\(error)")
                }
            }
        } else if let given = tlsFiles.first(where: { value($0) != nil }) {
            throw ConfigurationError(variable: given, reason: "TLS files need a rediss:// SESSIOND_REDIS_URL")
        }
        let staleness = try integer("SESSIOND_NEAR_CACHE_MAX_STALENESS_MS", default: 50, in: 1...60000)
        let maxEntries = try integer("SESSIOND_NEAR_CACHE_MAX_ENTRIES", default: 1_000_000, in: 1...100_000_000)
        redis.nearCache = try check("SESSIOND_NEAR_CACHE") { () throws(ConfigurationError.Reason) -> NearCacheConfiguration? in
            switch (value("SESSIOND_NEAR_CACHE") ?? "strict").lowercased() {
            case "strict": return NearCacheConfiguration(mode: .strict, maxEntries: maxEntries)
            case "bounded": return NearCacheConfiguration(mode: .bounded(maxStaleness: .milliseconds(staleness)), maxEntries: maxEntries)
            case "off": return nil
            case let text: throw .init("must be strict, bounded or off, got '\(text.prefix(32))'")
            }
        }
        redisSeeds = parsedURLs.map { RedisNodeAddress(host: $0.host, port: $0.port) }
        let sentinelList = value("SESSIOND_REDIS_SENTINELS")
        let masterName = value("SESSIOND_REDIS_MASTER_NAME")
        sentinels = try check("SESSIOND_REDIS_SENTINELS") { () throws(ConfigurationError.Reason) -> (addresses: [RedisNodeAddress], masterName: String)? in
            guard let sentinelList else {
                if masterName != nil { throw .init("required when SESSIOND_REDIS_MASTER_NAME is set: host:port,... of the Sentinels") }
                return nil
            }
            guard let masterName else {
                throw .init("needs SESSIOND_REDIS_MASTER_NAME, the name the Sentinels monitor the master under")
            }
            var addresses = [RedisNodeAddress]()
            for item in sentinelList.split(separator: ",") {
                guard let address = RedisNodeAddress(parsing: item.trimmingASCIISpaces(), defaultHost: ""), !address.host.isEmpty else {
                    throw .init("must be host:port,... got '\(item.prefix(64))'")
                }
                addresses.append(address)
            }
            guard !addresses.isEmpty else { throw .init("must list at least one host:port") }
            guard parsedURLs.count == 1 else { throw .init("takes one SESSIOND_REDIS_URL (for credentials), not a list of seeds") }
            return (addresses, masterName)
        }
        apiKeys = try check("SESSIOND_API_KEYS") { () throws(ConfigurationError.Reason) -> APIKeyRing in
            guard let text = value("SESSIOND_API_KEYS") else {
                throw .init("required: comma-separated role:key pairs (roles reader, app, admin; keys of 24+ characters)")
            }
            return try APIKeyRing(parsing: text)
        }
        let prefix = try check("SESSIOND_KEY_PREFIX") { () throws(ConfigurationError.Reason) -> String in
            let text = values["SESSIOND_KEY_PREFIX"] ?? "sessiond:"
            // Braces would make a Redis Cluster hash tag of the prefix and put every key in one slot.
            guard (1...64).contains(text.utf8.count), text.utf8.allSatisfy({ $0 > 0x20 && $0 < 0x7F && $0 != UInt8(ascii: "{") && $0 != UInt8(ascii: "}") }) else {
                throw .init("must be 1 to 64 printable ASCII characters without spaces or braces")
            }
            return text
        }
        let idle = try integer("SESSIOND_IDLE_TIMEOUT", default: 1800, in: 1...SessionPolicy.timeoutLimit)
        let absolute = try integer("SESSIOND_ABSOLUTE_TIMEOUT", default: 43200, in: 1...SessionPolicy.timeoutLimit)
        let cap = try integer("SESSIOND_MAX_SESSIONS_PER_USER", default: 0, in: 0...1_000_000)
        let maxData = try integer("SESSIOND_MAX_DATA_BYTES", default: 16384, in: 2...1_048_576)
        let dataKeys = try check("SESSIOND_DATA_KEYS") { () throws(ConfigurationError.Reason) -> DataKeyRing? in
            guard let path = value("SESSIOND_DATA_KEYS") else { return nil }
            let text: String
            do {
                text = try String(contentsOfFile: path, encoding: .utf8)
            } catch {
                throw .init("cannot read the key ring file '\(path.prefix(256))'")
            }
            do throws(DataKeyRingError) {
                return try DataKeyRing(parsing: text)
            } catch {
                throw .init("key ring file '\(path.prefix(256))': \(error.text)")
            }
        }
        policy = SessionPolicy(
            keyPrefix: prefix, idleTimeout: idle, absoluteTimeout: absolute, maxSessionsPerUser: cap, maxDataBytes: maxData, dataKeys: dataKeys
        )
        cookieName = try check("SESSIOND_COOKIE_NAME") { () throws(ConfigurationError.Reason) -> String in
            let name = value("SESSIOND_COOKIE_NAME") ?? "__Host-session"
            // RFC 6265 cookie-name is an RFC 7230 token.
            let separators = Set("()<>@,;:\\\"/[]?={} \t".utf8)
            guard name.utf8.count <= 128, name.utf8.allSatisfy({ $0 > 0x20 && $0 < 0x7F && !separators.contains($0) }) else {
                throw .init("must be a cookie name token (printable ASCII, no separators), got '\(name.prefix(32))'")
            }
            return name
        }
        cookieSameSite = try check("SESSIOND_COOKIE_SAMESITE") { () throws(ConfigurationError.Reason) -> CookieSameSite in
            let text = value("SESSIOND_COOKIE_SAMESITE") ?? "Lax"
            guard let mode = [CookieSameSite.strict, .lax].first(where: { $0.rawValue.lowercased() == text.lowercased() }) else {
                throw .init("must be Strict or Lax, got '\(text.prefix(32))'")
            }
            return mode
        }
        logLevel = try check("SESSIOND_LOG_LEVEL") { () throws(ConfigurationError.Reason) -> Logger.Level in
            let text = value("SESSIOND_LOG_LEVEL") ?? "info"
            guard let level = Logger.Level(rawValue: text.lowercased()) else {
                throw .init("must be one of trace, debug, info, notice, warning, error, critical, got '\(text.prefix(32))'")
            }
            return level
        }
        shutdownTimeout = try integer("SESSIOND_SHUTDOWN_TIMEOUT", default: 10, in: 1...3600)
        connectionIdleTimeout = try integer("SESSIOND_CONNECTION_IDLE_TIMEOUT", default: 60, in: 1...3600)
        maxConnections = try integer("SESSIOND_MAX_CONNECTIONS", default: 10000, in: 1...1_000_000)
    }
}
