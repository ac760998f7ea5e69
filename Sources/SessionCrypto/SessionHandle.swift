/// Public identifier of a session: 12 bytes written as 16 base64url characters. The first 18 bits
/// are the token's routing tag and two zero bits, so the first 3 characters are exactly the tag's
/// text; the other 78 bits are BLAKE2b (`crypto_generichash`) of the token. The hash is one-way,
/// so a handle never yields its token; within one tag (one user's slot) a random collision among
/// a billion sessions stays below 1 in 10^5, and create refuses a handle that exists (`NX`).
public struct SessionHandle: Hashable, Sendable, CustomStringConvertible {
    public static let byteCount = 12
    public static let encodedLength = Base64URL.encodedLength(byteCount: byteCount)
    private static let digestLength = 16

    /// The whole handle, as clients and logs see it.
    public let encoded: String

    init(deriving tokenBytes: [UInt8], tag: RoutingTag) {
        // Built on the stack: a lookup derives a handle, and each array here was a malloc.
        encoded = withUnsafeTemporaryAllocation(of: UInt8.self, capacity: 2 + Self.digestLength) { bytes in
            tokenBytes.withUnsafeBytes { Sodium.genericHash($0, into: UnsafeMutableRawBufferPointer(UnsafeMutableBufferPointer(rebasing: bytes[2...]))) }
            // Bytes 0-1 are the tag; the top two bits of byte 2 stay zero so the tag ends on a
            // character boundary.
            bytes[0] = tag.high
            bytes[1] = tag.low
            bytes[2] &= 0x3F
            return Base64URL.encode(UnsafeBufferPointer(rebasing: bytes[..<Self.byteCount]))
        }
    }

    /// Strict parse of a handle given by a client (admin API).
    public init?(parsing text: some StringProtocol) {
        guard let bytes = Base64URL.decode(text.utf8, byteCount: Self.byteCount), bytes[2] & 0xC0 == 0 else { return nil }
        self.encoded = String(text)
    }

    /// A handle rebuilt from its tag text and its rest, as kept in a format-1 user index.
    public init?(tag: RoutingTag, rest: some StringProtocol) {
        self.init(parsing: tag.text + rest)
    }

    /// A handle rebuilt from its tag and its user-index member (`indexMember`).
    public init?(tag: RoutingTag, member: some Collection<UInt8>) {
        guard member.count == Self.memberByteCount, let first = member.first, first & 0xC0 == 0 else { return nil }
        self.encoded = Base64URL.encode([tag.high, tag.low] + Array(member))
    }

    /// Bytes of `indexMember`.
    public static let memberByteCount = byteCount - RoutingTag.byteCount

    /// The member of the user index: the 78 hashed bits as 10 bytes (the top two bits of the
    /// first are zero). The tag is in the index's key, so it is not repeated.
    public var indexMember: [UInt8] {
        Array(Base64URL.decode(encoded.utf8, byteCount: Self.byteCount)!.dropFirst(RoutingTag.byteCount))
    }

    /// The routing tag's text: the first 3 characters.
    public var tagText: Substring { encoded.prefix(RoutingTag.textLength) }

    /// The 13 characters after the tag: the member of the user index (the tag is in its key).
    public var rest: Substring { encoded.dropFirst(RoutingTag.textLength) }

    public var description: String { encoded }
}
