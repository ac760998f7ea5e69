import Hummingbird

/// An error answer of the API: a status and a stable code, with a message for humans.
/// Messages never carry tokens, API keys or anything else a client sent as a secret.
public struct APIError: Error, HTTPResponseError, Sendable {
    public let status: HTTPResponse.Status
    public let code: String
    public let message: String
    var extraHeaders: HTTPFields = [:]

    public var headers: HTTPFields { extraHeaders }

    public func response(from request: Request, context: some RequestContext) throws -> Response {
        answer.response
    }

    /// `{"error": code, "message": text}`.
    var body: [UInt8] {
        var json = JSONWriter()
        json.beginObject()
        json.key("error"); json.string(code)
        json.key("message"); json.string(message)
        json.endObject()
        return json.bytes
    }

    var answer: JSONAnswer {
        JSONAnswer(status: status, body: body, extraHeaders: extraHeaders)
    }

    static func invalidRequest(_ message: String) -> APIError {
        APIError(status: .badRequest, code: "invalid_request", message: message)
    }

    static func invalidAPIKey(_ message: String) -> APIError {
        APIError(status: .unauthorized, code: "invalid_api_key", message: message, extraHeaders: [.wwwAuthenticate: "Bearer"])
    }

    static func forbidden(_ message: String) -> APIError {
        APIError(status: .forbidden, code: "forbidden", message: message)
    }

    /// The answer when a token names no live session, whatever the operation.
    static let noSession = invalidSession("session is unknown, expired or revoked")

    static func invalidSession(_ message: String) -> APIError {
        APIError(status: .unauthorized, code: "invalid_session", message: message)
    }

    static func notFound(_ message: String) -> APIError {
        APIError(status: .notFound, code: "not_found", message: message)
    }

    static func methodNotAllowed(allowed: [HTTPRequest.Method]) -> APIError {
        APIError(
            status: .methodNotAllowed, code: "method_not_allowed",
            message: "method not allowed on this route",
            extraHeaders: [.allow: allowed.map(\.rawValue).joined(separator: ", ")]
        )
    }

    /// An update's `If-Match` named another version: 412, with the current one as its ETag.
    static func versionMismatch(current: Int) -> APIError {
        APIError(status: .preconditionFailed, code: "precondition_failed",
                 message: "If-Match does not match the session version", extraHeaders: [.eTag: "\"\(current)\""])
    }

    static func payloadTooLarge(_ message: String) -> APIError {
        APIError(status: .contentTooLarge, code: "payload_too_large", message: message)
    }

    static func storeUnavailable(_ message: String) -> APIError {
        APIError(status: .serviceUnavailable, code: "store_unavailable", message: message, extraHeaders: [.retryAfter: "1"])
    }

    /// Redis refused a write because it is at `maxmemory` with `noeviction`; reads, revocations
    /// and logouts still work (they free memory).
    static func storeFull() -> APIError {
        APIError(
            status: .init(code: 507, reasonPhrase: "Insufficient Storage"), code: "store_full",
            message: "the session store is full (Redis maxmemory); nothing was written", extraHeaders: [.retryAfter: "5"]
        )
    }

    static func internalError() -> APIError {
        APIError(status: .internalServerError, code: "internal_error", message: "unexpected server error")
    }
}
