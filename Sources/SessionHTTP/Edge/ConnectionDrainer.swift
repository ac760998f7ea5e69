import CoreMetrics
import HummingbirdCore
import NIOCore
import Synchronization

/// Holds SESSIOND_MAX_CONNECTIONS and, at the limit, makes room for a new client by closing idle
/// connections, longest idle first, as nginx does when its `worker_connections` are used up
/// (`ngx_drain_connections`). Without it, a few thousand idle keep-alive connections (a proxy's
/// large idle pool, a misbehaving client, slowloris) lock everyone else out until the idle
/// timeout cuts one. A connection with a request in flight is never closed; one that has not
/// sent a complete request yet counts as idle, so slow senders are the first to go.
///
/// Each connection's `IdleConnectionHandler` registers here and publishes when it goes idle or
/// busy. The acceptor (`Limit`) goes on accepting at the limit while some connection is idle; a
/// client accepted there puts it one over, which closes a batch of idle ones on their own event
/// loops. Room is made only for a client that has arrived, never ahead of one.
///
/// The acceptor's gate is asked when it issues a read, and the read then accepts whoever comes
/// next: a client may arrive after the idle connections went busy. Such a client is parked: it
/// is accepted but nothing is read from it, as if it still sat in the listen backlog, until a
/// connection closes and admits it.
final class ConnectionDrainer: Sendable {
    /// One open connection as the drainer sees it.
    final class Connection: Sendable {
        /// `NIODeadline.uptimeNanoseconds` of the moment it went idle, or `busy`.
        fileprivate let idleSince: Atomic<UInt64>
        fileprivate static let busy = UInt64.max
        /// Asks the connection, on its own event loop, to close once no request is in flight.
        fileprivate let drain: @Sendable () -> Void
        /// Tells a parked connection, on its own event loop, that it may read now.
        fileprivate let admit: @Sendable () -> Void

        init(drain: @escaping @Sendable () -> Void, admit: @escaping @Sendable () -> Void) {
            self.idleSince = Atomic(Self.busy)
            self.drain = drain
            self.admit = admit
        }
    }

    private struct State {
        var connections: [ObjectIdentifier: Connection] = [:]
        /// Connections asked to close that have not closed yet: no new batch starts while any is
        /// left, since each close already admits one new connection.
        var draining: Set<ObjectIdentifier> = []
        /// Accepted while every connection was busy at the limit, in arrival order.
        var parked: [Connection] = []
    }

    let limit: Int
    private let state = Mutex(State())
    /// Registered connections that are idle now, so that the acceptor can ask without a scan.
    private let idle = Atomic<Int>(0)
    /// Connections accepted and not closed yet, as the acceptor counts them.
    private let open = Atomic<Int>(0)
    /// Set while every connection is busy at the limit (or over it, with nothing to close): the
    /// next connection to go idle makes room or wakes the acceptor, since no close may come to.
    private let starved = Atomic<Bool>(false)
    private let listener = Mutex<(any Channel)?>(nil)
    /// The connections closed to make room.
    let drained: CoreMetrics.Counter

    /// `drained` counts the connections closed to make room.
    init(limit: Int, drained: CoreMetrics.Counter) {
        self.limit = limit
        self.drained = drained
    }

    /// The listening channel, which a starved acceptor is woken through.
    func listening(on channel: any Channel) {
        listener.withLock { $0 = channel }
    }

    /// A new connection: true when it is served, false when it is parked (`admit` is called
    /// once a close makes room).
    func register(_ connection: Connection) -> Bool {
        state.withLock { state in
            guard state.connections.count < limit else {
                state.parked.append(connection)
                return false
            }
            enter(connection, &state)
            return true
        }
    }

    func deregister(_ connection: Connection) {
        markBusy(connection)
        let id = ObjectIdentifier(connection)
        let admitted = state.withLock { state -> Connection? in
            if let index = state.parked.firstIndex(where: { $0 === connection }) {
                state.parked.remove(at: index)
                return nil
            }
            state.connections[id] = nil
            state.draining.remove(id)
            guard state.connections.count < limit, !state.parked.isEmpty else { return nil }
            let next = state.parked.removeFirst()
            enter(next, &state)
            return next
        }
        admitted?.admit()
    }

    /// Served from now on, idle until its first request starts.
    private func enter(_ connection: Connection, _ state: inout State) {
        connection.idleSince.store(NIODeadline.now().uptimeNanoseconds, ordering: .relaxed)
        idle.add(1, ordering: .relaxed)
        state.connections[ObjectIdentifier(connection)] = connection
    }

    func markBusy(_ connection: Connection) {
        if connection.idleSince.exchange(Connection.busy, ordering: .relaxed) != Connection.busy {
            idle.subtract(1, ordering: .relaxed)
        }
    }

    func markIdle(_ connection: Connection, since: NIODeadline) {
        if connection.idleSince.exchange(since.uptimeNanoseconds, ordering: .relaxed) == Connection.busy {
            idle.add(1, ordering: .relaxed)
            wakeIfStarved()
        }
    }

    private func wakeIfStarved() {
        guard starved.load(ordering: .relaxed), starved.exchange(false, ordering: .relaxed) else { return }
        if open.load(ordering: .relaxed) > limit {
            makeRoom()
        } else {
            // The acceptor's read gate (`Limit`) lets this read through now that one is idle.
            listener.withLock { $0 }?.read()
        }
    }

    /// Asks the longest-idle connections to close: about an eighth of the idle ones, between 1 and
    /// 32 (nginx's batch), so that a burst of new clients costs one scan per batch, not one per
    /// client. Does nothing while an earlier batch is still closing.
    private func makeRoom() {
        // nil: an earlier batch is still closing, and its closes admit the waiting clients.
        let chosen: [Connection]? = state.withLock { state in
            guard state.draining.isEmpty else { return nil }
            let idleCount = idle.load(ordering: .relaxed)
            let oldest = Self.longestIdle(max(1, min(32, idleCount / 8)), of: state.connections.values)
            for connection in oldest { state.draining.insert(ObjectIdentifier(connection)) }
            return oldest
        }
        guard let chosen else { return }
        if chosen.isEmpty {
            // All went busy since the acceptor looked: the next to go idle makes the room.
            starved.store(true, ordering: .relaxed)
            if idle.load(ordering: .relaxed) > 0 { wakeIfStarved() }
        }
        for connection in chosen { connection.drain() }
    }

    /// The `count` connections idle the longest, in one pass (the lock is held meanwhile, and the
    /// limit may be 100,000): a short sorted list, which a connection enters only when it has been
    /// idle longer than the last in it.
    private static func longestIdle(_ count: Int, of connections: Dictionary<ObjectIdentifier, Connection>.Values) -> [Connection] {
        var oldest: [(since: UInt64, connection: Connection)] = []
        oldest.reserveCapacity(count + 1)
        for connection in connections {
            let since = connection.idleSince.load(ordering: .relaxed)
            guard since != Connection.busy, oldest.count < count || since < oldest[oldest.count - 1].since else { continue }
            let place = oldest.firstIndex { since < $0.since } ?? oldest.count
            oldest.insert((since, connection), at: place)
            if oldest.count > count { oldest.removeLast() }
        }
        return oldest.map(\.connection)
    }

    /// Hummingbird's acceptor delegate. Below the limit it accepts. At the limit it accepts only
    /// while a connection is idle, and a client accepted there (one over) makes room. With every
    /// connection busy, a new client waits in the listen backlog.
    struct Limit: AvailableConnectionsDelegate {
        let drainer: ConnectionDrainer

        func connectionOpened() {
            if drainer.open.add(1, ordering: .relaxed).newValue > drainer.limit { drainer.makeRoom() }
        }

        func connectionClosed() {
            drainer.open.subtract(1, ordering: .relaxed)
        }

        func isAcceptingNewConnections() -> Bool {
            let open = drainer.open.load(ordering: .relaxed)
            if open < drainer.limit { return true }
            guard open == drainer.limit else { return false }
            if drainer.idle.load(ordering: .relaxed) > 0 { return true }
            drainer.starved.store(true, ordering: .relaxed)
            // One may have gone idle between the two reads: then it cannot be relied on to wake us.
            return drainer.idle.load(ordering: .relaxed) > 0
        }
    }
}
