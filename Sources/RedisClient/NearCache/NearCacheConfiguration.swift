import CoreMetrics
import Synchronization

/// How the near cache answers (SPEC §3, §5.9; docs/near-cache.md).
public struct NearCacheConfiguration: Sendable {
    public enum Mode: Sendable, Equatable {
        /// A cached answer waits for a barrier sent after the lookup arrived: never staler than
        /// a `GET` to the same node at the same moment.
        case strict
        /// A cached answer needs no round trip while the node's last confirmed barrier was sent
        /// within `maxStaleness`.
        case bounded(maxStaleness: Duration)
    }

    public var mode: Mode
    /// Entries the whole process keeps, over every node and event loop.
    public var maxEntries: Int
    /// The prefix of every key the cache may hold: each node broadcasts to the process the
    /// invalidation of every key written under it (`CLIENT TRACKING ... BCAST PREFIX`).
    public var keyPrefix: String
    /// The process-wide count of entries and bytes, shared by every shard.
    public let usage: NearCacheUsage

    public init(mode: Mode, maxEntries: Int, keyPrefix: String, usage: NearCacheUsage = NearCacheUsage()) {
        self.mode = mode
        self.maxEntries = maxEntries
        self.keyPrefix = keyPrefix
        self.usage = usage
    }
}

/// Entries and bytes held by every shard of the process, kept as they change so that the bound
/// is process-wide and the metrics endpoint reads them without taking a lock.
public final class NearCacheUsage: Sendable {
    private let entryCount = Atomic<Int>(0)
    private let byteCount = Atomic<Int>(0)

    public init() {}

    public var entries: Int { entryCount.load(ordering: .relaxed) }
    /// An estimate: keys, values and the per-entry overhead of `NearCacheEntries`.
    public var bytes: Int { byteCount.load(ordering: .relaxed) }

    func add(entries: Int, bytes: Int) {
        if entries != 0 { entryCount.add(entries, ordering: .relaxed) }
        if bytes != 0 { byteCount.add(bytes, ordering: .relaxed) }
    }
}

/// The near cache's counters. Labels carry no key.
public struct NearCacheMetrics: Sendable {
    let hits: Counter
    let misses: Counter
    let barrierRoundTrips: Counter
    let invalidations: Counter
    let flushes: Counter

    public init(factory: any MetricsFactory) {
        hits = Counter(label: "sessiond_near_cache_hits_total", dimensions: [], factory: factory)
        misses = Counter(label: "sessiond_near_cache_misses_total", dimensions: [], factory: factory)
        barrierRoundTrips = Counter(label: "sessiond_near_cache_barrier_round_trips_total", dimensions: [], factory: factory)
        invalidations = Counter(label: "sessiond_near_cache_invalidations_total", dimensions: [], factory: factory)
        flushes = Counter(label: "sessiond_near_cache_flushes_total", dimensions: [], factory: factory)
    }
}
