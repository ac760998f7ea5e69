import Testing

@testable import RedisClient

/// The near cache's LRU, as plain values: recency order, replacement, eviction and byte counts.
@Suite struct NearCacheEntriesTests {
    private func key(_ text: String) -> NearCacheKey { NearCacheKey(bytes(text)) }
    private func bytes(_ text: String) -> [UInt8] { Array(text.utf8) }

    @Test func aReadMakesAnEntryTheMostRecent() {
        var entries = NearCacheEntries()
        for name in ["a", "b", "c"] { entries.insert(bytes(name + "-value"), for: key(name)) }
        #expect(entries.keysByRecency == [bytes("c"), bytes("b"), bytes("a")])
        #expect(entries.value(for: key("a")) == bytes("a-value"))
        #expect(entries.keysByRecency == [bytes("a"), bytes("c"), bytes("b")])
        #expect(entries.value(for: key("missing")) == nil)
    }

    @Test func evictionTakesTheLeastRecentlyUsed() {
        var entries = NearCacheEntries()
        for name in ["a", "b", "c", "d"] { entries.insert(bytes(name), for: key(name)) }
        _ = entries.value(for: key("a"))
        #expect(entries.removeOldest() > 0)
        #expect(!entries.contains(key("b")))
        #expect(entries.removeOldest() > 0)
        #expect(!entries.contains(key("c")))
        #expect(entries.keysByRecency == [bytes("a"), bytes("d")])
        #expect(entries.count == 2)
    }

    @Test func bytesFollowInsertsReplacementsAndRemovals() {
        var entries = NearCacheEntries()
        let overhead = NearCacheEntries.overheadPerEntry
        #expect(entries.insert(bytes("12345"), for: key("k1")) == (1, 2 + 5 + overhead))
        #expect(entries.insert(bytes("1"), for: key("k1")) == (0, -4), "a replacement counts the difference")
        entries.insert(bytes("xy"), for: key("k2"))
        #expect(entries.bytes == (2 + 1 + overhead) + (2 + 2 + overhead))
        #expect(entries.remove(key("k1")) == 2 + 1 + overhead)
        #expect(entries.remove(key("k1")) == 0)
        #expect(entries.bytes == 2 + 2 + overhead)
        entries.removeAll()
        #expect(entries.bytes == 0 && entries.count == 0 && entries.removeOldest() == 0)
    }

    /// Freed nodes are reused and the list stays whole after many mixed operations, checked
    /// against a plain array model of the same operations.
    @Test func staysConsistentWithASimpleModel() {
        var entries = NearCacheEntries()
        var model = [NearCacheKey]()
        var generator = SystemRandomNumberGenerator()
        for step in 0..<5000 {
            let name = key("k\(Int.random(in: 0..<40, using: &generator))")
            switch Int.random(in: 0..<4, using: &generator) {
            case 0:
                entries.insert(bytes("v\(step)"), for: name)
                model.removeAll { $0 == name }
                model.insert(name, at: 0)
            case 1:
                let found = entries.value(for: name) != nil
                #expect(found == model.contains(name))
                if found {
                    model.removeAll { $0 == name }
                    model.insert(name, at: 0)
                }
            case 2:
                entries.remove(name)
                model.removeAll { $0 == name }
            default:
                if entries.removeOldest() > 0 { model.removeLast() }
            }
        }
        #expect(entries.keysByRecency == model.map(\.bytes))
        #expect(entries.count == model.count)
    }
}
