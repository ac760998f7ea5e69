import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

/// What went wrong, as one line for the terminal, and the exit status it maps to.
struct SessionctlError: Error, CustomStringConvertible {
    enum Kind {
        /// No answer: sessiond is down, the URL is wrong, or it timed out.
        case unreachable
        /// 401 `invalid_api_key` or 403: the key is wrong or is not an admin key.
        case unauthorized
        /// 404: no such session (or user route).
        case notFound
        /// Anything else sessiond refused or failed (400, 503, ...), or a local problem.
        case failed
    }

    let kind: Kind
    let description: String

    init(_ kind: Kind, _ description: String) {
        self.kind = kind
        self.description = description
    }

    /// 1 general failure, 3 not found, 4 bad key, 5 unreachable (README, "sessionctl").
    var exitCode: Int32 {
        switch kind {
        case .failed: 1
        case .notFound: 3
        case .unauthorized: 4
        case .unreachable: 5
        }
    }
}

/// sessiond's HTTP API as the admin tool uses it: JSON in, JSON out, errors turned into
/// `SessionctlError` with sessiond's own message.
struct SessiondAPI {
    let baseURL: URL
    let adminKey: String
    let timeout: TimeInterval

    func get(_ path: String, query: [URLQueryItem] = []) async throws -> [String: Any] {
        try await send("GET", path, query: query)
    }

    func delete(_ path: String, query: [URLQueryItem] = []) async throws -> [String: Any] {
        try await send("DELETE", path, query: query)
    }

    /// A health route, which needs no key: its status and body.
    func probe(_ path: String) async throws -> (status: Int, body: [String: Any]) {
        let (data, response) = try await perform(request("GET", path, query: [], authorized: false))
        return (response.statusCode, (try? JSONSerialization.jsonObject(with: data)) as? [String: Any] ?? [:])
    }

    private func send(_ method: String, _ path: String, query: [URLQueryItem]) async throws -> [String: Any] {
        let (data, response) = try await perform(request(method, path, query: query, authorized: true))
        let body = (try? JSONSerialization.jsonObject(with: data)) as? [String: Any]
        guard (200..<300).contains(response.statusCode) else {
            let code = body?["error"] as? String ?? "http_\(response.statusCode)"
            let message = body?["message"] as? String ?? HTTPURLResponse.localizedString(forStatusCode: response.statusCode)
            let kind: SessionctlError.Kind = switch (response.statusCode, code) {
            case (401, "invalid_api_key"), (403, _): .unauthorized
            case (404, _): .notFound
            default: .failed
            }
            throw SessionctlError(kind, "sessiond answered \(response.statusCode) \(code): \(message)")
        }
        guard let body else { throw SessionctlError(.failed, "sessiond answered \(response.statusCode) without a JSON object") }
        return body
    }

    private func request(_ method: String, _ path: String, query: [URLQueryItem], authorized: Bool) throws -> URLRequest {
        guard var components = URLComponents(url: baseURL, resolvingAgainstBaseURL: false) else {
            throw SessionctlError(.failed, "bad sessiond URL \(baseURL)")
        }
        // The path is already percent-encoded (a user id may hold any character but a control one).
        components.percentEncodedPath = components.percentEncodedPath.trimmingSuffix("/") + path
        components.queryItems = query.isEmpty ? nil : query
        guard let url = components.url else { throw SessionctlError(.failed, "bad request path \(path)") }
        var request = URLRequest(url: url, timeoutInterval: timeout)
        request.httpMethod = method
        request.setValue("application/json", forHTTPHeaderField: "Accept")
        if authorized { request.setValue("Bearer \(adminKey)", forHTTPHeaderField: "Authorization") }
        return request
    }

    private func perform(_ request: URLRequest) async throws -> (Data, HTTPURLResponse) {
        let result: (Data, URLResponse)
        do {
            result = try await URLSession.shared.data(for: request)
        } catch {
            throw SessionctlError(.unreachable, "cannot reach sessiond at \(baseURL.absoluteString): \(error.localizedDescription)")
        }
        guard let response = result.1 as? HTTPURLResponse else {
            throw SessionctlError(.unreachable, "no HTTP answer from \(baseURL.absoluteString)")
        }
        return (result.0, response)
    }

    /// One path segment: everything but RFC 3986's unreserved characters percent-encoded.
    static func pathSegment(_ text: String) -> String {
        var allowed = CharacterSet.alphanumerics.intersection(CharacterSet(charactersIn: Unicode.Scalar(0)..<Unicode.Scalar(128)))
        allowed.insert(charactersIn: "-._~")
        return text.addingPercentEncoding(withAllowedCharacters: allowed) ?? text
    }
}

extension String {
    func trimmingSuffix(_ suffix: String) -> String {
        var text = self
        while text.hasSuffix(suffix) { text.removeLast(suffix.count) }
        return text
    }
}
