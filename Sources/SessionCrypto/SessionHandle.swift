/// Public identifier of a session: BLAKE2b (`crypto_generichash`) of the token bytes, truncated
/// to 96 bits and written as 16 base64url characters. 96 bits keep every Redis key and index entry
/// short (see docs/redis-layout.md) while a random collision among a billion sessions stays below
/// 1 in 10^10, and the hash is one-way, so a handle never yields its token.
public struct SessionHandle: Hashable, Sendable, CustomStringConvertible {
    public static let byteCount = 12
    public static let encodedLength = Base64URL.encodedLength(byteCount: byteCount)
    private static let digestLength = 16

    public let encoded: String

    init(deriving tokenBytes: [UInt8]) {
        let digest = tokenBytes.withUnsafeBytes { Sodium.genericHash($0, outputLength: Self.digestLength) }
        self.encoded = Base64URL.encode(digest.prefix(Self.byteCount))
    }

    /// Strict parse of a handle given by a client (admin API).
    public init?(parsing text: some StringProtocol) {
        guard Base64URL.decode(text, byteCount: Self.byteCount) != nil else { return nil }
        self.encoded = String(text)
    }

    public var description: String { encoded }
}
