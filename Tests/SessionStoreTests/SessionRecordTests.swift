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

    /// What the create script writes: the first byte and body from Swift, the numbers between.
    static func format2(version: UInt64, created: UInt64, sinceCreated: UInt64, idle: UInt64, absolute: UInt64, userID: String,
                        ip: String? = nil, userAgent: String? = nil, data: String = "") -> [UInt8] {
        let (first, body) = SessionRecord.body(userID: userID, ip: ip, userAgent: userAgent, data: Array(data.utf8))
        return [first] + varint(version) + varint(created) + varint(sinceCreated) + varint(idle) + varint(absolute) + body
    }

    @Test("a typical session fits 28 bytes, and every field reads back")
    func typicalSession() throws {
        let record = Self.format2(version: 1, created: 1_765_000_000_123, sinceCreated: 0, idle: 1800, absolute: 43200, userID: "user-00001")
        #expect(record.count == 25)
        let touched = Self.format2(version: 1, created: 1_765_000_000_123, sinceCreated: 4 * 3600 * 1000, idle: 1800, absolute: 43200, userID: "user-00001")
        #expect(touched.count == 28, "an embedded string in jemalloc's 48-byte class")
        let session = try SessionRecord.decode(touched, handle: Self.handle)
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
            let session = try SessionRecord.decode(record, handle: Self.handle)
            #expect(session.ip == ip && session.userAgent == agent && session.userID == "é ✓" && session.version == 300)
            #expect(session.data == Array(#"{"a":[1,2]}"#.utf8))
        }
    }

    @Test("a format-1 record reads as it did")
    func formatOne() throws {
        func bigEndian(_ value: Int64, _ width: Int) -> [UInt8] { (0..<width).reversed().map { UInt8(truncatingIfNeeded: value >> (8 * $0)) } }
        let record = bigEndian(7, 4) + bigEndian(1_700_000_000_000, 6) + bigEndian(1_700_000_060_000, 6) + bigEndian(1800, 4) + bigEndian(43200, 4)
            + bigEndian(5, 2) + bigEndian(3, 1) + bigEndian(2, 2) + Array("alice".utf8) + Array("::1".utf8) + Array("UA".utf8) + Array(#"{"k":1}"#.utf8)
        #expect(try SessionRecord.decode(record, handle: Self.handle) == Session(
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
            #expect(throws: SessionStoreError.self) { try SessionRecord.decode(bad, handle: Self.handle) }
        }
    }
}
