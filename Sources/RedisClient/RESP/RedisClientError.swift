/// Every failure the Redis client reports. The code lets callers tell "Redis said no"
/// (`.commandError`) from "Redis could not be asked" (everything else).
public struct RedisClientError: Error, Sendable, Equatable, CustomStringConvertible {
    public enum Code: Sendable, Equatable {
        /// Redis answered with an error reply (`-ERR ...`, `-NOSCRIPT ...`, `-WRONGPASS ...`).
        case commandError
        /// The connection closed or broke while the command was pending.
        case connectionClosed
        /// No reply within the command timeout; the connection was closed and is being replaced.
        case timeout
        /// No connection is up (Redis is down or unreachable); the command was not sent.
        case unavailable
        /// Connecting failed (refused, unreachable, TLS handshake).
        case connectFailed
        /// Redis answered the connection setup (`AUTH`, `SELECT`) with an error: wrong
        /// credentials or database, which waiting will not fix.
        case setupRefused
        /// Redis sent bytes that are not RESP.
        case protocolError
        /// The configuration (URL) is invalid.
        case invalidConfiguration
        /// A reply had a different shape than the caller expected.
        case unexpectedReply
        /// A write was applied on the master but no replica acknowledged it in time (`WAIT`), so
        /// a failover could still lose it.
        case notReplicated
    }

    public let code: Code
    public let message: String
    /// The error reply's code, for `.commandError`.
    public let reply: RedisErrorCode?

    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
        reply = code == .commandError ? RedisErrorCode(message: message) : nil
    }

    /// Redis refused a write at `maxmemory` under `noeviction` (`-OOM ...`, also from a script).
    public var isOutOfMemory: Bool {
        reply == .outOfMemory
    }

    /// True when the failure says nothing about the data: Redis could not be reached in time.
    public var isUnavailability: Bool {
        code != .commandError && code != .unexpectedReply && code != .invalidConfiguration
    }

    public var description: String { "RedisClientError(\(code)): \(message)" }
}
