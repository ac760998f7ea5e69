import Testing

@testable import RedisClient

@Suite("Cluster routing: hash slots, redirects and the slot map")
struct ClusterRoutingTests {
    @Test("slots match Redis's own CLUSTER KEYSLOT, hash tags included",
          arguments: [
              // Read from `redis-cli cluster keyslot` on Redis 7.0.
              ("foo", 12182), ("{user1000}.following", 3443), ("{user1000}.followers", 3443),
              ("sessiond:{xuo}u:alice", 6988), ("sessiond:{xuo}AAAAAAAAAAAAA", 6988),
              // An empty tag does not count; only the first `{` opens a tag.
              ("a{}b", 13694), ("{}{x}", 3257),
          ])
    func slots(_ key: String, _ slot: Int) {
        #expect(HashSlot.of(Array(key.utf8)) == slot)
    }

    @Test("CRC16/XMODEM check value")
    func crcCheckValue() {
        #expect(HashSlot.crc16(Array("123456789".utf8)[...]) == 0x31C3)
    }

    @Test("MOVED, ASK, TRYAGAIN, CLUSTERDOWN and READONLY are told apart; other errors are not redirects")
    func redirects() {
        let redirect = { (message: String, askedHost: String) in ClusterRedirect(RedisErrorCode(message: message), askedHost: askedHost) }
        #expect(redirect("MOVED 3999 127.0.0.1:6381", "x") == .moved(slot: 3999, to: RedisNodeAddress(host: "127.0.0.1", port: 6381)))
        #expect(redirect("ASK 3999 10.0.0.2:7000", "x") == .ask(to: RedisNodeAddress(host: "10.0.0.2", port: 7000)))
        #expect(redirect("MOVED 12 :7001", "10.1.1.1") == .moved(slot: 12, to: RedisNodeAddress(host: "10.1.1.1", port: 7001)),
                "an empty host is the asked node's")
        #expect(redirect("MOVED 1 [::1]:7001", "x") == .moved(slot: 1, to: RedisNodeAddress(host: "::1", port: 7001)))
        #expect(redirect("TRYAGAIN Multiple keys request during rehashing of slot", "x") == .tryAgain)
        #expect(redirect("CLUSTERDOWN Hash slot not served", "x") == .clusterDown(slotUnserved: true))
        #expect(redirect("CLUSTERDOWN The cluster is down", "x") == .clusterDown(slotUnserved: false))
        #expect(redirect("READONLY You can't write against a read only replica.", "x") == .readOnly)
        for other in ["ERR unknown command", "MOVED", "MOVED 99999 h:1", "MOVED 1 nohost", "ASK x h:1", "NOSCRIPT No matching script"] {
            #expect(redirect(other, "x") == nil, "\(other)")
        }
    }

    @Test("error replies are typed by their code word, Redis's own and the scripts' alike")
    func errorCodes() {
        #expect(RedisErrorCode(message: "NOSCRIPT No matching script. Please use EVAL.") == .noScript)
        #expect(RedisErrorCode(message: "OOM command not allowed when used memory > 'maxmemory'.") == .outOfMemory)
        #expect(RedisErrorCode(message: "NOPERM this user has no permissions to run the 'flushall' command") == .noPermission)
        #expect(RedisErrorCode(message: "ERR unknown subcommand 'TRACKING'. Try CLIENT HELP.") == .unknownCommand)
        #expect(RedisErrorCode(message: "ERR unknown command 'FCALL', with args beginning with: ") == .unknownCommand)
        #expect(RedisErrorCode(message: "ERR max number of clients reached") == .other("ERR"))
        #expect(RedisErrorCode(message: "MOVED 7 10.0.0.1:7000") == .moved(slot: 7, address: "10.0.0.1:7000"))
        #expect(RedisErrorCode(message: "COLLISION session handle already exists") == .other("COLLISION"))
        #expect(RedisErrorCode(message: "ERR wrong number of arguments") == .other("ERR"))
        #expect(RedisErrorCode(message: "") == .other(""))
        #expect(RedisClientError(.commandError, "OOM no room").isOutOfMemory)
        #expect(RedisClientError(.timeout, "OOM in the text of another failure").reply == nil)
    }

    @Test("a CLUSTER SLOTS reply becomes a slot map; a MOVED reassigns one slot")
    func slotMap() throws {
        func node(_ port: Int64, _ host: String = "127.0.0.1") -> RESPValue {
            .array([.bulkString(Array(host.utf8)), .integer(port), .bulkString(Array("id\(port)".utf8))])
        }
        let reply = RESPValue.array([
            .array([.integer(0), .integer(5460), node(7000), node(7003)]),
            .array([.integer(5461), .integer(10922), node(7001, ""), node(7004)]),
            .array([.integer(10923), .integer(16000), node(7002)]),
        ])
        var topology = try ClusterTopology(clusterSlots: reply, askedHost: "10.0.0.9")
        #expect(topology.owner(of: 0) == RedisNodeAddress(host: "127.0.0.1", port: 7000))
        #expect(topology.owner(of: 5461) == RedisNodeAddress(host: "10.0.0.9", port: 7001))
        #expect(topology.owner(of: 16000) == RedisNodeAddress(host: "127.0.0.1", port: 7002))
        #expect(topology.owner(of: 16001) == nil)
        #expect(topology.unownedSlots == 383)
        #expect(topology.replicas.count == 2)
        topology.assign(1, to: RedisNodeAddress(host: "127.0.0.1", port: 7005))
        #expect(topology.owner(of: 1)?.port == 7005)
        #expect(topology.owner(of: 2)?.port == 7000)
        #expect(topology.masters.count == 4)

        #expect(throws: RedisClientError.self) {
            try ClusterTopology(clusterSlots: .array([.array([.integer(5), .integer(99999), node(1)])]), askedHost: "x")
        }
        #expect(throws: RedisClientError.self) { try ClusterTopology(clusterSlots: .integer(1), askedHost: "x") }
    }
}
