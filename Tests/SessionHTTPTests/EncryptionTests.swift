import Foundation
import RedisClient
import Testing

/// Encryption at rest (SPEC §5.11, `SESSIOND_DATA_KEYS`), checked where it matters: in what
/// Redis holds, read back key by key, and in what the real servers answer.
@Suite struct EncryptionTests {
    /// A key ring file of `keys` (id and key), the current one marked; the caller removes it.
    static func keyRing(_ keys: [(UInt8, [UInt8])], current: UInt8) throws -> String {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("data-keys-\(UUID().uuidString)").path
        let text = keys.map { "\($0.0):\(Data($0.1).base64EncodedString())" + ($0.0 == current ? " current" : "") }.joined(separator: "\n")
        guard FileManager.default.createFile(atPath: path, contents: Data(text.utf8), attributes: [.posixPermissions: 0o600]) else {
            throw TestSetupError("cannot write \(path)")
        }
        return path
    }

    static func freshKey() -> [UInt8] {
        var generator = SystemRandomNumberGenerator()
        return (0..<32).map { _ in UInt8.random(in: 0...255, using: &generator) }
    }

    /// Every key under the server's prefix with everything it holds: a string's value, a sorted
    /// set's members and scores, any other type's `DUMP`.
    static func everythingStored(_ server: Sessiond) async throws -> [UInt8] {
        let keys = try await server.allRedisKeys()
        return try await withRedis(server.redisTopology) { redis in
            var stored = [UInt8]()
            for key in keys {
                stored += Array(key.utf8)
                switch try await redis.send("TYPE", key: key).string {
                case "string":
                    stored += try await redis.send("GET", key: key).bytes ?? []
                case "zset":
                    for entry in try await redis.send("ZRANGE", key: key, "0", "-1", "WITHSCORES").array ?? [] { stored += entry.bytes ?? [] }
                default:
                    stored += try await redis.send("DUMP", key: key).bytes ?? []
                }
            }
            return stored
        }
    }

    /// The data key id of a sealed record: the byte after the user id.
    static func keyID(ofRecord record: [UInt8]) throws -> UInt8 {
        guard let first = record.first, first & 0xE4 == 0xA4 else { throw TestSetupError("not a sealed format-2 record") }
        var position = 1
        func varint() -> Int {
            var value = 0
            var shift = 0
            while record[position] >= 0x80 {
                value |= Int(record[position] & 0x7F) << shift
                shift += 7
                position += 1
            }
            value |= Int(record[position]) << shift
            position += 1
            return value
        }
        _ = varint()
        position += 6  // created, big-endian
        for _ in 0..<3 { _ = varint() }
        position += varint()
        return record[position]
    }

    static func record(_ server: Sessiond, handle: String) async throws -> [UInt8] {
        let key = server.sessionKey(handle)
        return try await withRedis(server.redisTopology) { redis in
            guard let record = try await redis.send("GET", key: key).bulkBytes else { throw TestSetupError("no record for \(handle)") }
            return record
        }
    }

    @Test func redisHoldsNoPlaintextOfDataUserAgentOrIP() async throws {
        let marker = "MARKER\(UUID().uuidString.prefix(8))"
        let ring = try Self.keyRing([(1, Self.freshKey())], current: 1)
        defer { try? FileManager.default.removeItem(atPath: ring) }
        try await Sessiond.with(settings: ["SESSIOND_DATA_KEYS": ring, "SESSIOND_MAX_SESSIONS_PER_USER": "3"]) { server in
            let user = "enc-\(UUID().uuidString.prefix(8))"
            var sessions = [Sessiond.CreatedSession]()
            for n in 0..<4 {
                sessions.append(try await server.create([
                    "user_id": user, "data": ["secret": "\(marker)-data-\(n)"], "ip": "\(marker)-ip", "user_agent": "\(marker)-agent",
                ]))
            }
            let last = sessions[3]
            let patched = try await server.request(.PATCH, "/v1/session", key: TestKeys.app, headers: [("X-Session-Token", last.token)],
                                                   json: ["note": "\(marker)-patch"])
            #expect(patched.status == 200)
            let rotated = try await server.request(.POST, "/v1/session/rotate", key: TestKeys.app, headers: [("X-Session-Token", last.token)])
            #expect(rotated.status == 200)
            let token = try #require(try rotated.json()["token"] as? String)
            let found = try await server.lookup(token)
            #expect(found.status == 200)
            let json = try found.json()
            #expect(json["data"] as? [String: String] == ["secret": "\(marker)-data-3", "note": "\(marker)-patch"])
            #expect(json["ip"] as? String == "\(marker)-ip" && json["user_agent"] as? String == "\(marker)-agent")
            let listed = try await server.list(user: user)
            #expect(listed.status == 200)
            #expect(try listed.json()["total"] as? Int == 3)
            #expect(listed.text.contains("\(marker)-agent"), "the admin list shows what was sealed")

            let stored = try await Self.everythingStored(server)
            #expect(stored.count > 100)
            #expect(stored.firstRange(of: Array(marker.utf8)) == nil, "Redis holds a marker in plaintext")
        }
    }

    @Test func aTamperedOrMovedRecordIsA503AndALogLineNeverAMiss() async throws {
        let ring = try Self.keyRing([(4, Self.freshKey())], current: 4)
        defer { try? FileManager.default.removeItem(atPath: ring) }
        let logs = LogCapture()
        try await Sessiond.with(settings: ["SESSIOND_DATA_KEYS": ring], logs: logs) { server in
            let alice = try await server.create(["user_id": "alice", "data": ["role": "user"]])
            let mallory = try await server.create(["user_id": "alice", "data": ["role": "admin"]])
            #expect(try await server.lookup(alice.token).status == 200)
            let original = try await Self.record(server, handle: alice.handle)
            var altered = original
            altered[altered.count - 1] ^= 0x01
            let moved = try await Self.record(server, handle: mallory.handle)
            for (what, record) in [("altered", altered), ("moved from another session", moved)] {
                let key = server.sessionKey(alice.handle)
                try await withRedis(server.redisTopology) { redis in
                    _ = try await redis.send("SET", key: key, RedisArgument(record), "KEEPTTL")
                }
                for touch in [true, false] {
                    let answer = try await server.lookup(alice.token, touch: touch)
                    #expect(answer.status == 503, "\(what): \(answer.status) \(answer.text)")
                    #expect(!answer.text.contains("admin"))
                }
                #expect(try await server.request(.GET, "/v1/sessions/\(alice.handle)", key: TestKeys.admin).status == 503, "\(what)")
            }
            #expect(logs.text.contains("does not open under data key 4"), "an error log line names the key")
            #expect(!logs.text.contains(alice.token) && !logs.text.contains(mallory.token))
            // A session whose record does not open can still be logged out.
            let logout = try await server.request(.DELETE, "/v1/session", key: TestKeys.app, headers: [("X-Session-Token", alice.token)])
            #expect(logout.status == 200)
            #expect(try logout.json()["revoked"] as? Bool == true)
            #expect(try await server.lookup(alice.token).status == 401)
        }
    }

    /// A rolling key rotation: every process first gets the new key as a reader, then it becomes
    /// current one process at a time, then the old key goes once no record needs it. No
    /// lookup fails at any step, and a record under a key that left the ring too early is a 503.
    @Test func keysRotateWithoutDowntime() async throws {
        let (one, two) = (Self.freshKey(), Self.freshKey())
        let oldCurrent = try Self.keyRing([(1, one), (2, two)], current: 1)
        defer { try? FileManager.default.removeItem(atPath: oldCurrent) }
        let newCurrent = try Self.keyRing([(1, one), (2, two)], current: 2)
        defer { try? FileManager.default.removeItem(atPath: newCurrent) }
        let onlyNew = try Self.keyRing([(2, two)], current: 2)
        defer { try? FileManager.default.removeItem(atPath: onlyNew) }
        let prefix = "test-\(UUID().uuidString.prefix(8)):"
        let logs = LogCapture()
        try await Sessiond.with(keyPrefix: prefix, settings: ["SESSIOND_DATA_KEYS": oldCurrent]) { old in
            try await Sessiond.with(keyPrefix: prefix, settings: ["SESSIOND_DATA_KEYS": newCurrent]) { new in
                let before = try await old.create(["user_id": "rotating", "data": ["n": 1]])
                let after = try await new.create(["user_id": "rotating", "data": ["n": 2]])
                let untouched = try await old.create(["user_id": "rotating", "data": ["n": 3]])
                #expect(try Self.keyID(ofRecord: try await Self.record(old, handle: before.handle)) == 1)
                #expect(try Self.keyID(ofRecord: try await Self.record(new, handle: after.handle)) == 2)
                for server in [old, new] {
                    for session in [before, after, untouched] {
                        let answer = try await server.lookup(session.token)
                        #expect(answer.status == 200, "\(answer.text)")
                    }
                    #expect(try await server.list(user: "rotating").status == 200)
                }
                // The next write re-seals under the current key.
                let patched = try await new.request(.PATCH, "/v1/session", key: TestKeys.app, headers: [("X-Session-Token", before.token)],
                                                    json: ["m": 1])
                #expect(patched.status == 200)
                #expect(try Self.keyID(ofRecord: try await Self.record(new, handle: before.handle)) == 2)

                try await Sessiond.with(keyPrefix: prefix, settings: ["SESSIOND_DATA_KEYS": onlyNew], logs: logs) { last in
                    #expect(try await last.lookup(before.token).status == 200)
                    #expect(try await last.lookup(after.token).status == 200)
                    let stranded = try await last.lookup(untouched.token)
                    #expect(stranded.status == 503, "under a removed key: a clear 503, never a miss")
                    #expect(stranded.errorCode == "store_unavailable")
                    #expect(try await last.list(user: "rotating").status == 503)
                }
            }
        }
        #expect(logs.text.contains("sealed under data key 1, which SESSIOND_DATA_KEYS does not hold"))
    }

    /// Turning encryption on needs no migration: plain records are read, and sealed on their
    /// next write. Turned off again, a sealed record is a 503, never a miss.
    @Test func plainRecordsAreSealedOnTheirNextWrite() async throws {
        let marker = "PLAIN\(UUID().uuidString.prefix(8))"
        let ring = try Self.keyRing([(9, Self.freshKey())], current: 9)
        defer { try? FileManager.default.removeItem(atPath: ring) }
        let prefix = "test-\(UUID().uuidString.prefix(8)):"
        try await Sessiond.with(keyPrefix: prefix) { plain in
            let session = try await plain.create(["user_id": "turning-on", "data": ["v": marker]])
            #expect(try await Self.record(plain, handle: session.handle).firstRange(of: Array(marker.utf8)) != nil, "stored plain")
            try await Sessiond.with(keyPrefix: prefix, settings: ["SESSIOND_DATA_KEYS": ring]) { sealing in
                #expect(try await sealing.lookup(session.token).status == 200)
                let patched = try await sealing.request(.PATCH, "/v1/session", key: TestKeys.app, headers: [("X-Session-Token", session.token)],
                                                        json: ["w": 2])
                #expect(patched.status == 200)
                #expect(try await Self.record(sealing, handle: session.handle).firstRange(of: Array(marker.utf8)) == nil)
                #expect(try Self.keyID(ofRecord: try await Self.record(sealing, handle: session.handle)) == 9)
                let data = try #require(try await sealing.lookup(session.token).json()["data"] as? [String: Any])
                #expect(data["v"] as? String == marker && data["w"] as? Int == 2 && data.count == 2)
            }
            #expect(try await plain.lookup(session.token).status == 503)
        }
    }
}
