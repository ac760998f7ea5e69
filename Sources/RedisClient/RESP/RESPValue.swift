/// A reply from Redis (RESP2), built from what hiredis's parser hands over.
public enum RESPValue: Sendable, Equatable {
    case simpleString(String)
    case error(String)
    case integer(Int64)
    case bulkString([UInt8])
    case null
    case array([RESPValue])

    public var bytes: [UInt8]? {
        switch self {
        case .bulkString(let bytes): return bytes
        case .simpleString(let text): return Array(text.utf8)
        default: return nil
        }
    }

    public var string: String? {
        switch self {
        case .bulkString(let bytes): return String(decoding: bytes, as: UTF8.self)
        case .simpleString(let text): return text
        default: return nil
        }
    }

    public var integer: Int64? {
        if case .integer(let value) = self { return value }
        return nil
    }

    public var array: [RESPValue]? {
        if case .array(let values) = self { return values }
        return nil
    }

    /// The bytes of a bulk string only (a status reply is not a stored value).
    public var bulkBytes: [UInt8]? {
        if case .bulkString(let bytes) = self { return bytes }
        return nil
    }

    public var isError: Bool {
        if case .error = self { return true }
        return false
    }

    /// The reply itself, or an error reply thrown as `.commandError`.
    func checked() throws(RedisClientError) -> RESPValue {
        if case .error(let message) = self { throw RedisClientError(.commandError, message) }
        return self
    }

    public var isNull: Bool {
        if case .null = self { return true }
        return false
    }
}
