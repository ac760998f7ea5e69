import Foundation
import Testing

/// `GET /metrics` after real traffic: the counters moved by exactly what was done (each test
/// server has a registry of its own), the gauges describe a live Redis, and nothing secret
/// appears in the exposition.
@Suite struct MetricsTests {
    /// `name{labels} value` lines as a dictionary keyed by name and labels, as written.
    static func scrape(_ server: Sessiond) async throws -> (samples: [String: Double], text: String) {
        let response = try await server.request(.GET, "/metrics", key: TestKeys.reader)
        #expect(response.status == 200)
        #expect(response.headers["Content-Type"].first?.hasPrefix("text/plain; version=0.0.4") == true)
        var samples = [String: Double]()
        for line in response.text.split(separator: "\n") where !line.hasPrefix("#") {
            guard let space = line.lastIndex(of: " "), let value = Double(line[line.index(after: space)...]) else {
                Issue.record("not a sample line: \(line)")
                continue
            }
            samples[String(line[..<space])] = value
        }
        return (samples, response.text)
    }

    @Test func countersFollowTrafficAndNoSecretShows() async throws {
        let user = "metrics-\(UUID().uuidString.prefix(8))"
        try await Sessiond.with(settings: ["SESSIOND_MAX_SESSIONS_PER_USER": "2"]) { server in
            #expect(try await server.request(.GET, "/metrics", key: nil).status == 401)
            let first = try await server.create(user: user)
            let second = try await server.create(user: user)
            let third = try await server.create(user: user)  // over the cap: `first` goes
            #expect(try await server.lookup(second.token).status == 200)
            #expect(try await server.lookup(third.token, touch: false).status == 200)
            #expect(try await server.lookup(first.token).status == 401)  // evicted: unknown now
            let malformed = try await server.request(.GET, "/v1/session", key: TestKeys.app, headers: [("X-Session-Token", "short")])
            #expect(malformed.status == 401)
            // Forward auth is answered by the router, not the fast path: its refusals count too.
            let forwarded = try await server.request(.GET, "/v1/auth/app", key: TestKeys.admin, headers: [("X-Session-Token", first.token)])
            #expect(forwarded.status == 401)
            let rotated = try await server.request(.POST, "/v1/session/rotate", key: TestKeys.app, headers: [("X-Session-Token", second.token)])
            let newToken = try #require(try rotated.json()["token"] as? String)
            let logout = try await server.request(.DELETE, "/v1/session", key: TestKeys.app, headers: [("X-Session-Token", newToken)])
            #expect(logout.status == 200)
            #expect(try await server.request(.DELETE, "/v1/sessions/\(third.handle)", key: TestKeys.admin).status == 200)
            let fourth = try await server.create(user: user)
            let fifth = try await server.create(user: user)
            let forced = try await server.request(.DELETE, "/v1/users/\(user)/sessions", key: TestKeys.admin)
            #expect(try forced.json()["revoked"] as? Int == 2)
            #expect(try await server.request(.GET, "/nowhere", key: TestKeys.reader).status == 404)

            let (samples, text) = try await Self.scrape(server)
            let expected: [String: Double] = [
                "sessiond_sessions_created_total": 5,
                #"sessiond_sessions_revoked_total{reason="cap"}"#: 1,
                #"sessiond_sessions_revoked_total{reason="logout"}"#: 1,
                #"sessiond_sessions_revoked_total{reason="admin"}"#: 1,
                #"sessiond_sessions_revoked_total{reason="force_logout"}"#: 2,
                "sessiond_sessions_rotated_total": 1,
                #"sessiond_invalid_session_lookups_total{role="reader"}"#: 1,
                #"sessiond_invalid_session_lookups_total{role="app"}"#: 1,
                #"sessiond_invalid_session_lookups_total{role="admin"}"#: 1,
                #"sessiond_http_requests_total{method="POST",route="/v1/sessions",status="201"}"#: 5,
                #"sessiond_http_requests_total{method="GET",route="/v1/session",status="200"}"#: 2,
                #"sessiond_http_requests_total{method="GET",route="/v1/session",status="401"}"#: 2,
                #"sessiond_http_requests_total{method="GET",route="/metrics",status="401"}"#: 1,
                #"sessiond_http_requests_total{method="any",route="unmatched",status="404"}"#: 1,
                #"sessiond_http_request_duration_seconds_count{method="GET",route="/v1/session"}"#: 4,
                "sessiond_redis_up": 1,
                #"sessiond_build_info{version="1.0.0"}"#: 1,
            ]
            for (name, value) in expected {
                #expect(samples[name] == value, "\(name)")
            }
            #expect(samples["sessiond_redis_command_duration_seconds_count"] ?? 0 >= 12, "every command's latency is recorded")
            #expect(samples[#"sessiond_redis_pool_connections{state="open"}"#] ?? 0 >= 1)
            #expect(samples["sessiond_uptime_seconds"] ?? 0 > 0)
            for secret in [first.token, second.token, third.token, fourth.token, fifth.token, newToken,
                           first.handle, second.handle, fourth.handle, user, TestKeys.reader, TestKeys.app, TestKeys.admin] {
                #expect(!text.contains(secret))
            }
        }
    }

    /// A listing that finds index entries of expired sessions counts them as expired. An entry
    /// is dropped once the second it is scored at has passed, so at most a second after its end.
    @Test func listingCountsExpiredSessions() async throws {
        try await Sessiond.with { server in
            _ = try await server.create(user: "brief")
            let short = try await server.create(["user_id": "brief", "idle_timeout": 1])
            let expiry = try GuaranteeTests.time(short, "idle_expires_at")
            try await GuaranteeTests.sleep(until: expiry + 1.2)
            let listedAfter = Date().timeIntervalSince(expiry)
            let total = try await server.list(user: "brief").json()["total"] as? Int
            let expired = try await Self.scrape(server).samples["sessiond_sessions_expired_total"]
            let seen = "total \(String(describing: total)), expired \(String(describing: expired)), listed \(listedAfter) s after the expiry"
            #expect(total == 1, "\(seen)")
            #expect(expired == 1, "\(seen)")
        }
    }

    /// A listing drops every expired index entry, and counts each once, among many live ones:
    /// one live session, 499 that expire, then 700 of which every 47th expires.
    @Test func listingFindsEveryExpiredSessionAmongMany() async throws {
        try await Sessiond.with { server in
            let user = "crowd"
            // Long-lived and created first, so that it holds the index up: an index lives as long
            // as its longest-lived session, and a Redis stalled by another test for over a second
            // would otherwise let it expire under the short-lived ones.
            let expiredBefore = try await Self.scrape(server).samples["sessiond_sessions_expired_total"] ?? 0
            let anchor = try await server.create(user: user)
            let early = try await Self.create(server, user: user, count: 499) { _ in true }
            let later = try await Self.create(server, user: user, count: 700) { $0 % 47 == 0 }
            let short = (early + later).filter(\.shortLived).map(\.session)
            let long = Set([anchor.handle] + (early + later).filter { !$0.shortLived }.map(\.session.handle))
            #expect(short.count == 514 && long.count == 686)
            let lastExpiry = try short.map { try GuaranteeTests.time($0, "idle_expires_at") }.max()!
            try await GuaranteeTests.sleep(until: lastExpiry + 1.2)

            let page = try await server.list(user: user, query: "?limit=1000").json()
            let listed = try #require(page["sessions"] as? [[String: Any]]).compactMap { $0["handle"] as? String }
            #expect(page["total"] as? Int == long.count)
            #expect(listed.count == long.count && Set(listed) == long, "every live session, and no expired one")
            let expiredAfter = try await Self.scrape(server).samples["sessiond_sessions_expired_total"] ?? 0
            #expect(expiredAfter - expiredBefore == Double(short.count), "each expired entry found and dropped once")

            // Their index entries are gone: a second listing finds nothing more to drop.
            #expect(try await server.list(user: user, query: "?limit=1").json()["total"] as? Int == long.count)
            #expect(try await Self.scrape(server).samples["sessiond_sessions_expired_total"] == expiredAfter)
        }
    }

    /// `count` sessions of `user`, eight creates at a time; those `shortLived(i)` picks get a
    /// 1-second idle timeout.
    private static func create(
        _ server: Sessiond, user: String, count: Int, shortLived: @escaping @Sendable (Int) -> Bool
    ) async throws -> [(shortLived: Bool, session: Sessiond.CreatedSession)] {
        try await withThrowingTaskGroup(of: (shortLived: Bool, session: Sessiond.CreatedSession).self) { group in
            var made = [(shortLived: Bool, session: Sessiond.CreatedSession)]()
            for index in 0..<count {
                if index >= 8, let next = try await group.next() { made.append(next) }
                group.addTask {
                    shortLived(index)
                        ? (true, try await server.create(["user_id": user, "idle_timeout": 1]))
                        : (false, try await server.create(user: user))
                }
            }
            for try await next in group { made.append(next) }
            return made
        }
    }
}
