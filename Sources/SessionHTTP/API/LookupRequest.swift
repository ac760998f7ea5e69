import HTTPTypes
import Hummingbird
import HummingbirdCore
import NIOCore
import SessionStore

/// The parts of `GET /v1/session` that the router's handler and the event-loop fast path
/// (`SessionLookupChannelHandler`) share, so both answer alike.
enum LookupRequest {
    /// `?touch=true|false` (default true); any other query parameter is refused.
    static func touch(in uri: URI) throws(APIError) -> Bool {
        switch try QueryParameters.parse(uri, allowed: ["touch"])["touch"] {
        case nil, "true": return true
        case "false": return false
        default: throw APIError.invalidRequest("touch must be true or false")
        }
    }

    /// A lookup's answer from what it found: the session (with its identity headers for
    /// `auth_request`), or `invalid_session` when the token
    /// was missing, malformed, unknown, expired or revoked. Each such refusal is counted by the
    /// role of the key that asked, a brute-force signal; both front ends answer through here.
    static func answer(
        _ found: Result<Session?, APIError>, role: Role?, metrics: ServiceMetrics
    ) throws(APIError) -> JSONAnswer {
        let refusal: APIError
        switch found {
        case .success(let session?): return JSONAnswer(status: .ok, body: SessionJSON.render(session), session: session, namesUser: true)
        case .success(nil): refusal = .noSession
        case .failure(let error): refusal = error
        }
        if refusal.code == APIError.noSession.code, let role { metrics.recordInvalidSessionLookup(role: role) }
        throw refusal
    }
}

/// Query parameters, strictly: only `allowed` names, each at most once.
enum QueryParameters {
    @discardableResult
    static func parse(_ uri: URI, allowed: Set<String>) throws(APIError) -> [String: String] {
        var result = [String: String]()
        for (name, value) in uri.queryParameters {
            let key = String(name)
            guard allowed.contains(key) else { throw APIError.invalidRequest("unknown query parameter '\(key.prefix(64))'") }
            guard result.updateValue(String(value), forKey: key) == nil else {
                throw APIError.invalidRequest("query parameter '\(key)' is given twice")
            }
        }
        return result
    }
}
