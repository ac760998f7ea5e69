import NIOCore

/// Writes JSON straight into a ByteBuffer. Responses are built on the hot path of every page
/// view, so they skip Codable and its intermediate values.
struct JSONWriter {
    private(set) var buffer: ByteBuffer
    private var needsComma = false

    init(capacity: Int = 256) {
        buffer = ByteBufferAllocator().buffer(capacity: capacity)
    }

    mutating func beginObject() { separator(); buffer.writeInteger(UInt8(ascii: "{")); needsComma = false }
    mutating func endObject() { buffer.writeInteger(UInt8(ascii: "}")); needsComma = true }
    mutating func beginArray() { separator(); buffer.writeInteger(UInt8(ascii: "[")); needsComma = false }
    mutating func endArray() { buffer.writeInteger(UInt8(ascii: "]")); needsComma = true }

    mutating func key(_ name: StaticString) {
        separator()
        buffer.writeInteger(UInt8(ascii: "\""))
        buffer.writeStaticString(name)
        buffer.writeStaticString("\":")
        needsComma = false
    }

    mutating func string(_ value: String) {
        separator()
        Self.writeEscaped(value, into: &buffer)
        needsComma = true
    }

    mutating func optionalString(_ value: String?) {
        if let value { string(value) } else { null() }
    }

    mutating func integer(_ value: some BinaryInteger) {
        separator()
        buffer.writeString(String(value))
        needsComma = true
    }

    mutating func bool(_ value: Bool) {
        separator()
        buffer.writeStaticString(value ? "true" : "false")
        needsComma = true
    }

    mutating func null() {
        separator()
        buffer.writeStaticString("null")
        needsComma = true
    }

    mutating func emptyObject() {
        separator()
        buffer.writeStaticString("{}")
        needsComma = true
    }

    /// Already-serialized JSON (session data as stored), written as is.
    mutating func raw(_ bytes: [UInt8]) {
        separator()
        buffer.writeBytes(bytes)
        needsComma = true
    }

    /// RFC 3339 UTC time with milliseconds.
    mutating func timestamp(milliseconds: Int64) {
        separator()
        buffer.writeInteger(UInt8(ascii: "\""))
        RFC3339.write(milliseconds: milliseconds, into: &buffer)
        buffer.writeInteger(UInt8(ascii: "\""))
        needsComma = true
    }

    private mutating func separator() {
        if needsComma { buffer.writeInteger(UInt8(ascii: ",")) }
    }

    /// A JSON string: quotes, backslashes and control characters escaped, everything else as
    /// is. Scans the UTF-8 bytes in place and writes each unescaped run at once (every answer
    /// writes several strings: handle, user id, token, cookie).
    static func writeEscaped(_ value: String, into buffer: inout ByteBuffer) {
        var value = value
        value.withUTF8 { utf8 in
            let bytes = UnsafeRawBufferPointer(utf8)
            buffer.reserveCapacity(minimumWritableBytes: bytes.count + 2)
            buffer.writeInteger(UInt8(ascii: "\""))
            var pending = 0
            for index in bytes.indices {
                let byte = bytes[index]
                guard byte < 0x20 || byte == UInt8(ascii: "\"") || byte == UInt8(ascii: "\\") else { continue }
                buffer.writeBytes(UnsafeRawBufferPointer(rebasing: bytes[pending..<index]))
                switch byte {
                case UInt8(ascii: "\""): buffer.writeStaticString("\\\"")
                case UInt8(ascii: "\\"): buffer.writeStaticString("\\\\")
                case 0x0A: buffer.writeStaticString("\\n")
                case 0x0D: buffer.writeStaticString("\\r")
                case 0x09: buffer.writeStaticString("\\t")
                default:
                    buffer.writeStaticString("\\u00")
                    buffer.writeInteger(hexDigits[Int(byte >> 4)])
                    buffer.writeInteger(hexDigits[Int(byte & 0xF)])
                }
                pending = index + 1
            }
            buffer.writeBytes(UnsafeRawBufferPointer(rebasing: bytes[pending...]))
            buffer.writeInteger(UInt8(ascii: "\""))
        }
    }

    private static let hexDigits: [UInt8] = Array("0123456789abcdef".utf8)
}

enum RFC3339 {
    /// `YYYY-MM-DDTHH:MM:SS.mmmZ`, from milliseconds since the Unix epoch
    /// (days-to-civil conversion after Howard Hinnant's algorithm).
    static func write(milliseconds: Int64, into buffer: inout ByteBuffer) {
        let totalSeconds = milliseconds >= 0 ? milliseconds / 1000 : (milliseconds - 999) / 1000
        let millis = Int(milliseconds - totalSeconds * 1000)
        var days = totalSeconds >= 0 ? totalSeconds / 86400 : (totalSeconds - 86399) / 86400
        let secondOfDay = Int(totalSeconds - days * 86400)
        days += 719_468
        let era = (days >= 0 ? days : days - 146_096) / 146_097
        let dayOfEra = days - era * 146_097
        let yearOfEra = (dayOfEra - dayOfEra / 1460 + dayOfEra / 36524 - dayOfEra / 146_096) / 365
        let dayOfYear = dayOfEra - (365 * yearOfEra + yearOfEra / 4 - yearOfEra / 100)
        let monthIndex = (5 * dayOfYear + 2) / 153
        let day = Int(dayOfYear - (153 * monthIndex + 2) / 5 + 1)
        let month = Int(monthIndex < 10 ? monthIndex + 3 : monthIndex - 9)
        let year = Int(yearOfEra + era * 400 + (month <= 2 ? 1 : 0))
        // One capacity check for the 24 bytes, then plain stores (a write per byte cost a
        // visible share of a lookup: four timestamps per session).
        buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: 24) { out in
            func put(_ value: Int, _ width: Int, at offset: Int, then separator: UInt8) {
                var rest = value
                for position in stride(from: offset + width - 1, through: offset, by: -1) {
                    out[position] = UInt8(ascii: "0") + UInt8(rest % 10)
                    rest /= 10
                }
                out[offset + width] = separator
            }
            put(year, 4, at: 0, then: UInt8(ascii: "-"))
            put(month, 2, at: 5, then: UInt8(ascii: "-"))
            put(day, 2, at: 8, then: UInt8(ascii: "T"))
            put(secondOfDay / 3600, 2, at: 11, then: UInt8(ascii: ":"))
            put(secondOfDay / 60 % 60, 2, at: 14, then: UInt8(ascii: ":"))
            put(secondOfDay % 60, 2, at: 17, then: UInt8(ascii: "."))
            put(millis, 3, at: 20, then: UInt8(ascii: "Z"))
            return 24
        }
    }
}
