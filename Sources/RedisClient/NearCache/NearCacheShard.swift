import NIOCore
import Synchronization

/// What a near-cache read found: Redis's reply (or the cached record, as the reply a `GET` would
/// give), and whether it came from process memory.
public struct NearRead: Sendable {
    public var reply: RESPValue
    public var cached: Bool
}

/// How a near-cache read is answered: once, on the caller's event loop.
public typealias NearAnswer = @Sendable (Result<NearRead, any Error>) -> Void

/// One shard of the near cache: the values read through one data connection to one Redis node,
/// kept exact by the invalidations Redis broadcasts to one subscriber connection for every write
/// of a key under the key prefix (RESP2 `CLIENT TRACKING ... REDIRECT <its own id> BCAST
/// PREFIX`: the subscriber is the tracking client). Both connections live on the shard's event
/// loop. docs/near-cache.md gives the argument for each rule below.
///
/// - A miss is answered by a `GET`, and its key is marked as being fetched before it is sent. An
///   invalidation that arrives before the reply clears the mark, and a reply whose mark is gone
///   is not kept (Redis's documented fetch/invalidate race). A missing key is not kept.
/// - `strict`: a hit waits for a barrier: a `PING` on the subscriber connection, sent after the
///   lookup arrived. Without I/O threads (a server with them is served without the cache), Redis
///   queues a write's broadcast invalidation on the subscriber connection in the `beforeSleep`
///   that writes the turn's replies, before it writes them, and sessiond confirms a revocation
///   or a patch only after a later turn; so the `PONG` comes after the invalidation of every
///   write acknowledged before the `PING` was sent, and it shows that the tracking client was
///   still alive. Every hit that arrives while a barrier is not yet sent shares it.
/// - `bounded`: a heartbeat sends the same barrier every half bound; a hit is answered at once
///   while the newest answered barrier was sent within the bound, and read from Redis otherwise.
/// - Losing either connection drops every entry (`unlink`), as does a flush (`FLUSHALL`, a slot
///   map change): invalidations may have been missed.
final class NearCacheShard: Sendable {
    private struct Link: Sendable {
        let subscriber: RedisConnection
        let data: RedisConnection
        let epoch: Int
    }

    /// A strict hit waiting for the open barrier: answered from the entry, or fetched, when the
    /// barrier's `PONG` is back. The caller's callback is kept as it is: no promise, no future.
    private struct BarrierWaiter {
        let key: NearCacheKey
        let loop: any EventLoop
        let answer: NearAnswer
    }

    private struct State {
        var entries = NearCacheEntries()
        /// Keys being fetched, with the fetch that may keep its reply.
        var fetches: [NearCacheKey: UInt64] = [:]
        var nextFetch: UInt64 = 0
        var link: Link?
        var epoch = 0
        /// The hits of the barrier that hits arriving now join; it is sent on the next turn of
        /// the loop. Nil while no barrier is open.
        var openBarrier: [BarrierWaiter]?
        /// When the newest answered barrier of this link was sent.
        var confirmedAt: NIODeadline?
        var heartbeat: RepeatedTask?
    }

    /// How a waiting hit fails when its shard has no link: the caller reads Redis itself.
    private static let linkLost = RedisClientError(.connectionClosed, "near-cache link to Redis lost")

    let eventLoop: any EventLoop
    private let configuration: NearCacheConfiguration
    /// The prefix whose writes the subscriber is told of.
    var keyPrefix: String { configuration.keyPrefix }
    private let metrics: NearCacheMetrics
    private let state = Mutex(State())

    init(eventLoop: any EventLoop, configuration: NearCacheConfiguration, metrics: NearCacheMetrics) {
        self.eventLoop = eventLoop
        self.configuration = configuration
        self.metrics = metrics
    }

    // MARK: link

    /// Starts caching the reads of `data`, whose invalidations `subscriber` receives.
    /// Returns the link's epoch, for `unlink`.
    func link(subscriber: RedisConnection, data: RedisConnection) -> Int {
        let epoch = state.withLock { state in
            state.epoch += 1
            clear(&state)
            state.link = Link(subscriber: subscriber, data: data, epoch: state.epoch)
            state.confirmedAt = nil
            return state.epoch
        }
        if case .bounded(let bound) = configuration.mode {
            let interval = TimeAmount.nanoseconds(max(1_000_000, TimeAmount(bound).nanoseconds / 2))
            let heartbeat = eventLoop.scheduleRepeatedTask(initialDelay: .zero, delay: interval) { _ in self.sendBarrier() }
            let stale = state.withLock { state -> RepeatedTask? in
                guard state.link?.epoch == epoch else { return heartbeat }
                state.heartbeat = heartbeat
                return nil
            }
            stale?.cancel()
        }
        return epoch
    }

    /// Stops caching for the link of `epoch`: one of its connections closed, so invalidations
    /// may have been missed. Every entry goes; waiting hits read from Redis.
    func unlink(epoch: Int) {
        let unlinked = state.withLock { state -> (barrier: [BarrierWaiter]?, heartbeat: RepeatedTask?)? in
            guard state.link?.epoch == epoch else { return nil }
            state.link = nil
            state.epoch += 1
            clear(&state)
            state.confirmedAt = nil
            defer {
                state.openBarrier = nil
                state.heartbeat = nil
            }
            return (state.openBarrier, state.heartbeat)
        }
        guard let unlinked else { return }
        unlinked.heartbeat?.cancel()
        for waiter in unlinked.barrier ?? [] { waiter.loop.deliver(.failure(Self.linkLost), to: waiter.answer) }
        metrics.flushes.increment()
    }

    /// Drops every entry, keeping the link: after `FLUSHALL`/`FLUSHDB` (a null invalidation) or a
    /// slot map change.
    func flush() {
        state.withLock { clear(&$0) }
        metrics.flushes.increment()
    }

    /// The subscriber's messages: `message __redis__:invalidate <keys, or null for a flush>`.
    func receive(_ message: RESPValue) {
        guard case .array(let parts) = message, parts.count == 3 else { return }
        guard case .array(let keys) = parts[2] else {
            flush()
            return
        }
        let names = keys.compactMap(\.bytes)
        forget(names.map(NearCacheKey.init))
        metrics.invalidations.increment(by: names.count)
    }

    /// Drops `keys` and keeps no reply of a fetch of them already under way: Redis invalidated
    /// them, or this process wrote them.
    func forget(_ keys: [NearCacheKey]) {
        state.withLock { state in
            for key in keys {
                state.fetches[key] = nil
                let freed = state.entries.remove(key)
                if freed > 0 { configuration.usage.add(entries: -1, bytes: -freed) }
            }
        }
    }

    private func clear(_ state: inout State) {
        configuration.usage.add(entries: -state.entries.count, bytes: -state.entries.bytes)
        state.entries.removeAll()
        state.fetches.removeAll()
    }

    // MARK: read

    private enum Plan {
        case unlinked
        case answer([UInt8])
        case awaitBarrier(send: Bool)
        case fetch(RedisConnection)
    }

    /// Answers `key`'s value as a `GET` would (an error reply fails, as `.commandError`), once, on
    /// `callerLoop`. Returns false, answering nothing, while the shard is not linked (the caller
    /// reads Redis itself).
    func read(_ key: [UInt8], on callerLoop: any EventLoop, answer: @escaping NearAnswer) -> Bool {
        let key = NearCacheKey(key)
        let now = NIODeadline.now()
        let plan = state.withLock { state -> Plan in
            guard let link = state.link else { return .unlinked }
            switch configuration.mode {
            case .bounded(let bound):
                if let confirmed = state.confirmedAt, now - confirmed <= TimeAmount(bound),
                   let value = state.entries.value(for: key) {
                    return .answer(value)
                }
            case .strict:
                // Only whether it is there: the value is taken, and made the most recent, after
                // the barrier.
                if state.entries.contains(key) {
                    let waiter = BarrierWaiter(key: key, loop: callerLoop, answer: answer)
                    if state.openBarrier == nil {
                        state.openBarrier = [waiter]
                        return .awaitBarrier(send: true)
                    }
                    state.openBarrier?.append(waiter)
                    return .awaitBarrier(send: false)
                }
            }
            return .fetch(link.data)
        }
        switch plan {
        case .unlinked:
            return false
        case .answer(let value):
            metrics.hits.increment()
            callerLoop.deliver(.success(NearRead(reply: .bulkString(value), cached: true)), to: answer)
        case .awaitBarrier(let send):
            // Sent from a task of the loop, after every hit of this turn joined it: the barrier
            // is closed before its PING is written, and it is flushed after that.
            if send { eventLoop.execute { self.sendBarrier() } }
        case .fetch(let data):
            fetch(key, on: data, callerLoop: callerLoop, answer: answer)
        }
        return true
    }

    /// After a barrier: each hit's entry if it is still there (no invalidation came before the
    /// `PONG`), otherwise a fetch. After a failed barrier (`confirmed` false: the link is going
    /// down or was replaced), every hit is fetched from the current link's data connection, or
    /// fails (for the caller's fallback) when there is none.
    private func answer(_ waiting: [BarrierWaiter], confirmed: Bool) {
        var found = [(BarrierWaiter, [UInt8])]()
        var missing = [BarrierWaiter]()
        let data = state.withLock { state -> RedisConnection? in
            for waiter in waiting {
                if confirmed, let value = state.entries.value(for: waiter.key) {
                    found.append((waiter, value))
                } else {
                    missing.append(waiter)
                }
            }
            return state.link?.data
        }
        // Completed outside the lock: a completion runs the caller's callbacks, which may read again.
        if !found.isEmpty { metrics.hits.increment(by: found.count) }
        for (waiter, value) in found {
            waiter.loop.deliver(.success(NearRead(reply: .bulkString(value), cached: true)), to: waiter.answer)
        }
        for waiter in missing {
            if let data {
                fetch(waiter.key, on: data, callerLoop: waiter.loop, answer: waiter.answer)
            } else {
                waiter.loop.deliver(.failure(Self.linkLost), to: waiter.answer)
            }
        }
    }

    /// A miss: a `GET`, answered as it comes, whose value is kept unless an invalidation, a write
    /// of this process, a flush or a new link came while it was under way. One fetch per key
    /// keeps its reply: a newer one takes the mark.
    private func fetch(_ key: NearCacheKey, on data: RedisConnection, callerLoop: any EventLoop, answer: @escaping NearAnswer) {
        metrics.misses.increment()
        let fetch = state.withLock { state -> UInt64? in
            guard state.link?.data === data else { return nil }
            state.nextFetch &+= 1
            state.fetches[key] = state.nextFetch
            return state.nextFetch
        }
        data.sendRaw(RedisCommand("GET", RedisArgument(key.bytes))) { result in
            if let fetch { self.finishFetch(key, fetch, value: try? result.get().bulkBytes) }
            callerLoop.deliver(result.flatMap { reply in Result { NearRead(reply: try reply.checked(), cached: false) } }, to: answer)
        }
    }

    /// Keeps a fetched value unless an invalidation, a write of this process, a flush or a new
    /// link came since the fetch began. A missing key is not kept: unknown tokens must not fill
    /// the cache. A failed fetch only clears its mark.
    private func finishFetch(_ key: NearCacheKey, _ fetch: UInt64, value: [UInt8]?) {
        state.withLock { state in
            guard state.fetches[key] == fetch else { return }
            state.fetches[key] = nil
            guard let value else { return }
            let added = state.entries.insert(value, for: key)
            configuration.usage.add(entries: added.entries, bytes: added.bytes)
            while configuration.usage.entries > configuration.maxEntries, state.entries.count > 1 {
                configuration.usage.add(entries: -1, bytes: -state.entries.removeOldest())
            }
        }
    }

    // MARK: barrier

    private func sendBarrier() {
        let (waiting, link) = state.withLock { state in
            defer { state.openBarrier = nil }
            return (state.openBarrier ?? [], state.link)
        }
        guard let link else {
            answer(waiting, confirmed: false)
            return
        }
        let sentAt = NIODeadline.now()
        metrics.barrierRoundTrips.increment()
        link.subscriber.sendRaw(RedisCommand("PING")) { result in
            guard case .success(let reply) = result, !reply.isError else {
                self.answer(waiting, confirmed: false)
                return
            }
            let current = self.state.withLock { state -> Bool in
                guard state.link?.epoch == link.epoch else { return false }
                if state.confirmedAt.map({ $0 < sentAt }) ?? true { state.confirmedAt = sentAt }
                return true
            }
            // A barrier of an earlier link orders nothing of the current one's subscriber.
            self.answer(waiting, confirmed: current)
        }
    }
}
