import Synchronization

/// A Lua script run with EVALSHA. Its SHA1 comes from `SCRIPT LOAD` on first use and is kept
/// here; when Redis has forgotten it (restart, `SCRIPT FLUSH`) the client loads it again.
public final class RedisScript: Sendable {
    public let name: String
    public let source: String
    private let loadedSHA = Mutex<String?>(nil)

    public init(name: String, source: String) {
        self.name = name
        self.source = source
    }

    var sha: String? { loadedSHA.withLock { $0 } }

    func remember(sha: String) { loadedSHA.withLock { $0 = sha } }
}
