import HTTPTypes
import SessionCrypto
import SessionStore

/// The session cookie: how tokens are read from a `Cookie` header and the `Set-Cookie`
/// values handed to apps.
struct SessionCookie: Sendable {
    let name: String
    let sameSite: CookieSameSite

    /// `NAME=TOKEN; Path=/; Secure; HttpOnly; SameSite=Lax; Max-Age=N`, living until the
    /// session's absolute end: the idle timeout is enforced by the server as it slides.
    func set(token: String, session: Session) -> String {
        let seconds = max(0, (session.expiresAt - session.lastSeenAt + 999) / 1000)
        return "\(name)=\(token); Path=/; Secure; HttpOnly; SameSite=\(sameSite.rawValue); Max-Age=\(seconds)"
    }

    /// A new token's answer (create, rotate): the session, the token, and the cookie carrying it.
    func answer(_ session: Session, token: SessionToken, status: HTTPResponse.Status) -> JSONAnswer {
        let encoded = token.encoded
        let body = SessionJSON.render(session, token: encoded, setCookie: set(token: encoded, session: session))
        return JSONAnswer(status: status, body: body, session: session)
    }

    var clear: String {
        "\(name)=; Path=/; Secure; HttpOnly; SameSite=\(sameSite.rawValue); Max-Age=0"
    }

    /// The request's session token: `X-Session-Token`, else this cookie.
    func token(in headers: HTTPFields) throws(APIError) -> SessionToken {
        try token(header: headers[.sessionToken]?.utf8, cookies: headers[values: .cookie])
    }

    /// The same from the X-Session-Token value's bytes (repeated fields joined by ", ") and the
    /// Cookie field values, as the lookup fast path reads them.
    func token(header: (some Collection<UInt8>)?, cookies: [String]) throws(APIError) -> SessionToken {
        let token: SessionToken?
        if let header {
            token = SessionToken(parsing: header)
        } else if let value = cookies.lazy.compactMap({ self.value(inCookieHeader: Substring($0)) }).first {
            token = SessionToken(parsing: value)
        } else {
            throw APIError.invalidSession("no session token: send X-Session-Token or the \(name) cookie")
        }
        guard let token else { throw APIError.invalidSession("malformed session token") }
        return token
    }

    /// The value of this cookie in a `Cookie` header (`a=1; b=2`), if present.
    func value(inCookieHeader header: Substring) -> Substring? {
        for pair in header.split(separator: ";") {
            let trimmed = pair.trimmingASCIISpaces()
            guard let equals = trimmed.firstIndex(of: "="), trimmed[..<equals] == name else { continue }
            var value = trimmed[trimmed.index(after: equals)...]
            if value.count >= 2, value.first == "\"", value.last == "\"" { value = value.dropFirst().dropLast() }
            return value
        }
        return nil
    }
}
