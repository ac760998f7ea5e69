/// What an error reply says, parsed once from its text where the reply is read, so that no
/// caller compares message text. Redis puts a code word first (`-MOVED 3999 10.0.0.2:7000`,
/// `-NOSCRIPT No matching script`); so do sessiond's scripts (`redis.error_reply('STALE ...')`).
public enum RedisErrorCode: Sendable, Equatable {
    /// Cluster: `slot` lives at `address` from now on (`host:port`; the host may be empty,
    /// meaning the node that answered).
    case moved(slot: Int, address: String)
    /// Cluster: `slot` is migrating; ask `address` once, after `ASKING`.
    case ask(slot: Int, address: String)
    /// `EVALSHA` of a script the server does not hold (restarted, flushed, failed over).
    case noScript
    /// Cluster: a multi-key command met keys split by a migration in progress.
    case tryAgain
    /// Cluster: the cluster is down, or (`slotUnserved`) this slot has no master.
    case clusterDown(slotUnserved: Bool)
    /// The node is a replica now.
    case readOnly
    /// A write refused at `maxmemory` under `noeviction`, also from inside a script.
    case outOfMemory
    /// The ACL user may not run this command or touch this key.
    case noPermission
    /// The server has no such command or subcommand (an older server).
    case unknownCommand
    /// Any other code word: `ERR`, `WRONGTYPE`, `WRONGPASS`, or a script's own.
    case other(String)

    public init(message: String) {
        let words = message.split(separator: " ", maxSplits: 3)
        let word = words.first.map(String.init) ?? ""
        switch word {
        case "MOVED", "ASK":
            guard words.count >= 3, let slot = Int(words[1]), (0..<HashSlot.count).contains(slot) else {
                self = .other(word)
                return
            }
            let address = String(words[2])
            self = word == "MOVED" ? .moved(slot: slot, address: address) : .ask(slot: slot, address: address)
        case "NOSCRIPT": self = .noScript
        case "TRYAGAIN": self = .tryAgain
        case "CLUSTERDOWN": self = .clusterDown(slotUnserved: message.contains("not served"))
        case "READONLY": self = .readOnly
        case "OOM": self = .outOfMemory
        case "NOPERM": self = .noPermission
        case "ERR" where words.count >= 3 && words[1].lowercased() == "unknown" && words[2].lowercased().hasSuffix("command"):
            self = .unknownCommand
        default: self = .other(word)
        }
    }
}
