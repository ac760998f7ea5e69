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
///     0xA0 | flags (0x01: ip, 0x02: user agent, 0x04: sealed)
///     varint version, created ms (6 bytes, big-endian), varints last_seen − created ms, idle s,
///     absolute s
///     varint length + user id
///     the tail: [varint length + ip], [varint length + user agent], data (the rest; empty is {})
///
/// Sealed (`SESSIOND_DATA_KEYS`), the tail is a `DataKeyRing` box of the same bytes, bound to the
/// handle and the user id; the user id stays plain, as the scripts name the index by it.
///
/// A session of a 10-character user id with no data is 25–28 bytes, an embedded string in
/// jemalloc's 48-byte class (69 sealed). Format 1 (a fixed 24-byte header, then 5 bytes of
/// lengths) is still read, and the scripts rewrite it as format 2 on the session's next write.
enum SessionRecord {
    /// The top three bits of a format-2 record's first byte. A format-1 record starts with the
    /// high byte of its 32-bit version, which stays 0 below 2^24 patches.
    static let format2: UInt8 = 0xA0
    static let hasIP: UInt8 = 0x01
    static let hasUserAgent: UInt8 = 0x02
    static let sealed: UInt8 = 0x04
    private static let knownFlags: UInt8 = hasIP | hasUserAgent | sealed

    /// What follows the user id, and the first byte that describes it.
    struct Tail {
        var first: UInt8
        var bytes: [UInt8]
    }

    /// The tail as plain bytes.
    static func tail(ip: String?, userAgent: String?, data: [UInt8]) -> Tail {
        var tail = Tail(first: format2, bytes: [])
        tail.bytes.reserveCapacity(4 + (ip?.utf8.count ?? 0) + (userAgent?.utf8.count ?? 0) + data.count)
        if let ip, !ip.isEmpty {
            tail.first |= hasIP
            appendString(ip, to: &tail.bytes)
        }
        if let userAgent, !userAgent.isEmpty {
            tail.first |= hasUserAgent
            appendString(userAgent, to: &tail.bytes)
        }
        tail.bytes += data
        return tail
    }

    /// The tail as the session's record stores it: sealed for its handle and user when there
    /// are data keys, plain otherwise.
    static func stored(_ tail: Tail, handle: SessionHandle, userID: String, keys: DataKeyRing?) -> Tail {
        guard let keys else { return tail }
        return Tail(first: tail.first | sealed, bytes: keys.seal(tail.bytes, associatedData: associatedData(handle: handle, userID: userID)))
    }

    /// The stored tail of `session` under `handle` (a rotation's new one, or its own).
    static func stored(_ session: Session, handle: SessionHandle, keys: DataKeyRing?) -> Tail {
        stored(tail(ip: session.ip, userAgent: session.userAgent, data: session.data), handle: handle, userID: session.userID, keys: keys)
    }

    /// The user id as a record holds it, before the tail.
    static func userIDField(_ userID: String) -> [UInt8] {
        var bytes = [UInt8]()
        appendString(userID, to: &bytes)
        return bytes
    }

    /// What a sealed tail is bound to: a box moved to another session's key, or given another
    /// user id, fails to open.
    private static func associatedData(handle: SessionHandle, userID: String) -> [UInt8] {
        Array(handle.encoded.utf8) + [0] + Array(userID.utf8)
    }

    private static func appendString(_ text: String, to bytes: inout [UInt8]) {
        appendVarint(UInt64(text.utf8.count), to: &bytes)
        bytes += text.utf8
    }

    static func appendVarint(_ value: UInt64, to bytes: inout [UInt8]) {
        var value = value
        while value >= 0x80 {
            bytes.append(UInt8(value & 0x7F) | 0x80)
            value >>= 7
        }
        bytes.append(UInt8(value))
    }

    static func decode(_ record: [UInt8], handle: SessionHandle, keys: DataKeyRing?) throws -> Session {
        guard let first = record.first else { throw SessionStoreError.corruptRecord(handle) }
        if first < 0x80 { return try decodeFormat1(record, handle: handle) }
        guard first & 0xE0 == format2, first & 0x1F & ~knownFlags == 0 else { throw SessionStoreError.corruptRecord(handle) }
        var reader = Format2Reader(bytes: record, position: 1)
        guard let (version, created, sinceCreated, idle, absolute) = reader.numbers(), let userID = reader.string() else {
            throw SessionStoreError.corruptRecord(handle)
        }
        if first & sealed != 0 {
            guard let keys else {
                guard reader.position < record.count else { throw SessionStoreError.corruptRecord(handle) }
                throw SessionStoreError.unreadableRecord(handle, .unknownKey(record[reader.position]))
            }
            do {
                let text = try keys.open(record[reader.position...], associatedData: associatedData(handle: handle, userID: userID))
                reader = Format2Reader(bytes: text, position: 0)
            } catch {
                throw SessionStoreError.unreadableRecord(handle, error)
            }
        }
        var ip: String?
        var userAgent: String?
        if first & hasIP != 0 {
            guard let text = reader.string() else { throw SessionStoreError.corruptRecord(handle) }
            ip = text
        }
        if first & hasUserAgent != 0 {
            guard let text = reader.string() else { throw SessionStoreError.corruptRecord(handle) }
            userAgent = text
        }
        return Session(
            handle: handle, userID: userID, data: Array(reader.bytes[reader.position...]), version: Int(version),
            createdAt: created, lastSeenAt: created + sinceCreated, idleTimeout: Int(idle), absoluteTimeout: Int(absolute),
            ip: ip, userAgent: userAgent
        )
    }

    /// The user id alone, which is never sealed: enough to revoke a session whose data key is
    /// gone.
    static func userID(of record: [UInt8], handle: SessionHandle) throws -> String {
        guard let first = record.first else { throw SessionStoreError.corruptRecord(handle) }
        if first < 0x80 { return try decodeFormat1(record, handle: handle).userID }
        guard first & 0xE0 == format2 else { throw SessionStoreError.corruptRecord(handle) }
        var reader = Format2Reader(bytes: record, position: 1)
        guard reader.numbers() != nil, let userID = reader.string() else { throw SessionStoreError.corruptRecord(handle) }
        return userID
    }

    /// Reads varints and strings from a position. A value type with mutating reads, not
    /// closures over a position: a captured variable is boxed on the heap at every decode.
    private struct Format2Reader {
        let bytes: [UInt8]
        var position: Int

        mutating func varint() -> Int64? {
            var value: Int64 = 0
            var shift: Int64 = 0
            while position < bytes.count, shift < 63 {
                let byte = bytes[position]
                position += 1
                value |= Int64(byte & 0x7F) << shift
                if byte < 0x80 { return value }
                shift += 7
            }
            return nil
        }

        /// The numbers after the first byte: version, created ms, last_seen − created ms, idle s,
        /// absolute s.
        mutating func numbers() -> (Int64, Int64, Int64, Int64, Int64)? {
            guard let version = varint(), let created = bigEndian(6), let sinceCreated = varint(), let idle = varint(),
                  let absolute = varint()
            else { return nil }
            return (version, created, sinceCreated, idle, absolute)
        }

        mutating func bigEndian(_ width: Int) -> Int64? {
            guard width <= bytes.count - position else { return nil }
            defer { position += width }
            return bytes[position..<(position + width)].reduce(0) { $0 << 8 | Int64($1) }
        }

        mutating func string() -> String? {
            guard let length = varint(), length <= bytes.count - position else { return nil }
            defer { position += Int(length) }
            return String(decoding: bytes[position..<(position + Int(length))], as: UTF8.self)
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
