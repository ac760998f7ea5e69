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
    let body: [UInt8]
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
        return Response(status: status, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: body)))
    }

    /// For the fast path: the status line, the headers, then request id, date, server and
    /// length, as the router's path adds them. User ids carry no control characters
    /// (`SessionRequests.userID`), so values are written as they are.
    func bytes(requestID: String, serverName: String, allocator: ByteBufferAllocator) -> ByteBuffer {
        let date = HTTPDate.now()
        // The head's 30-odd pieces are copied in one ByteBuffer access (each ByteBuffer write
        // checks uniqueness and exclusivity, which showed in the lookup's profile): one pass
        // measures them, a second copies them.
        var measure = HeadWriter(into: nil)
        writeHead(into: &measure, requestID: requestID, serverName: serverName, date: date)
        var buffer = allocator.buffer(capacity: measure.count + body.count)
        buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: measure.count) { target in
            var copy = HeadWriter(into: target)
            writeHead(into: &copy, requestID: requestID, serverName: serverName, date: date)
            return copy.count
        }
        buffer.writeBytes(body)
        return buffer
    }

    private func writeHead(into head: inout HeadWriter, requestID: String, serverName: String, date: String) {
        head.write("HTTP/1.1 ")
        head.write(String(status.code))
        head.write(" ")
        head.write(status.reasonPhrase)
        head.write("\r\n")
        forEachHeader { name, value in
            head.write(name.rawName)
            head.write(": ")
            head.write(value)
            head.write("\r\n")
        }
        head.write("X-Request-Id: ")
        head.write(requestID)
        head.write("\r\nDate: ")
        head.write(date)
        head.write("\r\nServer: ")
        head.write(serverName)
        head.write("\r\nContent-Length: ")
        head.write(String(body.count))
        head.write("\r\n\r\n")
    }
}

/// Copies text into raw memory, or with none only counts its bytes.
private struct HeadWriter {
    private let target: UnsafeMutableRawBufferPointer?
    private(set) var count = 0

    init(into target: UnsafeMutableRawBufferPointer?) {
        self.target = target
    }

    mutating func write(_ text: StaticString) {
        append(UnsafeRawBufferPointer(start: text.utf8Start, count: text.utf8CodeUnitCount))
    }

    mutating func write(_ text: String) {
        if text.utf8.withContiguousStorageIfAvailable({ append(UnsafeRawBufferPointer($0)) }) == nil {
            var bridged = text
            bridged.withUTF8 { append(UnsafeRawBufferPointer($0)) }
        }
    }

    private mutating func append(_ bytes: UnsafeRawBufferPointer) {
        if let target {
            UnsafeMutableRawBufferPointer(rebasing: target[count..<(count + bytes.count)]).copyMemory(from: bytes)
        }
        count += bytes.count
    }
}
