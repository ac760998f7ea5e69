/// Why a JSON text was refused.
public enum JSONParseError: Error, Equatable, Sendable {
    /// Not JSON (RFC 8259), or not UTF-8; `offset` is the byte where parsing stopped.
    case malformed(offset: Int)
    /// An object names the same member twice. RFC 8259 leaves the meaning open, and two readers
    /// that pick different copies (a proxy, a log, this service) would see different requests.
    /// Names are Swift strings, so two canonically equivalent spellings count as one name.
    case duplicateName(String)
    /// Nested deeper than `JSONValue.maxNestingDepth` arrays and objects.
    case tooDeep
}

/// A strict RFC 8259 parser into `JSONValue`: UTF-8 only, no trailing content, no duplicate
/// member names, at most `JSONValue.maxNestingDepth` levels. It replaced `JSONDecoder`, whose `Codable` detour
/// cost a visible share of every create, and which kept the first of two equal names silently.
///
/// Numbers follow what `JSONDecoder` gave `JSONValue` before: an integral value that fits
/// `Int64` is `.integer` (`5`, `5.0` and `5e0` alike), anything else a finite `.number`.
struct JSONParser {
    private let bytes: UnsafeBufferPointer<UInt8>
    private var position = 0
    private var depth = 0

    static func parse(_ bytes: UnsafeBufferPointer<UInt8>) throws(JSONParseError) -> JSONValue {
        var parser = JSONParser(bytes: bytes)
        parser.skipWhitespace()
        let value = try parser.value()
        parser.skipWhitespace()
        guard parser.position == bytes.count else { throw .malformed(offset: parser.position) }
        return value
    }

    private init(bytes: UnsafeBufferPointer<UInt8>) {
        self.bytes = bytes
    }

    private var current: UInt8? { position < bytes.count ? bytes[position] : nil }

    private mutating func skipWhitespace() {
        while let byte = current, byte == 0x20 || byte == 0x09 || byte == 0x0A || byte == 0x0D { position += 1 }
    }

    private mutating func expect(_ literal: StaticString) throws(JSONParseError) {
        let count = literal.utf8CodeUnitCount
        guard bytes.count - position >= count else { throw .malformed(offset: position) }
        for offset in 0..<count where bytes[position + offset] != literal.utf8Start[offset] {
            throw .malformed(offset: position + offset)
        }
        position += count
    }

    private mutating func value() throws(JSONParseError) -> JSONValue {
        guard let byte = current else { throw .malformed(offset: position) }
        switch byte {
        case UInt8(ascii: "{"): return try object()
        case UInt8(ascii: "["): return try array()
        case UInt8(ascii: "\""): return .string(try string())
        case UInt8(ascii: "t"): try expect("true"); return .bool(true)
        case UInt8(ascii: "f"): try expect("false"); return .bool(false)
        case UInt8(ascii: "n"): try expect("null"); return .null
        case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"): return try number()
        default: throw .malformed(offset: position)
        }
    }

    /// Steps into an array or object at its opening bracket; false when it closes at once.
    private mutating func open(closedBy closing: UInt8) throws(JSONParseError) -> Bool {
        depth += 1
        if depth > JSONValue.maxNestingDepth { throw .tooDeep }
        position += 1
        skipWhitespace()
        return !closes(closing)
    }

    /// After an element: true when a comma announces another, false when `closing` ends them.
    private mutating func next(closedBy closing: UInt8) throws(JSONParseError) -> Bool {
        skipWhitespace()
        if current == UInt8(ascii: ",") {
            position += 1
            skipWhitespace()
            return true
        }
        guard closes(closing) else { throw .malformed(offset: position) }
        return false
    }

    private mutating func closes(_ closing: UInt8) -> Bool {
        guard current == closing else { return false }
        position += 1
        depth -= 1
        return true
    }

    private mutating func object() throws(JSONParseError) -> JSONValue {
        var members = [String: JSONValue]()
        var more = try open(closedBy: UInt8(ascii: "}"))
        while more {
            guard current == UInt8(ascii: "\"") else { throw .malformed(offset: position) }
            let name = try string()
            skipWhitespace()
            guard current == UInt8(ascii: ":") else { throw .malformed(offset: position) }
            position += 1
            skipWhitespace()
            let member = try value()
            guard members.updateValue(member, forKey: name) == nil else { throw .duplicateName(name) }
            more = try next(closedBy: UInt8(ascii: "}"))
        }
        return .object(members)
    }

    private mutating func array() throws(JSONParseError) -> JSONValue {
        var elements = [JSONValue]()
        var more = try open(closedBy: UInt8(ascii: "]"))
        while more {
            elements.append(try value())
            more = try next(closedBy: UInt8(ascii: "]"))
        }
        return .array(elements)
    }

    /// A string from its opening quote. Runs without escapes are checked as UTF-8 and copied
    /// whole; escapes are decoded, surrogate pairs joined, and a lone surrogate refused.
    private mutating func string() throws(JSONParseError) -> String {
        position += 1
        var decoded = [UInt8]()
        var runStart = position
        while true {
            guard let byte = current else { throw .malformed(offset: position) }
            switch byte {
            case UInt8(ascii: "\""):
                let run = UnsafeBufferPointer(rebasing: bytes[runStart..<position])
                position += 1
                if decoded.isEmpty {
                    guard let text = String(validating: run, as: UTF8.self) else { throw .malformed(offset: runStart) }
                    return text
                }
                decoded.append(contentsOf: run)
                guard let text = String(validating: decoded, as: UTF8.self) else { throw .malformed(offset: runStart) }
                return text
            case UInt8(ascii: "\\"):
                decoded.append(contentsOf: UnsafeBufferPointer(rebasing: bytes[runStart..<position]))
                position += 1
                try escape(into: &decoded)
                runStart = position
            case 0..<0x20:
                throw .malformed(offset: position)
            default:
                position += 1
            }
        }
    }

    /// One escape, after its backslash.
    private mutating func escape(into decoded: inout [UInt8]) throws(JSONParseError) {
        guard let letter = current else { throw .malformed(offset: position) }
        position += 1
        switch letter {
        case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"): decoded.append(letter)
        case UInt8(ascii: "b"): decoded.append(0x08)
        case UInt8(ascii: "f"): decoded.append(0x0C)
        case UInt8(ascii: "n"): decoded.append(0x0A)
        case UInt8(ascii: "r"): decoded.append(0x0D)
        case UInt8(ascii: "t"): decoded.append(0x09)
        case UInt8(ascii: "u"):
            var scalar = try hexQuad()
            if (0xD800...0xDBFF).contains(scalar) {
                try expect("\\u")
                let low = try hexQuad()
                guard (0xDC00...0xDFFF).contains(low) else { throw .malformed(offset: position - 4) }
                scalar = 0x10000 + ((scalar - 0xD800) << 10) + (low - 0xDC00)
            }
            guard let unicode = Unicode.Scalar(scalar) else { throw .malformed(offset: position - 4) }
            UTF8.encode(unicode) { decoded.append($0) }
        default:
            throw .malformed(offset: position - 1)
        }
    }

    private mutating func hexQuad() throws(JSONParseError) -> UInt32 {
        guard bytes.count - position >= 4 else { throw .malformed(offset: position) }
        var value: UInt32 = 0
        for _ in 0..<4 {
            let byte = bytes[position]
            let digit: UInt8
            switch byte {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): digit = byte - UInt8(ascii: "0")
            case UInt8(ascii: "a")...UInt8(ascii: "f"): digit = byte - UInt8(ascii: "a") + 10
            case UInt8(ascii: "A")...UInt8(ascii: "F"): digit = byte - UInt8(ascii: "A") + 10
            default: throw .malformed(offset: position)
            }
            value = value << 4 | UInt32(digit)
            position += 1
        }
        return value
    }

    private mutating func number() throws(JSONParseError) -> JSONValue {
        let start = position
        if current == UInt8(ascii: "-") { position += 1 }
        guard let first = current else { throw .malformed(offset: position) }
        switch first {
        case UInt8(ascii: "0"): position += 1
        case UInt8(ascii: "1")...UInt8(ascii: "9"): skipDigits()
        default: throw .malformed(offset: position)
        }
        var isIntegerText = true
        if current == UInt8(ascii: ".") {
            isIntegerText = false
            position += 1
            guard skipRequiredDigits() else { throw .malformed(offset: position) }
        }
        if current == UInt8(ascii: "e") || current == UInt8(ascii: "E") {
            isIntegerText = false
            position += 1
            if current == UInt8(ascii: "+") || current == UInt8(ascii: "-") { position += 1 }
            guard skipRequiredDigits() else { throw .malformed(offset: position) }
        }
        // The text is ASCII digits and signs by now, so it is valid UTF-8.
        let text = String(decoding: UnsafeBufferPointer(rebasing: bytes[start..<position]), as: UTF8.self)
        if isIntegerText, let integer = Int64(text) { return .integer(integer) }
        guard let double = Double(text), double.isFinite else { throw .malformed(offset: start) }
        // Integer text that Int64 refused is out of its range, even where the double rounds
        // back into it (-9223372036854775809 to -2^63).
        if !isIntegerText, let integer = Int64(exactly: double) { return .integer(integer) }
        return .number(double)
    }

    private mutating func skipDigits() {
        while let byte = current, byte >= UInt8(ascii: "0"), byte <= UInt8(ascii: "9") { position += 1 }
    }

    /// Skips digits; false when there was none.
    private mutating func skipRequiredDigits() -> Bool {
        let start = position
        skipDigits()
        return position > start
    }
}
