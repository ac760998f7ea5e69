import NIOCore

/// Reads one HTTP/1 request head from the front of a connection's bytes, for the fast path of
/// lookups and creates. It is stricter than NIO's parser on purpose: whatever it accepts, NIO's
/// parser reads the same way (same head end, same body length), so a request it passes on to
/// the router is framed alike. Anything it is unsure of is `unsupported`, and the connection
/// then goes to NIO's parser for good, which answers or refuses it as it always has.
enum HTTP1RequestScanner {
    /// A `GET /v1/session` the fast path answers itself.
    struct Lookup {
        /// The head's length in bytes, blank line included.
        let length: Int
        let target: String
        /// The target has a `?` part.
        var hasQuery: Bool { target.utf8.count > APIRoute.lookupPath.utf8.count }
        /// Authorization, X-Session-Token and Cookie, as the router sees them.
        let credentials: LookupCredentials
        /// `Connection: close`, which the router honours (by this exact value) by closing after the answer.
        let closes: Bool
    }

    /// A `POST /v1/sessions` with a small body, which the fast path answers itself.
    struct Create {
        /// The head's length in bytes, blank line included.
        let headLength: Int
        /// The body's length (`Content-Length`); its bytes may not all have arrived yet.
        let bodyLength: Int
        /// Authorization fields joined as the router joins them.
        private(set) var authorization: ByteBuffer?
        /// `Connection: close`.
        let closes: Bool

        /// This create with its own copy of the Authorization bytes, to keep while the body
        /// arrives: a slice would pin the read buffer it came from, and every read appended
        /// to that buffer meanwhile would copy it whole.
        func detached() -> Create {
            var copy = self
            copy.authorization = authorization.map { ByteBufferAllocator().buffer(buffer: $0) }
            return copy
        }
    }

    enum Result {
        /// The head is not complete yet.
        case incomplete
        /// Something this scanner does not frame (chunked body, obs-fold, bare LF, an oversized
        /// head, ...): NIO's parser takes the connection from here.
        case unsupported
        case lookup(Lookup)
        case create(Create)
        /// Any other request, for the router: its head and body are `length` bytes in all.
        case other(length: Int)
    }

    /// Longest head read here; longer ones (NIO allows 80 KiB) go to NIO's parser.
    static let maxHeadLength = 16 * 1024
    /// Most header lines read here.
    static let maxFieldCount = 100
    /// Largest create body answered here; larger ones (with their 413) are the router's. Far
    /// below what the fast path holds unread, so a create's body never stops its reads.
    static let maxCreateBodyLength = 16 * 1024

    static func scan(_ buffer: ByteBuffer) -> Result {
        buffer.withUnsafeReadableBytes { scan(UnsafeRawBufferPointer($0), of: buffer) }
    }

    private static let versionPrefix = Array("HTTP/1.".utf8)
    private static let cr = UInt8(ascii: "\r"), lf = UInt8(ascii: "\n"), space = UInt8(ascii: " "), tab = UInt8(ascii: "\t")

    /// `bytes` are `buffer`'s readable bytes: credentials are kept as slices of it.
    private static func scan(_ bytes: UnsafeRawBufferPointer, of buffer: ByteBuffer) -> Result {
        let end = min(bytes.count, maxHeadLength)
        // Running out of bytes: more may come, unless the head is already too long.
        let short: Result = bytes.count >= maxHeadLength ? .unsupported : .incomplete
        var i = 0

        // Request line: METHOD SP target SP HTTP/1.x CRLF
        while i < end, isTokenByte(bytes[i]) { i += 1 }
        guard i < end else { return short }
        guard i > 0, bytes[i] == space else { return .unsupported }
        let isGet = i == 3 && bytes[0] == UInt8(ascii: "G") && bytes[1] == UInt8(ascii: "E") && bytes[2] == UInt8(ascii: "T")
        let isPost = i == 4 && bytes[0] == UInt8(ascii: "P") && bytes[1] == UInt8(ascii: "O") && bytes[2] == UInt8(ascii: "S") && bytes[3] == UInt8(ascii: "T")
        i += 1
        let targetStart = i
        while i < end, bytes[i] > 0x20, bytes[i] < 0x7F { i += 1 }
        guard i < end else { return short }
        guard i > targetStart, bytes[i] == space else { return .unsupported }
        let targetEnd = i
        i += 1
        for expected in versionPrefix {
            guard i < end else { return short }
            guard bytes[i] == expected else { return .unsupported }
            i += 1
        }
        guard i + 2 < end else { return short }
        guard bytes[i] == UInt8(ascii: "0") || bytes[i] == UInt8(ascii: "1"), bytes[i + 1] == cr, bytes[i + 2] == lf else { return .unsupported }
        let isHTTP11 = bytes[i] == UInt8(ascii: "1")
        i += 3

        let target = UnsafeRawBufferPointer(rebasing: bytes[targetStart..<targetEnd])
        var isLookup = isGet && isHTTP11 && isLookupTarget(target)
        var isCreate = isPost && isHTTP11 && target.elementsEqual(APIRoute.createPath.utf8)
        var credentials = LookupCredentials()
        var connection: String?
        var contentLength: Int?
        var fieldCount = 0

        // Header lines: name ":" OWS value OWS CRLF, until an empty line.
        while true {
            guard i < end else { return short }
            if bytes[i] == cr {
                guard i + 1 < end else { return short }
                guard bytes[i + 1] == lf else { return .unsupported }
                i += 2
                break
            }
            fieldCount += 1
            guard fieldCount <= maxFieldCount else { return .unsupported }
            let nameStart = i
            while i < end, isTokenByte(bytes[i]) { i += 1 }
            guard i < end else { return short }
            // A line starting with white space (obs-fold), or a name without a colon.
            guard i > nameStart, bytes[i] == UInt8(ascii: ":") else { return .unsupported }
            let name = UnsafeRawBufferPointer(rebasing: bytes[nameStart..<i])
            i += 1
            while i < end, bytes[i] == space || bytes[i] == tab { i += 1 }
            let valueStart = i
            while i < end, bytes[i] != cr {
                let byte = bytes[i]
                guard byte == tab || (byte >= 0x20 && byte != 0x7F) else { return .unsupported }
                i += 1
            }
            guard i + 1 < end else { return short }
            guard bytes[i + 1] == lf else { return .unsupported }
            var valueEnd = i
            while valueEnd > valueStart, bytes[valueEnd - 1] == space || bytes[valueEnd - 1] == tab { valueEnd -= 1 }
            let value = UnsafeRawBufferPointer(rebasing: bytes[valueStart..<valueEnd])
            i += 2

            let kind = FieldKind(name)
            switch kind {
            case .contentLength:
                guard contentLength == nil, let length = decimal(value) else { return .unsupported }
                contentLength = length
                isLookup = false
            case .transferEncoding:
                return .unsupported
            case .expect, .upgrade:
                isLookup = false
                isCreate = false
            case .connection:
                guard isLookup || isCreate else { continue }
                guard connection == nil else { isLookup = false; isCreate = false; continue }
                connection = String(decoding: value, as: UTF8.self)
            case .authorization, .sessionToken, .cookie:
                guard isLookup || isCreate else { continue }
                credentials.add(kind, buffer.getSlice(at: buffer.readerIndex + valueStart, length: valueEnd - valueStart)!)
            case .other:
                continue
            }
        }

        // Only `close` and `keep-alive` keep a request here; other connection options
        // (`upgrade`, `Close`, lists) are the router's to interpret.
        if let connection, connection != "close", connection != "keep-alive" {
            isLookup = false
            isCreate = false
        }
        if isCreate, let contentLength, contentLength <= maxCreateBodyLength {
            return .create(Create(headLength: i, bodyLength: contentLength, authorization: credentials.authorization, closes: connection == "close"))
        }
        guard isLookup else { return .other(length: i + (contentLength ?? 0)) }
        return .lookup(Lookup(length: i, target: String(decoding: target, as: UTF8.self), credentials: credentials, closes: connection == "close"))
    }

    /// `/v1/session`, alone or with a query.
    private static func isLookupTarget(_ target: UnsafeRawBufferPointer) -> Bool {
        let path = APIRoute.lookupPath.utf8
        guard target.count >= path.count, target.prefix(path.count).elementsEqual(path) else { return false }
        return target.count == path.count || target[path.count] == UInt8(ascii: "?")
    }

    /// 1 to 18 ASCII digits, nothing else.
    private static func decimal(_ bytes: UnsafeRawBufferPointer) -> Int? {
        guard !bytes.isEmpty, bytes.count <= 18 else { return nil }
        var value = 0
        for byte in bytes {
            guard byte >= UInt8(ascii: "0"), byte <= UInt8(ascii: "9") else { return nil }
            value = value * 10 + Int(byte - UInt8(ascii: "0"))
        }
        return value
    }

    /// RFC 9110 `tchar`.
    private static func isTokenByte(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "0")...UInt8(ascii: "9"):
            return true
        case UInt8(ascii: "!"), UInt8(ascii: "#"), UInt8(ascii: "$"), UInt8(ascii: "%"), UInt8(ascii: "&"), UInt8(ascii: "'"),
            UInt8(ascii: "*"), UInt8(ascii: "+"), UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "^"), UInt8(ascii: "_"),
            UInt8(ascii: "`"), UInt8(ascii: "|"), UInt8(ascii: "~"):
            return true
        default:
            return false
        }
    }

    /// The header names the scanner acts on, matched without regard to case.
    fileprivate enum FieldKind {
        case contentLength, transferEncoding, expect, upgrade, connection, authorization, sessionToken, cookie, other

        private static let names: [(FieldKind, [UInt8])] = [
            (.contentLength, Array("content-length".utf8)), (.transferEncoding, Array("transfer-encoding".utf8)),
            (.expect, Array("expect".utf8)), (.upgrade, Array("upgrade".utf8)), (.connection, Array("connection".utf8)),
            (.authorization, Array("authorization".utf8)), (.sessionToken, Array("x-session-token".utf8)),
            (.cookie, Array("cookie".utf8)),
        ]

        init(_ name: UnsafeRawBufferPointer) {
            for (kind, lowercased) in Self.names where lowercased.count == name.count {
                if zip(name, lowercased).allSatisfy({ $0 | 0x20 == $1 }) {
                    self = kind
                    return
                }
            }
            self = .other
        }
    }
}

/// A lookup's credentials as the router reads them from `HTTPFields`: repeated Authorization
/// or X-Session-Token fields joined by ", ", Cookie fields one by one. Not `HTTPFields`:
/// building them and looking names up was 4 % of a lookup's time. The two single values stay
/// slices of the connection's bytes: a `String` each cost an allocation and a UTF-8 check. The
/// router sees invalid UTF-8 repaired (U+FFFD) where these keep the raw bytes; both paths answer
/// alike all the same: a token is ASCII only, and an API key is checked by the key ring as the
/// repaired `String` (the connection's remembered key only ever matches valid UTF-8).
struct LookupCredentials {
    private(set) var authorization: ByteBuffer?
    private(set) var sessionToken: ByteBuffer?
    private(set) var cookies: [String] = []

    fileprivate mutating func add(_ kind: HTTP1RequestScanner.FieldKind, _ value: ByteBuffer) {
        switch kind {
        case .authorization: authorization = Self.joined(authorization, value)
        case .sessionToken: sessionToken = Self.joined(sessionToken, value)
        case .cookie: cookies.append(String(buffer: value))
        default: break
        }
    }

    /// A repeated field's values joined as `HTTPFields` joins them (the write copies the slice).
    private static func joined(_ earlier: ByteBuffer?, _ value: ByteBuffer) -> ByteBuffer {
        guard var joined = earlier else { return value }
        joined.writeString(", ")
        joined.writeImmutableBuffer(value)
        return joined
    }
}
