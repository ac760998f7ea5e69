import CSodium

/// The keys that seal session data at rest (SPEC §5.11, `SESSIOND_DATA_KEYS`): XChaCha20-Poly1305
/// (libsodium's IETF construction) with a random 24-byte nonce per seal, so a key seals any
/// number of records without a nonce ever repeating by chance. New seals use the current key;
/// every key in the ring opens, so a new current key rolls out while older records stay readable.
///
/// A box is `key id (1 byte) ‖ nonce (24) ‖ ciphertext ‖ tag (16)`: 41 bytes more than its text.
public struct DataKeyRing: Sendable {
    public static let keyByteCount = Int(crypto_aead_xchacha20poly1305_ietf_KEYBYTES)
    static let nonceByteCount = Int(crypto_aead_xchacha20poly1305_ietf_NPUBBYTES)
    static let tagByteCount = Int(crypto_aead_xchacha20poly1305_ietf_ABYTES)
    /// Bytes a box adds to what it seals.
    public static let overhead = 1 + nonceByteCount + tagByteCount

    /// The key that seals.
    public let currentID: UInt8
    /// Keys by id; 256 slots, so an open is one index, not a hash lookup.
    private let keys: [[UInt8]?]

    /// Why a box does not open: the answer is a 503 and a log line naming the key, never a guess.
    public enum OpenError: Error, Sendable, Equatable, CustomStringConvertible {
        /// Sealed under a key the ring does not hold (removed too early, or another deployment's).
        case unknownKey(UInt8)
        /// The key is there but the box fails authentication: changed in Redis, or moved to
        /// another session's record.
        case rejected(UInt8)
        /// Shorter than a box can be.
        case truncated

        public var description: String {
            switch self {
            case .unknownKey(let id): "sealed under data key \(id), which SESSIOND_DATA_KEYS does not hold"
            case .rejected(let id): "does not open under data key \(id): altered, or copied from another session"
            case .truncated: "sealed data cut short"
            }
        }
    }

    public init(currentID: UInt8, keys: [UInt8: [UInt8]]) throws(DataKeyRingError) {
        guard keys[currentID] != nil else { throw DataKeyRingError("the current key \(currentID) is not in the ring") }
        var slots = [[UInt8]?](repeating: nil, count: 256)
        for (id, key) in keys {
            guard key.count == Self.keyByteCount else {
                throw DataKeyRingError("key \(id) is \(key.count) bytes; a data key is \(Self.keyByteCount) bytes")
            }
            slots[Int(id)] = key
        }
        self.currentID = currentID
        self.keys = slots
        Sodium.ensureInitialised()
    }

    /// The key ring file: one key a line as `id:base64key`, the id 0 to 255 and the key 32 bytes
    /// in standard base64; the current key's line ends with ` current`. Blank lines and lines
    /// starting with `#` are skipped. A reason never quotes a key.
    public init(parsing text: String) throws(DataKeyRingError) {
        Sodium.ensureInitialised()
        var keys = [UInt8: [UInt8]]()
        var current: UInt8?
        for (number, rawLine) in text.split(omittingEmptySubsequences: false, whereSeparator: \.isNewline).enumerated() {
            let line = rawLine.trimmingASCIISpaces()
            if line.isEmpty || line.hasPrefix("#") { continue }
            var words = line.split(whereSeparator: { $0 == " " || $0 == "\t" })
            let marked = words.count == 2 && words[1] == "current"
            if marked { words.removeLast() }
            let fields = words.count == 1 ? words[0].split(separator: ":", maxSplits: 1, omittingEmptySubsequences: false) : []
            guard fields.count == 2, let id = UInt8(fields[0]), fields[0].utf8.allSatisfy({ (48...57).contains($0) }) else {
                throw DataKeyRingError("line \(number + 1): expected 'id:base64key' with an id from 0 to 255, optionally followed by ' current'")
            }
            guard let key = Self.decodeBase64(fields[1]), key.count == Self.keyByteCount else {
                throw DataKeyRingError("line \(number + 1): key \(id) must be \(Self.keyByteCount) bytes in standard base64")
            }
            guard keys.updateValue(key, forKey: id) == nil else { throw DataKeyRingError("line \(number + 1): key \(id) is listed twice") }
            if marked {
                guard current == nil else { throw DataKeyRingError("line \(number + 1): a second key is marked current") }
                current = id
            }
        }
        guard !keys.isEmpty else { throw DataKeyRingError("holds no key") }
        guard let current else { throw DataKeyRingError("no key is marked current (end its line with ' current')") }
        try self.init(currentID: current, keys: keys)
    }

    /// Seals `text` under the current key with a fresh random nonce.
    public func seal(_ text: [UInt8], associatedData: [UInt8]) -> [UInt8] {
        let key = keys[Int(currentID)]!
        var box = [UInt8](repeating: 0, count: Self.overhead + text.count)
        box[0] = currentID
        box.withUnsafeMutableBufferPointer { out in
            let nonce = out.baseAddress! + 1
            randombytes_buf(nonce, Self.nonceByteCount)
            var written: UInt64 = 0
            let status = crypto_aead_xchacha20poly1305_ietf_encrypt(
                nonce + Self.nonceByteCount, &written, text, UInt64(text.count), associatedData, UInt64(associatedData.count),
                nil, nonce, key
            )
            precondition(status == 0 && Int(written) == text.count + Self.tagByteCount, "XChaCha20-Poly1305 seal failed")
        }
        return box
    }

    /// The text of a box sealed with the same associated data by any key of the ring.
    public func open(_ box: ArraySlice<UInt8>, associatedData: [UInt8]) throws(OpenError) -> [UInt8] {
        guard box.count >= Self.overhead else { throw .truncated }
        let id = box[box.startIndex]
        guard let key = keys[Int(id)] else { throw .unknownKey(id) }
        let length = box.count - Self.overhead
        // One spare byte, so that an empty text still has an address to be written to.
        var text = [UInt8](repeating: 0, count: length + 1)
        let status = box.withUnsafeBufferPointer { sealed in
            text.withUnsafeMutableBufferPointer { out in
                let nonce = sealed.baseAddress! + 1
                var written: UInt64 = 0
                return crypto_aead_xchacha20poly1305_ietf_decrypt(
                    out.baseAddress!, &written, nil, nonce + Self.nonceByteCount,
                    UInt64(sealed.count - 1 - Self.nonceByteCount), associatedData, UInt64(associatedData.count), nonce, key
                )
            }
        }
        guard status == 0 else { throw .rejected(id) }
        text.removeLast()
        return text
    }

    private static func decodeBase64(_ text: Substring) -> [UInt8]? {
        let input = Array(text.utf8)
        var output = [UInt8](repeating: 0, count: input.count)
        var length = 0
        let status = sodium_base642bin(&output, output.count, input, input.count, nil, &length, nil, sodium_base64_VARIANT_ORIGINAL)
        guard status == 0 else { return nil }
        return Array(output.prefix(length))
    }
}

/// Why a key ring cannot be used, without naming the variable (the caller does).
public struct DataKeyRingError: Error, Sendable, CustomStringConvertible {
    public let text: String
    public init(_ text: String) { self.text = text }
    public var description: String { text }
}
