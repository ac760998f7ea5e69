/// The 16-bit routing tag that every session of one user shares: the first two bytes of the
/// token and of the handle. Redis keys carry its text as their hash tag (`{...}`), so one user's
/// sessions and index sit in one Redis Cluster slot and a token alone leads to that slot.
public struct RoutingTag: Hashable, Sendable {
    public static let byteCount = 2
    /// Characters of `text`: base64url of the two bytes, canonical (the last character's low
    /// two bits are zero).
    public static let textLength = 3

    public let high: UInt8
    public let low: UInt8

    public init(_ high: UInt8, _ low: UInt8) {
        self.high = high
        self.low = low
    }

    /// The hash-tag text put between `{` and `}` in every key of the user.
    public var text: String { String(Base64URL.encode([high, low, 0]).prefix(Self.textLength)) }
}

/// The server secret that maps user ids to routing tags (keyed BLAKE2b), so nobody without it can
/// compute which tag, hence which Redis slot, a user's sessions live in.
public struct RoutingKey: Sendable {
    public static let byteCount = 32

    private let key: [UInt8]

    /// A fresh random key (libsodium), for the first start of a deployment.
    public static func generate() -> RoutingKey {
        RoutingKey(uncheckedBytes: Sodium.randomBytes(byteCount))
    }

    private init(uncheckedBytes: [UInt8]) {
        self.key = uncheckedBytes
    }

    /// A key as stored; nil unless exactly `byteCount` bytes.
    public init?(bytes: [UInt8]) {
        guard bytes.count == Self.byteCount else { return nil }
        self.init(uncheckedBytes: bytes)
    }

    /// The bytes to store, once, where every sessiond process of the deployment finds them.
    public var bytes: [UInt8] { key }

    public func tag(forUser userID: String) -> RoutingTag {
        var userID = userID
        return userID.withUTF8 { input in
            withUnsafeTemporaryAllocation(byteCount: 16, alignment: 1) { digest in
                key.withUnsafeBytes { Sodium.genericHash(UnsafeRawBufferPointer(input), into: digest, key: $0) }
                return RoutingTag(digest[0], digest[1])
            }
        }
    }
}

extension RoutingKey: CustomStringConvertible {
    public var description: String { "RoutingKey(redacted)" }
}
