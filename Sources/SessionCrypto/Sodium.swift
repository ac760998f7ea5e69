import CSodium

/// libsodium must be initialised once before any other call; a Swift global is initialised
/// lazily and exactly once (thread-safe), which is what `sodium_init` asks for.
private let sodiumReady: Bool = sodium_init() >= 0

enum Sodium {
    static func ensureInitialised() {
        precondition(sodiumReady, "libsodium failed to initialise")
    }

    static func randomBytes(_ count: Int) -> [UInt8] {
        var bytes = [UInt8](repeating: 0, count: count)
        bytes.withUnsafeMutableBytes { randomBytes(into: $0) }
        return bytes
    }

    /// Fills `buffer` with random bytes.
    static func randomBytes(into buffer: UnsafeMutableRawBufferPointer) {
        ensureInitialised()
        if let base = buffer.baseAddress { randombytes_buf(base, buffer.count) }
    }

    /// BLAKE2b of `input`, `outputLength` bytes (16...64), keyed when `key` is given.
    static func genericHash(_ input: UnsafeRawBufferPointer, outputLength: Int, key: UnsafeRawBufferPointer? = nil) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: outputLength)
        out.withUnsafeMutableBytes { genericHash(input, into: $0, key: key) }
        return out
    }

    /// BLAKE2b of `input` into `output`, whose size (16...64) is the hash's length.
    static func genericHash(_ input: UnsafeRawBufferPointer, into output: UnsafeMutableRawBufferPointer, key: UnsafeRawBufferPointer? = nil) {
        ensureInitialised()
        let status = crypto_generichash(
            output.baseAddress!.assumingMemoryBound(to: UInt8.self), output.count,
            input.baseAddress?.assumingMemoryBound(to: UInt8.self), UInt64(input.count),
            key?.baseAddress?.assumingMemoryBound(to: UInt8.self), key?.count ?? 0
        )
        precondition(status == 0, "crypto_generichash failed")
    }
}

/// Constant-time equality for secrets: the time taken depends only on the lengths.
public func constantTimeEquals(_ lhs: some Collection<UInt8>, _ rhs: some Collection<UInt8>) -> Bool {
    Sodium.ensureInitialised()
    // Contiguous bytes (arrays, native strings' UTF-8) are compared where they are, without copies.
    let inPlace = lhs.withContiguousStorageIfAvailable { left in
        rhs.withContiguousStorageIfAvailable { right in
            left.count == right.count && (left.isEmpty || sodium_memcmp(left.baseAddress!, right.baseAddress!, left.count) == 0)
        }
    }
    if let inPlace = inPlace ?? nil { return inPlace }
    let left = Array(lhs)
    let right = Array(rhs)
    guard left.count == right.count else { return false }
    if left.isEmpty { return true }
    return left.withUnsafeBytes { l in
        right.withUnsafeBytes { r in sodium_memcmp(l.baseAddress!, r.baseAddress!, left.count) == 0 }
    }
}
