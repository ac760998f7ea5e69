/// What `ROLE` says of a server: master (with its connected replicas), replica or sentinel.
struct RedisRole: Sendable {
    var name: String
    var connectedReplicas: Int

    var isMaster: Bool { name == "master" }

    /// `ROLE` replies `[master, offset, [[ip, port, offset], ...]]`, `[slave, ...]` or `[sentinel, ...]`.
    init(reply: RESPValue) throws {
        guard let parts = reply.array, let name = parts.first?.string else {
            throw RedisClientError(.unexpectedReply, "ROLE returned \(reply)")
        }
        self.name = name
        self.connectedReplicas = name == "master" && parts.count >= 3 ? (parts[2].array?.count ?? 0) : 0
    }
}
