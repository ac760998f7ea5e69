import Foundation
import NIOCore
import NIOPosix
import Testing

/// `GET /v1/session` is answered in front of the router (`SessionLookupChannelHandler`); a GET
/// that announces a body (`Content-Length: 0`) still goes through the router's handler. Both
/// must give the same answer to every request, and keep-alive connections must get their
/// answers in order whichever path served them.
@Suite struct LookupFastPathTests {
    /// Every header but the per-response ones.
    private static func comparable(_ response: HTTPTestClient.Response) -> [String: String] {
        var headers = [String: String]()
        for header in response.headers where !["x-request-id", "date", "connection"].contains(header.name.lowercased()) {
            headers[header.name.lowercased()] = header.value
        }
        return headers
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

    /// One keep-alive connection carries lookups (fast path) and other requests (router) in
    /// turn; each gets its own answer. (Requests are sent one after the other: Hummingbird's
    /// HTTP/1 server does not answer the second of two requests that arrive in one segment,
    /// with or without the fast path; clients and proxies do not pipeline.)
    @Test func keepAliveConnectionMixesBothPaths() async throws {
        try await Sessiond.with { server in
            let session = try await server.create(user: "keepalive")
            let lookup = "GET /v1/session?touch=false HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer \(TestKeys.reader)\r\nX-Session-Token: \(session.token)\r\n\r\n"
            let unknown = "GET /v1/session HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer \(TestKeys.reader)\r\nX-Session-Token: AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\r\n\r\n"
            let body = #"{"user_id":"keepalive"}"#
            let create = "POST /v1/sessions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer \(TestKeys.app)\r\nContent-Type: application/json\r\nContent-Length: \(body.utf8.count)\r\n\r\n\(body)"
            let health = "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"
            let last = "GET /v1/session HTTP/1.1\r\nHost: x\r\nConnection: close\r\nAuthorization: Bearer \(TestKeys.reader)\r\nX-Session-Token: \(session.token)\r\n\r\n"
            let answers = try await exchange(port: server.client.port, [lookup, create, unknown, health, lookup, last])
            #expect(answers.map(\.status) == [200, 201, 401, 200, 200, 200], "\(answers.map(\.status))")
            #expect(answers[0].body.contains("\"user_id\":\"keepalive\""))
            #expect(answers[1].body.contains("\"token\""))
            #expect(answers[2].body.contains("invalid_session"))
            #expect(answers.last?.closed == true, "Connection: close is honoured by the fast path")
        }
    }

    private struct Answer {
        var status: Int
        var body: String
        var closed = false
    }

    /// Sends each request on one connection, reading its whole answer (by Content-Length)
    /// before sending the next; notes whether the server closed the connection after the last.
    private func exchange(port: Int, _ requests: [String]) async throws -> [Answer] {
        let channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .connect(host: "127.0.0.1", port: port) { channel in
                channel.eventLoop.makeCompletedFuture {
                    try NIOAsyncChannel<ByteBuffer, ByteBuffer>(wrappingChannelSynchronously: channel)
                }
            }
        return try await channel.executeThenClose { inbound, outbound in
            var iterator = inbound.makeAsyncIterator()
            var pending = ""
            var answers = [Answer]()
            for request in requests {
                try await outbound.write(ByteBuffer(string: request))
                while true {
                    if let headEnd = pending.range(of: "\r\n\r\n") {
                        let head = pending[..<headEnd.lowerBound]
                        let length = head.split(separator: "\r\n")
                            .first { $0.lowercased().hasPrefix("content-length:") }
                            .flatMap { Int($0.split(separator: ":")[1].trimmingCharacters(in: .whitespaces)) } ?? 0
                        let rest = pending[headEnd.upperBound...]
                        if rest.utf8.count >= length {
                            let status = Int(head.dropFirst(9).prefix(3)) ?? 0
                            let body = String(rest.utf8.prefix(length))!
                            pending = String(rest.utf8.dropFirst(length))!
                            answers.append(Answer(status: status, body: body))
                            break
                        }
                    }
                    guard let chunk = try await iterator.next() else { return answers }
                    pending += String(buffer: chunk)
                }
            }
            if try await iterator.next() == nil { answers[answers.count - 1].closed = true }
            return answers
        }
    }
}
