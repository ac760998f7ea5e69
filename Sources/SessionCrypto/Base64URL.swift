/// Unpadded base64url (RFC 4648 §5) with a strict decoder: no padding, no foreign characters,
/// and the unused trailing bits of the last character must be zero, so every byte string has
/// exactly one accepted encoding.
public enum Base64URL {
    private static let alphabet: [UInt8] = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_".utf8)

    private static let decodeTable: [UInt8] = {
        var table = [UInt8](repeating: 0xFF, count: 256)
        for (index, char) in alphabet.enumerated() { table[Int(char)] = UInt8(index) }
        return table
    }()

    public static func encodedLength(byteCount: Int) -> Int {
        (byteCount * 4 + 2) / 3
    }

    public static func encode(_ bytes: some Collection<UInt8>) -> String {
        // Contiguous bytes (arrays, a buffer on the stack) are read where they are.
        if let encoded = bytes.withContiguousStorageIfAvailable({ encode(contiguous: $0) }) { return encoded }
        return Array(bytes).withUnsafeBufferPointer { encode(contiguous: $0) }
    }

    private static func encode(contiguous input: UnsafeBufferPointer<UInt8>) -> String {
        let length = encodedLength(byteCount: input.count)
        return String(unsafeUninitializedCapacity: length) { out in
            var o = 0
            var i = 0
            while i + 3 <= input.count {
                let n = UInt32(input[i]) << 16 | UInt32(input[i + 1]) << 8 | UInt32(input[i + 2])
                out[o] = alphabet[Int(n >> 18 & 63)]
                out[o + 1] = alphabet[Int(n >> 12 & 63)]
                out[o + 2] = alphabet[Int(n >> 6 & 63)]
                out[o + 3] = alphabet[Int(n & 63)]
                o += 4
                i += 3
            }
            let rest = input.count - i
            if rest == 1 {
                let n = UInt32(input[i]) << 16
                out[o] = alphabet[Int(n >> 18 & 63)]
                out[o + 1] = alphabet[Int(n >> 12 & 63)]
                o += 2
            } else if rest == 2 {
                let n = UInt32(input[i]) << 16 | UInt32(input[i + 1]) << 8
                out[o] = alphabet[Int(n >> 18 & 63)]
                out[o + 1] = alphabet[Int(n >> 12 & 63)]
                out[o + 2] = alphabet[Int(n >> 6 & 63)]
                o += 3
            }
            return o
        }
    }

    /// Decodes exactly `byteCount` bytes, or returns nil for any other input.
    public static func decode(_ utf8: some Collection<UInt8>, byteCount: Int) -> [UInt8]? {
        // The loop runs over contiguous bytes: iterated through the generic view, each byte
        // cost protocol-witness calls (this function is not specialized across modules).
        if let decoded = utf8.withContiguousStorageIfAvailable({ decode(bytes: $0, byteCount: byteCount) }) {
            return decoded
        }
        return Array(utf8).withUnsafeBufferPointer { decode(bytes: $0, byteCount: byteCount) }
    }

    private static func decode(bytes utf8: UnsafeBufferPointer<UInt8>, byteCount: Int) -> [UInt8]? {
        guard utf8.count == encodedLength(byteCount: byteCount) else { return nil }
        var out = [UInt8]()
        out.reserveCapacity(byteCount)
        var accumulator: UInt32 = 0
        var bits = 0
        for char in utf8 {
            let value = decodeTable[Int(char)]
            if value == 0xFF { return nil }
            accumulator = accumulator << 6 | UInt32(value)
            bits += 6
            if bits >= 8 {
                bits -= 8
                out.append(UInt8(truncatingIfNeeded: accumulator >> UInt32(bits)))
                accumulator &= (1 << UInt32(bits)) - 1
            }
        }
        // Leftover bits must be zero: otherwise two strings would decode to the same bytes.
        guard accumulator == 0, out.count == byteCount else { return nil }
        return out
    }
}
