import SessionStore

/// Renders sessions as the API shows them (SPEC §4). The token is written only where the
/// caller passes it: in the answer to create and rotate.
enum SessionJSON {
    static func write(_ session: Session, into json: inout JSONWriter, token: String? = nil, setCookie: String? = nil) {
        json.beginObject()
        json.key("handle"); json.string(session.handle.encoded)
        json.key("user_id"); json.string(session.userID)
        json.key("data")
        if session.data.isEmpty { json.emptyObject() } else { json.raw(session.data) }
        json.key("version"); json.integer(session.version)
        json.key("created_at"); json.timestamp(milliseconds: session.createdAt)
        json.key("last_seen_at"); json.timestamp(milliseconds: session.lastSeenAt)
        json.key("idle_expires_at"); json.timestamp(milliseconds: session.idleExpiresAt)
        json.key("expires_at"); json.timestamp(milliseconds: session.expiresAt)
        json.key("ip"); json.optionalString(session.ip)
        json.key("user_agent"); json.optionalString(session.userAgent)
        if let token {
            json.key("token"); json.string(token)
        }
        if let setCookie {
            json.key("set_cookie"); json.string(setCookie)
        }
        json.endObject()
    }

    static func render(_ session: Session, token: String? = nil, setCookie: String? = nil) -> [UInt8] {
        var json = JSONWriter(capacity: 384 + session.data.count)
        write(session, into: &json, token: token, setCookie: setCookie)
        return json.bytes
    }
}
