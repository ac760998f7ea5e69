import SessionCrypto

/// Failures of the session domain that are not "Redis could not be reached"
/// (those surface as `RedisClientError`).
public enum SessionStoreError: Error, Sendable, Equatable {
    /// A stored record does not have the layout this version writes.
    case corruptRecord(SessionHandle)
    /// A script answered with a shape it never produces.
    case unexpectedReply(String)
    /// Concurrent writers kept moving the version; the patch was not applied.
    case tooMuchContention
}
