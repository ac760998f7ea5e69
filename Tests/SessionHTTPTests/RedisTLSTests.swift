import Foundation
import RedisClient
import RedisTestSupport
import SessionHTTP
import Testing

/// `rediss://`: sessiond talks to a `redis-server` that accepts TLS only and requires client
/// certificates, with a CA, a server certificate and a client certificate made here by openssl.
/// A wrong CA refuses at start, at once, with a line that says so.
@Suite struct RedisTLSTests {
    /// A CA, a server certificate for 127.0.0.1 and a client certificate, in a fresh directory.
    struct Certificates: Sendable {
        let directory: URL
        func path(_ name: String) -> String { directory.appendingPathComponent(name).path }

        static func make() throws -> Certificates {
            let directory = FileManager.default.temporaryDirectory.appendingPathComponent("sessiond-tls-\(UUID().uuidString)")
            try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
            let certificates = Certificates(directory: directory)
            let ext = directory.appendingPathComponent("server.ext")
            try Data("subjectAltName=IP:127.0.0.1\n".utf8).write(to: ext)
            for ca in ["ca", "other-ca"] {
                try openssl(["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=sessiond test \(ca)",
                             "-keyout", certificates.path("\(ca).key"), "-out", certificates.path("\(ca).crt")])
            }
            for (name, extra) in [("server", ["-extfile", ext.path]), ("client", [])] {
                try openssl(["req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=\(name)",
                             "-keyout", certificates.path("\(name).key"), "-out", certificates.path("\(name).csr")])
                try openssl(["x509", "-req", "-in", certificates.path("\(name).csr"), "-CA", certificates.path("ca.crt"),
                             "-CAkey", certificates.path("ca.key"), "-CAcreateserial", "-days", "2",
                             "-out", certificates.path("\(name).crt")] + extra)
            }
            return certificates
        }

        private static func openssl(_ arguments: [String]) throws {
            let process = Process()
            process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
            process.arguments = ["openssl"] + arguments
            process.standardOutput = FileHandle.nullDevice
            process.standardError = FileHandle.nullDevice
            try process.run()
            process.waitUntilExit()
            guard process.terminationStatus == 0 else { throw TestSetupError("openssl \(arguments[0]) failed") }
        }
    }

    @Test func sessiondWorksOverTLSAndRefusesAWrongCA() async throws {
        // Four RSA key generations and their waits: off the concurrency pool.
        let certificates = try await onOwnThread { try Certificates.make() }
        defer { try? FileManager.default.removeItem(at: certificates.directory) }
        let redis = try await RedisServerProcess.start(extraArgs: [
            "--tls-cert-file", certificates.path("server.crt"),
            "--tls-key-file", certificates.path("server.key"), "--tls-ca-cert-file", certificates.path("ca.crt"),
            "--tls-auth-clients", "yes",
        ], tls: true)
        defer { redis.stop() }
        let url = "rediss://127.0.0.1:\(redis.port)/0"
        let tls = [
            "SESSIOND_REDIS_TLS_CA_FILE": certificates.path("ca.crt"),
            "SESSIOND_REDIS_TLS_CERT_FILE": certificates.path("client.crt"),
            "SESSIOND_REDIS_TLS_KEY_FILE": certificates.path("client.key"),
        ]
        try await Sessiond.with(redisURL: url, settings: tls) { server in
            let session = try await server.create(user: "tls")
            #expect(try await server.lookup(session.token).status == 200)
            let revoke = try await server.request(.DELETE, "/v1/session", key: TestKeys.app, headers: [("X-Session-Token", session.token)])
            #expect(try revoke.json()["revoked"] as? Bool == true)
            #expect(try await server.lookup(session.token).status == 401)
        }

        var wrongCA = tls
        wrongCA["SESSIOND_REDIS_TLS_CA_FILE"] = certificates.path("other-ca.crt")
        let start = ContinuousClock.now
        do {
            try await Sessiond.with(redisURL: url, settings: wrongCA) { _ in Issue.record("started with a CA that did not sign Redis's certificate") }
        } catch let error as RedisClientError {
            #expect(error.message.contains("certificate"), "\(error.message)")
            #expect(error.code == .invalidConfiguration, "\(error)")
        }
        #expect(ContinuousClock.now - start < .seconds(5), "a wrong CA is refused at once, not retried for the start-up patience")

        var noClientCertificate = tls
        noClientCertificate["SESSIOND_REDIS_TLS_CERT_FILE"] = nil
        noClientCertificate["SESSIOND_REDIS_TLS_KEY_FILE"] = nil
        await #expect(throws: (any Error).self, "Redis requires a client certificate") {
            try await Sessiond.with(redisURL: url, settings: noClientCertificate, waitForRedis: false) { _ in }
        }
    }

    @Test func tlsSettingsAreChecked() throws {
        let keys = ["SESSIOND_API_KEYS": ConfigurationTests.keys]
        let bad: [[String: String]] = [
            ["SESSIOND_REDIS_URL": "rediss://127.0.0.1:6379/0", "SESSIOND_REDIS_TLS_CA_FILE": "/nonexistent/ca.crt"],
            ["SESSIOND_REDIS_URL": "rediss://127.0.0.1:6379/0", "SESSIOND_REDIS_TLS_CERT_FILE": "/etc/hostname"],
            ["SESSIOND_REDIS_URL": "redis://127.0.0.1:6379/0", "SESSIOND_REDIS_TLS_CA_FILE": "/etc/hostname"],
        ]
        for values in bad {
            #expect(throws: ConfigurationError.self, "\(values)") { try ServiceConfiguration(values: keys.merging(values) { _, new in new }) }
        }
    }
}
