import HTTPTypes
import Hummingbird
import NIOCore
import SessionStore

/// A JSON answer of the API, described once: status, body and headers. The router's handlers
/// send it as a `Response`; the fast path (`SessionLookupChannelHandler`) writes it as HTTP/1.1
/// bytes. Both renderings read the same list of headers (`forEachHeader`), so the two paths
/// cannot disagree on them.
struct JSONAnswer {
    let status: HTTPResponse.Status
    let body: ByteBuffer
    /// The session the answer is about: its handle, and its version as the ETag.
    var session: Session?
    /// Adds the session's user id (`X-Session-User-Id`): the identity a lookup gives a proxy.
    var namesUser = false
    /// Headers of this answer alone (an error's `WWW-Authenticate`, a revocation's handle).
    /// Optional: an empty `HTTPFields` still allocates its storage, on every lookup.
    var extraHeaders: HTTPFields?

    /// The handle the answer names, for the request log.
    var handle: String? {
        session?.handle.encoded ?? extraHeaders?[.sessionHandle]
    }

    func forEachHeader(_ write: (HTTPField.Name, String) -> Void) {
        write(.contentType, "application/json")
        write(.cacheControl, "no-store")
        if let session {
            write(.sessionHandle, session.handle.encoded)
            write(.eTag, "\"" + String(session.version) + "\"")
            if namesUser { write(.sessionUserID, session.userID) }
        }
        if let extraHeaders {
            for field in extraHeaders { write(field.name, field.value) }
        }
    }

    /// For the router.
    var response: Response {
        var headers = HTTPFields()
        forEachHeader { headers.append(HTTPField(name: $0, value: $1)) }
        return Response(status: status, headers: headers, body: .init(byteBuffer: body))
    }

    /// For the fast path: the status line, the headers, then request id, date, server and
    /// length, as the router's path adds them. User ids carry no control characters
    /// (`SessionRequests.userID`), so values are written as they are.
    func bytes(requestID: String, serverName: String, allocator: ByteBufferAllocator) -> ByteBuffer {
        var buffer = allocator.buffer(capacity: 320 + body.readableBytes)
        buffer.writeStaticString("HTTP/1.1 ")
        buffer.writeString(String(status.code))
        buffer.writeStaticString(" ")
        buffer.writeString(status.reasonPhrase)
        buffer.writeStaticString("\r\n")
        forEachHeader { name, value in
            buffer.writeString(name.rawName)
            buffer.writeStaticString(": ")
            buffer.writeString(value)
            buffer.writeStaticString("\r\n")
        }
        buffer.writeStaticString("X-Request-Id: ")
        buffer.writeString(requestID)
        buffer.writeStaticString("\r\nDate: ")
        buffer.writeString(HTTPDate.now())
        buffer.writeStaticString("\r\nServer: ")
        buffer.writeString(serverName)
        buffer.writeStaticString("\r\nContent-Length: ")
        buffer.writeString(String(body.readableBytes))
        buffer.writeStaticString("\r\n\r\n")
        buffer.writeImmutableBuffer(body)
        return buffer
    }
}
