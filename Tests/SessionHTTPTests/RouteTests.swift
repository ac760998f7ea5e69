import Foundation
import NIOHTTP1
import SessionCrypto
import Testing

/// Every row of the SPEC §4 route table, through real HTTP against a real Redis.
@Suite struct RouteTests {
    @Test func createReturnsTokenCookieAndSession() async throws {
        try await Sessiond.with { server in
            let response = try await server.request(.POST, "/v1/sessions", key: TestKeys.app, json: [
                "user_id": "alice", "data": ["role": "editor", "cart": [] as [Any]], "ip": "203.0.113.9", "user_agent": "Firefox/130",
                "idle_timeout": 600, "absolute_timeout": 3600,
            ])
            #expect(response.status == 201)
            let json = try response.json()
            let token = try #require(json["token"] as? String)
            #expect(token.count == 43)
            #expect((json["handle"] as? String)?.count == 16)
            #expect(json["user_id"] as? String == "alice")
            #expect(json["version"] as? Int == 1)
            #expect(json["ip"] as? String == "203.0.113.9")
            #expect(json["user_agent"] as? String == "Firefox/130")
            let data = try #require(json["data"] as? [String: Any])
            #expect(data["role"] as? String == "editor")
            #expect((data["cart"] as? [Any])?.isEmpty == true)
            let cookie = try #require(json["set_cookie"] as? String)
            #expect(cookie == "__Host-session=\(token); Path=/; Secure; HttpOnly; SameSite=Lax; Max-Age=3600")
            let created = try #require(json["created_at"] as? String)
            let idleEnd = try #require(json["idle_expires_at"] as? String)
            let end = try #require(json["expires_at"] as? String)
            let parse = { (text: String) throws -> Date in
                let formatter = ISO8601DateFormatter()
                formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
                return try #require(formatter.date(from: text), "not RFC 3339: \(text)")
            }
            #expect(try parse(idleEnd).timeIntervalSince(try parse(created)) == 600)
            #expect(try parse(end).timeIntervalSince(try parse(created)) == 3600)
            #expect(response.headers["Cache-Control"].first == "no-store")
        }
    }

    @Test func lookupByHeaderAndByCookieSetsIdentityHeaders() async throws {
        try await Sessiond.with { server in
            let session = try await server.create(["user_id": "bob", "data": ["n": 1]])
            let byHeader = try await server.lookup(session.token)
            #expect(byHeader.status == 200)
            #expect(byHeader.headers["X-Session-User-Id"].first == "bob")
            #expect(byHeader.headers["X-Session-Handle"].first == session.handle)
            #expect(byHeader.headers["ETag"].first == "\"1\"")
            #expect(try byHeader.json()["token"] == nil, "a lookup never shows the token")
            let byCookie = try await server.request(.GET, "/v1/session", key: TestKeys.reader,
                                                    headers: [("Cookie", "theme=dark; __Host-session=\(session.token); lang=en")])
            #expect(byCookie.status == 200)
            #expect(try byCookie.json()["handle"] as? String == session.handle)
            let noTouch = try await server.lookup(session.token, touch: false)
            #expect(noTouch.status == 200)
        }
    }

    /// `/v1/auth/{path}` answers like the lookup for any path, query and method a forward-auth
    /// proxy passes on, and the original request's body and query are not read.
    @Test func forwardAuthAnswersLikeTheLookupOnAnyPathAndMethod() async throws {
        try await Sessiond.with { server in
            let session = try await server.create(["user_id": "fay", "data": ["n": 1]])
            let cookie = ("Cookie", "theme=dark; __Host-session=\(session.token)")
            let lookup = try await server.lookup(session.token, touch: false)
            let paths = ["/v1/auth", "/v1/auth/", "/v1/auth/app", "/v1/auth/app/orders/7?touch=maybe&x=1", "/v1/auth/%E2%9C%93/a%2Fb"]
            for path in paths {
                for method in [HTTPMethod.GET, .POST, .PUT, .PATCH, .DELETE, .OPTIONS] {
                    let answer = try await server.request(method, path, key: TestKeys.reader, headers: [cookie])
                    let what = "\(method) \(path)"
                    #expect(answer.status == 200, "\(what): \(answer.status) \(answer.text.prefix(80))")
                    #expect(answer.headers["X-Session-User-Id"].first == "fay", "\(what)")
                    #expect(answer.headers["X-Session-Handle"].first == session.handle, "\(what)")
                    #expect(answer.headers["ETag"].first == lookup.headers["ETag"].first, "\(what)")
                    #expect(try answer.json()["handle"] as? String == session.handle, "\(what)")
                }
            }
            // The original request's body (not JSON here) is not read.
            let withBody = try await server.client.send(.POST, "/v1/auth/upload", headers: [
                ("Authorization", "Bearer \(TestKeys.reader)"), cookie, ("Content-Type", "text/plain"),
            ], body: Array("not json".utf8))
            #expect(withBody.status == 200)
            let noSession = try await server.request(.GET, "/v1/auth/app", key: TestKeys.reader, headers: [("Cookie", "__Host-session=x")])
            #expect(noSession.status == 401)
            #expect(noSession.errorCode == "invalid_session")
            let noKey = try await server.request(.GET, "/v1/auth/app", key: nil, headers: [cookie])
            #expect(noKey.status == 401)
            #expect(noKey.errorCode == "invalid_api_key")
            let revoked = try await server.request(.DELETE, "/v1/session", key: TestKeys.app, headers: [("X-Session-Token", session.token)])
            #expect(revoked.status == 200)
            #expect(try await server.request(.GET, "/v1/auth/app", key: TestKeys.reader, headers: [cookie]).status == 401, "revoked at once")
            let head = try await server.request(.HEAD, "/v1/auth/app", key: TestKeys.reader, headers: [cookie])
            #expect(head.status == 405)
            #expect(try await server.request(.GET, "/v1/authx", key: TestKeys.reader, headers: [cookie]).status == 404)
        }
    }

    @Test func patchMergesDataAndHonoursIfMatch() async throws {
        try await Sessiond.with { server in
            let session = try await server.create(["user_id": "carol", "data": ["a": 1, "nested": ["x": 1, "y": 2]]])
            let patched = try await server.request(.PATCH, "/v1/session", key: TestKeys.app,
                                                   headers: [("X-Session-Token", session.token), ("If-Match", "\"1\"")],
                                                   json: ["a": NSNull(), "b": "new", "nested": ["y": NSNull(), "z": 3]])
            #expect(patched.status == 200)
            #expect(patched.headers["ETag"].first == "\"2\"")
            let json = try patched.json()
            #expect(json["version"] as? Int == 2)
            let data = try #require(json["data"] as? [String: Any])
            #expect(data["a"] == nil)
            #expect(data["b"] as? String == "new")
            #expect(data["nested"] as? [String: Int] == ["x": 1, "z": 3])

            let stale = try await server.request(.PATCH, "/v1/session", key: TestKeys.app,
                                                 headers: [("X-Session-Token", session.token), ("If-Match", "\"1\"")],
                                                 json: ["c": true])
            #expect(stale.status == 412)
            #expect(stale.errorCode == "precondition_failed")
            #expect(stale.headers["ETag"].first == "\"2\"")
            for tag in ["W/\"2\"", "\"99999999999999999999999\""] {
                let mismatch = try await server.request(.PATCH, "/v1/session", key: TestKeys.app,
                                                        headers: [("X-Session-Token", session.token), ("If-Match", tag)], json: ["c": true])
                #expect(mismatch.status == 412, "If-Match \(tag) matches no version")
            }
            let lookedUp = try await server.lookup(session.token)
            #expect((try lookedUp.json()["data"] as? [String: Any])?["c"] == nil, "a failed If-Match changes nothing")
        }
    }

    @Test func revokeEndsTheSessionAndClearsTheCookie() async throws {
        try await Sessiond.with { server in
            let session = try await server.create(user: "dave")
            let revoke = try await server.request(.DELETE, "/v1/session", key: TestKeys.app, headers: [("X-Session-Token", session.token)])
            #expect(revoke.status == 200)
            let json = try revoke.json()
            #expect(json["revoked"] as? Bool == true)
            #expect(json["clear_cookie"] as? String == "__Host-session=; Path=/; Secure; HttpOnly; SameSite=Lax; Max-Age=0")
            #expect(try await server.lookup(session.token).errorCode == "invalid_session")
            let again = try await server.request(.DELETE, "/v1/session", key: TestKeys.app, headers: [("X-Session-Token", session.token)])
            #expect(try again.json()["revoked"] as? Bool == false)
            #expect(try await server.list(user: "dave").json()["total"] as? Int == 0)
        }
    }

    @Test func rotateReplacesTheTokenAndKeepsUserAndData() async throws {
        try await Sessiond.with { server in
            let session = try await server.create(["user_id": "erin", "data": ["k": "v"]])
            let rotated = try await server.request(.POST, "/v1/session/rotate", key: TestKeys.app, headers: [("X-Session-Token", session.token)])
            #expect(rotated.status == 200)
            let json = try rotated.json()
            let newToken = try #require(json["token"] as? String)
            let newHandle = try #require(json["handle"] as? String)
            #expect(newToken != session.token)
            #expect(newHandle != session.handle)
            #expect(json["user_id"] as? String == "erin")
            #expect((json["data"] as? [String: String]) == ["k": "v"])
            #expect((json["set_cookie"] as? String)?.hasPrefix("__Host-session=\(newToken);") == true)
            #expect(try await server.lookup(session.token).status == 401)
            #expect(try await server.lookup(newToken).status == 200)
            let listed = try await server.list(user: "erin").json()
            #expect((listed["sessions"] as? [[String: Any]])?.compactMap { $0["handle"] as? String } == [newHandle])
        }
    }

    /// Latest end first (most recently active first, for sessions of one idle timeout): a
    /// session with a longer idle timeout ends later, and comes before shorter ones.
    @Test func listIsLatestEndFirstWithCursorPagesAndTotal() async throws {
        try await Sessiond.with { server in
            var made = [Sessiond.CreatedSession]()
            for idle in [900, 700, 1000, 600, 800] {
                made.append(try await server.create(["user_id": "frank", "idle_timeout": idle]))
            }
            let handles = [2, 0, 4, 1, 3].map { made[$0].handle }
            var seen = [String]()
            var cursor: String?
            repeat {
                let query = "?limit=2" + (cursor.map { "&cursor=\($0)" } ?? "")
                let page = try await server.list(user: "frank", query: query)
                #expect(page.status == 200)
                let json = try page.json()
                #expect(json["total"] as? Int == 5)
                #expect(json["user_id"] as? String == "frank")
                let sessions = try #require(json["sessions"] as? [[String: Any]])
                #expect(sessions.count <= 2)
                #expect(sessions.allSatisfy { $0["token"] == nil })
                seen += sessions.compactMap { $0["handle"] as? String }
                cursor = json["next_cursor"] as? String
            } while cursor != nil && seen.count < 10
            #expect(seen == handles)
        }
    }

    /// The list's order: the second a session ends, latest first, then its index member (the
    /// handle's bytes after the tag), descending.
    static func listOrder(_ sessions: [Sessiond.CreatedSession]) throws -> [String] {
        let placed = try sessions.map { session in
            let ends = min(try GuaranteeTests.time(session, "idle_expires_at"), try GuaranteeTests.time(session, "expires_at"))
            let milliseconds = Int64((ends.timeIntervalSince1970 * 1000).rounded())
            let member = try #require(SessionHandle(parsing: session.handle)).indexMember
            return (second: (milliseconds + 999) / 1000, member: member, handle: session.handle)
        }
        return placed.sorted { $0.second != $1.second ? $0.second > $1.second : $1.member.lexicographicallyPrecedes($0.member) }.map(\.handle)
    }

    /// Pages are found by (end second, member), not by position: sessions that end in the same
    /// second (a page ends between two of them), the cursor's own session revoked between
    /// pages, sessions that expired, and a session created during the walk neither repeat nor
    /// drop a live session.
    @Test func pagesSurviveTiesRevocationsAndExpiry() async throws {
        try await Sessiond.with { server in
            // Created concurrently, so that some share a millisecond; a batch in which none do (a
            // loaded machine can spread them out) is made again for another user.
            var user = ""
            var made = [(shortLived: Bool, session: Sessiond.CreatedSession)]()
            var endSecond = [String: Int64]()
            var live = [String]()
            for attempt in 0..<5 {
                user = "paula\(attempt)"
                made = try await Self.createConcurrently(server, user: user, count: 60)
                live = try Self.listOrder(made.filter { !$0.shortLived }.map(\.session))
                for (shortLived, session) in made where !shortLived {
                    let ends = try GuaranteeTests.time(session, "idle_expires_at").timeIntervalSince1970
                    endSecond[session.handle] = (Int64((ends * 1000).rounded()) + 999) / 1000
                }
                if live.indices.dropLast().contains(where: { endSecond[live[$0]] == endSecond[live[$0 + 1]] }) { break }
            }
            // The first page ends between two live sessions that end in the same second.
            let tie = try #require(live.indices.dropLast().first { endSecond[live[$0]] == endSecond[live[$0 + 1]] }, "no two sessions share a second")
            let shortLived = Set(made.filter(\.shortLived).map(\.session.handle))
            try await Task.sleep(for: .milliseconds(2200))

            var seen = [String]()
            var revoked = Set<String>()
            var cursor: String?
            var pages = 0
            repeat {
                let limit = pages == 0 ? tie + 1 : 7
                let page = try await server.list(user: user, query: "?limit=\(limit)" + (cursor.map { "&cursor=\($0)" } ?? ""))
                #expect(page.status == 200)
                let json = try page.json()
                let handles = try #require(json["sessions"] as? [[String: Any]]).compactMap { $0["handle"] as? String }
                #expect(handles.count == limit || json["next_cursor"] is NSNull, "only the last page is short")
                seen += handles
                cursor = json["next_cursor"] as? String
                pages += 1
                if pages == 1 { _ = try await server.create(user: user) }
                if let last = handles.last, cursor != nil, pages % 2 == 0 {
                    // The session the cursor names, and the next one not yet shown.
                    let upcoming = live.filter { !seen.contains($0) && !revoked.contains($0) }
                    for handle in [last] + upcoming.prefix(1) {
                        #expect(try await server.request(.DELETE, "/v1/sessions/\(handle)", key: TestKeys.admin).status == 200)
                        revoked.insert(handle)
                    }
                }
            } while cursor != nil && pages < 30
            #expect(seen.prefix(tie + 2) == live.prefix(tie + 2), "the second page begins with the tie's other session")
            #expect(seen == live.filter { !revoked.contains($0) || seen.contains($0) }, "every live session once, in index order")
            #expect(Set(seen).isDisjoint(with: shortLived), "expired sessions are not listed")
            let final = try await server.list(user: user).json()
            #expect(final["total"] as? Int == live.count - revoked.count + 1)
        }
    }

    /// `count` sessions of `user` created at once; every tenth with a 1-second idle timeout.
    private static func createConcurrently(_ server: Sessiond, user: String, count: Int) async throws -> [(shortLived: Bool, session: Sessiond.CreatedSession)] {
        try await withThrowingTaskGroup(of: (shortLived: Bool, session: Sessiond.CreatedSession).self) { group in
            for index in 0..<count {
                group.addTask {
                    index % 10 == 0
                        ? (true, try await server.create(["user_id": user, "idle_timeout": 1]))
                        : (false, try await server.create(user: user))
                }
            }
            return try await group.reduce(into: []) { $0.append($1) }
        }
    }

    @Test func forceLogoutRevokesAllButTheKeptOne() async throws {
        try await Sessiond.with { server in
            var sessions = [Sessiond.CreatedSession]()
            for _ in 0..<4 { sessions.append(try await server.create(user: "gina")) }
            let other = try await server.create(user: "gina2")
            let keep = sessions[2]
            let response = try await server.request(.DELETE, "/v1/users/gina/sessions?except=\(keep.handle)", key: TestKeys.admin)
            #expect(response.status == 200)
            #expect(try response.json()["revoked"] as? Int == 3)
            for session in sessions {
                #expect(try await server.lookup(session.token).status == (session.handle == keep.handle ? 200 : 401))
            }
            #expect(try await server.lookup(other.token).status == 200, "other users are untouched")
            let all = try await server.request(.DELETE, "/v1/users/gina/sessions", key: TestKeys.admin)
            #expect(try all.json()["revoked"] as? Int == 1)
        }
    }

    @Test func adminReadsAndRevokesByHandle() async throws {
        try await Sessiond.with { server in
            let session = try await server.create(["user_id": "hank", "data": ["x": 1]])
            let read = try await server.request(.GET, "/v1/sessions/\(session.handle)", key: TestKeys.admin)
            #expect(read.status == 200)
            #expect(try read.json()["user_id"] as? String == "hank")
            #expect(try read.json()["token"] == nil)
            let revoke = try await server.request(.DELETE, "/v1/sessions/\(session.handle)", key: TestKeys.admin)
            #expect(revoke.status == 200)
            #expect(try revoke.json()["revoked"] as? Bool == true)
            #expect(try await server.lookup(session.token).status == 401)
            let gone = try await server.request(.GET, "/v1/sessions/\(session.handle)", key: TestKeys.admin)
            #expect(gone.status == 404)
            #expect(gone.errorCode == "not_found")
            let goneDelete = try await server.request(.DELETE, "/v1/sessions/\(session.handle)", key: TestKeys.admin)
            #expect(goneDelete.status == 404)
        }
    }

    @Test func healthAndReadinessNeedNoKey() async throws {
        try await Sessiond.with { server in
            let health = try await server.client.send(.GET, "/healthz")
            #expect(health.status == 200)
            #expect(try health.json()["status"] as? String == "ok")
            let ready = try await server.client.send(.GET, "/readyz")
            #expect(ready.status == 200)
        }
    }

    @Test func rolesNest() async throws {
        try await Sessiond.with { server in
            let session = try await server.create(user: "ivan")
            #expect(try await server.request(.GET, "/v1/session", key: TestKeys.app, headers: [("X-Session-Token", session.token)]).status == 200)
            #expect(try await server.request(.GET, "/v1/session", key: TestKeys.admin, headers: [("X-Session-Token", session.token)]).status == 200)
            #expect(try await server.request(.POST, "/v1/sessions", key: TestKeys.admin, json: ["user_id": "ivan"]).status == 201)
            let readerCreates = try await server.request(.POST, "/v1/sessions", key: TestKeys.reader, json: ["user_id": "ivan"])
            #expect(readerCreates.status == 403)
            #expect(readerCreates.errorCode == "forbidden")
            let appLists = try await server.request(.GET, "/v1/users/ivan/sessions", key: TestKeys.app)
            #expect(appLists.status == 403)
        }
    }

    @Test func capRevokesTheOldestSessions() async throws {
        try await Sessiond.with(settings: ["SESSIOND_MAX_SESSIONS_PER_USER": "2"]) { server in
            let first = try await server.create(user: "judy")
            let second = try await server.create(user: "judy")
            let third = try await server.create(user: "judy")
            #expect(try await server.lookup(first.token).status == 401)
            #expect(try await server.lookup(second.token).status == 200)
            #expect(try await server.lookup(third.token).status == 200)
            #expect(try await server.list(user: "judy").json()["total"] as? Int == 2)
        }
    }

    @Test func customCookieNameAndSameSite() async throws {
        try await Sessiond.with(settings: ["SESSIOND_COOKIE_NAME": "sid", "SESSIOND_COOKIE_SAMESITE": "Strict"]) { server in
            let session = try await server.create(user: "kim")
            let cookie = try session.response.json()["set_cookie"] as? String
            #expect(cookie?.hasPrefix("sid=\(session.token); Path=/; Secure; HttpOnly; SameSite=Strict; Max-Age=") == true)
            let byCookie = try await server.request(.GET, "/v1/session", key: TestKeys.reader, headers: [("Cookie", "sid=\(session.token)")])
            #expect(byCookie.status == 200)
        }
    }
}
