/// Writes JSON into a byte array, which the answer copies once, after its head. Responses are built
/// on the hot path of every page view, so they skip Codable and its intermediate values, and
/// they gather bytes in an array: each ByteBuffer write checks uniqueness and exclusivity, which
/// cost a visible share of a lookup when an answer took some 40 of them.
struct JSONWriter {
    private(set) var bytes: [UInt8]
    private var needsComma = false

    init(capacity: Int = 256) {
        bytes = []
        bytes.reserveCapacity(capacity)
    }

    mutating func beginObject() { separator(); bytes.append(UInt8(ascii: "{")); needsComma = false }
    mutating func endObject() { bytes.append(UInt8(ascii: "}")); needsComma = true }
    mutating func beginArray() { separator(); bytes.append(UInt8(ascii: "[")); needsComma = false }
    mutating func endArray() { bytes.append(UInt8(ascii: "]")); needsComma = true }

    mutating func key(_ name: StaticString) {
        separator()
        bytes.append(UInt8(ascii: "\""))
        bytes.append(name)
        bytes.append(UInt8(ascii: "\""))
        bytes.append(UInt8(ascii: ":"))
        needsComma = false
    }

    mutating func string(_ value: String) {
        separator()
        Self.writeEscaped(value, into: &bytes)
        needsComma = true
    }

    mutating func optionalString(_ value: String?) {
        if let value { string(value) } else { null() }
    }

    mutating func integer(_ value: some BinaryInteger) {
        separator()
        bytes.append(contentsOf: String(value).utf8)
        needsComma = true
    }

    mutating func bool(_ value: Bool) {
        separator()
        bytes.append(value ? "true" : "false")
        needsComma = true
    }

    mutating func null() {
        separator()
        bytes.append("null")
        needsComma = true
    }

    mutating func emptyObject() {
        separator()
        bytes.append("{}")
        needsComma = true
    }

    /// Already-serialized JSON (session data as stored), written as is.
    mutating func raw(_ json: [UInt8]) {
        separator()
        bytes.append(contentsOf: json)
        needsComma = true
    }

    /// RFC 3339 UTC time with milliseconds.
    mutating func timestamp(milliseconds: Int64) {
        separator()
        bytes.append(UInt8(ascii: "\""))
        RFC3339.write(milliseconds: milliseconds, into: &bytes)
        bytes.append(UInt8(ascii: "\""))
        needsComma = true
    }

    private mutating func separator() {
        if needsComma { bytes.append(UInt8(ascii: ",")) }
    }

    /// A JSON string: quotes, backslashes and control characters escaped, everything else as
    /// is. Scans the UTF-8 bytes in place and copies each unescaped run at once (every answer
    /// writes several strings: handle, user id, token, cookie).
    static func writeEscaped(_ value: String, into bytes: inout [UInt8]) {
        var value = value
        value.withUTF8 { utf8 in
            bytes.append(UInt8(ascii: "\""))
            var pending = 0
            for index in utf8.indices {
                let byte = utf8[index]
                guard byte < 0x20 || byte == UInt8(ascii: "\"") || byte == UInt8(ascii: "\\") else { continue }
                bytes.append(contentsOf: UnsafeBufferPointer(rebasing: utf8[pending..<index]))
                switch byte {
                case UInt8(ascii: "\""): bytes.append("\\\"")
                case UInt8(ascii: "\\"): bytes.append("\\\\")
                case 0x0A: bytes.append("\\n")
                case 0x0D: bytes.append("\\r")
                case 0x09: bytes.append("\\t")
                default:
                    bytes.append("\\u00")
                    bytes.append(hexDigits[Int(byte >> 4)])
                    bytes.append(hexDigits[Int(byte & 0xF)])
                }
                pending = index + 1
            }
            bytes.append(contentsOf: UnsafeBufferPointer(rebasing: utf8[pending...]))
            bytes.append(UInt8(ascii: "\""))
        }
    }

    private static let hexDigits: [UInt8] = Array("0123456789abcdef".utf8)
}

extension [UInt8] {
    mutating func append(_ text: StaticString) {
        text.withUTF8Buffer { append(contentsOf: $0) }
    }
}

enum RFC3339 {
    /// `YYYY-MM-DDTHH:MM:SS.mmmZ`, from milliseconds since the Unix epoch. Composed on the
    /// stack and appended at once: every session answer writes four of them, and an append per
    /// digit showed in the lookup's profile.
    static func write(milliseconds: Int64, into bytes: inout [UInt8]) {
        let seconds = milliseconds >= 0 ? milliseconds / 1000 : (milliseconds - 999) / 1000
        let time = CivilTime(epochSeconds: seconds)
        withUnsafeTemporaryAllocation(of: UInt8.self, capacity: 24) { text in
            var end = 0
            func put(_ value: Int, _ width: Int, then separator: UInt8) {
                var rest = value
                for index in (end..<end + width).reversed() {
                    text[index] = UInt8(ascii: "0") + UInt8(rest % 10)
                    rest /= 10
                }
                text[end + width] = separator
                end += width + 1
            }
            put(time.year, 4, then: UInt8(ascii: "-"))
            put(time.month, 2, then: UInt8(ascii: "-"))
            put(time.day, 2, then: UInt8(ascii: "T"))
            put(time.hour, 2, then: UInt8(ascii: ":"))
            put(time.minute, 2, then: UInt8(ascii: ":"))
            put(time.second, 2, then: UInt8(ascii: "."))
            put(Int(milliseconds - seconds * 1000), 3, then: UInt8(ascii: "Z"))
            bytes.append(contentsOf: UnsafeBufferPointer(text))
        }
    }
}
