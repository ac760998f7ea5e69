import Foundation

/// A JSON document as a Swift value: what session `data` is made of, and what a merge patch
/// (RFC 7396) works on.
public enum JSONValue: Sendable, Equatable, Encodable {
    case null
    case bool(Bool)
    case integer(Int64)
    case number(Double)
    case string(String)
    case array([JSONValue])
    case object([String: JSONValue])

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        switch self {
        case .null: try container.encodeNil()
        case .bool(let value): try container.encode(value)
        case .integer(let value): try container.encode(value)
        case .number(let value): try container.encode(value)
        case .string(let value): try container.encode(value)
        case .array(let value): try container.encode(value)
        case .object(let value): try container.encode(value)
        }
    }

    /// How deep arrays and objects may nest in parsed text; deeper text is refused, which also
    /// bounds the parser's recursion.
    public static let maxNestingDepth = 512

    /// Parses UTF-8 JSON text (`JSONParser`); throws on anything malformed, including invalid
    /// UTF-8 and a member name given twice.
    public static func parse(_ bytes: [UInt8]) throws(JSONParseError) -> JSONValue {
        try bytes.withUnsafeBufferPointer { buffer throws(JSONParseError) in try JSONParser.parse(buffer) }
    }

    /// Compact JSON text with sorted keys, so equal values serialize to equal bytes.
    public func serialized() -> [UInt8] {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        // Encoding a JSONValue cannot fail: every case maps to valid JSON, and non-finite
        // doubles cannot come out of the parser.
        return Array((try? encoder.encode(self)) ?? Data("null".utf8))
    }

    /// RFC 7396 JSON merge patch of `self` by `patch`.
    public func merged(with patch: JSONValue) -> JSONValue {
        guard case .object(let changes) = patch else { return patch }
        var result: [String: JSONValue]
        if case .object(let current) = self { result = current } else { result = [:] }
        for (key, change) in changes {
            if change == .null {
                result.removeValue(forKey: key)
            } else {
                result[key] = (result[key] ?? .null).merged(with: change)
            }
        }
        return .object(result)
    }
}
