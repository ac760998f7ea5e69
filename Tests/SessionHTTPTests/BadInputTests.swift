import NIOHTTP1
import Testing

/// Bad input, as a table: each case gets its status and JSON error code, never a 500,
/// and changes nothing.
@Suite struct BadInputTests {
    struct Case: Sendable, CustomTestStringConvertible {
        let name: String
        let method: HTTPMethod
        let path: String
        var key: String? = TestKeys.admin
        var headers: [(String, String)] = []
        var body: [UInt8]? = nil
        let status: Int
        let code: String

        var testDescription: String { name }
    }

    static let validToken = "uQU_h9ztFxlvRrVs1RnLp9fsI9X5Qa2S3Wv1_zqCzWA"

    static let cases: [Case] = [
        Case(name: "malformed JSON", method: .POST, path: "/v1/sessions", body: Array(#"{"user_id":"#.utf8), status: 400, code: "invalid_request"),
        Case(name: "user_id given twice", method: .POST, path: "/v1/sessions", body: Array(#"{"user_id":"alice","user_id":"mallory"}"#.utf8), status: 400, code: "invalid_request"),
        Case(name: "a data member given twice", method: .POST, path: "/v1/sessions", body: Array(#"{"user_id":"u","data":{"role":"user","role":"admin"}}"#.utf8), status: 400, code: "invalid_request"),
        Case(name: "content after the JSON", method: .POST, path: "/v1/sessions", body: Array(#"{"user_id":"u"} {}"#.utf8), status: 400, code: "invalid_request"),
        Case(name: "lone surrogate escape", method: .POST, path: "/v1/sessions", body: Array(#"{"user_id":"\ud800"}"#.utf8), status: 400, code: "invalid_request"),
        Case(name: "number out of range", method: .POST, path: "/v1/sessions", body: Array(#"{"user_id":"u","data":{"n":1e400}}"#.utf8), status: 400, code: "invalid_request"),
        Case(name: "data nested 600 deep", method: .POST, path: "/v1/sessions",
             body: Array((#"{"user_id":"u","data":{"a":"# + String(repeating: "[", count: 600) + String(repeating: "]", count: 600) + "}}").utf8), status: 400, code: "invalid_request"),
        Case(name: "patch member given twice", method: .PATCH, path: "/v1/session", headers: [("X-Session-Token", validToken)], body: Array(#"{"a":1,"a":null}"#.utf8), status: 400, code: "invalid_request"),
        Case(name: "JSON array body", method: .POST, path: "/v1/sessions", body: Array("[1,2]".utf8), status: 400, code: "invalid_request"),
        Case(name: "empty body", method: .POST, path: "/v1/sessions", body: [], status: 400, code: "invalid_request"),
        Case(name: "user_id missing", method: .POST, path: "/v1/sessions", body: Array(#"{"data":{}}"#.utf8), status: 400, code: "invalid_request"),
        Case(name: "user_id a number", method: .POST, path: "/v1/sessions", body: Array(#"{"user_id":5}"#.utf8), status: 400, code: "invalid_request"),
        Case(name: "user_id empty", method: .POST, path: "/v1/sessions", body: Array(#"{"user_id":""}"#.utf8), status: 400, code: "invalid_request"),
        Case(name: "user_id 257 chars", method: .POST, path: "/v1/sessions", body: Array("{\"user_id\":\"\(String(repeating: "é", count: 257))\"}".utf8), status: 400, code: "invalid_request"),
        Case(name: "user_id with control character", method: .POST, path: "/v1/sessions", body: Array(#"{"user_id":"a\u0007b"}"#.utf8), status: 400, code: "invalid_request"),
        Case(name: "user_id with trailing space", method: .POST, path: "/v1/sessions", body: Array(#"{"user_id":"alice "}"#.utf8), status: 400, code: "invalid_request"),
        Case(name: "If-Match version overflowing", method: .PATCH, path: "/v1/session", headers: [("X-Session-Token", validToken), ("If-Match", "\"99999999999999999999999\"")], body: Array("{}".utf8), status: 401, code: "invalid_session"),
        Case(name: "user_id with newline", method: .POST, path: "/v1/sessions", body: Array(#"{"user_id":"a\nb"}"#.utf8), status: 400, code: "invalid_request"),
        Case(name: "unknown field", method: .POST, path: "/v1/sessions", body: Array(#"{"user_id":"u","admin":true}"#.utf8), status: 400, code: "invalid_request"),
        Case(name: "data not an object", method: .POST, path: "/v1/sessions", body: Array(#"{"user_id":"u","data":[1]}"#.utf8), status: 400, code: "invalid_request"),
        Case(name: "data null", method: .POST, path: "/v1/sessions", body: Array(#"{"user_id":"u","data":null}"#.utf8), status: 400, code: "invalid_request"),
        Case(name: "idle_timeout zero", method: .POST, path: "/v1/sessions", body: Array(#"{"user_id":"u","idle_timeout":0}"#.utf8), status: 400, code: "invalid_request"),
        Case(name: "idle_timeout above configured", method: .POST, path: "/v1/sessions", body: Array(#"{"user_id":"u","idle_timeout":1801}"#.utf8), status: 400, code: "invalid_request"),
        Case(name: "idle_timeout fractional", method: .POST, path: "/v1/sessions", body: Array(#"{"user_id":"u","idle_timeout":1.5}"#.utf8), status: 400, code: "invalid_request"),
        Case(name: "absolute_timeout string", method: .POST, path: "/v1/sessions", body: Array(#"{"user_id":"u","absolute_timeout":"60"}"#.utf8), status: 400, code: "invalid_request"),
        Case(name: "ip too long", method: .POST, path: "/v1/sessions", body: Array("{\"user_id\":\"u\",\"ip\":\"\(String(repeating: "1", count: 65))\"}".utf8), status: 400, code: "invalid_request"),
        Case(name: "user_agent too long", method: .POST, path: "/v1/sessions", body: Array("{\"user_id\":\"u\",\"user_agent\":\"\(String(repeating: "a", count: 513))\"}".utf8), status: 400, code: "invalid_request"),
        Case(name: "invalid UTF-8", method: .POST, path: "/v1/sessions", body: [0x7B, 0x22, 0x75, 0x73, 0x65, 0x72, 0x5F, 0x69, 0x64, 0x22, 0x3A, 0x22, 0xC3, 0x28, 0x22, 0x7D], status: 400, code: "invalid_request"),
        Case(name: "data over the limit", method: .POST, path: "/v1/sessions", body: Array("{\"user_id\":\"u\",\"data\":{\"x\":\"\(String(repeating: "a", count: 17000))\"}}".utf8), status: 413, code: "payload_too_large"),
        Case(name: "oversize body", method: .POST, path: "/v1/sessions", body: Array(repeating: 0x20, count: 200_000), status: 413, code: "payload_too_large"),
        Case(name: "10 MB body", method: .POST, path: "/v1/sessions", body: Array(repeating: 0x61, count: 10 * 1024 * 1024), status: 413, code: "payload_too_large"),
        Case(name: "limit zero", method: .GET, path: "/v1/users/u/sessions?limit=0", status: 400, code: "invalid_request"),
        Case(name: "limit over 1000", method: .GET, path: "/v1/users/u/sessions?limit=1001", status: 400, code: "invalid_request"),
        Case(name: "limit not a number", method: .GET, path: "/v1/users/u/sessions?limit=ten", status: 400, code: "invalid_request"),
        Case(name: "cursor malformed", method: .GET, path: "/v1/users/u/sessions?cursor=abc", status: 400, code: "invalid_request"),
        Case(name: "unknown query parameter", method: .GET, path: "/v1/users/u/sessions?limt=5", status: 400, code: "invalid_request"),
        Case(name: "except malformed", method: .DELETE, path: "/v1/users/u/sessions?except=xyz", status: 400, code: "invalid_request"),
        Case(name: "touch not a boolean", method: .GET, path: "/v1/session?touch=maybe", headers: [("X-Session-Token", validToken)], status: 400, code: "invalid_request"),
        Case(name: "token missing", method: .GET, path: "/v1/session", status: 401, code: "invalid_session"),
        Case(name: "token too short", method: .GET, path: "/v1/session", headers: [("X-Session-Token", String(validToken.dropLast()))], status: 401, code: "invalid_session"),
        Case(name: "token padded", method: .GET, path: "/v1/session", headers: [("X-Session-Token", validToken + "=")], status: 401, code: "invalid_session"),
        Case(name: "token with + and /", method: .GET, path: "/v1/session", headers: [("X-Session-Token", "+" + validToken.dropFirst(2) + "/")], status: 401, code: "invalid_session"),
        Case(name: "token non-canonical last char", method: .GET, path: "/v1/session", headers: [("X-Session-Token", validToken.dropLast() + "B")], status: 401, code: "invalid_session"),
        Case(name: "token unknown", method: .GET, path: "/v1/session", headers: [("X-Session-Token", validToken)], status: 401, code: "invalid_session"),
        Case(name: "token in another cookie only", method: .GET, path: "/v1/session", headers: [("Cookie", "session=\(validToken)")], status: 401, code: "invalid_session"),
        Case(name: "patch body not an object", method: .PATCH, path: "/v1/session", headers: [("X-Session-Token", validToken)], body: Array("[]".utf8), status: 400, code: "invalid_request"),
        Case(name: "If-Match unquoted garbage", method: .PATCH, path: "/v1/session", headers: [("X-Session-Token", validToken), ("If-Match", "abc")], body: Array("{}".utf8), status: 400, code: "invalid_request"),
        Case(name: "handle malformed", method: .GET, path: "/v1/sessions/not-a-handle", status: 404, code: "not_found"),
        Case(name: "handle unknown", method: .GET, path: "/v1/sessions/AAAAAAAAAAAAAAAA", status: 404, code: "not_found"),
        Case(name: "token given as handle", method: .GET, path: "/v1/sessions/\(validToken)", status: 404, code: "not_found"),
        Case(name: "unknown route", method: .GET, path: "/v2/sessions", status: 404, code: "not_found"),
        Case(name: "wrong method", method: .PUT, path: "/v1/session", status: 405, code: "method_not_allowed"),
        Case(name: "wrong method on collection", method: .GET, path: "/v1/sessions", status: 405, code: "method_not_allowed"),
        Case(name: "no API key", method: .GET, path: "/v1/session", key: nil, status: 401, code: "invalid_api_key"),
        Case(name: "unknown API key", method: .GET, path: "/v1/session", key: "x" + TestKeys.admin, status: 401, code: "invalid_api_key"),
        Case(name: "Basic scheme", method: .GET, path: "/v1/session", key: nil, headers: [("Authorization", "Basic YWxhZGRpbjpvcGVuc2VzYW1l")], status: 401, code: "invalid_api_key"),
        Case(name: "chunked body over the cap", method: .POST, path: "/v1/sessions", headers: [("Transfer-Encoding", "chunked")],
             body: Array(repeating: UInt8(ascii: "a"), count: 80000), status: 413, code: "payload_too_large"),
        Case(name: "user_id path not UTF-8 when decoded", method: .GET, path: "/v1/users/u%FF%FE/sessions", status: 400, code: "invalid_request"),
        Case(name: "user_id path overlong UTF-8", method: .DELETE, path: "/v1/users/u%C0%AF/sessions", status: 400, code: "invalid_request"),
        Case(name: "user_id with control character in path", method: .GET, path: "/v1/users/a%07b/sessions", status: 400, code: "invalid_request"),
    ]

    @Test(arguments: cases)
    func answersWithItsCode(_ bad: Case) async throws {
        try await Sessiond.with { server in
            var headers = bad.headers
            if let key = bad.key { headers.append(("Authorization", "Bearer \(key)")) }
            let response = try await server.client.send(bad.method, bad.path, headers: headers, body: bad.body)
            #expect(response.status == bad.status, "\(bad.name): \(response.text)")
            #expect(response.errorCode == bad.code, "\(bad.name): \(response.text)")
            #expect(response.headers["Content-Type"].first == "application/json")
            #expect(!response.text.contains(Self.validToken), "error bodies never echo a token")
            if bad.code == "invalid_api_key" {
                #expect(response.headers["WWW-Authenticate"].first == "Bearer")
            }
            if bad.method == .POST {
                #expect(try await server.redisKeys().isEmpty, "a refused create stores nothing")
            }
        }
    }

    /// Chunked framing the HTTP decoder refuses (a size that is not hex, a chunk longer than its
    /// size) is the client's error: 400, never 500. Sent over a raw socket, as no HTTP client
    /// library writes broken framing.
    @Test(arguments: ["zz\r\n{}\r\n0\r\n\r\n", "1\r\n{\"user_id\":\"x\"}\r\n0\r\n\r\n"])
    func malformedChunkedFramingIs400(_ body: String) async throws {
        try await Sessiond.with { server in
            let connection = try ConnectionLimitsTests.RawConnection(port: server.client.port)
            connection.write("POST /v1/sessions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer \(TestKeys.app)\r\n"
                + "Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n" + body)
            var pending = [UInt8]()
            let answer = try #require(try await connection.readResponse(buffered: &pending, for: .seconds(5)))
            #expect(answer.hasPrefix("HTTP/1.1 400"), "\(answer.prefix(60))")
            #expect(answer.contains("\"error\":\"invalid_request\""))
            #expect(try await server.redisKeys().isEmpty, "a refused create stores nothing")
        }
    }
}
