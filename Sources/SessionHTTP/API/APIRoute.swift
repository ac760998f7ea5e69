import Hummingbird

/// One route of API v1: method, path template (OpenAPI style, `{name}` for a parameter) and the
/// role it needs. The router is built from this table, and so are the 405 answers and the test
/// that keeps openapi.yaml in step.
public struct APIRoute: Sendable, Equatable {
    public let method: HTTPRequest.Method
    public let path: String
    /// nil: no API key needed.
    public let role: Role?
    /// The template's last parameter takes the rest of the path, slashes included
    /// (`/v1/auth/{path}`: the original path a forward-auth proxy appends).
    var takesSubpaths = false

    /// The paths of lookup and create, which `SessionLookupChannelHandler` answers in front of
    /// the router.
    static let lookupPath = "/v1/session"
    static let createPath = "/v1/sessions"
    /// Forward auth: answers like the lookup, whatever path and method the proxy passes on.
    static let forwardAuthPath = "/v1/auth/{path}"
    static let forwardAuthMethods: [HTTPRequest.Method] = [.get, .post, .put, .patch, .delete, .options]

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
    ] + forwardAuthMethods.map { .init(method: $0, path: forwardAuthPath, role: .reader, takesSubpaths: true) } + [
        .init(method: .get, path: "/healthz", role: nil),
        .init(method: .get, path: "/readyz", role: nil),
        .init(method: .get, path: "/metrics", role: .reader),
    ]

    /// The paths the router mounts (Hummingbird reads `{name}` as a parameter), which are also
    /// how it names the route once matched (`context.endpointPath`): the template, with `**` for
    /// a parameter that takes subpaths, and then the bare prefix (Hummingbird's `**` needs one
    /// segment, and a proxy checking a request for `/` asks for `/v1/auth/`).
    var endpointPaths: [String] {
        guard takesSubpaths, let slash = path.lastIndex(of: "/") else { return [path] }
        return [path[...slash] + "**", String(path[..<slash])]
    }

    func matches(path requestPath: String) -> Bool {
        let template = path.split(separator: "/", omittingEmptySubsequences: false)
        let actual = requestPath.split(separator: "/", omittingEmptySubsequences: false)
        if takesSubpaths {
            return actual.count >= template.count - 1 && zip(template.dropLast(), actual).allSatisfy { $0 == $1 }
        }
        guard template.count == actual.count else { return false }
        return zip(template, actual).allSatisfy { pattern, segment in
            pattern.hasPrefix("{") ? !segment.isEmpty : pattern == segment
        }
    }
}
