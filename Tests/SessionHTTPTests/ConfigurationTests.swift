import SessionHTTP
import Testing

@Suite struct ConfigurationTests {
    static let keys = "reader:reader-key-0123456789abcdefghij,app:app-key-0123456789abcdefghijklmn,admin:admin-key-0123456789abcdefghijkl"

    @Test func defaultsFollowTheSpec() throws {
        let configuration = try ServiceConfiguration(values: ["SESSIOND_API_KEYS": Self.keys])
        #expect(configuration.host == "127.0.0.1")
        #expect(configuration.port == 8080)
        #expect(configuration.redis.host == "127.0.0.1" && configuration.redis.port == 6379 && configuration.redis.database == 0)
        #expect(configuration.policy.keyPrefix == "sessiond:")
        #expect(configuration.policy.idleTimeout == 1800)
        #expect(configuration.policy.absoluteTimeout == 43200)
        #expect(configuration.policy.maxSessionsPerUser == 0)
        #expect(configuration.policy.maxDataBytes == 16384)
        #expect(configuration.cookieName == "__Host-session")
        #expect(configuration.cookieSameSite == .lax)
        #expect(configuration.logLevel == .info)
        #expect(configuration.apiKeys.role(of: "app-key-0123456789abcdefghijklmn") == .app)
        #expect(configuration.apiKeys.role(of: "app-key-0123456789abcdefghijklmX") == nil)
    }

    static let badValues: [(String, String)] = [
        ("SESSIOND_PORT", "80a"), ("SESSIOND_PORT", "70000"), ("SESSIOND_REDIS_URL", "http://x"),
        ("SESSIOND_REDIS_URL", "redis://:6379"), ("SESSIOND_API_KEYS", "owner:abcdefghijklmnopqrstuvwxyz"),
        ("SESSIOND_API_KEYS", "app:short"), ("SESSIOND_API_KEYS", "app"), ("SESSIOND_KEY_PREFIX", "has space"),
        ("SESSIOND_IDLE_TIMEOUT", "0"), ("SESSIOND_IDLE_TIMEOUT", "1.5"), ("SESSIOND_ABSOLUTE_TIMEOUT", "-1"),
        ("SESSIOND_MAX_SESSIONS_PER_USER", "many"), ("SESSIOND_MAX_DATA_BYTES", "1"), ("SESSIOND_COOKIE_NAME", "a;b"),
        ("SESSIOND_COOKIE_SAMESITE", "None"), ("SESSIOND_LOG_LEVEL", "loud"),
    ]

    @Test(arguments: badValues)
    func badValueNamesItsVariable(_ variable: String, _ value: String) {
        var values = ["SESSIOND_API_KEYS": Self.keys]
        values[variable] = value
        do {
            _ = try ServiceConfiguration(values: values)
            Issue.record("\(variable)=\(value) was accepted")
        } catch {
            #expect(error.variable == variable)
            #expect(error.description.hasPrefix("\(variable): "))
            #expect(!error.description.contains("abcdefghijklmnopqrstuvwxyz"), "the message never echoes a key")
        }
    }

    @Test func missingAPIKeysStopsStartUp() {
        #expect(throws: ConfigurationError.self) { try ServiceConfiguration(values: [:]) }
    }

    @Test func severalKeysPerRoleForRotation() throws {
        let configuration = try ServiceConfiguration(values: [
            "SESSIOND_API_KEYS": "app:old-app-key-0123456789abcdef, app:new-app-key-0123456789abcdef",
        ])
        #expect(configuration.apiKeys.role(of: "old-app-key-0123456789abcdef") == .app)
        #expect(configuration.apiKeys.role(of: "new-app-key-0123456789abcdef") == .app)
    }
}
