import Foundation
import SessionStore

/// One setting of sessiond (SPEC §3), declared once: its environment variable, the flag derived
/// from it, its default, the range of a whole number, and its help line. `ServiceConfiguration`
/// reads values through these, the command line is parsed against `Setting.all`, and a test
/// checks the README's configuration table against it.
public struct Setting: Sendable, Hashable {
    public let variable: String
    /// The value used when none is given, as the help and the README show it; nil: none.
    public let defaultValue: String?
    /// For a whole number, the values accepted.
    let range: ClosedRange<Int>?
    public let help: String

    init(_ variable: String, default defaultValue: String? = nil, range: ClosedRange<Int>? = nil, help: String) {
        self.variable = variable
        self.defaultValue = defaultValue
        self.range = range
        self.help = help
    }

    /// `SESSIOND_IDLE_TIMEOUT` is `--idle-timeout`.
    public var flag: String {
        "--" + variable.dropFirst("SESSIOND_".count).lowercased().replacingOccurrences(of: "_", with: "-")
    }

    static let host = Setting("SESSIOND_HOST", default: "127.0.0.1", help: "Listen address.")
    static let port = Setting("SESSIOND_PORT", default: "8080", range: 0...65535, help: "Listen port.")
    static let redisURL = Setting(
        "SESSIOND_REDIS_URL", default: "redis://127.0.0.1:6379/0",
        help: "redis://[user:password@]host:port/db, or a comma-separated list of cluster seeds."
    )
    static let redisTLSCAFile = Setting("SESSIOND_REDIS_TLS_CA_FILE", help: "PEM CA file for rediss:// (default: the system's roots).")
    static let redisTLSCertFile = Setting("SESSIOND_REDIS_TLS_CERT_FILE", help: "PEM client certificate for rediss://.")
    static let redisTLSKeyFile = Setting("SESSIOND_REDIS_TLS_KEY_FILE", help: "PEM key of the client certificate.")
    static let redisSentinels = Setting("SESSIOND_REDIS_SENTINELS", help: "host:port,... of Redis Sentinels.")
    static let redisMasterName = Setting("SESSIOND_REDIS_MASTER_NAME", help: "The master's name at the Sentinels.")
    static let apiKeys = Setting("SESSIOND_API_KEYS", help: "Comma-separated role:key pairs (required). Prefer the environment: flags show in ps.")
    static let keyPrefix = Setting("SESSIOND_KEY_PREFIX", default: "sessiond:", help: "Prefix of every Redis key.")
    static let idleTimeout = Setting(
        "SESSIOND_IDLE_TIMEOUT", default: "1800", range: 1...SessionPolicy.timeoutLimit, help: "Idle timeout in seconds."
    )
    static let absoluteTimeout = Setting(
        "SESSIOND_ABSOLUTE_TIMEOUT", default: "43200", range: 1...SessionPolicy.timeoutLimit, help: "Absolute timeout in seconds."
    )
    static let maxSessionsPerUser = Setting(
        "SESSIOND_MAX_SESSIONS_PER_USER", default: "0", range: 0...1_000_000, help: "Sessions per user, 0 for no cap."
    )
    static let maxDataBytes = Setting("SESSIOND_MAX_DATA_BYTES", default: "16384", range: 2...1_048_576, help: "Largest data object in bytes.")
    static let cookieName = Setting("SESSIOND_COOKIE_NAME", default: "__Host-session", help: "Session cookie name.")
    static let cookieSameSite = Setting("SESSIOND_COOKIE_SAMESITE", default: "Lax", help: "Strict or Lax.")
    static let logLevel = Setting("SESSIOND_LOG_LEVEL", default: "info", help: "trace, debug, info, notice, warning, error or critical.")
    static let connectionIdleTimeout = Setting(
        "SESSIOND_CONNECTION_IDLE_TIMEOUT", default: "60", range: 1...3600, help: "Seconds a connection may wait for a complete request."
    )
    static let maxConnections = Setting("SESSIOND_MAX_CONNECTIONS", default: "10000", range: 1...1_000_000, help: "Connections served at once.")
    static let nearCache = Setting("SESSIOND_NEAR_CACHE", default: "strict", help: "strict, bounded or off.")
    static let nearCacheMaxStaleness = Setting(
        "SESSIOND_NEAR_CACHE_MAX_STALENESS_MS", default: "50", range: 1...60000, help: "In bounded mode, how late a revocation may be honoured."
    )
    static let nearCacheMaxEntries = Setting(
        "SESSIOND_NEAR_CACHE_MAX_ENTRIES", default: "1000000", range: 1...100_000_000, help: "Entries the near cache keeps."
    )
    static let dataKeys = Setting("SESSIOND_DATA_KEYS", help: "Key ring file that turns on encryption at rest (default: off).")
    static let shutdownTimeout = Setting(
        "SESSIOND_SHUTDOWN_TIMEOUT", default: "10", range: 1...3600, help: "Seconds SIGTERM waits for requests in flight."
    )

    /// Every setting, in the README's order.
    public static let all: [Setting] = [
        host, port, redisURL, redisTLSCAFile, redisTLSCertFile, redisTLSKeyFile, redisSentinels, redisMasterName, apiKeys, keyPrefix,
        idleTimeout, absoluteTimeout, maxSessionsPerUser, maxDataBytes, cookieName, cookieSameSite, logLevel, connectionIdleTimeout,
        maxConnections, nearCache, nearCacheMaxStaleness, nearCacheMaxEntries, dataKeys, shutdownTimeout,
    ]

    /// The settings given as flags (`--idle-timeout 60` or `--idle-timeout=60`), by variable.
    public static func values(fromFlags arguments: [String]) throws(ConfigurationError) -> [String: String] {
        var values = [String: String]()
        var rest = arguments[...]
        while let argument = rest.popFirst() {
            // Only a flag's name is ever repeated in an error: a mistyped `--api-key=…` must not
            // print the key.
            guard argument.hasPrefix("--") else {
                throw ConfigurationError(variable: "command line", reason: "a value without its flag (see --help)")
            }
            let name = argument.prefix { $0 != "=" }
            guard let setting = all.first(where: { $0.flag == name }) else {
                throw ConfigurationError(variable: String(name.prefix(64)), reason: "unknown option (see --help)")
            }
            if name.endIndex < argument.endIndex {
                values[setting.variable] = String(argument[argument.index(after: name.endIndex)...])
            } else if let value = rest.first, !value.hasPrefix("-") || value == "-" {
                // A next argument that looks like a flag is not taken as the value: `--key-prefix
                // --data-keys=…` would otherwise start without encryption. `--name=-x` gives one.
                values[setting.variable] = value
                rest.removeFirst()
            } else {
                throw ConfigurationError(variable: setting.flag, reason: "needs a value (one starting with - as \(setting.flag)=value)")
            }
        }
        return values
    }

    /// The help's list: each flag with its variable, default and help line.
    public static var helpText: String {
        all.map { setting in
            "\(setting.flag) (\(setting.variable)\(setting.defaultValue.map { ", default \($0)" } ?? "")): \(setting.help)"
        }.joined(separator: "\n")
    }
}
