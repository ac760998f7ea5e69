import ArgumentParser
import Foundation

/// `sessionctl`: sessiond's admin command line. It talks to the HTTP API with an admin key
/// read from SESSIONCTL_ADMIN_KEY or from a file (never from a flag, which `ps` would show),
/// and never prints a token: no command it runs answers with one.
@main
struct SessionctlCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sessionctl",
        abstract: "Administer sessiond: list, show and revoke sessions, log users out, check health.",
        discussion: """
            The admin key comes from SESSIONCTL_ADMIN_KEY, or from the file named by --admin-key-file \
            (or SESSIONCTL_ADMIN_KEY_FILE). Exit status: 0 done, 1 failed, 3 not found, 4 bad or \
            non-admin key, 5 sessiond unreachable.
            """,
        subcommands: [List.self, Show.self, Revoke.self, LogoutUser.self, Health.self]
    )
}

/// Where sessiond is and how to authenticate, shared by every subcommand.
struct ConnectionOptions: ParsableArguments {
    @Option(help: "sessiond's base URL (SESSIONCTL_URL, default http://127.0.0.1:8080).")
    var url: String?

    @Option(help: "A file holding the admin API key (SESSIONCTL_ADMIN_KEY_FILE); else SESSIONCTL_ADMIN_KEY.")
    var adminKeyFile: String?

    @Option(help: "Seconds to wait for sessiond (default 10).")
    var timeout: Double = 10

    func api(needsKey: Bool = true) throws -> SessiondAPI {
        let environment = ProcessInfo.processInfo.environment
        let text = url ?? environment["SESSIONCTL_URL"].flatMap { $0.isEmpty ? nil : $0 } ?? "http://127.0.0.1:8080"
        guard let base = URL(string: text), ["http", "https"].contains(base.scheme ?? ""), base.host != nil else {
            throw SessionctlError(.failed, "the sessiond URL must be http:// or https:// with a host, not \(text)")
        }
        guard timeout > 0 else { throw SessionctlError(.failed, "--timeout must be more than 0 seconds") }
        return SessiondAPI(baseURL: base, adminKey: needsKey ? try adminKey(environment) : "", timeout: timeout)
    }

    private func adminKey(_ environment: [String: String]) throws -> String {
        if let path = adminKeyFile ?? environment["SESSIONCTL_ADMIN_KEY_FILE"].flatMap({ $0.isEmpty ? nil : $0 }) {
            guard let data = FileManager.default.contents(atPath: path), let text = String(data: data, encoding: .utf8) else {
                throw SessionctlError(.failed, "cannot read the admin key file \(path)")
            }
            let key = text.trimmingCharacters(in: .whitespacesAndNewlines)
            guard !key.isEmpty else { throw SessionctlError(.failed, "the admin key file \(path) is empty") }
            return key
        }
        guard let key = environment["SESSIONCTL_ADMIN_KEY"], !key.isEmpty else {
            throw SessionctlError(.failed, "no admin key: set SESSIONCTL_ADMIN_KEY or pass --admin-key-file")
        }
        return key
    }
}

/// The check of an argument that takes unrecognized dash words (see `List`): it must hold one
/// word. Called from `validate()`, so the usage shown is the subcommand's.
func requireOneWord(_ words: [String], naming noun: String) throws {
    guard words.count == 1 else { throw ValidationError("give one \(noun)") }
}

/// Runs a subcommand's body; a failure becomes one line on stderr and its exit status.
func runReporting(_ body: () async throws -> Void) async throws {
    do {
        try await body()
    } catch let error as SessionctlError {
        FileHandle.standardError.write(Data("sessionctl: \(error.description)\n".utf8))
        throw ExitCode(error.exitCode)
    }
}

func printJSON(_ object: Any) throws {
    let data = try JSONSerialization.data(withJSONObject: object, options: [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes])
    print(String(decoding: data, as: UTF8.self))
}

extension SessionctlCommand {
    // Handles and user ids may begin with "-" (base64url, or any id): their arguments take
    // unrecognized dash words too, so `show -AbC…` is a handle, not an unknown option.
    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List a user's live sessions, newest first (all pages).")

        @OptionGroup var connection: ConnectionOptions
        @Argument(parsing: .allUnrecognized, help: "The user id, as given at create.") var user: [String]
        @Flag(help: "Print sessiond's JSON instead of a table.") var json = false
        @Option(help: "Stop after this many sessions (default: all).") var limit: Int?

        func validate() throws { try requireOneWord(user, naming: "user id") }

        func run() async throws {
            let userID = user[0]
            try await runReporting {
                if let limit, limit < 1 { throw SessionctlError(.failed, "--limit must be at least 1") }
                let api = try connection.api()
                var sessions = [[String: Any]]()
                var cursor: String?
                var total = 0
                repeat {
                    let want = min(1000, (limit ?? Int.max) - sessions.count)
                    var query = [URLQueryItem(name: "limit", value: String(want))]
                    if let cursor { query.append(URLQueryItem(name: "cursor", value: cursor)) }
                    let page = try await api.get("/v1/users/\(SessiondAPI.pathSegment(userID))/sessions", query: query)
                    sessions += page["sessions"] as? [[String: Any]] ?? []
                    total = page["total"] as? Int ?? sessions.count
                    cursor = page["next_cursor"] as? String
                } while cursor != nil && sessions.count < (limit ?? Int.max)
                if json {
                    try printJSON(["user_id": userID, "sessions": sessions, "total": total])
                } else {
                    print(SessionTable.render(sessions))
                    print("\(sessions.count) of \(total) live session\(total == 1 ? "" : "s") of \(SessionTable.text(userID))")
                }
            }
        }
    }

    struct Show: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Show one session by its handle (does not touch it).")

        @OptionGroup var connection: ConnectionOptions
        @Argument(parsing: .allUnrecognized, help: "The session's handle.") var handle: [String]

        func validate() throws { try requireOneWord(handle, naming: "handle") }

        func run() async throws {
            let handle = handle[0]
            try await runReporting {
                try printJSON(try await connection.api().get("/v1/sessions/\(SessiondAPI.pathSegment(handle))"))
            }
        }
    }

    struct Revoke: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Revoke one session by its handle.")

        @OptionGroup var connection: ConnectionOptions
        @Argument(parsing: .allUnrecognized, help: "The session's handle.") var handle: [String]

        func validate() throws { try requireOneWord(handle, naming: "handle") }

        func run() async throws {
            let handle = handle[0]
            try await runReporting {
                _ = try await connection.api().delete("/v1/sessions/\(SessiondAPI.pathSegment(handle))")
                print("revoked \(SessionTable.text(handle))")
            }
        }
    }

    struct LogoutUser: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "logout-user", abstract: "Log a user out everywhere (force-logout)."
        )

        @OptionGroup var connection: ConnectionOptions
        @Argument(parsing: .allUnrecognized, help: "The user id, as given at create.") var user: [String]
        @Option(parsing: .unconditional, help: "Keep this one session (a handle).") var except: String?

        func validate() throws { try requireOneWord(user, naming: "user id") }

        func run() async throws {
            let userID = user[0]
            try await runReporting {
                var query = [URLQueryItem]()
                if let except { query.append(URLQueryItem(name: "except", value: except)) }
                let answer = try await connection.api().delete("/v1/users/\(SessiondAPI.pathSegment(userID))/sessions", query: query)
                let revoked = answer["revoked"] as? Int ?? 0
                print("revoked \(revoked) session\(revoked == 1 ? "" : "s") of \(SessionTable.text(userID))")
            }
        }
    }

    struct Health: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Check that sessiond runs (/healthz) and reaches Redis (/readyz).")

        @OptionGroup var connection: ConnectionOptions

        func run() async throws {
            try await runReporting {
                let api = try connection.api(needsKey: false)
                let live = try await api.probe("/healthz")
                guard live.status == 200 else { throw SessionctlError(.failed, "sessiond is not healthy: /healthz answered \(live.status)") }
                let ready = try await api.probe("/readyz")
                guard ready.status == 200 else {
                    throw SessionctlError(.failed, "sessiond runs but is not ready (/readyz answered \(ready.status): \(ready.body["message"] as? String ?? "no message"))")
                }
                print("sessiond at \(api.baseURL.absoluteString) is up and reaches Redis")
            }
        }
    }
}
