import Foundation
import SessionStore
import Testing

@Suite("JSON parser")
struct JSONParserTests {
    static func parse(_ text: String) throws(JSONParseError) -> JSONValue {
        try JSONValue.parse(Array(text.utf8))
    }

    @Test("valid texts give their values", arguments: [
        ("null", JSONValue.null),
        (" \t\r\ntrue \n", .bool(true)),
        ("false", .bool(false)),
        ("0", .integer(0)),
        ("-0", .integer(0)),
        ("42", .integer(42)),
        ("-9223372036854775808", .integer(.min)),
        ("9223372036854775807", .integer(.max)),
        ("5.0", .integer(5)),
        ("5e0", .integer(5)),
        ("1E+2", .integer(100)),
        ("1.5", .number(1.5)),
        ("-2.5e-3", .number(-0.0025)),
        ("9223372036854775808", .number(9_223_372_036_854_775_808)),
        ("-9223372036854775809", .number(-9_223_372_036_854_775_808)),
        ("-9223372036854775808.0", .integer(.min)),
        ("1e300", .number(1e300)),
        (#""""#, .string("")),
        (#""plain text""#, .string("plain text")),
        (#""\"\\\/\b\f\n\r\t""#, .string("\"\\/\u{08}\u{0C}\n\r\t")),
        (#""\u00e9\u00E9é""#, .string("ééé")),
        (#""\u0000""#, .string("\u{0}")),
        (#""\ud83d\ude00 😀""#, .string("😀 😀")),
        ("[]", .array([])),
        ("[ 1 , [ ] , { } ]", .array([.integer(1), .array([]), .object([:])])),
        (#"{"a":{"b":[null,"c"]},"d":-1}"#, .object(["a": .object(["b": .array([.null, .string("c")])]), "d": .integer(-1)])),
        (#"{"a":1,"A":2}"#, .object(["a": .integer(1), "A": .integer(2)])),
    ])
    func valid(_ text: String, _ expected: JSONValue) throws {
        #expect(try Self.parse(text) == expected)
    }

    @Test("malformed texts are refused", arguments: [
        "", " ", "nul", "nulll", "True", "[1,]", "[,1]", "[1 2]", "{\"a\"}", "{\"a\":}", "{\"a\":1,}", "{a:1}",
        "{'a':1}", "[1]]", "[[1]", "{} {}", "01", "-", "-a", "1.", ".5", "1e", "1e+", "+1", "0x10", "NaN", "Infinity",
        "1e400", "-1e400", "\"abc", "\"\\x\"", "\"\\u12\"", "\"\\u12g4\"", "\"a\tb\"", "\"a\nb\"",
        "\"\\ud800\"", "\"\\ud800x\"", "\"\\ud800\\u0041\"", "\"\\udc00\"", "\u{FEFF}{}",
    ])
    func malformed(_ text: String) {
        switch #expect(throws: JSONParseError.self, performing: { try Self.parse(text) }) {
        case .malformed?, nil: break  // nil: not refused, which the expectation has recorded
        case let other?: Issue.record("\(text.debugDescription): \(other)")
        }
    }

    @Test("bytes that are not UTF-8 are refused, in and around strings", arguments: [
        [0x22, 0xC3, 0x28, 0x22], [0x22, 0xFF, 0x22], [0x22, 0xED, 0xA0, 0x80, 0x22], [0x22, 0xC0, 0xAF, 0x22],
        [0x22, 0x5C, 0x6E, 0xE2, 0x82, 0x22], [0x5B, 0xFF, 0x5D],
    ] as [[UInt8]])
    func notUTF8(_ bytes: [UInt8]) {
        #expect(throws: JSONParseError.self) { try JSONValue.parse(bytes) }
    }

    @Test("a member name given twice is refused, at any depth, and named")
    func duplicateNames() {
        #expect(throws: JSONParseError.duplicateName("user_id")) { try Self.parse(#"{"user_id":"a","user_id":"b"}"#) }
        #expect(throws: JSONParseError.duplicateName("k")) { try Self.parse(#"{"data":{"x":[{"k":1,"k":1}]}}"#) }
        #expect(throws: JSONParseError.duplicateName("é")) { try Self.parse(#"{"é":1,"\u00e9":2}"#) }
        // Canonically equivalent spellings are one name to a Swift dictionary, so one of them
        // would be lost: refused as well.
        #expect(throws: JSONParseError.self) { try Self.parse(#"{"\u00e9":1,"e\u0301":2}"#) }
    }

    @Test("nesting is limited to maxNestingDepth levels")
    func depth() throws {
        let limit = JSONValue.maxNestingDepth
        let deepest = String(repeating: "[", count: limit) + String(repeating: "]", count: limit)
        _ = try Self.parse(deepest)
        let objects = String(repeating: #"{"a":"#, count: limit) + "1" + String(repeating: "}", count: limit)
        _ = try Self.parse(objects)
        #expect(throws: JSONParseError.tooDeep) {
            try Self.parse(String(repeating: "[", count: limit + 1) + String(repeating: "]", count: limit + 1))
        }
        #expect(throws: JSONParseError.tooDeep) { try Self.parse(String(repeating: "[", count: 100_000)) }
    }

    /// Random documents written by Foundation's encoder come back as the same values, and the
    /// values serialize back to the same bytes.
    @Test("round trip of 2,000 random documents through JSONEncoder")
    func roundTrip() throws {
        var generator = SplitMix64(seed: 0x5E55_10D0)
        for _ in 0..<2000 {
            let value = JSONValue.random(depth: 0, using: &generator)
            let text = value.serialized()
            let parsed = try JSONValue.parse(text)
            #expect(parsed == value, "\(String(decoding: text, as: UTF8.self))")
            #expect(parsed.serialized() == text)
        }
    }
}

/// A seeded generator, so a failing document can be found again.
struct SplitMix64: RandomNumberGenerator {
    var state: UInt64

    init(seed: UInt64) { state = seed }

    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var mixed = state
        mixed = (mixed ^ (mixed >> 30)) &* 0xBF58_476D_1CE4_E5B9
        mixed = (mixed ^ (mixed >> 27)) &* 0x94D0_49BB_1331_11EB
        return mixed ^ (mixed >> 31)
    }
}

extension JSONValue {
    static func random(depth: Int, using generator: inout SplitMix64) -> JSONValue {
        switch Int.random(in: 0..<(depth < 4 ? 9 : 6), using: &generator) {
        case 0: return .null
        case 1: return .bool(Bool.random(using: &generator))
        case 2: return .integer(Int64.random(in: .min ... .max, using: &generator) >> Int64.random(in: 0..<63, using: &generator))
        case 3:
            // Never an integral value that fits Int64: that one parses as `.integer`.
            let whole = Double(Int.random(in: -1_000_000...1_000_000, using: &generator))
            if Bool.random(using: &generator) { return .number((whole >= 0 ? whole + 1 : whole - 1) * 1e20) }
            return .number((whole + 0.5) * pow(10, -Double(Int.random(in: 0...20, using: &generator))))
        case 4, 5: return .string(randomString(using: &generator))
        case 6: return .array((0..<Int.random(in: 0..<5, using: &generator)).map { _ in random(depth: depth + 1, using: &generator) })
        default:
            var members = [String: JSONValue]()
            for _ in 0..<Int.random(in: 0..<5, using: &generator) {
                members[randomString(using: &generator)] = random(depth: depth + 1, using: &generator)
            }
            return .object(members)
        }
    }

    /// ASCII, controls, quotes and backslashes, two- to four-byte UTF-8.
    static func randomString(using generator: inout SplitMix64) -> String {
        let pool: [Unicode.Scalar] = ["a", "Z", "0", " ", "\"", "\\", "/", "\n", "\t", "\u{0}", "\u{1F}", "\u{7F}", "é", "€", "\u{FFFF}", "😀", "\u{10FFFF}"]
        var text = String.UnicodeScalarView()
        for _ in 0..<Int.random(in: 0..<12, using: &generator) {
            text.append(pool.randomElement(using: &generator)!)
        }
        return String(text)
    }
}
