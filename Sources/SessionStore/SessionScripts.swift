import RedisClient

/// The store's Redis scripts, each loaded once per server and run with EVALSHA.
struct SessionScripts: Sendable {
    let create = Self.script("create", SessionScriptSource.create)
    let createCapped = Self.script("create_capped", SessionScriptSource.createCapped)
    let touchBatch = Self.script("touch_batch", SessionScriptSource.touchBatch)
    let replaceData = Self.script("replace_data", SessionScriptSource.replaceData)
    let revoke = Self.script("revoke", SessionScriptSource.revoke)
    let rotate = Self.script("rotate", SessionScriptSource.rotate)
    let listPage = Self.script("list_page", SessionScriptSource.listPage)
    let migrateIndex = Self.script("migrate_index", SessionScriptSource.migrateIndex)
    let fence = Self.script("fence", SessionScriptSource.fence)
    let revokeMembers = Self.script("revoke_members", SessionScriptSource.revokeMembers)
    let routingKey = Self.script("routing_key", SessionScriptSource.routingKey)

    private static func script(_ name: String, _ body: String) -> RedisScript {
        RedisScript(name: name, source: SessionScriptSource.prelude(for: body) + body)
    }
}

/// The refusals the scripts answer with `redis.error_reply` (their first word): the store's
/// reasons to try again, typed once here rather than compared as text at each call.
enum SessionScriptRefusal: String {
    /// The new handle already names a session (a 78-bit collision, or a retried create).
    case collision = "COLLISION"
    /// What the script was given no longer matches Redis (the index changed, or the record
    /// belongs to another user).
    case stale = "STALE"
    /// The user still has a format-1 index: it is moved to the format-2 index, then the call
    /// is made again.
    case legacyIndex = "LEGACY"

    init?(_ error: RedisClientError) {
        guard case .other(let word)? = error.reply else { return nil }
        self.init(rawValue: word)
    }
}
