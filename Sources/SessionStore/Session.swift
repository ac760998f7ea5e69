import SessionCrypto

/// A session as stored: never its token, only its handle.
public struct Session: Sendable, Equatable {
    public var handle: SessionHandle
    public var userID: String
    /// Compact JSON object text; an empty array means `{}`.
    public var data: [UInt8]
    public var version: Int
    /// Milliseconds since the Unix epoch, from the Redis clock.
    public var createdAt: Int64
    public var lastSeenAt: Int64
    public var idleTimeout: Int
    public var absoluteTimeout: Int
    public var ip: String?
    public var userAgent: String?

    /// When the session ends unless it is used again.
    public var idleExpiresAt: Int64 { lastSeenAt + Int64(idleTimeout) * 1000 }
    /// When the session ends whatever its activity.
    public var expiresAt: Int64 { createdAt + Int64(absoluteTimeout) * 1000 }
    /// The earlier of the two: when it really ends.
    public var endsAt: Int64 { min(idleExpiresAt, expiresAt) }
    /// The session's score in its user index: the second it ends, rounded up.
    public var endSecond: Int64 { (endsAt + 999) / 1000 }
}

/// The binary layout of a session record in Redis (see docs/redis-layout.md and the scripts'
/// `common` part). Every byte is paid for by every session, so format 2 is varints:
///
///     0xA0 | flags (0x01: ip, 0x02: user agent)
///     varint version, created ms, last_seen − created ms, idle s, absolute s
///     varint length + user id, [varint length + ip], [varint length + user agent]
///     data (the rest; empty means {})
///
/// A session of a 10-character user id with no data is 25–28 bytes, an embedded string in
/// jemalloc's 48-byte class. Format 1 (a fixed 24-byte header, then 5 bytes of lengths) is still
/// read, and the scripts rewrite it as format 2 on the session's next write.
enum SessionRecord {
    /// The top three bits of a format-2 record's first byte. A format-1 record starts with the
    /// high byte of its 32-bit version, which stays 0 below 2^24 patches.
    static let format2: UInt8 = 0xA0
    static let hasIP: UInt8 = 0x01
    static let hasUserAgent: UInt8 = 0x02

    /// What create sends after the times: the first byte (format and flags), and the body
    /// (user id, ip, user agent, data).
    static func body(userID: String, ip: String?, userAgent: String?, data: [UInt8]) -> (first: UInt8, body: [UInt8]) {
        var first = format2
        var bytes = [UInt8]()
        bytes.reserveCapacity(6 + userID.utf8.count + (ip?.utf8.count ?? 0) + (userAgent?.utf8.count ?? 0) + data.count)
        appendVarint(UInt64(userID.utf8.count), to: &bytes)
        bytes += userID.utf8
        if let ip, !ip.isEmpty {
            first |= hasIP
            appendVarint(UInt64(ip.utf8.count), to: &bytes)
            bytes += ip.utf8
        }
        if let userAgent, !userAgent.isEmpty {
            first |= hasUserAgent
            appendVarint(UInt64(userAgent.utf8.count), to: &bytes)
            bytes += userAgent.utf8
        }
        bytes += data
        return (first, bytes)
    }

    static func appendVarint(_ value: UInt64, to bytes: inout [UInt8]) {
        var value = value
        while value >= 0x80 {
            bytes.append(UInt8(value & 0x7F) | 0x80)
            value >>= 7
        }
        bytes.append(UInt8(value))
    }

    static func decode(_ record: [UInt8], handle: SessionHandle) throws -> Session {
        guard let first = record.first else { throw SessionStoreError.corruptRecord(handle) }
        if first < 0x80 { return try decodeFormat1(record, handle: handle) }
        guard first & 0xE0 == format2, let session = decodeFormat2(record, first: first, handle: handle) else {
            throw SessionStoreError.corruptRecord(handle)
        }
        return session
    }

    private static func decodeFormat2(_ record: [UInt8], first: UInt8, handle: SessionHandle) -> Session? {
        var reader = Format2Reader(record: record)
        guard let version = reader.varint(), let created = reader.varint(), let sinceCreated = reader.varint(),
              let idle = reader.varint(), let absolute = reader.varint(), let userID = reader.string()
        else { return nil }
        var ip: String?
        var userAgent: String?
        if first & hasIP != 0 {
            guard let text = reader.string() else { return nil }
            ip = text
        }
        if first & hasUserAgent != 0 {
            guard let text = reader.string() else { return nil }
            userAgent = text
        }
        return Session(
            handle: handle, userID: userID, data: Array(record[reader.position...]), version: Int(version),
            createdAt: created, lastSeenAt: created + sinceCreated, idleTimeout: Int(idle), absoluteTimeout: Int(absolute),
            ip: ip, userAgent: userAgent
        )
    }

    /// Reads a format-2 record after its first byte. A value type with mutating reads, not
    /// closures over a position: a captured variable is boxed on the heap at every decode.
    private struct Format2Reader {
        let record: [UInt8]
        var position = 1

        mutating func varint() -> Int64? {
            var value: Int64 = 0
            var shift: Int64 = 0
            while position < record.count, shift < 63 {
                let byte = record[position]
                position += 1
                value |= Int64(byte & 0x7F) << shift
                if byte < 0x80 { return value }
                shift += 7
            }
            return nil
        }

        mutating func string() -> String? {
            guard let length = varint(), length <= record.count - position else { return nil }
            defer { position += Int(length) }
            return String(decoding: record[position..<(position + Int(length))], as: UTF8.self)
        }
    }

    /// Format 1: `>I4 version, I6 created, I6 last_seen, I4 idle, I4 absolute`, then `>I2 I1 I2`
    /// lengths of user id, ip and user agent, the three strings, and data.
    private static func decodeFormat1(_ record: [UInt8], handle: SessionHandle) throws -> Session {
        let headerLength = 24
        guard record.count >= headerLength + 5 else { throw SessionStoreError.corruptRecord(handle) }
        func integer(_ offset: Int, _ width: Int) -> Int64 {
            var value: Int64 = 0
            for index in offset..<(offset + width) { value = value << 8 | Int64(record[index]) }
            return value
        }
        let userLength = Int(integer(24, 2))
        let ipLength = Int(integer(26, 1))
        let agentLength = Int(integer(27, 2))
        let userStart = headerLength + 5
        let ipStart = userStart + userLength
        let agentStart = ipStart + ipLength
        let dataStart = agentStart + agentLength
        guard dataStart <= record.count else { throw SessionStoreError.corruptRecord(handle) }
        return Session(
            handle: handle,
            userID: String(decoding: record[userStart..<ipStart], as: UTF8.self),
            data: Array(record[dataStart...]),
            version: Int(integer(0, 4)),
            createdAt: integer(4, 6),
            lastSeenAt: integer(10, 6),
            idleTimeout: Int(integer(16, 4)),
            absoluteTimeout: Int(integer(20, 4)),
            ip: ipLength == 0 ? nil : String(decoding: record[ipStart..<agentStart], as: UTF8.self),
            userAgent: agentLength == 0 ? nil : String(decoding: record[agentStart..<dataStart], as: UTF8.self)
        )
    }
}
