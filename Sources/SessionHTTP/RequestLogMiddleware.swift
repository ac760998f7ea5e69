import HTTPTypes
import Hummingbird
import Logging
import Synchronization

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
        if logger.logLevel <= .info {
            let elapsed = ContinuousClock.now - start
            var metadata: Logger.Metadata = [
                "request_id": .string(requestID),
                "method": .string(request.method.rawValue),
                "route": .string(context.endpointPath ?? "unmatched"),
                "status": .stringConvertible(response.status.code),
                "duration_ms": .stringConvertible(
                    Double(elapsed.components.seconds) * 1000 + Double(elapsed.components.attoseconds) / 1e15
                ),
            ]
            if let handle = response.headers[.sessionHandle] {
                metadata["handle"] = .string(handle)
            }
            logger.info("request", metadata: metadata)
        }
        return response
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
