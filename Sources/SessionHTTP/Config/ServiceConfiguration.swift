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

/// Everything sessiond is configured with (SPEC §3), read through `Setting`.
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

    /// Reads the configuration from the variables of `Setting.all` (environment, with command-line
    /// flags already merged over it). Throws for the first bad value, naming its variable.
    public init(values: [String: String]) throws(ConfigurationError) {
        /// The value given, if not empty.
        func given(_ setting: Setting) -> String? {
            guard let text = values[setting.variable], !text.isEmpty else { return nil }
            return text
        }
        /// The value given, or the setting's default.
        func value(_ setting: Setting) -> String {
            given(setting) ?? setting.defaultValue ?? ""
        }
        /// `body`'s value, or its error as the setting's: a reason's text, a Redis client's message.
        func check<T>(_ setting: Setting, _ body: () throws -> T) throws(ConfigurationError) -> T {
            do {
                return try body()
            } catch let error as ConfigurationError.Reason {
                throw ConfigurationError(variable: setting.variable, reason: error.text)
            } catch let error as RedisClientError {
                throw ConfigurationError(variable: setting.variable, reason: error.message)
            } catch {
                throw ConfigurationError(variable: setting.variable, reason: "\(error)")
            }
        }
        func integer(_ setting: Setting) throws(ConfigurationError) -> Int {
            try check(setting) { () throws(ConfigurationError.Reason) -> Int in
                guard let range = setting.range else { preconditionFailure("\(setting.variable) is not a whole number") }
                let text = value(setting)
                guard let number = Int(text), range.contains(number) else {
                    throw .init("must be a whole number from \(range.lowerBound) to \(range.upperBound), got '\(text.prefix(32))'")
                }
                return number
            }
        }

        host = value(.host)
        port = try integer(.port)
        let redisURLs = value(.redisURL).split(separator: ",", omittingEmptySubsequences: false)
        let parsedURLs = try check(.redisURL) { () throws -> [RedisConfiguration] in
            let parsed = try redisURLs.map { try RedisConfiguration(url: String($0.trimmingASCIISpaces())) }
            let first = parsed[0]
            guard parsed.allSatisfy({ $0.username == first.username && $0.password == first.password && $0.database == first.database }) else {
                throw ConfigurationError.Reason("every seed URL must have the same user, password and database")
            }
            guard parsed.allSatisfy({ $0.requiresTLS == first.requiresTLS }) else {
                throw ConfigurationError.Reason("every seed URL must use the same scheme (redis:// or rediss://)")
            }
            return parsed
        }
        redis = parsedURLs[0]
        let tlsFiles = [Setting.redisTLSCAFile, .redisTLSCertFile, .redisTLSKeyFile]
        if redis.requiresTLS {
            redis.tls = try check(.redisTLSCAFile) {
                try RedisTLS(caFile: given(.redisTLSCAFile), certificateFile: given(.redisTLSCertFile), keyFile: given(.redisTLSKeyFile))
            }
        } else if let file = tlsFiles.first(where: { given($0) != nil }) {
            throw ConfigurationError(variable: file.variable, reason: "TLS files need a rediss:// \(Setting.redisURL.variable)")
        }
        redisSeeds = parsedURLs.map { RedisNodeAddress(host: $0.host, port: $0.port) }
        let sentinelList = given(.redisSentinels)
        let masterName = given(.redisMasterName)
        sentinels = try check(.redisSentinels) { () throws(ConfigurationError.Reason) -> (addresses: [RedisNodeAddress], masterName: String)? in
            guard let sentinelList else {
                if masterName != nil { throw .init("required when \(Setting.redisMasterName.variable) is set: host:port,... of the Sentinels") }
                return nil
            }
            guard let masterName else {
                throw .init("needs \(Setting.redisMasterName.variable), the name the Sentinels monitor the master under")
            }
            var addresses = [RedisNodeAddress]()
            for item in sentinelList.split(separator: ",") {
                guard let address = RedisNodeAddress(parsing: item.trimmingASCIISpaces(), defaultHost: ""), !address.host.isEmpty else {
                    throw .init("must be host:port,... got '\(item.prefix(64))'")
                }
                addresses.append(address)
            }
            guard !addresses.isEmpty else { throw .init("must list at least one host:port") }
            guard parsedURLs.count == 1 else { throw .init("takes one \(Setting.redisURL.variable) (for credentials), not a list of seeds") }
            return (addresses, masterName)
        }
        apiKeys = try check(.apiKeys) { () throws(ConfigurationError.Reason) -> APIKeyRing in
            guard let text = given(.apiKeys) else {
                throw .init("required: comma-separated role:key pairs (roles reader, app, admin; keys of 24+ characters)")
            }
            return try APIKeyRing(parsing: text)
        }
        let prefix = try check(.keyPrefix) { () throws(ConfigurationError.Reason) -> String in
            // An empty prefix is refused, not taken for the default.
            let text = values[Setting.keyPrefix.variable] ?? Setting.keyPrefix.defaultValue ?? ""
            // Braces would make a Redis Cluster hash tag of the prefix and put every key in one slot.
            guard (1...64).contains(text.utf8.count), text.utf8.allSatisfy({ $0 > 0x20 && $0 < 0x7F && $0 != UInt8(ascii: "{") && $0 != UInt8(ascii: "}") }) else {
                throw .init("must be 1 to 64 printable ASCII characters without spaces or braces")
            }
            return text
        }
        let staleness = try integer(.nearCacheMaxStaleness)
        let maxEntries = try integer(.nearCacheMaxEntries)
        redis.nearCache = try check(.nearCache) { () throws(ConfigurationError.Reason) -> NearCacheConfiguration? in
            switch value(.nearCache).lowercased() {
            case "strict": return NearCacheConfiguration(mode: .strict, maxEntries: maxEntries, keyPrefix: prefix)
            case "bounded": return NearCacheConfiguration(mode: .bounded(maxStaleness: .milliseconds(staleness)), maxEntries: maxEntries, keyPrefix: prefix)
            case "off": return nil
            case let text: throw .init("must be strict, bounded or off, got '\(text.prefix(32))'")
            }
        }
        let idle = try integer(.idleTimeout)
        let absolute = try integer(.absoluteTimeout)
        let cap = try integer(.maxSessionsPerUser)
        let maxData = try integer(.maxDataBytes)
        let dataKeys = try check(.dataKeys) { () throws(ConfigurationError.Reason) -> DataKeyRing? in
            guard let path = given(.dataKeys) else { return nil }
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
        cookieName = try check(.cookieName) { () throws(ConfigurationError.Reason) -> String in
            let name = value(.cookieName)
            // RFC 6265 cookie-name is an RFC 7230 token.
            let separators = Set("()<>@,;:\\\"/[]?={} \t".utf8)
            guard name.utf8.count <= 128, name.utf8.allSatisfy({ $0 > 0x20 && $0 < 0x7F && !separators.contains($0) }) else {
                throw .init("must be a cookie name token (printable ASCII, no separators), got '\(name.prefix(32))'")
            }
            return name
        }
        cookieSameSite = try check(.cookieSameSite) { () throws(ConfigurationError.Reason) -> CookieSameSite in
            let text = value(.cookieSameSite)
            guard let mode = [CookieSameSite.strict, .lax].first(where: { $0.rawValue.lowercased() == text.lowercased() }) else {
                throw .init("must be Strict or Lax, got '\(text.prefix(32))'")
            }
            return mode
        }
        logLevel = try check(.logLevel) { () throws(ConfigurationError.Reason) -> Logger.Level in
            let text = value(.logLevel)
            guard let level = Logger.Level(rawValue: text.lowercased()) else {
                throw .init("must be one of trace, debug, info, notice, warning, error, critical, got '\(text.prefix(32))'")
            }
            return level
        }
        shutdownTimeout = try integer(.shutdownTimeout)
        connectionIdleTimeout = try integer(.connectionIdleTimeout)
        maxConnections = try integer(.maxConnections)
    }
}
