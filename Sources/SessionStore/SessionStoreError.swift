import SessionCrypto

/// Failures of the session domain that are not "Redis could not be reached"
/// (those surface as `RedisClientError`).
public enum SessionStoreError: Error, Sendable, Equatable {
    /// A stored record parses as neither format 1 nor format 2.
    case corruptRecord(SessionHandle)
    /// A sealed record that does not open with the configured data keys (SPEC §5.11).
    case unreadableRecord(SessionHandle, DataKeyRing.OpenError)
    /// A script answered with a shape it never produces.
    case unexpectedReply(String)
    /// Concurrent writers kept moving the version; the patch was not applied.
    case tooMuchContention
}

extension SessionStoreError: CustomStringConvertible {
    /// For log lines: handles, never tokens.
    public var description: String {
        switch self {
        case .corruptRecord(let handle): "the record of session \(handle) parses as no known format"
        case .unreadableRecord(let handle, let reason): "the record of session \(handle) \(reason)"
        case .unexpectedReply(let what): "unexpected reply: \(what)"
        case .tooMuchContention: "too many concurrent writes"
        }
    }
}
