import Foundation
import NIOCore
import NIOPosix
import RedisClient
import RedisTestSupport
import Testing

/// `GET /v1/session` and `POST /v1/sessions` are answered in front of the router
/// (`SessionLookupChannelHandler`); a GET that announces a body (`Content-Length: 0`) still goes
/// through the router's handler, and so does a request with options in `Connection`. Both
/// must give the same answer to every request, and keep-alive connections must get their
/// answers in order whichever path served them.
@Suite(.timeLimit(.minutes(2))) struct LookupFastPathTests {
    /// Every header but the per-response ones.
    private static func comparable(_ response: HTTPTestClient.Response) -> [String: String] {
        var headers = [String: String]()
        for header in response.headers where !["x-request-id", "date", "connection"].contains(header.name.lowercased()) {
            headers[header.name.lowercased()] = header.value
        }
        return headers
    }

    /// What `read` gives once it no longer gives `before`, asked every 20 ms for up to 5 s (a
    /// touch is written after its lookup's answer); `before` if it never changed.
    private static func value<T: Equatable>(changedFrom before: T, _ read: () async throws -> T) async throws -> T {
        let deadline = ContinuousClock.now + .seconds(5)
        var value = before
        while value == before, ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(20))
            value = try await read()
        }
        return value
    }

    @Test func fastPathAndRouterAnswerAlike() async throws {
        try await Sessiond.with { server in
            let session = try await server.create(user: "alike")
            let cases: [(String, String, [(String, String)])] = [
                ("valid token in the header", "/v1/session?touch=false", [("Authorization", "Bearer \(TestKeys.reader)"), ("X-Session-Token", session.token)]),
                ("valid token in the cookie", "/v1/session?touch=false", [("Authorization", "Bearer \(TestKeys.app)"), ("Cookie", "a=b; __Host-session=\(session.token)")]),
                ("no API key", "/v1/session", [("X-Session-Token", session.token)]),
                ("Basic scheme", "/v1/session", [("Authorization", "Basic \(TestKeys.reader)"), ("X-Session-Token", session.token)]),
                ("unknown API key", "/v1/session", [("Authorization", "Bearer nope-nope-nope-nope-nope-nope"), ("X-Session-Token", session.token)]),
                ("no token", "/v1/session", [("Authorization", "Bearer \(TestKeys.reader)")]),
                ("malformed token", "/v1/session", [("Authorization", "Bearer \(TestKeys.reader)"), ("X-Session-Token", "abc")]),
                ("unknown token", "/v1/session", [("Authorization", "Bearer \(TestKeys.reader)"), ("X-Session-Token", "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA")]),
                ("bad touch", "/v1/session?touch=maybe", [("Authorization", "Bearer \(TestKeys.reader)"), ("X-Session-Token", session.token)]),
                ("unknown parameter", "/v1/session?touch=false&x=1", [("Authorization", "Bearer \(TestKeys.reader)"), ("X-Session-Token", session.token)]),
                ("parameter twice", "/v1/session?touch=false&touch=false", [("Authorization", "Bearer \(TestKeys.reader)"), ("X-Session-Token", session.token)]),
                ("two Authorization fields", "/v1/session?touch=false", [("Authorization", "Bearer \(TestKeys.reader)"), ("Authorization", "Bearer \(TestKeys.reader)"), ("X-Session-Token", session.token)]),
                ("two token fields", "/v1/session?touch=false", [("Authorization", "Bearer \(TestKeys.reader)"), ("X-Session-Token", session.token), ("X-Session-Token", session.token)]),
                ("the cookie in the second Cookie field", "/v1/session?touch=false", [("Authorization", "Bearer \(TestKeys.reader)"), ("Cookie", "a=b"), ("Cookie", "__Host-session=\(session.token)")]),
                ("an empty token field before the cookie", "/v1/session?touch=false", [("Authorization", "Bearer \(TestKeys.reader)"), ("X-Session-Token", ""), ("Cookie", "__Host-session=\(session.token)")]),
                ("a token with a non-ASCII character", "/v1/session?touch=false", [("Authorization", "Bearer \(TestKeys.reader)"), ("X-Session-Token", "é" + session.token.dropFirst())]),
                ("an API key with a non-ASCII character", "/v1/session?touch=false", [("Authorization", "Bearer é\(TestKeys.reader.dropFirst())"), ("X-Session-Token", session.token)]),
            ]
            for (name, path, headers) in cases {
                let fast = try await server.client.send(.GET, path, headers: headers)
                let routed = try await server.client.send(.GET, path, headers: headers + [("Content-Length", "0")], body: [])
                #expect(fast.status == routed.status, "\(name): \(fast.status) vs \(routed.status)")
                #expect(fast.text == routed.text, "\(name): \(fast.text) vs \(routed.text)")
                #expect(Self.comparable(fast) == Self.comparable(routed), "\(name)")
                #expect(fast.headers["X-Request-Id"].first?.isEmpty == false && fast.headers["Date"].first?.hasSuffix(" GMT") == true, "\(name)")
            }
        }
    }

    /// Creates are answered in front of the router too. A second `Connection` field sends the
    /// same request to the router's handler; both must answer alike, errors word for word.
    @Test func createsAnswerAlikeOnBothPaths() async throws {
        try await Sessiond.with(settings: ["SESSIOND_IDLE_TIMEOUT": "600"]) { server in
            let app = ("Authorization", "Bearer \(TestKeys.app)")
            let cases: [(String, [(String, String)], String)] = [
                ("valid", [app], #"{"user_id":"alike","data":{"theme":"dark"},"idle_timeout":60,"ip":"10.0.0.1","user_agent":"Test/1"}"#),
                ("valid, minimal", [app, ("Content-Type", "text/plain")], #"{"user_id":"alike"}"#),
                ("malformed JSON", [app], #"{"user_id":"#),
                ("empty body", [app], ""),
                ("not an object", [app], "[1]"),
                ("member given twice", [app], #"{"user_id":"a","user_id":"b"}"#),
                ("unknown field", [app], #"{"user_id":"a","admin":true}"#),
                ("idle_timeout over the limit", [app], #"{"user_id":"a","idle_timeout":601}"#),
                ("reader key", [("Authorization", "Bearer \(TestKeys.reader)")], #"{"user_id":"a"}"#),
                ("no key", [], #"{"user_id":"a"}"#),
                ("Basic scheme", [("Authorization", "Basic \(TestKeys.app)")], #"{"user_id":"a"}"#),
                ("two Authorization fields", [app, app], #"{"user_id":"a"}"#),
            ]
            for (name, headers, body) in cases {
                let fast = try await server.client.send(.POST, "/v1/sessions", headers: headers, body: Array(body.utf8))
                let routed = try await server.client.send(.POST, "/v1/sessions", headers: headers + [("Connection", "Keep-Alive")], body: Array(body.utf8))
                #expect(fast.status == routed.status, "\(name): \(fast.status) vs \(routed.status)")
                #expect(fast.headers["X-Request-Id"].first?.isEmpty == false && fast.headers["Date"].first?.hasSuffix(" GMT") == true, "\(name)")
                guard fast.status == 201, routed.status == 201 else {
                    #expect(fast.text == routed.text, "\(name): \(fast.text) vs \(routed.text)")
                    #expect(Self.comparable(fast) == Self.comparable(routed), "\(name)")
                    continue
                }
                // Each create makes its own session: same fields and headers, other token and handle.
                let (fastJSON, routedJSON) = (try fast.json(), try routed.json())
                #expect(Set(fastJSON.keys) == Set(routedJSON.keys), "\(name)")
                for field in ["user_id", "data", "version", "ip", "user_agent"] {
                    #expect("\(fastJSON[field] ?? "none")" == "\(routedJSON[field] ?? "none")", "\(name): \(field)")
                }
                #expect(Set(Self.comparable(fast).keys) == Set(Self.comparable(routed).keys), "\(name)")
                #expect(fast.headers["X-Session-Handle"].first == fastJSON["handle"] as? String)
                let token = try #require(fastJSON["token"] as? String)
                #expect(try await server.lookup(token).status == 200, "\(name): the fast path's session exists")
            }
        }
    }

    /// A fast-path create is one script call on the connection's loop; one that Redis did not
    /// run (here `NOSCRIPT`, after `SCRIPT FLUSH` on a private server) is made through the routed
    /// call, which loads the script, and is made once: every create answers 201, every session
    /// looks up, and the user's index holds exactly as many sessions as were created.
    @Test func aCreateRedisDidNotRunIsMadeOnceThroughTheRoutedCall() async throws {
        try await RedisServerProcess.withServer { redisServer in
            try await Sessiond.with(redisURL: redisServer.url) { server in
                var tokens = [String]()
                for round in 0..<4 {
                    for _ in 0..<5 { tokens.append(try await server.create(user: "flushed").token) }
                    let redis = try await RedisConnection.connect(
                        configuration: redisServer.configuration.forTests, eventLoop: MultiThreadedEventLoopGroup.singleton.next()
                    )
                    defer { redis.close() }
                    #expect(try await redis.send(RedisCommand("SCRIPT", "FLUSH")) == .simpleString("OK"), "round \(round)")
                }
                for token in tokens { #expect(try await server.lookup(token, touch: false).status == 200) }
                #expect(try await server.list(user: "flushed", query: "?limit=100").json()["total"] as? Int == tokens.count)
            }
        }
    }

    /// With a small `SESSIOND_MAX_DATA_BYTES` the router's body cap (4 × it + 8192) is below the
    /// fast path's 16 KiB: a body between the two is refused (413) on both paths, unread.
    @Test func createOverTheBodyCapIsRefusedOnBothPaths() async throws {
        try await Sessiond.with(settings: ["SESSIOND_MAX_DATA_BYTES": "1024"]) { server in
            let body = Array((#"{"user_id":"capped"}"# + String(repeating: " ", count: 13000)).utf8)
            let app = ("Authorization", "Bearer \(TestKeys.app)")
            let fast = try await server.client.send(.POST, "/v1/sessions", headers: [app], body: body)
            let routed = try await server.client.send(.POST, "/v1/sessions", headers: [app, ("Connection", "Keep-Alive")], body: body)
            #expect(fast.status == 413 && fast.errorCode == "payload_too_large", "\(fast.status) \(fast.text)")
            #expect(fast.text == routed.text)
            #expect(try await server.redisKeys().isEmpty, "nothing was created")
        }
    }

    /// A lookup due for a touch answers the session as read and slides it right after: the
    /// stored last activity and idle end move, and a lookup with `touch=false` moves nothing.
    @Test func aDueTouchSlidesTheSessionAfterTheAnswer() async throws {
        try await Sessiond.with(settings: ["SESSIOND_IDLE_TIMEOUT": "20"]) { server in
            let session = try await server.create(user: "slide")
            let created = try GuaranteeTests.time(session, "last_seen_at")
            // A touch is due once a tenth of the idle timeout (2 s) has passed.
            try await GuaranteeTests.sleep(until: created + 2.5)
            let stored = { () async throws -> String? in
                try await server.request(.GET, "/v1/sessions/\(session.handle)", key: TestKeys.admin).json()["last_seen_at"] as? String
            }
            let before = try await stored()
            #expect(try await server.lookup(session.token, touch: false).status == 200)
            #expect(try await stored() == before, "touch=false reads only")
            let answer = try await server.lookup(session.token)
            #expect(answer.status == 200)
            #expect(try answer.json()["last_seen_at"] as? String == before, "answered as read")
            #expect(try await Self.value(changedFrom: before, stored) != before, "the idle expiry slid after the answer")
            // The index outlives the session by at most a quarter of the idle timeout (5 s).
            try await withRedis(server.redisTopology) { redis in
                let record = try await redis.send("PEXPIRETIME", key: server.sessionKey(session.handle)).integer ?? -1
                let index = try await redis.send("PEXPIRETIME", key: server.indexKey(user: "slide", handle: session.handle)).integer ?? -1
                #expect(record > 0 && index >= record && index - record <= 5000, "record ends \(record), index \(index)")
            }
        }
    }

    /// Touches that come due together reach Redis as one script call (`touch_batch`): Redis
    /// spends most of a touch entering a script (docs/performance.md). Every session still slides.
    /// A Redis of its own, so that its `INFO commandstats` counts this test's calls only. The
    /// first round loads the script (the quick call finds it unknown and the routed call loads
    /// it); the second, measured, goes the quick way.
    @Test func dueTouchesReachRedisTogether() async throws {
        let redis = try await RedisServerProcess.start()
        defer { redis.stop() }
        let admin = try await RedisConnection.connect(configuration: redis.configuration.forTests, eventLoop: MultiThreadedEventLoopGroup.singleton.next())
        defer { admin.close() }
        try await Sessiond.with(redisURL: redis.url, settings: ["SESSIOND_IDLE_TIMEOUT": "10"]) { server in
            var sessions = [Sessiond.CreatedSession]()
            for n in 0..<24 { sessions.append(try await server.create(user: "batch-\(n % 6)")) }
            let lastSeen = { (session: Sessiond.CreatedSession) async throws -> String? in
                try await server.request(.GET, "/v1/sessions/\(session.handle)", key: TestKeys.admin).json()["last_seen_at"] as? String
            }
            for round in 1...2 {
                var before = [String?]()
                for session in sessions { before.append(try await lastSeen(session)) }
                // Due: a tenth of the 10-s idle timeout has passed since the last touch.
                try await Task.sleep(for: .milliseconds(1100))
                if round == 2 { _ = try await admin.send(RedisCommand("CONFIG", "RESETSTAT")) }
                let statuses = try await withThrowingTaskGroup(of: Int.self) { group in
                    for session in sessions { group.addTask { try await server.lookup(session.token).status } }
                    return try await group.reduce(into: [Int]()) { $0.append($1) }
                }
                #expect(statuses == Array(repeating: 200, count: sessions.count))
                var slid = 0
                let deadline = ContinuousClock.now + .seconds(5)
                while slid < sessions.count, ContinuousClock.now < deadline {
                    try await Task.sleep(for: .milliseconds(50))
                    slid = 0
                    for (session, seen) in zip(sessions, before) where try await lastSeen(session) != seen { slid += 1 }
                }
                #expect(slid == sessions.count, "round \(round): \(slid) of \(sessions.count) sessions slid")
            }
            let stats = try await admin.send(RedisCommand("INFO", "commandstats")).bytes.map { String(decoding: $0, as: UTF8.self) } ?? ""
            let calls = stats.split(separator: "\r\n").first { $0.hasPrefix("cmdstat_evalsha:") }
                .flatMap { $0.split(separator: ",").first?.split(separator: "=").last }.flatMap { Int($0) } ?? 0
            #expect(calls >= 1 && calls <= sessions.count / 4, "\(calls) script calls for \(sessions.count) touches")
        }
    }

    /// A touch that fails in Redis (here: its user's index is not a sorted set) does not sink the
    /// other touches of its call. A Redis of its own: one server, so that the six touches share
    /// a call (the script is not known yet, so the routed call loads it and runs it once), and
    /// its `INFO commandstats` counts this test's calls only.
    @Test func oneFailingTouchLeavesTheOthersAlone() async throws {
        let redis = try await RedisServerProcess.start()
        defer { redis.stop() }
        let admin = try await RedisConnection.connect(configuration: redis.configuration.forTests, eventLoop: MultiThreadedEventLoopGroup.singleton.next())
        defer { admin.close() }
        try await Sessiond.with(redisURL: redis.url, settings: ["SESSIOND_IDLE_TIMEOUT": "10"]) { server in
            let broken = try await server.create(user: "broken-index")
            var healthy = [Sessiond.CreatedSession]()
            for n in 0..<5 { healthy.append(try await server.create(user: "healthy-\(n)")) }
            let lastSeen = { (session: Sessiond.CreatedSession) async throws -> String? in
                try await server.request(.GET, "/v1/sessions/\(session.handle)", key: TestKeys.admin).json()["last_seen_at"] as? String
            }
            var before = [String?]()
            for session in healthy { before.append(try await lastSeen(session)) }
            let index = RedisArgument(server.indexKey(user: "broken-index", handle: broken.handle))
            _ = try await admin.send(RedisCommand("DEL", index))
            _ = try await admin.send(RedisCommand("SET", index, "not a sorted set"))
            // Due: a tenth of the 10-s idle timeout has passed. The six lookups are pipelined on
            // one connection, the broken session's first, so that their touches come due in one
            // turn of the loop, in that order.
            try await Task.sleep(for: .milliseconds(1100))
            _ = try await admin.send(RedisCommand("CONFIG", "RESETSTAT"))
            let lookups = ([broken] + healthy).enumerated().map { index, session in
                RawRequests(token: session.token, user: session.handle).lookup(close: index == healthy.count)
            }
            let answers = try await RawConnection.exchange(port: server.client.port, [lookups.joined()], oneAtATime: false)
            #expect(answers.map(\.status) == Array(repeating: 200, count: lookups.count))
            for (session, seen) in zip(healthy, before) {
                #expect(try await Self.value(changedFrom: seen) { try await lastSeen(session) } != seen, "\(session.handle) slid")
            }
            let stats = try await admin.send(RedisCommand("INFO", "commandstats")).bytes.map { String(decoding: $0, as: UTF8.self) } ?? ""
            #expect(stats.contains("cmdstat_evalsha:calls=1,"), "one batch: \(stats)")
        }
    }

    /// The fast path remembers the last key that passed on a connection: every lookup is still
    /// checked, whatever key (or none) the one before it sent.
    @Test func everyLookupOfAConnectionIsAuthorized() async throws {
        try await Sessiond.with { server in
            let session = try await server.create(user: "keys")
            let requests = RawRequests(token: session.token, user: "keys")
            let unknown = String(TestKeys.reader.dropLast()) + "!"
            let answers = try await RawConnection.exchange(port: server.client.port, [
                requests.lookup(),
                requests.lookup(authorization: ["Bearer \(unknown)"]),
                requests.lookup(authorization: []),
                requests.lookup(authorization: ["Basic \(TestKeys.reader)"]),
                requests.lookup(),
                requests.lookup(authorization: ["Bearer \(TestKeys.admin)"]),
                requests.lookup(authorization: ["Bearer \(TestKeys.reader)", "Bearer \(TestKeys.reader)"]),
                requests.lookup(),
                requests.lookup(authorization: ["bearer \(TestKeys.reader)"]),
                requests.lookup(close: true),
            ])
            #expect(answers.map(\.status) == [200, 401, 401, 401, 200, 200, 401, 200, 200, 200], "\(answers.map(\.status))")
            #expect(answers[1].body.contains("unknown API key"), "\(answers[1].body)")
            #expect(answers[2].body.contains("missing Authorization"), "\(answers[2].body)")
            #expect(answers[6].body.contains("invalid_api_key"), "\(answers[6].body)")
        }
    }

    /// Header values that are not valid UTF-8, or padded with spaces and tabs, reach the fast
    /// path as bytes and the router as repaired text: both must answer alike. Each path gets all
    /// the cases on one connection, so the fast path's remembered key is crossed by odd bytes too.
    @Test func headerBytesAnswerAlikeOnBothPaths() async throws {
        try await Sessiond.with { server in
            let session = try await server.create(user: "bytes")
            let token = Array(session.token.utf8)
            let reader = Array(TestKeys.reader.utf8)
            func authorization(_ value: [UInt8]) -> [UInt8] { Array("Authorization: ".utf8) + value }
            func sessionToken(_ value: [UInt8]) -> [UInt8] { Array("X-Session-Token: ".utf8) + value }
            let bearer = Array("Bearer ".utf8)
            let cases: [(String, [[UInt8]])] = [
                ("a valid lookup", [authorization(bearer + reader), sessionToken(token)]),
                ("a token starting with an invalid byte", [authorization(bearer + reader), sessionToken([0xFF] + token.dropFirst())]),
                ("a token of invalid bytes only", [authorization(bearer + reader), sessionToken([0xC3, 0x28, 0xFF])]),
                ("an API key with a stray invalid byte", [authorization(bearer + reader.prefix(5) + [0xC3] + reader.dropFirst(6)), sessionToken(token)]),
                ("an API key with a truncated sequence at its end", [authorization(bearer + reader + [0xE2, 0x82]), sessionToken(token)]),
                ("spaces and tabs around both values", [authorization(Array(" \t".utf8) + bearer + reader + Array("\t ".utf8)), sessionToken(Array("\t ".utf8) + token + Array(" \t".utf8))]),
                ("the scheme in lower case", [authorization(Array("bearer ".utf8) + reader), sessionToken(token)]),
                ("an invalid byte in the cookie", [authorization(bearer + reader), Array("Cookie: __Host-session=".utf8) + [0xFF] + token.dropFirst()]),
            ]
            func requests(routed: Bool) -> [[UInt8]] {
                cases.enumerated().map { index, testCase in
                    let close = index == cases.count - 1 ? "Connection: close\r\n" : ""
                    let framing = routed ? "Content-Length: 0\r\n" : ""
                    return Array("GET /v1/session?touch=false HTTP/1.1\r\nHost: x\r\n\(close)\(framing)".utf8)
                        + testCase.1.flatMap { $0 + Array("\r\n".utf8) } + Array("\r\n".utf8)
                }
            }
            let fast = try await RawConnection.exchange(port: server.client.port, bytes: requests(routed: false))
            let routed = try await RawConnection.exchange(port: server.client.port, bytes: requests(routed: true))
            try #require(fast.count == cases.count && routed.count == cases.count, "\(fast.count) and \(routed.count) answers")
            #expect(fast[0].status == 200)
            for (index, (name, _)) in cases.enumerated() {
                #expect(fast[index].status == routed[index].status, "\(name): \(fast[index].status) vs \(routed[index].status)")
                #expect(fast[index].body == routed[index].body, "\(name): \(fast[index].body) vs \(routed[index].body)")
            }
        }
    }

    /// One keep-alive connection carries lookups (fast path) and other requests (router) in
    /// turn; each gets its own answer.
    @Test func keepAliveConnectionMixesBothPaths() async throws {
        try await Sessiond.with { server in
            let session = try await server.create(user: "keepalive")
            let requests = RawRequests(token: session.token, user: "keepalive")
            let answers = try await RawConnection.exchange(
                port: server.client.port,
                [requests.lookup(), requests.create, requests.lookupUnknown, requests.health, requests.lookup(), requests.lookup(close: true)]
            )
            #expect(answers.map(\.status) == [200, 201, 401, 200, 200, 200], "\(answers.map(\.status))")
            #expect(answers[0].body.contains("\"user_id\":\"keepalive\""))
            #expect(answers[1].body.contains("\"token\""))
            #expect(answers[2].body.contains("invalid_session"))
        }
    }

    /// Requests pipelined in one segment, lookups and router requests mixed, are all answered,
    /// in request order (a router request waits for the lookups before it, and the lookups
    /// after it wait for its answer).
    @Test func pipelinedRequestsAreAnsweredInOrder() async throws {
        try await Sessiond.with { server in
            let session = try await server.create(user: "pipelined")
            let requests = RawRequests(token: session.token, user: "pipelined")
            let batch = [
                requests.lookup(), requests.lookupUnknown, requests.create, requests.lookup(query: "?touch=false"), requests.health,
                requests.lookup(query: "?touch=maybe"), requests.badCreate, requests.lookup(), requests.lookup(close: true),
                requests.lookup(),
            ]
            let answers = try await RawConnection.exchange(port: server.client.port, [batch.joined()], oneAtATime: false)
            #expect(answers.map(\.status) == [200, 401, 201, 200, 200, 400, 400, 200, 200], "\(answers.map(\.status))")
            #expect(answers[2].body.contains("\"token\""))
            #expect(answers[4].body.contains("ok"), "\(answers[4].body)")
            #expect(answers[6].body.contains("invalid_request"), "\(answers[6].body)")
        }
    }

    /// More lookups in one segment than the fast path runs at once (it stops reading until
    /// answers are written), alternating known and unknown tokens so that order shows.
    @Test func longPipelineKeepsOrder() async throws {
        try await Sessiond.with { server in
            let session = try await server.create(user: "longpipeline")
            let requests = RawRequests(token: session.token, user: "longpipeline")
            let count = 300
            let batch = (0..<count).map { $0 % 3 == 2 ? requests.lookupUnknown : requests.lookup(query: "?touch=false") }
            let answers = try await RawConnection.exchange(
                port: server.client.port, [batch.joined() + requests.lookup(close: true)], oneAtATime: false
            )
            let expected = (0..<count).map { $0 % 3 == 2 ? 401 : 200 } + [200]
            #expect(answers.map(\.status) == expected)
        }
    }

    /// Heads arriving a few bytes at a time, and a read that ends inside the next request.
    @Test func headsSplitAcrossReads() async throws {
        try await Sessiond.with { server in
            let session = try await server.create(user: "split")
            let requests = RawRequests(token: session.token, user: "split")
            let stream = Array((requests.lookup() + requests.create + requests.lookup(close: true)).utf8)
            let chunks = stride(from: 0, to: stream.count, by: 7).map { String(decoding: stream[$0..<min($0 + 7, stream.count)], as: UTF8.self) }
            let answers = try await RawConnection.exchange(port: server.client.port, chunks, oneAtATime: false, pause: .milliseconds(1))
            #expect(answers.map(\.status) == [200, 201, 200], "\(answers.map(\.status))")
        }
    }

    /// A request the fast path does not frame (a chunked body) hands the connection to NIO's
    /// parser for good: it and the lookups after it are still answered, in order.
    @Test func unframedRequestHandsTheConnectionOver() async throws {
        try await Sessiond.with { server in
            let session = try await server.create(user: "handover")
            let requests = RawRequests(token: session.token, user: "handover")
            let batch = [requests.lookup(), requests.chunkedCreate, requests.lookup(), requests.lookupUnknown, requests.lookup(close: true)]
            for oneAtATime in [true, false] {
                let answers = try await RawConnection.exchange(port: server.client.port, oneAtATime ? batch : [batch.joined()], oneAtATime: oneAtATime)
                #expect(answers.map(\.status) == [200, 201, 200, 401, 200], "one at a time: \(oneAtATime): \(answers.map(\.status))")
            }
        }
    }

    /// A client that half-closes after sending its requests still gets every answer, then the
    /// connection closes.
    @Test func halfClosedClientGetsItsAnswers() async throws {
        try await Sessiond.with { server in
            let session = try await server.create(user: "halfclose")
            let requests = RawRequests(token: session.token, user: "halfclose")
            let batch = [requests.lookup(), requests.lookupUnknown, requests.health, requests.lookup()]
            let answers = try await RawConnection.exchange(port: server.client.port, [batch.joined()], oneAtATime: false, halfClose: true)
            #expect(answers.map(\.status) == [200, 401, 200, 200], "\(answers.map(\.status))")
        }
    }
}

/// Raw requests for one session.
private struct RawRequests {
    let token: String
    let user: String

    func lookup(query: String = "", close: Bool = false, authorization: [String] = ["Bearer \(TestKeys.reader)"]) -> String {
        let keys = authorization.map { "Authorization: \($0)\r\n" }.joined()
        return "GET /v1/session\(query) HTTP/1.1\r\nHost: x\r\n\(close ? "Connection: close\r\n" : "")\(keys)X-Session-Token: \(token)\r\n\r\n"
    }

    var lookupUnknown: String {
        "GET /v1/session HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer \(TestKeys.reader)\r\nX-Session-Token: AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\r\n\r\n"
    }

    var create: String {
        let body = #"{"user_id":"\#(user)"}"#
        return "POST /v1/sessions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer \(TestKeys.app)\r\nContent-Type: application/json\r\nContent-Length: \(body.utf8.count)\r\n\r\n\(body)"
    }

    var badCreate: String {
        "POST /v1/sessions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer \(TestKeys.app)\r\nContent-Type: application/json\r\nContent-Length: 5\r\n\r\n{\"us\""
    }

    var chunkedCreate: String {
        let body = #"{"user_id":"\#(user)"}"#
        return "POST /v1/sessions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer \(TestKeys.app)\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
            + String(body.utf8.count, radix: 16) + "\r\n\(body)\r\n0\r\n\r\n"
    }

    var health: String { "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n" }
}

/// One connection written with raw bytes, its answers read by Content-Length.
enum RawConnection {
    struct Answer {
        var status: Int
        var body: String
    }

    /// Sends `chunks` on one connection: one at a time (each answer read before the next
    /// chunk), or all at once (with `pause` between them). Reads answers until the server
    /// closes (after `Connection: close`, or after the client half-closed), and throws if it
    /// has not closed within 10 s.
    static func exchange(
        port: Int, _ chunks: [String], oneAtATime: Bool = true, pause: Duration? = nil, halfClose: Bool = false
    ) async throws -> [Answer] {
        try await exchange(port: port, bytes: chunks.map { Array($0.utf8) }, oneAtATime: oneAtATime, pause: pause, halfClose: halfClose)
    }

    /// `exchange(port:_:...)` with chunks of any bytes, valid UTF-8 or not.
    static func exchange(
        port: Int, bytes chunks: [[UInt8]], oneAtATime: Bool = true, pause: Duration? = nil, halfClose: Bool = false
    ) async throws -> [Answer] {
        try await withThrowingTaskGroup(of: [Answer].self) { group in
            group.addTask { try await exchangeUntilClosed(port: port, chunks, oneAtATime: oneAtATime, pause: pause, halfClose: halfClose) }
            group.addTask {
                try await Task.sleep(for: .seconds(10))
                throw TestSetupError("the server did not close the connection within 10 s")
            }
            defer { group.cancelAll() }
            return try await group.next()!
        }
    }

    private static func exchangeUntilClosed(
        port: Int, _ chunks: [[UInt8]], oneAtATime: Bool, pause: Duration?, halfClose: Bool
    ) async throws -> [Answer] {
        let channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .connect(host: "127.0.0.1", port: port) { channel in
                channel.eventLoop.makeCompletedFuture {
                    try NIOAsyncChannel<ByteBuffer, ByteBuffer>(
                        wrappingChannelSynchronously: channel, configuration: .init(isOutboundHalfClosureEnabled: true)
                    )
                }
            }
        return try await channel.executeThenClose { inbound, outbound in
            var iterator = inbound.makeAsyncIterator()
            var pending = [UInt8]()
            var answers = [Answer]()
            /// Reads one more answer; nil when the server closed first.
            func nextAnswer() async throws -> Answer? {
                while true {
                    if let answer = parse(&pending) { return answer }
                    guard let chunk = try await iterator.next() else { return nil }
                    pending += chunk.readableBytesView
                }
            }
            for chunk in chunks {
                try await outbound.write(ByteBuffer(bytes: chunk))
                if oneAtATime {
                    guard let answer = try await nextAnswer() else { break }
                    answers.append(answer)
                } else if let pause {
                    try await Task.sleep(for: pause)
                }
            }
            if halfClose { outbound.finish() }
            while let answer = try await nextAnswer() { answers.append(answer) }
            return answers
        }
    }

    /// Takes one whole answer off the front of `bytes`, if there is one.
    private static func parse(_ bytes: inout [UInt8]) -> Answer? {
        let separator = Array("\r\n\r\n".utf8)
        guard let headEnd = bytes.indices.dropLast(3).first(where: { bytes[$0..<$0 + 4].elementsEqual(separator) }) else { return nil }
        let head = String(decoding: bytes[..<headEnd], as: UTF8.self)
        let length = head.split(separator: "\r\n")
            .first { $0.lowercased().hasPrefix("content-length:") }
            .flatMap { Int($0.split(separator: ":")[1].trimmingCharacters(in: .whitespaces)) } ?? 0
        let bodyStart = headEnd + 4
        guard bytes.count >= bodyStart + length else { return nil }
        let answer = Answer(status: Int(head.dropFirst(9).prefix(3)) ?? 0, body: String(decoding: bytes[bodyStart..<bodyStart + length], as: UTF8.self))
        bytes.removeFirst(bodyStart + length)
        return answer
    }
}
