import NIOCore

/// One Redis command (binary-safe), held as the bytes sent: a RESP array of bulk strings.
///
/// Encoded once, into a buffer of the exact size, when the command is built: a force-logout
/// chunk sends 500 session keys, and writing argument by argument into a growing buffer (each write
/// checked, the buffer reallocated as it doubled) was a fifth of its time. Encoded here rather
/// than by hiredis's `redisFormatCommandArgv`, whose C interface needed three arrays and a
/// `malloc` per command and formatted each length with `sprintf`.
public struct RedisCommand: Sendable {
    let encoded: ByteBuffer

    public init(_ name: String, _ arguments: [RedisArgument] = []) {
        var size = Self.arrayHeaderSize(arguments.count + 1) + Self.bulkSize(name.utf8.count)
        for argument in arguments { size += Self.bulkSize(argument.bytes.count) }
        encoded = Self.encode(size: size, count: arguments.count + 1) { writer in
            writer.bulk(name.utf8)
            for argument in arguments { writer.bulk(argument.bytes) }
        }
    }

    public init(_ name: String, _ arguments: RedisArgument...) {
        self.init(name, arguments)
    }

    private static func arrayHeaderSize(_ count: Int) -> Int {
        1 + decimalDigits(count) + 2
    }

    private static func bulkSize(_ length: Int) -> Int {
        1 + decimalDigits(length) + 2 + length + 2
    }

    private static func decimalDigits(_ value: Int) -> Int {
        var digits = 1
        var rest = value / 10
        while rest > 0 {
            digits += 1
            rest /= 10
        }
        return digits
    }

    private static func encode(size: Int, count: Int, _ body: (inout Writer) -> Void) -> ByteBuffer {
        var buffer = ByteBufferAllocator().buffer(capacity: size)
        buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: size) { bytes in
            var writer = Writer(bytes: bytes)
            writer.byte(UInt8(ascii: "*"))
            writer.decimalLine(count)
            body(&writer)
            // A size computed apart from the writes that fill it: a mismatch would put garbage
            // or a cut command on the wire.
            precondition(writer.offset == size, "RedisCommand: encoded \(writer.offset) bytes, sized \(size)")
            return size
        }
        return buffer
    }

    /// Writes RESP into memory sized beforehand.
    private struct Writer {
        let bytes: UnsafeMutableRawBufferPointer
        var offset = 0

        mutating func byte(_ value: UInt8) {
            bytes[offset] = value
            offset += 1
        }

        /// A non-negative count in decimal, then CRLF.
        mutating func decimalLine(_ value: Int) {
            let digits = RedisCommand.decimalDigits(value)
            var rest = value
            for position in stride(from: offset + digits - 1, through: offset, by: -1) {
                bytes[position] = UInt8(ascii: "0") &+ UInt8(truncatingIfNeeded: rest % 10)
                rest /= 10
            }
            offset += digits
            crlf()
        }

        mutating func bulk(_ value: some Collection<UInt8>) {
            byte(UInt8(ascii: "$"))
            decimalLine(value.count)
            append(value)
            crlf()
        }

        private mutating func append(_ value: some Collection<UInt8>) {
            let target = UnsafeMutableRawBufferPointer(rebasing: bytes[offset...])
            let copied = value.withContiguousStorageIfAvailable { source in
                target.copyMemory(from: UnsafeRawBufferPointer(source))
            }
            if copied == nil { target.copyBytes(from: value) }
            offset += value.count
        }

        private mutating func crlf() {
            byte(UInt8(ascii: "\r"))
            byte(UInt8(ascii: "\n"))
        }
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
