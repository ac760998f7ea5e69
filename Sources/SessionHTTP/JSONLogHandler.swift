import Foundation
import Logging
import NIOConcurrencyHelpers
import NIOCore

/// swift-log handler that writes one JSON object per line to standard output, so request logs
/// can be shipped and queried as is.
public struct JSONLogHandler: LogHandler {
    public var metadata: Logger.Metadata = [:]
    public var logLevel: Logger.Level
    private let label: String
    private let output: JSONLineOutput

    public init(label: String, level: Logger.Level, output: JSONLineOutput = .standardOutput) {
        self.label = label
        self.logLevel = level
        self.output = output
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(event: LogEvent) {
        var line = ByteBufferAllocator().buffer(capacity: 256)
        line.writeStaticString("{\"ts\":\"")
        RFC3339.write(milliseconds: Int64(Date().timeIntervalSince1970 * 1000), into: &line)
        line.writeStaticString("\",\"level\":\"")
        line.writeString(event.level.rawValue)
        line.writeStaticString("\",\"logger\":")
        JSONWriter.writeEscaped(label, into: &line)
        line.writeStaticString(",\"msg\":")
        JSONWriter.writeEscaped(event.message.description, into: &line)
        var merged = metadata
        if let extra = event.metadata { merged.merge(extra) { _, new in new } }
        for (key, value) in merged.sorted(by: { $0.key < $1.key }) {
            line.writeStaticString(",")
            JSONWriter.writeEscaped(key, into: &line)
            line.writeStaticString(":")
            Self.write(value, into: &line)
        }
        line.writeStaticString("}\n")
        output.write(line)
    }

    /// True when `logRequest` may write request lines: no metadata of this handler's own to
    /// merge (the general path merges it), level info or lower.
    var writesRequestLines: Bool { metadata.isEmpty && logLevel <= .info }

    /// The request log line, written straight into the line buffer: the same JSON as
    /// `log(event:)` gives for `RequestLog`'s metadata (keys in order), without building and
    /// sorting a metadata dictionary on every request. Only when `writesRequestLines`.
    func logRequest(requestID: String, method: String, route: String, status: Int, nanoseconds: Int64, handle: String?) {
        var line = ByteBufferAllocator().buffer(capacity: 256)
        line.writeStaticString("{\"ts\":\"")
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        RFC3339.write(milliseconds: Int64(now.tv_sec) * 1000 + Int64(now.tv_nsec) / 1_000_000, into: &line)
        line.writeStaticString("\",\"level\":\"info\",\"logger\":")
        JSONWriter.writeEscaped(label, into: &line)
        line.writeStaticString(",\"msg\":\"request\",\"duration_ms\":")
        Self.writeMilliseconds(nanoseconds: nanoseconds, into: &line)
        if let handle {
            line.writeStaticString(",\"handle\":")
            JSONWriter.writeEscaped(handle, into: &line)
        }
        line.writeStaticString(",\"method\":")
        JSONWriter.writeEscaped(method, into: &line)
        line.writeStaticString(",\"request_id\":")
        JSONWriter.writeEscaped(requestID, into: &line)
        line.writeStaticString(",\"route\":")
        JSONWriter.writeEscaped(route, into: &line)
        line.writeStaticString(",\"status\":")
        line.writeString(String(status))
        line.writeStaticString("}\n")
        output.write(line)
    }

    /// Milliseconds with three decimals (microseconds), as integers: `Double.description` went
    /// through `snprintf` on every request line.
    static func writeMilliseconds(nanoseconds: Int64, into line: inout ByteBuffer) {
        let microseconds = max(0, nanoseconds) / 1000
        line.writeString(String(microseconds / 1000))
        let fraction = Int(microseconds % 1000)
        line.writeInteger(UInt8(ascii: "."))
        line.writeInteger(UInt8(ascii: "0") + UInt8(fraction / 100))
        line.writeInteger(UInt8(ascii: "0") + UInt8(fraction / 10 % 10))
        line.writeInteger(UInt8(ascii: "0") + UInt8(fraction % 10))
    }

    private static func write(_ value: Logger.Metadata.Value, into line: inout ByteBuffer) {
        switch value {
        case .string(let text):
            JSONWriter.writeEscaped(text, into: &line)
        case .stringConvertible(let convertible):
            if convertible is any BinaryInteger || convertible is Double || convertible is LogMilliseconds {
                line.writeString(convertible.description)
            } else {
                JSONWriter.writeEscaped(convertible.description, into: &line)
            }
        case .array(let values):
            line.writeStaticString("[")
            for (index, element) in values.enumerated() {
                if index > 0 { line.writeStaticString(",") }
                write(element, into: &line)
            }
            line.writeStaticString("]")
        case .dictionary(let values):
            line.writeStaticString("{")
            for (index, (key, element)) in values.sorted(by: { $0.key < $1.key }).enumerated() {
                if index > 0 { line.writeStaticString(",") }
                JSONWriter.writeEscaped(key, into: &line)
                line.writeStaticString(":")
                write(element, into: &line)
            }
            line.writeStaticString("}")
        }
    }
}

/// Where JSON log lines go: standard output, or a closure (tests capture the lines).
public struct JSONLineOutput: Sendable {
    private let sink: @Sendable (ByteBuffer) -> Void

    public init(_ sink: @escaping @Sendable (ByteBuffer) -> Void) {
        self.sink = sink
    }

    func write(_ line: ByteBuffer) { sink(line) }

    /// Standard output, buffered: a write(2) per request line costs as much as a third of a
    /// lookup, so lines are gathered and written every 50 ms, or at once past 64 KiB. A crash
    /// loses at most the last 50 ms of lines.
    public static let standardOutput = JSONLineOutput { line in BufferedStandardOutput.shared.append(line) }

    /// Writes out what standard output still holds; called on a clean stop so it loses nothing.
    public static func flushStandardOutput() {
        BufferedStandardOutput.shared.flush()
    }
}

private final class BufferedStandardOutput: Sendable {
    static let shared = BufferedStandardOutput()
    private let pending = NIOLockedValueBox(ByteBuffer())
    private static let flushThreshold = 64 * 1024

    init() {
        let flusher = Thread { [self] in
            while true {
                Thread.sleep(forTimeInterval: 0.05)
                flush()
            }
        }
        flusher.name = "sessiond-log-flush"
        flusher.start()
    }

    func append(_ line: ByteBuffer) {
        var line = line
        let full = pending.withLockedValue { buffer -> Bool in
            buffer.writeBuffer(&line)
            return buffer.readableBytes >= Self.flushThreshold
        }
        if full { flush() }
    }

    func flush() {
        let chunk = pending.withLockedValue { buffer -> ByteBuffer? in
            guard buffer.readableBytes > 0 else { return nil }
            defer { buffer.clear() }
            return buffer
        }
        guard let chunk else { return }
        chunk.withUnsafeReadableBytes { bytes in
            var offset = 0
            while offset < bytes.count {
                let written = Foundation.write(STDOUT_FILENO, bytes.baseAddress! + offset, bytes.count - offset)
                if written <= 0 { break }
                offset += written
            }
        }
    }
}
