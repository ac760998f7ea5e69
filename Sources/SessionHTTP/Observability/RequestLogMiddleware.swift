import HTTPTypes
import Hummingbird
import Logging
import NIOCore
import Synchronization

/// One log line per request: request id, method, route template, status, duration, and the
/// session handle when one is known. Never the path's query, a token or an API key. The same
/// facts go to the route's metrics.
struct RequestLogMiddleware<Context: RequestContext>: RouterMiddleware {
    let log: RequestLog
    let metrics: ServiceMetrics

    init(logger: Logger, metrics: ServiceMetrics) {
        log = RequestLog(logger: logger)
        self.metrics = metrics
    }

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
        log.record(
            requestID: requestID, method: request.method.rawValue, route: context.endpointPath ?? "unmatched",
            metrics: metrics.route(method: request.method.rawValue, path: context.endpointPath),
            status: response.status.code, elapsed: TimeAmount(ContinuousClock.now - start),
            handle: response.headers[.sessionHandle]
        )
        return response
    }
}

/// What is recorded of every answered request, the same from the router and from the lookup
/// fast path: its route's metrics and its log line. Made once per service: whether lines are
/// written, and through which handler, is decided here rather than per request (a cast of the
/// logger's handler per line showed in the profile).
struct RequestLog: Sendable {
    private let logger: Logger
    /// The JSON handler, when lines go straight to it (no extra metadata to merge).
    private let json: JSONLogHandler?
    private let enabled: Bool

    init(logger: Logger) {
        self.logger = logger
        enabled = logger.logLevel <= .info
        json = (logger.handler as? JSONLogHandler).flatMap { $0.writesRequestLines ? $0 : nil }
    }

    func record(
        requestID: String, method: String, route: String, metrics: RouteMetrics, status: Int, elapsed: TimeAmount, handle: String?
    ) {
        metrics.record(status: status, nanoseconds: elapsed.nanoseconds)
        // Built only when it will be written: at warning and above this costs one comparison.
        guard enabled else { return }
        if let json {
            json.logRequest(requestID: requestID, method: method, route: route, status: status, nanoseconds: elapsed.nanoseconds, handle: handle)
            return
        }
        var metadata: Logger.Metadata = [
            "request_id": .string(requestID),
            "method": .string(method),
            "route": .string(route),
            "status": .stringConvertible(status),
            "duration_ms": .stringConvertible(LogMilliseconds(nanoseconds: elapsed.nanoseconds)),
        ]
        if let handle {
            metadata["handle"] = .string(handle)
        }
        logger.info("request", metadata: metadata)
    }
}

/// A duration in a log line: milliseconds with three decimals, written as a JSON number.
struct LogMilliseconds: CustomStringConvertible, Sendable {
    let nanoseconds: Int64

    var description: String {
        var text = [UInt8]()
        JSONLogHandler.writeMilliseconds(nanoseconds: nanoseconds, into: &text)
        return String(decoding: text, as: UTF8.self)
    }
}

extension HTTPField.Name {
    static let requestID = Self("X-Request-Id")!
    static let sessionHandle = Self("X-Session-Handle")!
    static let sessionUserID = Self("X-Session-User-Id")!
    static let sessionToken = Self("X-Session-Token")!
}

/// Request ids: a random per-process prefix and a counter. Unique per process and cheap: no
/// system call per request, unlike drawing 64 random bits each time. The prefix has 24 bits, so
/// an id stays within a small string's 15 bytes (no allocation) for the first 2^32 requests; with
/// 32 it outgrew them after 16.7 million. Ids name requests in one process's log: processes of a
/// fleet may share a prefix (even odds at about 4,800 starts) and so repeat each other's ids.
enum RequestID {
    private static let prefix = String(UInt32.random(in: 0 ... 0xFF_FFFF), radix: 16)
    private static let counter = Atomic<UInt64>(0)

    static func next() -> String {
        prefix + "-" + String(counter.wrappingAdd(1, ordering: .relaxed).newValue, radix: 16)
    }
}
