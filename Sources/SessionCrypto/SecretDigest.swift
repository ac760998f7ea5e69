/// A fixed-size BLAKE2b digest of a secret (an API key), so secrets of any length are compared
/// in constant time without leaking their lengths, and the secret itself need not be kept.
public struct SecretDigest: Sendable {
    private let digest: [UInt8]

    public init(of secret: some StringProtocol) {
        let bytes = Array(secret.utf8)
        self.digest = bytes.withUnsafeBytes { Sodium.genericHash($0, outputLength: 32) }
    }

    /// A digest given as 64 hexadecimal digits (what `b2sum -l 256` prints for the secret), so a
    /// configuration need not hold the secret itself. Nil when `hex` is not that.
    public init?(hex: some StringProtocol) {
        let digits = Array(hex.utf8)
        guard digits.count == 64 else { return nil }
        var digest = [UInt8]()
        digest.reserveCapacity(32)
        for index in stride(from: 0, to: 64, by: 2) {
            guard let high = Self.nibble(digits[index]), let low = Self.nibble(digits[index + 1]) else { return nil }
            digest.append(high << 4 | low)
        }
        self.digest = digest
    }

    private static func nibble(_ digit: UInt8) -> UInt8? {
        switch digit {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): digit - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): digit - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): digit - UInt8(ascii: "A") + 10
        default: nil
        }
    }

    /// The digest as lowercase hexadecimal, for telling two configured keys apart.
    public var hex: String {
        digest.map { ($0 < 16 ? "0" : "") + String($0, radix: 16) }.joined()
    }

    public func matches(_ other: SecretDigest) -> Bool {
        constantTimeEquals(digest, other.digest)
    }
}
