/// The bearer secret of a session: 32 bytes sent as 43 characters of unpadded base64url. The
/// first two bytes are the user's routing tag (they lead a lookup to the user's Redis slot), the
/// other 30 (240 bits) come from libsodium's CSPRNG. It is returned once and never stored, logged
/// or compared in variable time.
public struct SessionToken: Sendable {
    public static let byteCount = 32
    public static let randomByteCount = byteCount - RoutingTag.byteCount
    public static let encodedLength = Base64URL.encodedLength(byteCount: byteCount)

    let bytes: [UInt8]

    /// The text a client sends back. Encoded when asked, by the create and rotate answers only:
    /// a lookup's token keeps no copy of the text it was parsed from (the strict decoder
    /// accepts one text per byte string, so this is that text).
    public var encoded: String { Base64URL.encode(bytes) }

    /// The public, one-way identifier of this token's session, derived once: every operation on
    /// a token names its session by it, a lookup more than once.
    public let handle: SessionHandle

    private init(bytes: [UInt8]) {
        self.bytes = bytes
        handle = SessionHandle(deriving: bytes, tag: RoutingTag(bytes[0], bytes[1]))
    }

    /// A new token routed by `tag`: the tag, then 240 random bits.
    public static func generate(tag: RoutingTag) -> SessionToken {
        var bytes = [UInt8](repeating: 0, count: byteCount)
        (bytes[0], bytes[1]) = (tag.high, tag.low)
        bytes.withUnsafeMutableBytes { Sodium.randomBytes(into: UnsafeMutableRawBufferPointer(rebasing: $0[RoutingTag.byteCount...])) }
        return SessionToken(bytes: bytes)
    }

    /// Strict parse: exactly 43 base64url characters with canonical trailing bits, no padding.
    public init?(parsing text: some StringProtocol) {
        self.init(parsing: text.utf8)
    }

    /// The same from the text's UTF-8 bytes (a header value where it was read).
    public init?(parsing utf8: some Collection<UInt8>) {
        guard let bytes = Base64URL.decode(utf8, byteCount: Self.byteCount) else { return nil }
        self.init(bytes: bytes)
    }

    public var tag: RoutingTag { RoutingTag(bytes[0], bytes[1]) }

    public func matches(_ other: SessionToken) -> Bool {
        constantTimeEquals(bytes, other.bytes)
    }
}

extension SessionToken: CustomStringConvertible {
    /// Keeps the secret out of logs and string interpolation by accident.
    public var description: String { "SessionToken(redacted)" }
}
