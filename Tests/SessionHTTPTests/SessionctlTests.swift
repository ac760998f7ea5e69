import Foundation
import Testing

/// The `sessionctl` executable, run as a process against a real sessiond: every command, its
/// output and exit status, and that it never prints a token.
@Suite struct SessionctlTests {
    struct Run {
        let status: Int32
        let stdout: String
        let stderr: String
    }

    /// The built `sessionctl`, beside this test bundle (the test target depends on it).
    static var executable: URL {
        if let path = ProcessInfo.processInfo.environment["SESSIONCTL_BINARY"], !path.isEmpty {
            return URL(fileURLWithPath: path)
        }
        return URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath().deletingLastPathComponent().appendingPathComponent("sessionctl")
    }

    static func run(_ arguments: [String], url: String, key: String? = TestKeys.admin, environment extra: [String: String] = [:]) async throws -> Run {
        let process = Process()
        process.executableURL = executable
        process.arguments = arguments
        var environment = ProcessInfo.processInfo.environment.filter { !$0.key.hasPrefix("SESSIONCTL_") }
        environment["SESSIONCTL_URL"] = url
        if let key { environment["SESSIONCTL_ADMIN_KEY"] = key }
        environment.merge(extra) { _, new in new }
        process.environment = environment
        let stdout = Pipe()
        let stderr = Pipe()
        process.standardOutput = stdout
        process.standardError = stderr
        try process.run()
        // Blocking reads and the wait, off the pool: the child talks to an in-process sessiond.
        return try await onOwnThread {
            let out = stdout.fileHandleForReading.readDataToEndOfFile()
            let err = stderr.fileHandleForReading.readDataToEndOfFile()
            process.waitUntilExit()
            return Run(
                status: process.terminationStatus,
                stdout: String(decoding: out, as: UTF8.self),
                stderr: String(decoding: err, as: UTF8.self)
            )
        }
    }

    @Test func everyCommandAgainstARunningServer() async throws {
        let user = "ctl user/\(UUID().uuidString.prefix(6))é"
        let encodedUser = try #require(user.addingPercentEncoding(withAllowedCharacters: CharacterSet(charactersIn: "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-")))
        try await Sessiond.with { server in
            let url = "http://127.0.0.1:\(server.client.port)"
            var sessions = [Sessiond.CreatedSession]()
            for agent in ["Firefox/130", "Safari/17", "curl/8"] {
                sessions.append(try await server.create(["user_id": user, "ip": "203.0.113.7", "user_agent": agent]))
            }
            let tokens = sessions.map(\.token)

            let table = try await Self.run(["list", user], url: url)
            #expect(table.status == 0, "\(table.stderr)")
            let rows = table.stdout.split(separator: "\n")
            #expect(rows.first?.hasPrefix("HANDLE") == true)
            #expect(rows.count == 5, "header, three sessions, summary: \(table.stdout)")
            for session in sessions { #expect(table.stdout.contains(session.handle)) }
            #expect(table.stdout.contains("Safari/17") && table.stdout.contains("203.0.113.7"))
            #expect(rows.last == "3 of 3 live sessions of \(user)")

            let json = try await Self.run(["list", user, "--json", "--limit", "2"], url: url)
            let listed = try #require(try JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as? [String: Any])
            #expect((listed["sessions"] as? [[String: Any]])?.count == 2)
            #expect(listed["total"] as? Int == 3)

            let shown = try await Self.run(["show", sessions[0].handle], url: url)
            #expect(shown.status == 0)
            let session = try #require(try JSONSerialization.jsonObject(with: Data(shown.stdout.utf8)) as? [String: Any])
            #expect(session["handle"] as? String == sessions[0].handle && session["user_id"] as? String == user)

            #expect(try await Self.run(["revoke", sessions[0].handle], url: url).status == 0)
            #expect(try await server.lookup(sessions[0].token).status == 401)
            let again = try await Self.run(["revoke", sessions[0].handle], url: url)
            #expect(again.status == 3, "not found")
            #expect(again.stderr == "sessionctl: sessiond answered 404 not_found: no session with this handle\n")

            let forced = try await Self.run(["logout-user", user, "--except", sessions[2].handle], url: url)
            #expect(forced.status == 0)
            #expect(forced.stdout == "revoked 1 session of \(user)\n")
            #expect(try await server.lookup(sessions[1].token).status == 401)
            #expect(try await server.lookup(sessions[2].token).status == 200)
            #expect(try await server.list(user: encodedUser).json()["total"] as? Int == 1)

            let health = try await Self.run(["health"], url: url, key: nil)
            #expect(health.status == 0, "health needs no key: \(health.stderr)")

            // The key from a file, with its trailing newline.
            let keyFile = FileManager.default.temporaryDirectory.appendingPathComponent("ctl-key-\(UUID().uuidString)")
            try Data((TestKeys.admin + "\n").utf8).write(to: keyFile)
            defer { try? FileManager.default.removeItem(at: keyFile) }
            #expect(try await Self.run(["list", user, "--admin-key-file", keyFile.path], url: url, key: nil).status == 0)

            let wrongKey = try await Self.run(["list", user], url: url, key: "not-a-key-0123456789abcdefgh")
            #expect(wrongKey.status == 4)
            #expect(wrongKey.stderr.split(separator: "\n").count == 1)
            let readerKey = try await Self.run(["list", user], url: url, key: TestKeys.reader)
            #expect(readerKey.status == 4 && readerKey.stderr.contains("forbidden"))
            let noKey = try await Self.run(["list", user], url: url, key: nil)
            #expect(noKey.status == 1 && noKey.stderr.contains("SESSIONCTL_ADMIN_KEY"))

            for run in [table, json, shown, forced, health, wrongKey] {
                for secret in tokens + [TestKeys.admin] {
                    #expect(!run.stdout.contains(secret) && !run.stderr.contains(secret))
                }
            }
        }
    }

    /// Handles are base64url and user ids are free text: either may begin with "-", and is
    /// still read as the argument, not as an unknown option (usage error 64).
    @Test func argumentsThatBeginWithADash() async throws {
        try await Sessiond.with { server in
            let url = "http://127.0.0.1:\(server.client.port)"
            let user = "-dash-\(UUID().uuidString.prefix(6))"
            let kept = try await server.create(user: user)
            _ = try await server.create(user: user)
            let listed = try await Self.run(["list", user, "--json"], url: url)
            #expect(listed.status == 0, "\(listed.stderr)")
            #expect(listed.stdout.contains(kept.handle))
            let unknownHandle = "-AAAAAAAAAAAAAAA"
            for command in ["show", "revoke"] {
                let run = try await Self.run([command, unknownHandle], url: url)
                #expect(run.status == 3, "\(command): \(run.stderr)")
            }
            let forced = try await Self.run(["logout-user", user, "--except", kept.handle], url: url)
            #expect(forced.status == 0, "\(forced.stderr)")
            #expect(forced.stdout.hasPrefix("revoked 1 session of "))
            // Exactly one: two words (dashed ones are not read as options, `-h` among them), or
            // none, are a usage error, before any request.
            for (arguments, message) in [
                (["show", kept.handle, "-x"], "give one handle"), (["revoke"], "Missing expected argument '<handle> ...'"),
                (["list", user, user], "give one user id"), (["logout-user"], "Missing expected argument '<user> ...'"),
            ] {
                let run = try await Self.run(arguments, url: url)
                #expect(run.status == 64 && run.stderr.contains(message), "\(arguments): \(run.status) \(run.stderr)")
                #expect(run.stderr.contains("See 'sessionctl \(arguments[0]) --help'"), "\(arguments): \(run.stderr)")
            }
        }
    }

    @Test func unreachableServerIsOneLineAndExit5() async throws {
        let run = try await Self.run(["list", "anyone", "--timeout", "2"], url: "http://127.0.0.1:1")
        #expect(run.status == 5)
        #expect(run.stderr.hasPrefix("sessionctl: cannot reach sessiond at http://127.0.0.1:1"))
        #expect(run.stderr.split(separator: "\n").count == 1)
        #expect(run.stdout.isEmpty)
    }
}
