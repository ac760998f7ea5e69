import CoreMetrics

/// Why a session ended early; also the `reason` of its revocation event (docs/events.md).
public enum RevocationReason: String, Sendable, CaseIterable {
    /// DELETE /v1/session: the user logged out.
    case logout
    /// DELETE /v1/sessions/{handle}: an admin revoked one session.
    case admin
    /// DELETE /v1/users/{id}/sessions: an admin logged the user out everywhere.
    case forceLogout = "force_logout"
    /// A create went over SESSIOND_MAX_SESSIONS_PER_USER and the oldest sessions went.
    case cap
    /// POST /v1/session/rotate: the old token stopped working.
    case rotate
}

/// Session life-cycle counters, through swift-metrics. No label holds a user, a handle or a token.
public struct SessionStoreMetrics: Sendable {
    let created: Counter
    let ended: [RevocationReason: Counter]
    /// Index entries whose session had expired, found and dropped by a listing.
    let expiredFound: Counter

    public init(factory: any MetricsFactory) {
        created = Counter(label: "sessiond_sessions_created_total", dimensions: [], factory: factory)
        var ended = [RevocationReason: Counter]()
        for reason in RevocationReason.allCases {
            // A rotation ends a token, not a session: it gets a counter of its own.
            ended[reason] = reason == .rotate
                ? Counter(label: "sessiond_sessions_rotated_total", dimensions: [], factory: factory)
                : Counter(label: "sessiond_sessions_revoked_total", dimensions: [("reason", reason.rawValue)], factory: factory)
        }
        self.ended = ended
        expiredFound = Counter(label: "sessiond_sessions_expired_total", dimensions: [], factory: factory)
    }

    public static let none = SessionStoreMetrics(factory: NOOPMetricsHandler.instance)

    func record(_ reason: RevocationReason, count: Int = 1) {
        guard count > 0 else { return }
        ended[reason]?.increment(by: count)
    }
}
