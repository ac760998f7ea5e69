import Foundation
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

    /// The README's configuration table is the settings table: the same variables in the same
    /// order, each with its flag and, where it has one, its default as the first code span.
    @Test func readmeTableIsTheSettingsTable() throws {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let readme = try String(contentsOf: root.appendingPathComponent("README.md"), encoding: .utf8)
        let rows = readme.split(separator: "\n").filter { $0.hasPrefix("| `SESSIOND_") }.map { row in
            row.split(separator: "|", omittingEmptySubsequences: false).map { $0.trimmingCharacters(in: .whitespaces) }
        }
        func code(_ cell: String) -> String? {
            guard let start = cell.firstIndex(of: "`") else { return nil }
            let rest = cell[cell.index(after: start)...]
            return rest.firstIndex(of: "`").map { String(rest[..<$0]) }
        }
        #expect(rows.map { code($0[1]) } == Setting.all.map(\.variable))
        for (row, setting) in zip(rows, Setting.all) {
            try #require(row.count >= 5, "\(setting.variable): a README row of variable, flag, default and meaning")
            #expect(code(row[2]) == setting.flag, "\(setting.variable)")
            #expect(code(row[3]) == setting.defaultValue, "\(setting.variable): README default \(row[3])")
        }
    }

    /// Flags as `--name value` or `--name=value`, and a clear error for anything else.
    @Test func flagsNameTheirSettings() throws {
        #expect(try Setting.values(fromFlags: ["--idle-timeout", "60", "--near-cache=off"])
            == ["SESSIOND_IDLE_TIMEOUT": "60", "SESSIOND_NEAR_CACHE": "off"])
        #expect(throws: ConfigurationError.self) { try Setting.values(fromFlags: ["--idle-timeout"]) }
        #expect(throws: ConfigurationError.self) { try Setting.values(fromFlags: ["--no-such-setting", "1"]) }
        #expect(throws: ConfigurationError.self) { try Setting.values(fromFlags: ["60"]) }
        // A flag without its value does not take the next flag as one, and `=` gives a value
        // that starts with a dash.
        #expect(throws: ConfigurationError.self) { try Setting.values(fromFlags: ["--key-prefix", "--data-keys=/etc/keys"]) }
        #expect(try Setting.values(fromFlags: ["--key-prefix=-x"]) == ["SESSIOND_KEY_PREFIX": "-x"])
        // An unknown flag's error names the flag, never its value (it may be a key).
        do {
            _ = try Setting.values(fromFlags: ["--api-key=reader:secret-value-0123456789abcdef"])
            Issue.record("an unknown flag was accepted")
        } catch {
            #expect(error.description == "--api-key: unknown option (see --help)")
        }
    }

    static let badValues: [(String, String)] = [
        ("SESSIOND_PORT", "80a"), ("SESSIOND_PORT", "70000"), ("SESSIOND_REDIS_URL", "http://x"),
        ("SESSIOND_REDIS_URL", "redis://:6379"), ("SESSIOND_API_KEYS", "owner:abcdefghijklmnopqrstuvwxyz"),
        ("SESSIOND_API_KEYS", "app:short"), ("SESSIOND_API_KEYS", "app"), ("SESSIOND_KEY_PREFIX", "has space"),
        ("SESSIOND_IDLE_TIMEOUT", "0"), ("SESSIOND_IDLE_TIMEOUT", "1.5"), ("SESSIOND_ABSOLUTE_TIMEOUT", "-1"),
        ("SESSIOND_MAX_SESSIONS_PER_USER", "many"), ("SESSIOND_MAX_DATA_BYTES", "1"), ("SESSIOND_COOKIE_NAME", "a;b"),
        ("SESSIOND_COOKIE_SAMESITE", "None"), ("SESSIOND_LOG_LEVEL", "loud"),
        ("SESSIOND_API_KEYS", "admin:blake2b:abcdefghijklmnopqrstuvwxyz"), ("SESSIOND_API_KEYS", "admin:blake2b:" + String(repeating: "0", count: 63)),
        ("SESSIOND_API_KEYS", "app:blake2b:" + String(repeating: "0", count: 64) + ",admin:blake2b:" + String(repeating: "0", count: 64)),
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

    @Test func aDataKeyRingFileIsReadAndABadOneNamesItsVariable() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("data-keys-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let key = Data((0..<32).map { UInt8($0) }).base64EncodedString()
        let good = directory.appendingPathComponent("good").path
        try Data("# ring\n3:\(key) current\n".utf8).write(to: URL(fileURLWithPath: good))
        let configuration = try ServiceConfiguration(values: ["SESSIOND_API_KEYS": Self.keys, "SESSIOND_DATA_KEYS": good])
        #expect(configuration.policy.dataKeys?.currentID == 3)
        #expect(try ServiceConfiguration(values: ["SESSIOND_API_KEYS": Self.keys]).policy.dataKeys == nil, "off by default")
        let bad = directory.appendingPathComponent("bad").path
        try Data("3:\(key)\n".utf8).write(to: URL(fileURLWithPath: bad))
        for (path, reason) in [(bad, "no key is marked current"), (directory.appendingPathComponent("missing").path, "cannot read")] {
            do {
                _ = try ServiceConfiguration(values: ["SESSIOND_API_KEYS": Self.keys, "SESSIOND_DATA_KEYS": path])
                Issue.record("\(path) was accepted")
            } catch {
                #expect(error.variable == "SESSIOND_DATA_KEYS")
                #expect(error.description.contains(reason), "\(error.description)")
                #expect(!error.description.contains(key))
            }
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

    /// A key configured as its digest, as `b2sum -l 256` (coreutils) prints it, works as the key
    /// itself, and the plain key and its digest count as the same key.
    @Test func preHashedKeysMatchB2sum() throws {
        let key = "admin-key-0123456789abcdefghijkl"
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["b2sum", "-l", "256"]
        let input = Pipe()
        let output = Pipe()
        process.standardInput = input
        process.standardOutput = output
        try process.run()
        input.fileHandleForWriting.write(Data(key.utf8))
        try input.fileHandleForWriting.close()
        let printed = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        let hex = try #require(printed.split(separator: " ").first.map(String.init))
        #expect(hex.count == 64)
        let configuration = try ServiceConfiguration(values: ["SESSIOND_API_KEYS": "admin:blake2b:\(hex),app:app-key-0123456789abcdefghijklmn"])
        #expect(configuration.apiKeys.role(of: key) == .admin)
        #expect(configuration.apiKeys.role(of: "blake2b:\(hex)") == nil, "the digest itself is not a key")
        #expect(configuration.apiKeys.role(of: "app-key-0123456789abcdefghijklmn") == .app)
        #expect(throws: ConfigurationError.self) {
            try ServiceConfiguration(values: ["SESSIOND_API_KEYS": "admin:\(key),admin:blake2b:\(hex.uppercased())"])
        }
    }
}
