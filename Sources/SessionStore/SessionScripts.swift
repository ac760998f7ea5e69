import RedisClient

/// The store's Redis scripts, each loaded once per client and run with EVALSHA.
struct SessionScripts: Sendable {
    let create = Self.script("create", SessionScriptSource.create)
    let lookup = Self.script("lookup", SessionScriptSource.lookup)
    let replaceData = Self.script("replace_data", SessionScriptSource.replaceData)
    let revoke = Self.script("revoke", SessionScriptSource.revoke)
    let rotate = Self.script("rotate", SessionScriptSource.rotate)
    let forceLogout = Self.script("force_logout", SessionScriptSource.forceLogout)
    let list = Self.script("list", SessionScriptSource.list)

    private static func script(_ name: String, _ body: String) -> RedisScript {
        RedisScript(name: name, source: SessionScriptSource.common + body)
    }
}
