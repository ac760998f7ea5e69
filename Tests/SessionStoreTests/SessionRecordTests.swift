import SessionCrypto
@testable import SessionStore
import Testing

/// The record formats, read without Redis: format 2 as the scripts write it, format 1 as the
/// previous releases wrote it, and records that do not parse.
@Suite("Session record")
struct SessionRecordTests {
    static let handle = SessionHandle(parsing: "xuoEz3Y_0rS1KqaA")!

    static func varint(_ value: UInt64) -> [UInt8] {
        var bytes = [UInt8]()
        SessionRecord.appendVarint(value, to: &bytes)
        return bytes
    }

    static let keys = try! DataKeyRing(currentID: 7, keys: [7: [UInt8](repeating: 0x42, count: 32), 9: [UInt8](repeating: 0x24, count: 32)])

    /// What the create script writes: the first byte and tail from Swift (sealed with `keys`),
    /// the numbers between.
    static func format2(version: UInt64, created: UInt64, sinceCreated: UInt64, idle: UInt64, absolute: UInt64, userID: String,
                        ip: String? = nil, userAgent: String? = nil, data: String = "", keys: DataKeyRing? = nil,
                        handle: SessionHandle = handle) -> [UInt8] {
        let tail = SessionRecord.stored(
            SessionRecord.tail(ip: ip, userAgent: userAgent, data: Array(data.utf8)), handle: handle, userID: userID, keys: keys
        )
        let createdBytes = (0..<6).reversed().map { UInt8(truncatingIfNeeded: created >> (8 * $0)) }
        return [tail.first] + varint(version) + createdBytes + varint(sinceCreated) + varint(idle) + varint(absolute)
            + SessionRecord.userIDField(userID) + tail.bytes
    }

    @Test("a typical session fits 28 bytes, and every field reads back")
    func typicalSession() throws {
        let record = Self.format2(version: 1, created: 1_765_000_000_123, sinceCreated: 0, idle: 1800, absolute: 43200, userID: "user-00001")
        #expect(record.count == 25)
        let touched = Self.format2(version: 1, created: 1_765_000_000_123, sinceCreated: 4 * 3600 * 1000, idle: 1800, absolute: 43200, userID: "user-00001")
        #expect(touched.count == 28, "an embedded string in jemalloc's 48-byte class")
        let session = try SessionRecord.decode(touched, handle: Self.handle, keys: nil)
        #expect(session == Session(
            handle: Self.handle, userID: "user-00001", data: [], version: 1, createdAt: 1_765_000_000_123,
            lastSeenAt: 1_765_000_000_123 + 4 * 3600 * 1000, idleTimeout: 1800, absoluteTimeout: 43200, ip: nil, userAgent: nil
        ))
    }

    @Test("ip, user agent and data, each optional, in any combination")
    func optionalFields() throws {
        for (ip, agent) in [("203.0.113.9", nil), (nil, "Firefox/131"), ("::1", "curl/8"), (nil, nil)] as [(String?, String?)] {
            let record = Self.format2(version: 300, created: 1, sinceCreated: 2, idle: 3, absolute: 4, userID: "é ✓", ip: ip, userAgent: agent,
                                      data: #"{"a":[1,2]}"#)
            let session = try SessionRecord.decode(record, handle: Self.handle, keys: nil)
            #expect(session.ip == ip && session.userAgent == agent && session.userID == "é ✓" && session.version == 300)
            #expect(session.data == Array(#"{"a":[1,2]}"#.utf8))
        }
    }

    @Test("a format-1 record reads as it did")
    func formatOne() throws {
        func bigEndian(_ value: Int64, _ width: Int) -> [UInt8] { (0..<width).reversed().map { UInt8(truncatingIfNeeded: value >> (8 * $0)) } }
        let record = bigEndian(7, 4) + bigEndian(1_700_000_000_000, 6) + bigEndian(1_700_000_060_000, 6) + bigEndian(1800, 4) + bigEndian(43200, 4)
            + bigEndian(5, 2) + bigEndian(3, 1) + bigEndian(2, 2) + Array("alice".utf8) + Array("::1".utf8) + Array("UA".utf8) + Array(#"{"k":1}"#.utf8)
        #expect(try SessionRecord.decode(record, handle: Self.handle, keys: nil) == Session(
            handle: Self.handle, userID: "alice", data: Array(#"{"k":1}"#.utf8), version: 7, createdAt: 1_700_000_000_000,
            lastSeenAt: 1_700_000_060_000, idleTimeout: 1800, absoluteTimeout: 43200, ip: "::1", userAgent: "UA"
        ))
    }

    @Test("a record cut short, an unknown format or lengths past the end is corrupt, never a session")
    func corrupt() {
        let record = Self.format2(version: 1, created: 1_765_000_000_123, sinceCreated: 9, idle: 1800, absolute: 43200, userID: "user-00001", ip: "::1")
        var unknown = record
        unknown[0] = 0xC0
        var longUser = record
        longUser[longUser.count - 15] = 0x7F
        for bad in [[], Array(record.prefix(5)), Array(record.prefix(record.count - 1)), unknown, longUser, [0x00, 0x01]] {
            #expect(throws: SessionStoreError.self) { try SessionRecord.decode(bad, handle: Self.handle, keys: nil) }
        }
    }

    @Test("sealed: data, ip and user agent open under any key of the ring, and are not in the record")
    func sealed() throws {
        for (ip, agent, data) in [("203.0.113.9", "Firefox/131", #"{"secret":"marker-1"}"#), (nil, nil, "")] as [(String?, String?, String)] {
            let record = Self.format2(version: 2, created: 5, sinceCreated: 6, idle: 7, absolute: 8, userID: "alice", ip: ip, userAgent: agent,
                                      data: data, keys: Self.keys)
            #expect(record.count == Self.format2(version: 2, created: 5, sinceCreated: 6, idle: 7, absolute: 8, userID: "alice", ip: ip,
                                                 userAgent: agent, data: data).count + DataKeyRing.overhead)
            #expect(!String(decoding: record, as: UTF8.self).contains("marker") && !String(decoding: record, as: UTF8.self).contains("Firefox"))
            let session = try SessionRecord.decode(record, handle: Self.handle, keys: Self.keys)
            #expect(session.ip == ip && session.userAgent == agent && session.data == Array(data.utf8) && session.userID == "alice")
            // After a rotation of the key ring: 9 is current, 7 still opens.
            let rotated = try DataKeyRing(currentID: 9, keys: [7: [UInt8](repeating: 0x42, count: 32), 9: [UInt8](repeating: 0x24, count: 32)])
            #expect(try SessionRecord.decode(record, handle: Self.handle, keys: rotated) == session)
            #expect(try SessionRecord.userID(of: record, handle: Self.handle) == "alice", "the user id reads without keys")
        }
    }

    @Test("a sealed record under another handle or user, altered, or without its key does not open")
    func sealedRefusals() throws {
        let record = Self.format2(version: 2, created: 5, sinceCreated: 6, idle: 7, absolute: 8, userID: "alice", data: #"{"a":1}"#, keys: Self.keys)
        let other = SessionHandle(parsing: "xuoAAAAAAAAAAAAA")!
        #expect(throws: SessionStoreError.unreadableRecord(other, .rejected(7))) { try SessionRecord.decode(record, handle: other, keys: Self.keys) }
        var altered = record
        altered[altered.count - 1] ^= 1
        #expect(throws: SessionStoreError.unreadableRecord(Self.handle, .rejected(7))) {
            try SessionRecord.decode(altered, handle: Self.handle, keys: Self.keys)
        }
        // The user id is bound too: renamed in Redis, the record does not open.
        var renamed = record
        let at = renamed.firstIndex(of: UInt8(ascii: "a"))!
        renamed[at] = UInt8(ascii: "b")
        #expect(throws: SessionStoreError.unreadableRecord(Self.handle, .rejected(7))) {
            try SessionRecord.decode(renamed, handle: Self.handle, keys: Self.keys)
        }
        let withoutSeven = try DataKeyRing(currentID: 9, keys: [9: [UInt8](repeating: 0x24, count: 32)])
        #expect(throws: SessionStoreError.unreadableRecord(Self.handle, .unknownKey(7))) {
            try SessionRecord.decode(record, handle: Self.handle, keys: withoutSeven)
        }
        #expect(throws: SessionStoreError.unreadableRecord(Self.handle, .unknownKey(7))) {
            try SessionRecord.decode(record, handle: Self.handle, keys: nil)
        }
        #expect(throws: SessionStoreError.unreadableRecord(Self.handle, .truncated)) {
            try SessionRecord.decode(Array(record.prefix(record.count - 30)), handle: Self.handle, keys: Self.keys)
        }
    }
}
