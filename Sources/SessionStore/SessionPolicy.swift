import SessionCrypto

/// The rules every session follows, from the service configuration.
public struct SessionPolicy: Sendable {
    /// Prefix of every Redis key, so several apps can share one Redis.
    public var keyPrefix: String
    /// Seconds of inactivity before a session ends (sliding); also the largest per-session value.
    public var idleTimeout: Int
    /// Seconds after creation when a session ends; also the largest per-session value.
    public var absoluteTimeout: Int
    /// On create beyond this many sessions, the user's oldest are revoked; 0 means no cap.
    public var maxSessionsPerUser: Int
    /// Largest `data` object, as compact serialized JSON.
    public var maxDataBytes: Int
    /// When set, data, user agent and ip are sealed at rest under the ring's current key.
    public var dataKeys: DataKeyRing?

    public init(
        keyPrefix: String = "sessiond:",
        idleTimeout: Int = 1800,
        absoluteTimeout: Int = 43200,
        maxSessionsPerUser: Int = 0,
        maxDataBytes: Int = 16384,
        dataKeys: DataKeyRing? = nil
    ) {
        self.keyPrefix = keyPrefix
        self.idleTimeout = idleTimeout
        self.absoluteTimeout = absoluteTimeout
        self.maxSessionsPerUser = maxSessionsPerUser
        self.maxDataBytes = maxDataBytes
        self.dataKeys = dataKeys
    }

    /// Largest accepted timeouts, bounded by what a session record can hold (32-bit seconds).
    public static let timeoutLimit = 100 * 365 * 86400
}
