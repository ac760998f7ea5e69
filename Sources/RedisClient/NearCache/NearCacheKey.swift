/// A near-cache key as a dictionary holds it: its bytes and their hash, computed once. A probe
/// compares the hashes first, so passing another key's bucket reads none of that key's bytes
/// (each key is an array of its own: a cache miss apiece, which showed in the lookup's
/// profile). The bytes are hashed as one block: `[UInt8]`'s own hashing feeds the hasher one
/// byte at a time.
struct NearCacheKey: Hashable {
    let bytes: [UInt8]
    let hash: Int

    init(_ bytes: [UInt8]) {
        self.bytes = bytes
        var hasher = Hasher()
        bytes.withUnsafeBytes { hasher.combine(bytes: $0) }
        hash = hasher.finalize()
    }

    static func == (lhs: NearCacheKey, rhs: NearCacheKey) -> Bool {
        lhs.hash == rhs.hash && lhs.bytes == rhs.bytes
    }

    func hash(into hasher: inout Hasher) {
        hasher.combine(hash)
    }
}
