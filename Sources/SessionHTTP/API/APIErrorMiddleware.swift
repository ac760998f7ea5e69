import Hummingbird
import Logging
import RedisClient
import SessionStore

/// Turns every error into the JSON error answer of SPEC §4, so no input yields a 500 page, and
/// tells an unknown route (404) from a known route called with the wrong method (405).
struct APIErrorMiddleware<Context: RequestContext>: RouterMiddleware {
    let routes: [APIRoute]
    let logger: Logger

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        do {
            return try await next(request, context)
        } catch {
            return try apiError(for: error, request: request).response(from: request, context: context)
        }
    }

    private func apiError(for error: any Error, request: Request) -> APIError {
        if let error = error as? HTTPError {
            switch error.status {
            case .notFound:
                let allowed = routes.filter { $0.matches(path: request.uri.path) }.map(\.method)
                return allowed.isEmpty ? .notFound("no such route") : .methodNotAllowed(allowed: allowed)
            case .contentTooLarge:
                return .payloadTooLarge("request body is too large")
            default:
                return .invalidRequest(error.body ?? "bad request")
            }
        }
        return APIError.answering(error, logger: logger)
    }
}

extension APIError {
    /// The answer to an error of a handler or of the store: Redis that cannot answer is a 503,
    /// never a guess; anything unforeseen is logged and answered 500 without details.
    static func answering(_ error: any Error, logger: Logger) -> APIError {
        switch error {
        case let error as APIError:
            return error
        case let error as RedisClientError where error.isOutOfMemory:
            logger.error("store full: Redis is at maxmemory and refuses writes", metadata: ["error": .string(error.description)])
            return .storeFull()
        case let error as RedisClientError:
            logger.warning("store unavailable", metadata: ["error": .string(error.description)])
            return .storeUnavailable("the session store is unavailable")
        case let error as SessionStoreError:
            logger.error("store error", metadata: ["error": .string("\(error)")])
            switch error {
            case .tooMuchContention:
                return .storeUnavailable("too many concurrent updates of this session; retry")
            case .corruptRecord, .unexpectedReply:
                return .storeUnavailable("the session store returned data this version cannot read")
            case .unreadableRecord:
                return .storeUnavailable("the session's data does not open with the configured data keys")
            }
        default:
            logger.error("unexpected error", metadata: ["error": .string("\(type(of: error))")])
            return .internalError()
        }
    }
}
