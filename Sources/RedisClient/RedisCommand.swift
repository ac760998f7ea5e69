/// One Redis command as its raw arguments (binary-safe).
public struct RedisCommand: Sendable {
    public var arguments: [[UInt8]]

    public init(_ name: String, _ arguments: [RedisArgument] = []) {
        self.arguments = [Array(name.utf8)] + arguments.map(\.bytes)
    }

    public init(_ name: String, _ arguments: RedisArgument...) {
        self.init(name, arguments)
    }
}

/// An argument of a command: text, bytes or a number, sent as a bulk string.
public struct RedisArgument: Sendable, ExpressibleByStringLiteral, ExpressibleByIntegerLiteral {
    public let bytes: [UInt8]

    public init(_ bytes: [UInt8]) { self.bytes = bytes }
    public init(_ text: String) { self.bytes = Array(text.utf8) }
    public init(_ number: Int) { self.bytes = Array(String(number).utf8) }
    public init(_ number: Int64) { self.bytes = Array(String(number).utf8) }
    public init(stringLiteral value: String) { self.init(value) }
    public init(integerLiteral value: Int) { self.init(value) }
}
