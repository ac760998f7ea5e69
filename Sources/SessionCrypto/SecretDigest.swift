/// A fixed-size BLAKE2b digest of a secret (an API key), so secrets of any length are compared
/// in constant time without leaking their lengths, and the secret itself need not be kept.
public struct SecretDigest: Sendable {
    private let digest: [UInt8]

    public init(of secret: some StringProtocol) {
        let bytes = Array(secret.utf8)
        self.digest = bytes.withUnsafeBytes { Sodium.genericHash($0, outputLength: 32) }
    }

    public func matches(_ other: SecretDigest) -> Bool {
        constantTimeEquals(digest, other.digest)
    }
}
