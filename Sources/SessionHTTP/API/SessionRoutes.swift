import Hummingbird
import NIOCore
import RedisClient
import SessionCrypto
import SessionStore

/// The handlers of API v1 (SPEC §4), mounted from the `APIRoute.all` table.
struct SessionRoutes<Context: RequestContext>: Sendable {
    let store: SessionStore
    let redis: any RedisDeployment
    let keys: APIKeyRing
    let cookie: SessionCookie
    let metrics: ServiceMetrics

    var bodyLimit: Int { SessionRequests.bodyLimit(policy: store.policy) }

    func register(on router: Router<Context>) {
        for route in APIRoute.all {
            let handler = self.handler(for: route)
            let required = route.role
            for path in route.endpointPaths {
                router.on(RouterPath(path), method: route.method) { request, context -> Response in
                    let role = try required.map { try keys.authorize(request.headers[.authorization], $0) }
                    return try await handler(request, context, role)
                }
            }
        }
    }

    /// The route's handler; it is given the role the route's key check found (nil on a route
    /// open to all).
    private func handler(for route: APIRoute) -> @Sendable (Request, Context, Role?) async throws -> Response {
        let plain: @Sendable (Request, Context) async throws -> Response
        switch (route.method, route.path) {
        case (.get, "/v1/session"): return lookup
        case (_, APIRoute.forwardAuthPath): return forwardAuth
        case (.post, "/v1/sessions"): plain = create
        case (.patch, "/v1/session"): plain = update
        case (.delete, "/v1/session"): plain = revoke
        case (.post, "/v1/session/rotate"): plain = rotate
        case (.get, "/v1/users/{user_id}/sessions"): plain = listUserSessions
        case (.delete, "/v1/users/{user_id}/sessions"): plain = forceLogout
        case (.get, "/v1/sessions/{handle}"): plain = readByHandle
        case (.delete, "/v1/sessions/{handle}"): plain = revokeByHandle
        case (.get, "/healthz"): plain = health
        case (.get, "/readyz"): plain = readiness
        case (.get, "/metrics"): plain = exposition
        default: preconditionFailure("no handler for \(route.method) \(route.path)")
        }
        return { request, context, _ in try await plain(request, context) }
    }

    // MARK: sessions by token

    @Sendable func create(_ request: Request, _ context: Context) async throws -> Response {
        try QueryParameters.parse(request.uri, allowed: [])
        let body = try await readBody(request)
        let created = try await store.create(try SessionRequests.newSession(from: body, policy: store.policy))
        return cookie.answer(created.session, token: created.token, status: .created).response
    }

    /// GET /v1/session. Most lookups never get here: `SessionLookupChannelHandler` answers them
    /// on the connection's event loop, with the same parsing; this route answers a GET that
    /// announces a body.
    @Sendable func lookup(_ request: Request, _ context: Context, role: Role?) async throws -> Response {
        try await answerLookup(request, touch: try LookupRequest.touch(in: request.uri), role: role)
    }

    /// `/v1/auth/{path}`, any method forward-auth proxies pass on: the lookup. The path, query
    /// and body are the original request's, so none is read, and the request counts as activity.
    @Sendable func forwardAuth(_ request: Request, _ context: Context, role: Role?) async throws -> Response {
        try await answerLookup(request, touch: true, role: role)
    }

    private func answerLookup(_ request: Request, touch: Bool, role: Role?) async throws -> Response {
        let found: Result<Session?, APIError>
        do {
            found = .success(try await store.lookup(try cookie.token(in: request.headers), touch: touch))
        } catch let error as APIError {
            found = .failure(error)
        }
        return try LookupRequest.answer(found, role: role, metrics: metrics).response
    }

    @Sendable func update(_ request: Request, _ context: Context) async throws -> Response {
        try QueryParameters.parse(request.uri, allowed: [])
        let token = try cookie.token(in: request.headers)
        let ifMatch = try expectedVersion(request)
        let patch = JSONValue.object(try SessionRequests.parseObject(try await readBody(request), what: "merge patch"))
        switch try await store.updateData(token, ifMatch: ifMatch, patch: patch) {
        case .updated(let session):
            return json(.ok, SessionJSON.render(session), session: session)
        case .noSession:
            throw APIError.noSession
        case .versionMismatch(let current):
            throw APIError.versionMismatch(current: current)
        case .dataTooLarge(let bytes):
            throw APIError.payloadTooLarge("data would be \(bytes) bytes as JSON; the limit is \(store.policy.maxDataBytes)")
        }
    }

    @Sendable func revoke(_ request: Request, _ context: Context) async throws -> Response {
        try QueryParameters.parse(request.uri, allowed: [])
        let token = try cookie.token(in: request.headers)
        let revoked = try await store.revoke(token)
        return revokeAnswer(revoked, handle: token.handle)
    }

    @Sendable func rotate(_ request: Request, _ context: Context) async throws -> Response {
        try QueryParameters.parse(request.uri, allowed: [])
        guard let rotated = try await store.rotate(try cookie.token(in: request.headers)) else {
            throw APIError.noSession
        }
        return cookie.answer(rotated.session, token: rotated.token, status: .ok).response
    }

    // MARK: admin

    @Sendable func listUserSessions(_ request: Request, _ context: Context) async throws -> Response {
        let userID = try pathUserID(context)
        let query = try QueryParameters.parse(request.uri, allowed: ["limit", "cursor"])
        var limit = 100
        if let text = query["limit"] {
            guard let value = Int(text), (1...1000).contains(value) else {
                throw APIError.invalidRequest("limit must be a whole number from 1 to 1000")
            }
            limit = value
        }
        var cursor: SessionListCursor?
        if let text = query["cursor"] {
            guard let parsed = SessionListCursor(parsing: text) else { throw APIError.invalidRequest("cursor is malformed") }
            cursor = parsed
        }
        let page = try await store.list(userID: userID, limit: limit, after: cursor)
        var json = JSONWriter(capacity: 256 + page.sessions.count * 400)
        json.beginObject()
        json.key("user_id"); json.string(userID)
        json.key("sessions")
        json.beginArray()
        for session in page.sessions { SessionJSON.write(session, into: &json) }
        json.endArray()
        json.key("total"); json.integer(page.total)
        json.key("next_cursor"); json.optionalString(page.nextCursor?.encoded)
        json.endObject()
        return self.json(.ok, json.bytes)
    }

    @Sendable func forceLogout(_ request: Request, _ context: Context) async throws -> Response {
        let userID = try pathUserID(context)
        let query = try QueryParameters.parse(request.uri, allowed: ["except"])
        var keep: SessionHandle?
        if let text = query["except"] {
            guard let handle = SessionHandle(parsing: text) else { throw APIError.invalidRequest("except must be a session handle") }
            keep = handle
        }
        let revoked = try await store.forceLogout(userID: userID, except: keep)
        var json = JSONWriter(capacity: 32)
        json.beginObject()
        json.key("revoked"); json.integer(revoked)
        json.endObject()
        return self.json(.ok, json.bytes)
    }

    @Sendable func readByHandle(_ request: Request, _ context: Context) async throws -> Response {
        try QueryParameters.parse(request.uri, allowed: [])
        guard let session = try await store.session(handle: try pathHandle(context)) else {
            throw APIError.notFound("no session with this handle")
        }
        return json(.ok, SessionJSON.render(session), session: session)
    }

    @Sendable func revokeByHandle(_ request: Request, _ context: Context) async throws -> Response {
        try QueryParameters.parse(request.uri, allowed: [])
        let handle = try pathHandle(context)
        guard try await store.revoke(handle: handle) else { throw APIError.notFound("no session with this handle") }
        return revokeAnswer(true, handle: handle)
    }

    // MARK: health

    @Sendable func health(_ request: Request, _ context: Context) async throws -> Response {
        json(.ok, Array(#"{"status":"ok"}"#.utf8))
    }

    @Sendable func readiness(_ request: Request, _ context: Context) async throws -> Response {
        do {
            try await redis.ping()
        } catch {
            throw APIError.storeUnavailable("Redis does not answer")
        }
        return json(.ok, Array(#"{"status":"ready"}"#.utf8))
    }

    // MARK: metrics

    /// The Prometheus text format (README, "Metrics"); any key may read it.
    @Sendable func exposition(_ request: Request, _ context: Context) async throws -> Response {
        try QueryParameters.parse(request.uri, allowed: [])
        let body = await metrics.exposition(redis: redis)
        return Response(
            status: .ok,
            headers: [.contentType: "text/plain; version=0.0.4; charset=utf-8", .cacheControl: "no-store"],
            body: .init(byteBuffer: body)
        )
    }

    // MARK: request pieces

    /// `If-Match: "N"`, `*` or absent. A weak tag (`W/"N"`) never matches, as RFC 9110's strong
    /// comparison requires, so it is answered 412 like any other mismatch.
    private func expectedVersion(_ request: Request) throws -> Int? {
        guard let header = request.headers[.ifMatch] else { return nil }
        let candidate = header.trimmingASCIISpaces()
        if candidate == "*" { return nil }
        let isWeak = candidate.hasPrefix("W/")
        let tag = isWeak ? candidate.dropFirst(2) : candidate
        let digits = tag.dropFirst().dropLast()
        guard tag.count >= 3, tag.first == "\"", tag.last == "\"", digits.utf8.allSatisfy({ (48...57).contains($0) }) else {
            throw APIError.invalidRequest("If-Match must be one quoted version such as \"3\"")
        }
        // A version too large to be real, like a weak tag, simply matches nothing: 412.
        guard !isWeak, let version = Int(digits) else { return -1 }
        return version
    }

    private func readBody(_ request: Request) async throws -> [UInt8] {
        if let length = request.headers[.contentLength].flatMap({ Int($0) }), length > bodyLimit {
            throw APIError.payloadTooLarge("request body is larger than \(bodyLimit) bytes")
        }
        do {
            let buffer = try await request.body.collect(upTo: bodyLimit)
            return Array(buffer.readableBytesView)
        } catch is NIOTooManyBytesError {
            // A chunked body announces no length: it is refused once it outgrows the cap.
            throw APIError.payloadTooLarge("request body is larger than \(bodyLimit) bytes")
        } catch is CancellationError {
            throw CancellationError()
        } catch {
            // The HTTP decoder refused the body's framing (a bad chunk size, a chunk longer than
            // announced): the client's fault, not ours.
            throw APIError.invalidRequest("request body framing is malformed")
        }
    }

    private func pathUserID(_ context: Context) throws -> String {
        guard let raw = context.parameters.get("user_id") else { throw APIError.notFound("no such route") }
        // A percent-encoding that does not decode to UTF-8 is an error, not a literal user id
        // (else one user would answer at two paths).
        guard let decoded = raw.removingPercentEncoding else {
            throw APIError.invalidRequest("user_id in the path is not percent-encoded UTF-8")
        }
        return try SessionRequests.userID(decoded, field: "user_id")
    }

    private func pathHandle(_ context: Context) throws -> SessionHandle {
        guard let text = context.parameters.get("handle"), let handle = SessionHandle(parsing: text) else {
            throw APIError.notFound("no session with this handle")
        }
        return handle
    }

    // MARK: responses

    private func json(_ status: HTTPResponse.Status, _ body: [UInt8], session: Session? = nil) -> Response {
        JSONAnswer(status: status, body: body, session: session).response
    }

    private func revokeAnswer(_ revoked: Bool, handle: SessionHandle) -> Response {
        var json = JSONWriter(capacity: 128)
        json.beginObject()
        json.key("revoked"); json.bool(revoked)
        json.key("clear_cookie"); json.string(cookie.clear)
        json.endObject()
        return JSONAnswer(status: .ok, body: json.bytes, extraHeaders: [.sessionHandle: handle.encoded]).response
    }
}
