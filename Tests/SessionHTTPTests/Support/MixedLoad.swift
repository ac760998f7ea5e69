import Foundation
import Synchronization
import Testing

/// Mixed traffic against a test server while a test breaks its Redis, counting every answer by
/// the rules of SPEC §5: a valid session answers 200, a revoked one 401, a create 201, and 503 is
/// the only other answer allowed (Redis could not answer). Anything else is a wrong answer.
final class MixedLoad: Sendable {
    struct Tally: Sendable {
        var answered = 0
        var unavailable = 0
        /// Seconds since the load started of the first and the last 503.
        var firstUnavailable: Double?
        var lastUnavailable: Double?
        var wrong = [String]()
        /// Handles of sessions whose lookups answered 503.
        var unavailableHandles = Set<String>()
    }

    private let server: Sessiond
    private let live: Mutex<[Sessiond.CreatedSession]>
    private let revoked: Mutex<[Sessiond.CreatedSession]>
    /// Sessions whose revoke answered 503: it may or may not have applied, so they are not judged.
    private let uncertain = Mutex<[Sessiond.CreatedSession]>([])
    private let tally = Mutex(Tally())
    private let started = ContinuousClock.now

    init(server: Sessiond, live: [Sessiond.CreatedSession], revoked: [Sessiond.CreatedSession]) {
        self.server = server
        self.live = Mutex(live)
        self.revoked = Mutex(revoked)
    }

    var counts: Tally { tally.withLock { $0 } }
    var liveSessions: [Sessiond.CreatedSession] { live.withLock { $0 } }
    var revokedSessions: [Sessiond.CreatedSession] { revoked.withLock { $0 } }
    var elapsed: Double { (ContinuousClock.now - started).milliseconds / 1000 }

    /// Runs `workers` loops of random requests until `stop` says so.
    func run(workers: Int, revokes: Bool = true, until stop: @escaping @Sendable () -> Bool) async {
        await withTaskGroup(of: Void.self) { group in
            for _ in 0..<workers {
                group.addTask {
                    while !stop() {
                        await self.oneRequest(revokes: revokes)
                    }
                }
            }
        }
    }

    private func oneRequest(revokes: Bool) async {
        let roll = Int.random(in: 0..<100)
        let sentAt = elapsed
        do {
            if roll < 60, let session = live.withLock({ $0.randomElement() }) {
                let status = try await server.lookup(session.token).status
                // Another worker may have taken the session for a revoke since (it leaves `live`
                // before its DELETE is sent): then 401 is right. Still in `live`, it must be 200.
                let revokedMeanwhile = status == 401 && !live.withLock { $0.contains { $0.handle == session.handle } }
                record(status, expected: revokedMeanwhile ? 401 : 200, what: "lookup of a live session", handle: session.handle, sentAt: sentAt)
            } else if roll < 85, let session = revoked.withLock({ $0.randomElement() }) {
                let status = try await server.lookup(session.token).status
                record(status, expected: 401, what: "lookup of a revoked session", handle: session.handle, sentAt: sentAt)
            } else if roll < 95 || !revokes {
                let response = try await server.request(.POST, "/v1/sessions", key: TestKeys.app, json: ["user_id": "load-\(Int.random(in: 0..<500))"])
                record(response.status, expected: 201, what: "create", handle: nil, sentAt: sentAt)
            } else if let session = live.withLock({ $0.count > 20 ? $0.remove(at: Int.random(in: 0..<$0.count)) : nil }) {
                let response = try await server.request(.DELETE, "/v1/session", key: TestKeys.app, headers: [("X-Session-Token", session.token)])
                switch response.status {
                case 200: revoked.withLock { $0.append(session) }
                case 503: uncertain.withLock { $0.append(session) }
                default: break
                }
                record(response.status, expected: 200, what: "revoke", handle: session.handle, sentAt: sentAt)
            }
        } catch {
            tally.withLock { $0.wrong.append("transport error: \(error)") }
        }
    }

    /// A 503 is placed at its answer for `firstUnavailable` and at its request for
    /// `lastUnavailable`: on a loaded machine a request sent before recovery can be answered
    /// well after it, and one answered before the fault cannot have been sent after it.
    private func record(_ status: Int, expected: Int, what: String, handle: String?, sentAt: Double) {
        let now = elapsed
        tally.withLock { tally in
            tally.answered += 1
            if status == expected { return }
            if status == 503 {
                tally.unavailable += 1
                tally.firstUnavailable = tally.firstUnavailable ?? now
                tally.lastUnavailable = max(tally.lastUnavailable ?? sentAt, sentAt)
                if let handle { tally.unavailableHandles.insert(handle) }
            } else {
                tally.wrong.append("\(what) answered \(status) at \(String(format: "%.2f", now)) s")
            }
        }
    }

    /// After the fault: every revoked session is still 401 and every live one 200 (retrying a
    /// 503 until `within` passes, so recovery time is part of the check).
    func verifyFinalState(within: Duration = .seconds(20)) async throws {
        let deadline = ContinuousClock.now + within
        for (sessions, expected) in [(revokedSessions, 401), (liveSessions, 200)] {
            for session in sessions {
                var status = 503
                while status == 503 && ContinuousClock.now < deadline {
                    status = try await server.lookup(session.token, touch: false).status
                    if status == 503 { try await Task.sleep(for: .milliseconds(100)) }
                }
                #expect(status == expected, "session \(session.handle) answers \(status) after the fault, expected \(expected)")
            }
        }
    }
}

extension Duration {
    var milliseconds: Double {
        let (seconds, attoseconds) = components
        return Double(seconds) * 1000 + Double(attoseconds) / 1e15
    }
}

/// Sessions for `users` users, one each, created through the API.
func createSessions(_ server: Sessiond, users: Int, prefix: String = "user") async throws -> [Sessiond.CreatedSession] {
    try await withThrowingTaskGroup(of: Sessiond.CreatedSession.self) { group in
        for index in 0..<users {
            group.addTask { try await server.create(user: "\(prefix)-\(index)") }
        }
        var sessions = [Sessiond.CreatedSession]()
        for try await session in group { sessions.append(session) }
        return sessions
    }
}
