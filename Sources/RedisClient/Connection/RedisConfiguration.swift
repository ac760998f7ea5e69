import NIOCore

/// Where Redis is and how patient to be with it.
public struct RedisConfiguration: Sendable {
    public var host: String
    public var port: Int
    /// ACL user name; nil means the `default` user (plain `AUTH password`).
    public var username: String?
    public var password: String?
    public var database: Int
    /// Connections in the pool; nil means one per event loop.
    public var poolSize: Int?
    public var connectTimeout: TimeAmount
    public var commandTimeout: TimeAmount
    /// How long a write that must survive a failover waits for a replica's acknowledgement
    /// (`WAIT`). Kept well under `commandTimeout`: the wait holds up the connection's pipeline.
    public var replicationTimeout: TimeAmount
    /// Reconnect backoff: doubles from `initial` up to `maximum`, with full jitter.
    public var reconnectBackoffInitial: TimeAmount
    public var reconnectBackoffMaximum: TimeAmount
    /// Where command latencies and failures are reported.
    public var metrics: RedisClientMetrics = .none
    /// True for a `rediss://` URL: the connection must be encrypted.
    public var requiresTLS = false
    /// The TLS set-up; set (from the files) whenever `requiresTLS` is.
    public var tls: RedisTLS?
    /// Session reads cached in process memory, kept exact by `CLIENT TRACKING`; nil: off.
    public var nearCache: NearCacheConfiguration?

    public init(
        host: String = "127.0.0.1",
        port: Int = 6379,
        username: String? = nil,
        password: String? = nil,
        database: Int = 0,
        poolSize: Int? = nil,
        connectTimeout: TimeAmount = .milliseconds(1000),
        commandTimeout: TimeAmount = .milliseconds(1000),
        replicationTimeout: TimeAmount = .milliseconds(250),
        reconnectBackoffInitial: TimeAmount = .milliseconds(25),
        reconnectBackoffMaximum: TimeAmount = .milliseconds(1000)
    ) {
        self.host = host
        self.port = port
        self.username = username
        self.password = password
        self.database = database
        self.poolSize = poolSize
        self.connectTimeout = connectTimeout
        self.commandTimeout = commandTimeout
        self.replicationTimeout = replicationTimeout
        self.reconnectBackoffInitial = reconnectBackoffInitial
        self.reconnectBackoffMaximum = reconnectBackoffMaximum
    }

    /// Parses `redis://[[user]:password@]host[:port][/db]`, or `rediss://...` for TLS. User and
    /// password may be percent-encoded.
    public init(url: String) throws {
        self.init()
        let invalid = { (why: String) in RedisClientError(.invalidConfiguration, "invalid Redis URL: \(why)") }
        let scheme = url.hasPrefix("rediss://") ? "rediss://" : "redis://"
        guard url.hasPrefix(scheme) else { throw invalid("must start with redis:// or rediss://") }
        requiresTLS = scheme == "rediss://"
        var rest = Substring(url.dropFirst(scheme.count))
        if let at = rest.lastIndex(of: "@") {
            let credentials = rest[..<at]
            rest = rest[rest.index(after: at)...]
            if let colon = credentials.firstIndex(of: ":") {
                let user = try Self.percentDecoded(credentials[..<colon], invalid)
                username = user.isEmpty ? nil : user
                password = try Self.percentDecoded(credentials[credentials.index(after: colon)...], invalid)
            } else {
                password = try Self.percentDecoded(credentials, invalid)
            }
        }
        var hostPort = rest
        if let slash = rest.firstIndex(of: "/") {
            hostPort = rest[..<slash]
            let dbText = rest[rest.index(after: slash)...]
            if !dbText.isEmpty {
                guard let db = Int(dbText), db >= 0, db <= 1_000_000 else { throw invalid("database must be a number") }
                database = db
            }
        }
        if hostPort.hasPrefix("[") {
            guard let close = hostPort.firstIndex(of: "]") else { throw invalid("unclosed [ in host") }
            host = String(hostPort[hostPort.index(after: hostPort.startIndex)..<close])
            let after = hostPort[hostPort.index(after: close)...]
            if !after.isEmpty {
                guard after.first == ":", let p = Int(after.dropFirst()) else { throw invalid("bad port") }
                port = p
            }
        } else if let colon = hostPort.lastIndex(of: ":") {
            host = String(hostPort[..<colon])
            guard let p = Int(hostPort[hostPort.index(after: colon)...]) else { throw invalid("bad port") }
            port = p
        } else {
            host = String(hostPort)
        }
        guard !host.isEmpty else { throw invalid("missing host") }
        guard (1...65535).contains(port) else { throw invalid("port out of range") }
    }

    private static func percentDecoded(_ text: Substring, _ invalid: (String) -> RedisClientError) throws -> String {
        var bytes = [UInt8]()
        var iterator = Array(text.utf8).makeIterator()
        while let byte = iterator.next() {
            if byte == UInt8(ascii: "%") {
                guard let high = iterator.next(), let low = iterator.next(),
                      let value = UInt8(String(decoding: [high, low], as: UTF8.self), radix: 16)
                else { throw invalid("bad percent-encoding in credentials") }
                bytes.append(value)
            } else {
                bytes.append(byte)
            }
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    var replicationTimeoutMilliseconds: Int { Int(replicationTimeout.nanoseconds / 1_000_000) }
}
