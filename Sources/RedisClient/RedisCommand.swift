import NIOCore

/// One Redis command as its raw arguments (binary-safe).
public struct RedisCommand: Sendable {
    public var arguments: [[UInt8]]

    public init(_ name: String, _ arguments: [RedisArgument] = []) {
        self.arguments = [Array(name.utf8)] + arguments.map(\.bytes)
    }

    public init(_ name: String, _ arguments: RedisArgument...) {
        self.init(name, arguments)
    }

    /// The command as a RESP array of bulk strings. Written here rather than through hiredis's
    /// `redisFormatCommandArgv`, whose C interface needed three arrays and a `malloc` per command
    /// and formatted each length with `sprintf`: a few per cent of a lookup.
    func encode(into buffer: inout ByteBuffer) {
        buffer.writeInteger(UInt8(ascii: "*"))
        Self.writeDecimalLine(arguments.count, into: &buffer)
        for argument in arguments {
            buffer.writeInteger(UInt8(ascii: "$"))
            Self.writeDecimalLine(argument.count, into: &buffer)
            buffer.writeBytes(argument)
            buffer.writeStaticString("\r\n")
        }
    }

    /// A non-negative count in decimal, then CRLF.
    private static func writeDecimalLine(_ value: Int, into buffer: inout ByteBuffer) {
        if value < 10 {
            buffer.writeInteger(UInt8(ascii: "0") &+ UInt8(value))
        } else {
            buffer.writeString(String(value))
        }
        buffer.writeStaticString("\r\n")
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
