/// Where a cluster node listens.
public struct RedisNodeAddress: Hashable, Sendable, CustomStringConvertible {
    public var host: String
    public var port: Int

    public init(host: String, port: Int) {
        self.host = host
        self.port = port
    }

    /// Parses `host:port` (the form of `MOVED`/`ASK` and of Sentinel lists); an empty host means
    /// `defaultHost` (Redis writes `:port` when the node does not know its own address).
    public init?(parsing text: some StringProtocol, defaultHost: String = "127.0.0.1") {
        guard let colon = text.lastIndex(of: ":"), let port = Int(text[text.index(after: colon)...]),
              (1...65535).contains(port)
        else { return nil }
        var host = String(text[..<colon])
        if host.hasPrefix("[") && host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        self.init(host: host.isEmpty || host == "?" ? defaultHost : host, port: port)
    }

    public var description: String { host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)" }
}

/// Which master serves each of the 16384 slots, from `CLUSTER SLOTS`.
struct ClusterTopology: Sendable, Equatable {
    /// Index into `masters` for each slot, or -1 when no master serves it.
    var slotOwners: [Int16]
    var masters: [RedisNodeAddress]
    var replicas: [RedisNodeAddress]

    static let empty = ClusterTopology(slotOwners: Array(repeating: -1, count: HashSlot.count), masters: [], replicas: [])

    /// `CLUSTER SLOTS` replies `[[start, end, [host, port, id, ...], replica..., ...], ...]`.
    /// `askedHost` stands in for a node that reports an empty address.
    init(clusterSlots reply: RESPValue, askedHost: String) throws {
        self = .empty
        guard let ranges = reply.array else {
            throw RedisClientError(.unexpectedReply, "CLUSTER SLOTS returned \(reply)")
        }
        for range in ranges {
            guard let parts = range.array, parts.count >= 3,
                  let start = parts[0].integer, let end = parts[1].integer,
                  start >= 0, end < HashSlot.count, start <= end,
                  let master = Self.address(parts[2], askedHost: askedHost)
            else { throw RedisClientError(.unexpectedReply, "CLUSTER SLOTS entry \(range)") }
            let index = masterIndex(master)
            for slot in Int(start)...Int(end) { slotOwners[slot] = index }
            for replica in parts.dropFirst(3) {
                if let address = Self.address(replica, askedHost: askedHost), !replicas.contains(address) {
                    replicas.append(address)
                }
            }
        }
    }

    private init(slotOwners: [Int16], masters: [RedisNodeAddress], replicas: [RedisNodeAddress]) {
        self.slotOwners = slotOwners
        self.masters = masters
        self.replicas = replicas
    }

    private static func address(_ node: RESPValue, askedHost: String) -> RedisNodeAddress? {
        guard let fields = node.array, fields.count >= 2, let host = fields[0].string, let port = fields[1].integer,
              (1...65535).contains(port)
        else { return nil }
        return RedisNodeAddress(host: host.isEmpty || host == "?" ? askedHost : host, port: Int(port))
    }

    func owner(of slot: Int) -> RedisNodeAddress? {
        let index = slotOwners[slot]
        return index < 0 ? nil : masters[Int(index)]
    }

    var unownedSlots: Int { slotOwners.lazy.filter { $0 < 0 }.count }

    /// The map after a `MOVED`: `slot` is served by `address` from now on.
    mutating func assign(_ slot: Int, to address: RedisNodeAddress) {
        slotOwners[slot] = masterIndex(address)
    }

    /// `address`'s place in `masters`, added when new.
    private mutating func masterIndex(_ address: RedisNodeAddress) -> Int16 {
        if let known = masters.firstIndex(of: address) { return Int16(known) }
        masters.append(address)
        return Int16(masters.count - 1)
    }
}

/// The cluster's answers that mean "ask elsewhere or again", from an error reply's code.
enum ClusterRedirect: Equatable {
    case moved(slot: Int, to: RedisNodeAddress)
    case ask(to: RedisNodeAddress)
    /// A multi-key command met keys split by a migration in progress.
    case tryAgain
    /// The cluster is down, or (`slotUnserved`) the slot has no master right now.
    case clusterDown(slotUnserved: Bool)
    /// The node is a replica now: the map is stale.
    case readOnly

    /// nil for a code that is no redirect, or an address that does not parse; an empty host
    /// is `askedHost`'s.
    init?(_ code: RedisErrorCode, askedHost: String) {
        switch code {
        case .moved(let slot, let text), .ask(let slot, let text):
            guard let address = RedisNodeAddress(parsing: text, defaultHost: askedHost) else { return nil }
            if case .moved = code { self = .moved(slot: slot, to: address) } else { self = .ask(to: address) }
        case .tryAgain: self = .tryAgain
        case .clusterDown(let slotUnserved): self = .clusterDown(slotUnserved: slotUnserved)
        case .readOnly: self = .readOnly
        case .noScript, .outOfMemory, .noPermission, .unknownCommand, .other: return nil
        }
    }
}
