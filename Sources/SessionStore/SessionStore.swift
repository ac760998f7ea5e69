import RedisClient
import SessionCrypto

/// What a caller asks for when creating a session; already validated by the HTTP layer.
public struct NewSession: Sendable {
    public var userID: String
    public var data: [UInt8]
    public var idleTimeout: Int?
    public var absoluteTimeout: Int?
    public var ip: String?
    public var userAgent: String?

    public init(userID: String, data: [UInt8] = [], idleTimeout: Int? = nil, absoluteTimeout: Int? = nil, ip: String? = nil, userAgent: String? = nil) {
        self.userID = userID
        self.data = data
        self.idleTimeout = idleTimeout
        self.absoluteTimeout = absoluteTimeout
        self.ip = ip
        self.userAgent = userAgent
    }
}

/// Where to continue a listing: the last session of the previous page.
public struct SessionListCursor: Sendable, Equatable {
    public var createdAt: Int64
    public var handle: SessionHandle

    public init(createdAt: Int64, handle: SessionHandle) {
        self.createdAt = createdAt
        self.handle = handle
    }

    /// `<created ms>.<handle>`: opaque to clients, strictly parsed.
    public var encoded: String { "\(createdAt).\(handle.encoded)" }

    public init?(parsing text: some StringProtocol) {
        let parts = text.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 2, parts[0].count <= 15, !parts[0].isEmpty, parts[0].utf8.allSatisfy({ (48...57).contains($0) }),
              let createdAt = Int64(parts[0]), let handle = SessionHandle(parsing: parts[1])
        else { return nil }
        self.init(createdAt: createdAt, handle: handle)
    }
}

public struct SessionPage: Sendable {
    public var sessions: [Session]
    public var total: Int
    public var nextCursor: SessionListCursor?
}

public enum DataUpdateResult: Sendable {
    case updated(Session)
    case noSession
    case versionMismatch(current: Int)
    case dataTooLarge(bytes: Int)
}

/// Sessions in Redis. Every operation that touches more than one key is one script call,
/// so a crash at any instant leaves sessions and user indexes consistent.
public final class SessionStore: Sendable {
    public let policy: SessionPolicy
    private let redis: RedisClient
    private let scripts = SessionScripts()
    private let clock: RedisClock
    private let prefix: RedisArgument
    /// Force-logout revokes this many sessions per script call, keeping each call short.
    private let forceLogoutChunk = 500
    /// Concurrent unconditional patches retry their compare-and-set this often before giving up.
    private let patchAttempts = 100

    public init(redis: RedisClient, policy: SessionPolicy) {
        self.redis = redis
        self.policy = policy
        self.clock = RedisClock(redis: redis)
        self.prefix = RedisArgument(policy.keyPrefix)
    }

    private func sessionKey(_ handle: SessionHandle) -> RedisArgument {
        RedisArgument(policy.keyPrefix + handle.encoded)
    }

    private func indexKey(_ userID: String) -> RedisArgument {
        RedisArgument(policy.keyPrefix + "u:" + userID)
    }

    // MARK: create

    public struct Created: Sendable {
        public var token: SessionToken
        public var session: Session
        /// Handles of older sessions revoked to respect the per-user cap.
        public var revoked: [String]
    }

    public func create(_ request: NewSession) async throws -> Created {
        let tail = SessionRecord.tail(userID: request.userID, ip: request.ip, userAgent: request.userAgent, data: request.data)
        // A handle collision is astronomically unlikely, but a fresh token costs nothing.
        for _ in 0..<3 {
            let token = SessionToken.generate()
            let handle = token.handle
            let reply: RESPValue
            do {
                reply = try await redis.evaluate(
                    scripts.create,
                    keys: [sessionKey(handle), indexKey(request.userID)],
                    arguments: [
                        prefix, RedisArgument(handle.encoded),
                        RedisArgument(request.idleTimeout ?? policy.idleTimeout),
                        RedisArgument(request.absoluteTimeout ?? policy.absoluteTimeout),
                        RedisArgument(tail), RedisArgument(policy.maxSessionsPerUser),
                    ]
                )
            } catch let error as RedisClientError where error.code == .commandError && error.message.hasPrefix("COLLISION") {
                continue
            }
            guard let parts = reply.array, parts.count == 2, let record = parts[0].bytes, let revoked = parts[1].array else {
                throw SessionStoreError.unexpectedReply("create: \(reply)")
            }
            return Created(
                token: token,
                session: try SessionRecord.decode(record, handle: handle),
                revoked: revoked.compactMap(\.string)
            )
        }
        throw SessionStoreError.unexpectedReply("create: three handle collisions in a row")
    }

    // MARK: read

    /// The session of `token`, sliding its idle expiry when `touch` is set; nil when the
    /// session does not exist, expired or was revoked.
    public func lookup(_ token: SessionToken, touch: Bool) async throws -> Session? {
        let handle = token.handle
        // Most lookups are pure reads: a plain GET costs Redis far less than a script. Only a
        // session due for a touch goes through the script, which decides again atomically.
        let read = try session(from: try await redis.send(RedisCommand("GET", sessionKey(handle))), handle: handle)
        guard let read, touch, dueForTouch(read) else { return read }
        let reply = try await redis.evaluate(scripts.lookup, keys: [sessionKey(handle)], arguments: [prefix, "1"])
        return try session(from: reply, handle: handle)
    }

    /// The lookup script's rule: slide when the last touch is a tenth of the idle timeout old
    /// (at most 60 s) and sliding would move the end. Unknown Redis time: ask the script.
    private func dueForTouch(_ session: Session) -> Bool {
        guard let now = clock.now() else { return true }
        let step = min(60000, Int64(session.idleTimeout) * 100)
        let slidEnd = min(now + Int64(session.idleTimeout) * 1000, session.expiresAt)
        return now - session.lastSeenAt >= step && slidEnd > session.endsAt
    }

    /// An admin read by handle; never slides the expiry.
    public func session(handle: SessionHandle) async throws -> Session? {
        try session(from: try await redis.send(RedisCommand("GET", sessionKey(handle))), handle: handle)
    }

    private func session(from reply: RESPValue, handle: SessionHandle) throws -> Session? {
        if reply.isNull { return nil }
        guard let record = reply.bytes else { throw SessionStoreError.unexpectedReply("record: \(reply)") }
        return try SessionRecord.decode(record, handle: handle)
    }

    // MARK: update

    /// Applies `patch` (RFC 7396) to the session's data. With `ifMatch`, only if the version is
    /// still that one; without, the compare-and-set is retried until no concurrent write slips in,
    /// so no write is ever lost.
    public func updateData(_ token: SessionToken, ifMatch: Int?, patch: JSONValue) async throws -> DataUpdateResult {
        let handle = token.handle
        guard var current = try await session(handle: handle) else { return .noSession }
        for _ in 0..<patchAttempts {
            if let ifMatch, ifMatch != current.version { return .versionMismatch(current: current.version) }
            let existing: JSONValue
            do {
                existing = current.data.isEmpty ? .object([:]) : try JSONValue.parse(current.data)
            } catch {
                throw SessionStoreError.corruptRecord(handle)
            }
            let merged = existing.merged(with: patch)
            var data = merged.serialized()
            if data == Array("{}".utf8) { data = [] }
            if data.count > policy.maxDataBytes { return .dataTooLarge(bytes: data.count) }
            let reply = try await redis.evaluate(
                scripts.replaceData,
                keys: [sessionKey(handle)],
                arguments: [prefix, RedisArgument(current.version), RedisArgument(data)]
            )
            if reply.isNull { return .noSession }
            guard let parts = reply.array, parts.count == 2, let applied = parts[0].integer, let record = parts[1].bytes else {
                throw SessionStoreError.unexpectedReply("replace_data: \(reply)")
            }
            let session = try SessionRecord.decode(record, handle: handle)
            if applied == 1 { return .updated(session) }
            current = session
        }
        throw SessionStoreError.tooMuchContention
    }

    // MARK: revoke and rotate

    public func revoke(_ token: SessionToken) async throws -> Bool {
        try await revoke(handle: token.handle)
    }

    public func revoke(handle: SessionHandle) async throws -> Bool {
        let reply = try await redis.evaluate(
            scripts.revoke, keys: [sessionKey(handle)], arguments: [prefix, RedisArgument(handle.encoded)]
        )
        return reply.integer == 1
    }

    /// Replaces the token; the old one stops working in the same atomic step.
    public func rotate(_ token: SessionToken) async throws -> (token: SessionToken, session: Session)? {
        let old = token.handle
        for _ in 0..<3 {
            let fresh = SessionToken.generate()
            let reply: RESPValue
            do {
                reply = try await redis.evaluate(
                    scripts.rotate,
                    keys: [sessionKey(old), sessionKey(fresh.handle)],
                    arguments: [prefix, RedisArgument(old.encoded), RedisArgument(fresh.handle.encoded)]
                )
            } catch let error as RedisClientError where error.code == .commandError && error.message.hasPrefix("COLLISION") {
                continue
            }
            guard let session = try session(from: reply, handle: fresh.handle) else { return nil }
            return (fresh, session)
        }
        throw SessionStoreError.unexpectedReply("rotate: three handle collisions in a row")
    }

    // MARK: per-user index

    public func list(userID: String, limit: Int, after cursor: SessionListCursor?) async throws -> SessionPage {
        let reply = try await redis.evaluate(
            scripts.list,
            keys: [indexKey(userID)],
            arguments: [
                prefix, RedisArgument(limit),
                RedisArgument(cursor.map { String($0.createdAt) } ?? ""),
                RedisArgument(cursor?.handle.encoded ?? ""),
            ]
        )
        guard let parts = reply.array, parts.count >= 2, let total = parts[0].integer, let more = parts[1].integer,
              parts.count % 2 == 0
        else { throw SessionStoreError.unexpectedReply("list: \(reply)") }
        var sessions = [Session]()
        sessions.reserveCapacity((parts.count - 2) / 2)
        var index = 2
        while index < parts.count {
            guard let handleText = parts[index].string, let handle = SessionHandle(parsing: handleText),
                  let record = parts[index + 1].bytes
            else { throw SessionStoreError.unexpectedReply("list entry") }
            sessions.append(try SessionRecord.decode(record, handle: handle))
            index += 2
        }
        let next = (more == 1 && !sessions.isEmpty)
            ? SessionListCursor(createdAt: sessions[sessions.count - 1].createdAt, handle: sessions[sessions.count - 1].handle)
            : nil
        return SessionPage(sessions: sessions, total: Int(total), nextCursor: next)
    }

    /// Revokes every session of the user that existed when this call began (all but `except`).
    /// Works in chunks, each one atomic; returns how many live sessions were revoked.
    public func forceLogout(userID: String, except: SessionHandle?) async throws -> Int {
        var bound = ""
        var revoked = 0
        while true {
            let reply = try await redis.evaluate(
                scripts.forceLogout,
                keys: [indexKey(userID)],
                arguments: [prefix, RedisArgument(bound), RedisArgument(except?.encoded ?? ""), RedisArgument(forceLogoutChunk)]
            )
            guard let parts = reply.array, parts.count == 3, let boundText = parts[0].string,
                  let count = parts[1].integer, let more = parts[2].integer
            else { throw SessionStoreError.unexpectedReply("force_logout: \(reply)") }
            bound = boundText
            revoked += Int(count)
            if more == 0 { return revoked }
        }
    }
}
