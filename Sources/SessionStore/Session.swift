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
}

/// The binary layout of a session record in Redis (see docs/redis-layout.md and the scripts'
/// `common` part): a 24-byte header the scripts read and rewrite, then lengths and strings only
/// Swift reads. Kept compact because every byte is paid for by every session.
enum SessionRecord {
    static let headerLength = 24
    static let lengthsLength = 5

    /// Everything after the header, as create sends it.
    static func tail(userID: String, ip: String?, userAgent: String?, data: [UInt8]) -> [UInt8] {
        let user = Array(userID.utf8)
        let ipBytes = Array((ip ?? "").utf8)
        let agent = Array((userAgent ?? "").utf8)
        var bytes = [UInt8]()
        bytes.reserveCapacity(lengthsLength + user.count + ipBytes.count + agent.count + data.count)
        bytes.append(UInt8(user.count >> 8))
        bytes.append(UInt8(user.count & 0xFF))
        bytes.append(UInt8(ipBytes.count))
        bytes.append(UInt8(agent.count >> 8))
        bytes.append(UInt8(agent.count & 0xFF))
        bytes += user
        bytes += ipBytes
        bytes += agent
        bytes += data
        return bytes
    }

    static func decode(_ record: [UInt8], handle: SessionHandle) throws -> Session {
        guard record.count >= headerLength + lengthsLength else { throw SessionStoreError.corruptRecord(handle) }
        func integer(_ offset: Int, _ width: Int) -> Int64 {
            var value: Int64 = 0
            for index in offset..<(offset + width) { value = value << 8 | Int64(record[index]) }
            return value
        }
        let userLength = Int(integer(24, 2))
        let ipLength = Int(integer(26, 1))
        let agentLength = Int(integer(27, 2))
        let userStart = headerLength + lengthsLength
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
