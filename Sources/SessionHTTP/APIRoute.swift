import Hummingbird

/// One route of API v1: method, path template (OpenAPI style, `{name}` for a parameter) and the
/// role it needs. The router is built from this table, and so are the 405 answers and the test
/// that keeps openapi.yaml in step.
public struct APIRoute: Sendable, Equatable {
    public let method: HTTPRequest.Method
    public let path: String
    /// nil: no API key needed.
    public let role: Role?

    /// The paths of lookup and create, which `SessionLookupChannelHandler` answers in front of
    /// the router.
    static let lookupPath = "/v1/session"
    static let createPath = "/v1/sessions"

    public static let all: [APIRoute] = [
        .init(method: .post, path: createPath, role: .app),
        .init(method: .get, path: lookupPath, role: .reader),
        .init(method: .patch, path: "/v1/session", role: .app),
        .init(method: .delete, path: "/v1/session", role: .app),
        .init(method: .post, path: "/v1/session/rotate", role: .app),
        .init(method: .get, path: "/v1/users/{user_id}/sessions", role: .admin),
        .init(method: .delete, path: "/v1/users/{user_id}/sessions", role: .admin),
        .init(method: .get, path: "/v1/sessions/{handle}", role: .admin),
        .init(method: .delete, path: "/v1/sessions/{handle}", role: .admin),
        .init(method: .get, path: "/healthz", role: nil),
        .init(method: .get, path: "/readyz", role: nil),
        .init(method: .get, path: "/metrics", role: .reader),
    ]

    /// The path in Hummingbird's syntax (`:name`).
    var routerPath: RouterPath {
        RouterPath(path.split(separator: "/").map { segment in
            segment.hasPrefix("{") ? ":" + segment.dropFirst().dropLast() : String(segment)
        }.joined(separator: "/"))
    }

    func matches(path requestPath: String) -> Bool {
        let template = path.split(separator: "/", omittingEmptySubsequences: false)
        let actual = requestPath.split(separator: "/", omittingEmptySubsequences: false)
        guard template.count == actual.count else { return false }
        return zip(template, actual).allSatisfy { pattern, segment in
            pattern.hasPrefix("{") ? !segment.isEmpty : pattern == segment
        }
    }

    static func methods(matching requestPath: String, in routes: [APIRoute]) -> [HTTPRequest.Method] {
        routes.filter { $0.matches(path: requestPath) }.map(\.method)
    }
}
