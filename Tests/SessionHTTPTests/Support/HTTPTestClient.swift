import NIOCore
import NIOHTTP1
import NIOPosix

/// A plain HTTP/1.1 client for tests: one connection per request, any bytes as the body
/// (invalid UTF-8 and 10 MB included), and the raw status, headers and body back.
struct HTTPTestClient: Sendable {
    let port: Int

    struct Response: Sendable {
        var status: Int
        var headers: HTTPHeaders
        var body: [UInt8]

        var text: String { String(decoding: body, as: UTF8.self) }

        func json() throws -> [String: Any] {
            try JSONObject.parse(body)
        }

        /// The `error` code of an error answer.
        var errorCode: String? { (try? json())?["error"] as? String }
    }

    func send(
        _ method: HTTPMethod,
        _ path: String,
        headers: [(String, String)] = [],
        body: [UInt8]? = nil
    ) async throws -> Response {
        let promise = MultiThreadedEventLoopGroup.singleton.next().makePromise(of: Response.self)
        let channel: any Channel
        do {
            channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
                .connectTimeout(.seconds(5))
                .channelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture {
                        try channel.pipeline.syncOperations.addHTTPClientHandlers()
                        try channel.pipeline.syncOperations.addHandler(ResponseCollector(promise: promise))
                    }
                }
                .connect(host: "127.0.0.1", port: port)
                .get()
        } catch {
            // Nobody listens (a server that stopped): the answer's promise must not leak.
            promise.fail(error)
            throw error
        }
        var head = HTTPRequestHead(version: .http1_1, method: method, uri: path)
        head.headers.add(name: "Host", value: "127.0.0.1")
        head.headers.add(name: "Connection", value: "close")
        for (name, value) in headers { head.headers.add(name: name, value: value) }
        // A chunked body (Transfer-Encoding given) announces no length; NIO encodes the chunks.
        if let body, !head.headers.contains(name: "Content-Length"), !head.headers.contains(name: "Transfer-Encoding") {
            head.headers.add(name: "Content-Length", value: String(body.count))
        }
        channel.write(HTTPClientRequestPart.head(head), promise: nil)
        if let body { channel.write(HTTPClientRequestPart.body(.byteBuffer(ByteBuffer(bytes: body))), promise: nil) }
        // The server may answer (413) and close before the whole body is written; the answer
        // still counts, so a failed write is not an error here.
        channel.writeAndFlush(HTTPClientRequestPart.end(nil), promise: nil)
        let timeout = channel.eventLoop.scheduleTask(in: .seconds(15)) {
            promise.fail(HTTPTestClientError.timeout)
            channel.close(promise: nil)
        }
        defer { timeout.cancel() }
        return try await promise.futureResult.get()
    }
}

enum HTTPTestClientError: Error {
    case timeout
    /// The connection closed before any of an answer arrived (the request was not served).
    case closedWithoutResponse
    /// The connection closed after the answer's head and before its end: a reset mid-response.
    case closedMidResponse
}

private final class ResponseCollector: ChannelInboundHandler {
    typealias InboundIn = HTTPClientResponsePart

    private let promise: EventLoopPromise<HTTPTestClient.Response>
    private var response: HTTPTestClient.Response?

    init(promise: EventLoopPromise<HTTPTestClient.Response>) {
        self.promise = promise
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head):
            response = .init(status: Int(head.status.code), headers: head.headers, body: [])
        case .body(let buffer):
            response?.body += Array(buffer.readableBytesView)
        case .end:
            if let response { promise.succeed(response) }
            context.close(promise: nil)
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        promise.fail(response == nil ? HTTPTestClientError.closedWithoutResponse : HTTPTestClientError.closedMidResponse)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        // A reset after a complete response (server refused a large body) is fine.
        if response == nil { promise.fail(error) }
        context.close(promise: nil)
    }
}
