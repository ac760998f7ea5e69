import HTTPTypes
import Hummingbird
import Logging
import NIOCore
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// One log line per request: request id, method, route template, status, duration, and the
/// session handle when one is known. Never the path's query, a token or an API key.
struct RequestLogMiddleware<Context: RequestContext>: RouterMiddleware {
    let logger: Logger

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        let start = ContinuousClock.now
        let requestID = RequestID.next()
        var response: Response
        do {
            response = try await next(request, context)
        } catch {
            // The error middleware turns every error into a response; this is its safety net.
            response = try APIError.internalError().response(from: request, context: context)
        }
        response.headers[.requestID] = requestID
        RequestLog.record(
            logger: logger, requestID: requestID, method: request.method.rawValue, route: context.endpointPath ?? "unmatched",
            status: response.status.code, elapsed: .nanoseconds(Int64((ContinuousClock.now - start).nanoseconds)),
            handle: response.headers[.sessionHandle]
        )
        return response
    }
}

/// The request log line, the same from the router and from the lookup fast path.
enum RequestLog {
    static func record(
        logger: Logger, requestID: String, method: String, route: String, status: Int, elapsed: TimeAmount, handle: String?
    ) {
        // Built only when it will be written: at warning and above this costs one comparison.
        guard logger.logLevel <= .info else { return }
        let milliseconds = Double(elapsed.nanoseconds) / 1e6
        if let json = logger.handler as? JSONLogHandler,
           json.logRequest(requestID: requestID, method: method, route: route, status: status, milliseconds: milliseconds, handle: handle) {
            return
        }
        var metadata: Logger.Metadata = [
            "request_id": .string(requestID),
            "method": .string(method),
            "route": .string(route),
            "status": .stringConvertible(status),
            "duration_ms": .stringConvertible(milliseconds),
        ]
        if let handle {
            metadata["handle"] = .string(handle)
        }
        logger.info("request", metadata: metadata)
    }
}

extension Duration {
    var nanoseconds: Int64 {
        components.seconds * 1_000_000_000 + components.attoseconds / 1_000_000_000
    }
}

/// The `Date` header value (RFC 9110 IMF-fixdate), formatted once per second.
enum HTTPDate {
    private static let cache = Mutex<(second: Int, text: String)>((-1, ""))
    private static let days = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"]
    private static let months = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]

    static func now() -> String {
        var time = timespec()
        clock_gettime(CLOCK_REALTIME, &time)
        let second = time.tv_sec
        return cache.withLock { cached in
            if cached.second != second {
                cached = (second, format(second))
            }
            return cached.text
        }
    }

    /// Days-from-civil (Howard Hinnant's algorithm), so no locale or Foundation is involved.
    static func format(_ epochSeconds: Int) -> String {
        let days = epochSeconds.floorDiv(86400)
        let secondOfDay = epochSeconds - days * 86400
        let z = days + 719_468
        let era = z.floorDiv(146_097)
        let dayOfEra = z - era * 146_097
        let yearOfEra = (dayOfEra - dayOfEra / 1460 + dayOfEra / 36524 - dayOfEra / 146_096) / 365
        let dayOfYear = dayOfEra - (365 * yearOfEra + yearOfEra / 4 - yearOfEra / 100)
        let monthIndex = (5 * dayOfYear + 2) / 153
        let day = dayOfYear - (153 * monthIndex + 2) / 5 + 1
        let month = monthIndex < 10 ? monthIndex + 3 : monthIndex - 9
        let year = yearOfEra + era * 400 + (month <= 2 ? 1 : 0)
        func two(_ n: Int) -> String { n < 10 ? "0\(n)" : "\(n)" }
        let weekday = Self.days[((days % 7) + 7) % 7]
        return "\(weekday), \(two(day)) \(months[month - 1]) \(year) \(two(secondOfDay / 3600)):\(two(secondOfDay / 60 % 60)):\(two(secondOfDay % 60)) GMT"
    }
}

extension Int {
    fileprivate func floorDiv(_ divisor: Int) -> Int {
        self >= 0 ? self / divisor : (self - divisor + 1) / divisor
    }
}

extension HTTPField.Name {
    static let requestID = Self("X-Request-Id")!
    static let sessionHandle = Self("X-Session-Handle")!
    static let sessionUserID = Self("X-Session-User-Id")!
    static let sessionToken = Self("X-Session-Token")!
}

/// Request ids: a random per-process prefix and a counter. Unique per process and cheap: no
/// system call per request, unlike drawing 64 random bits each time.
enum RequestID {
    private static let prefix = String(UInt32.random(in: .min ... .max), radix: 16)
    private static let counter = Atomic<UInt64>(0)

    static func next() -> String {
        prefix + "-" + String(counter.wrappingAdd(1, ordering: .relaxed).newValue, radix: 16)
    }
}
