/// The entries of one near-cache shard: values by key, with their recency as a doubly linked
/// list threaded through an array (no allocation per touch), so a hit, an insert and an eviction
/// of the least recently used entry are each O(1). Not thread-safe: its shard locks it.
struct NearCacheEntries {
    private struct Node {
        var key: [UInt8]
        var value: [UInt8]
        var newer: Int32
        var older: Int32
    }

    /// What an entry costs beyond its key and value bytes: two array headers, a node, a
    /// dictionary slot (the key's bytes and hash, and the position) and the allocator's share.
    /// Measured: a process holding 1,000,000 typical entries (52 B of key and record each) grew
    /// by 241 B an entry (`scripts/bench --growth`, 92555da). The byte figure is an estimate for
    /// sizing, not malloc's count.
    static let overheadPerEntry = 176

    private var positions: [NearCacheKey: Int32] = [:]
    private var nodes: [Node] = []
    private var freeNodes: [Int32] = []
    private var newest: Int32 = -1
    private var oldest: Int32 = -1
    private(set) var bytes = 0

    var count: Int { positions.count }

    static func cost(key: [UInt8], value: [UInt8]) -> Int {
        key.count + value.count + overheadPerEntry
    }

    /// The value of `key`, which becomes the most recently used.
    mutating func value(for key: NearCacheKey) -> [UInt8]? {
        guard let position = positions[key] else { return nil }
        moveToNewest(position)
        return nodes[Int(position)].value
    }

    func contains(_ key: NearCacheKey) -> Bool {
        positions[key] != nil
    }

    /// Stores `value` as the most recently used; returns the change in entries (0 or 1) and in
    /// bytes.
    @discardableResult
    mutating func insert(_ value: [UInt8], for key: NearCacheKey) -> (entries: Int, bytes: Int) {
        if let position = positions[key] {
            let before = Self.cost(key: key.bytes, value: nodes[Int(position)].value)
            nodes[Int(position)].value = value
            moveToNewest(position)
            let delta = Self.cost(key: key.bytes, value: value) - before
            bytes += delta
            return (0, delta)
        }
        let node = Node(key: key.bytes, value: value, newer: -1, older: newest)
        let position: Int32
        if let reused = freeNodes.popLast() {
            position = reused
            nodes[Int(position)] = node
        } else {
            position = Int32(nodes.count)
            nodes.append(node)
        }
        if newest >= 0 { nodes[Int(newest)].newer = position }
        newest = position
        if oldest < 0 { oldest = position }
        positions[key] = position
        let cost = Self.cost(key: key.bytes, value: value)
        bytes += cost
        return (1, cost)
    }

    /// Removes `key`; returns the bytes freed (0 when it was not there).
    @discardableResult
    mutating func remove(_ key: NearCacheKey) -> Int {
        guard let position = positions.removeValue(forKey: key) else { return 0 }
        return release(position)
    }

    /// Removes the least recently used entry; returns the bytes freed (0 when empty).
    mutating func removeOldest() -> Int {
        guard oldest >= 0 else { return 0 }
        let position = oldest
        positions[NearCacheKey(nodes[Int(position)].key)] = nil
        return release(position)
    }

    mutating func removeAll() {
        positions.removeAll()
        nodes.removeAll()
        freeNodes.removeAll()
        newest = -1
        oldest = -1
        bytes = 0
    }

    /// Keys from the most to the least recently used, for tests.
    var keysByRecency: [[UInt8]] {
        var keys = [[UInt8]]()
        var position = newest
        while position >= 0 {
            keys.append(nodes[Int(position)].key)
            position = nodes[Int(position)].older
        }
        return keys
    }

    private mutating func release(_ position: Int32) -> Int {
        unlink(position)
        let cost = Self.cost(key: nodes[Int(position)].key, value: nodes[Int(position)].value)
        nodes[Int(position)] = Node(key: [], value: [], newer: -1, older: -1)
        freeNodes.append(position)
        bytes -= cost
        return cost
    }

    private mutating func moveToNewest(_ position: Int32) {
        guard position != newest else { return }
        unlink(position)
        nodes[Int(position)].older = newest
        nodes[Int(position)].newer = -1
        if newest >= 0 { nodes[Int(newest)].newer = position }
        newest = position
        if oldest < 0 { oldest = position }
    }

    private mutating func unlink(_ position: Int32) {
        // The two links only: copying the node would retain and release its arrays.
        let newer = nodes[Int(position)].newer
        let older = nodes[Int(position)].older
        if newer >= 0 { nodes[Int(newer)].older = older } else { newest = older }
        if older >= 0 { nodes[Int(older)].newer = newer } else { oldest = newer }
    }
}
