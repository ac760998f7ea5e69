import SessionStore

/// Validation of what clients send. Every rule answers with a message naming the field;
/// nothing here echoes a token or a key.
enum SessionRequests {
    static let maxUserIDLength = 256
    static let maxIPLength = 64
    static let maxUserAgentLength = 512

    /// Bodies are JSON around at most one `data` object; anything larger is refused unread.
    static func bodyLimit(policy: SessionPolicy) -> Int { 4 * policy.maxDataBytes + 8192 }

    static func parseObject(_ body: [UInt8], what: String) throws -> [String: JSONValue] {
        let value: JSONValue
        do {
            value = try JSONValue.parse(body)
        } catch .duplicateName(let name) {
            throw APIError.invalidRequest("\(what) names the member '\(name.prefix(64))' twice in one object (canonically equivalent Unicode names count as the same)")
        } catch .tooDeep {
            throw APIError.invalidRequest("\(what) nests arrays and objects deeper than \(JSONValue.maxNestingDepth) levels")
        } catch {
            throw APIError.invalidRequest("\(what) is not valid JSON (UTF-8)")
        }
        guard case .object(let object) = value else { throw APIError.invalidRequest("\(what) must be a JSON object") }
        return object
    }

    private static let newSessionFields: Set<String> = ["user_id", "data", "idle_timeout", "absolute_timeout", "ip", "user_agent"]

    /// The body of `POST /v1/sessions`.
    static func newSession(from body: [UInt8], policy: SessionPolicy) throws -> NewSession {
        let object = try parseObject(body, what: "request body")
        // The first unknown name in sorted order, so the error names the same one every time.
        if let unknown = object.keys.filter({ !newSessionFields.contains($0) }).min() {
            throw APIError.invalidRequest("unknown field '\(unknown.prefix(64))'")
        }
        guard let userValue = object["user_id"] else { throw APIError.invalidRequest("user_id is required") }
        var session = NewSession(userID: try userID(userValue, field: "user_id"))
        if let data = object["data"] {
            guard case .object(let fields) = data else { throw APIError.invalidRequest("data must be a JSON object") }
            session.data = fields.isEmpty ? [] : data.serialized()
            if session.data.count > policy.maxDataBytes {
                throw APIError.payloadTooLarge("data is \(session.data.count) bytes as JSON; the limit is \(policy.maxDataBytes)")
            }
        }
        session.idleTimeout = try timeout(object["idle_timeout"], field: "idle_timeout", maximum: policy.idleTimeout)
        session.absoluteTimeout = try timeout(object["absolute_timeout"], field: "absolute_timeout", maximum: policy.absoluteTimeout)
        if let ip = object["ip"] {
            guard case .string(let text) = ip, text.utf8.count <= maxIPLength,
                  text.utf8.allSatisfy({ $0 > 0x20 && $0 < 0x7F })
            else { throw APIError.invalidRequest("ip must be a string of at most \(maxIPLength) printable ASCII characters") }
            session.ip = text.isEmpty ? nil : text
        }
        if let agent = object["user_agent"] {
            guard case .string(let text) = agent, text.unicodeScalars.count <= maxUserAgentLength, !hasControlCharacters(text) else {
                throw APIError.invalidRequest("user_agent must be a string of at most \(maxUserAgentLength) characters without control characters")
            }
            session.userAgent = text.isEmpty ? nil : text
        }
        return session
    }

    static func userID(_ value: JSONValue, field: String) throws -> String {
        guard case .string(let text) = value else { throw APIError.invalidRequest("\(field) must be a string") }
        return try userID(text, field: field)
    }

    static func userID(_ text: String, field: String) throws -> String {
        let length = text.unicodeScalars.count
        guard length >= 1, length <= maxUserIDLength, !hasControlCharacters(text) else {
            throw APIError.invalidRequest("\(field) must be 1 to \(maxUserIDLength) characters without control characters")
        }
        // HTTP strips a header value's outer white space, so "alice " would reach proxies as
        // X-Session-User-Id: alice; such ids are refused rather than silently changed.
        guard let first = text.unicodeScalars.first, let last = text.unicodeScalars.last,
              !first.properties.isWhitespace, !last.properties.isWhitespace
        else { throw APIError.invalidRequest("\(field) must not begin or end with white space") }
        return text
    }

    private static func timeout(_ value: JSONValue?, field: String, maximum: Int) throws -> Int? {
        guard let value else { return nil }
        guard case .integer(let seconds) = value, seconds >= 1, seconds <= maximum else {
            throw APIError.invalidRequest("\(field) must be a whole number of seconds from 1 to \(maximum)")
        }
        return Int(seconds)
    }

    /// Unicode general category Cc: C0, DEL and C1 controls.
    static func hasControlCharacters(_ text: String) -> Bool {
        text.unicodeScalars.contains { $0.value < 0x20 || (0x7F...0x9F).contains($0.value) }
    }
}
