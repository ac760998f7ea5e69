import SessionCrypto

/// Failures of the session domain that are not "Redis could not be reached"
/// (those surface as `RedisClientError`).
public enum SessionStoreError: Error, Sendable, Equatable {
    /// A stored record parses as neither format 1 nor format 2.
    case corruptRecord(SessionHandle)
    /// A script answered with a shape it never produces.
    case unexpectedReply(String)
    /// Concurrent writers kept moving the version; the patch was not applied.
    case tooMuchContention
}
