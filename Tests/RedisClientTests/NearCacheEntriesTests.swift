import Testing

@testable import RedisClient

/// The near cache's LRU, as plain values: recency order, replacement, eviction and byte counts.
@Suite struct NearCacheEntriesTests {
    private func key(_ text: String) -> [UInt8] { Array(text.utf8) }

    @Test func aReadMakesAnEntryTheMostRecent() {
        var entries = NearCacheEntries()
        for name in ["a", "b", "c"] { entries.insert(key(name + "-value"), for: key(name)) }
        #expect(entries.keysByRecency == [key("c"), key("b"), key("a")])
        #expect(entries.value(for: key("a")) == key("a-value"))
        #expect(entries.keysByRecency == [key("a"), key("c"), key("b")])
        #expect(entries.value(for: key("missing")) == nil)
    }

    @Test func evictionTakesTheLeastRecentlyUsed() {
        var entries = NearCacheEntries()
        for name in ["a", "b", "c", "d"] { entries.insert(key(name), for: key(name)) }
        _ = entries.value(for: key("a"))
        #expect(entries.removeOldest() > 0)
        #expect(!entries.contains(key("b")))
        #expect(entries.removeOldest() > 0)
        #expect(!entries.contains(key("c")))
        #expect(entries.keysByRecency == [key("a"), key("d")])
        #expect(entries.count == 2)
    }

    @Test func bytesFollowInsertsReplacementsAndRemovals() {
        var entries = NearCacheEntries()
        let overhead = NearCacheEntries.overheadPerEntry
        #expect(entries.insert(key("12345"), for: key("k1")) == 2 + 5 + overhead)
        #expect(entries.insert(key("1"), for: key("k1")) == -4, "a replacement counts the difference")
        entries.insert(key("xy"), for: key("k2"))
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
        var model = [[UInt8]]()
        var generator = SystemRandomNumberGenerator()
        for step in 0..<5000 {
            let name = key("k\(Int.random(in: 0..<40, using: &generator))")
            switch Int.random(in: 0..<4, using: &generator) {
            case 0:
                entries.insert(key("v\(step)"), for: name)
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
        #expect(entries.keysByRecency == model)
        #expect(entries.count == model.count)
    }
}
