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
        var line = [UInt8]()
        line.reserveCapacity(256)
        line.append("{\"ts\":\"")
        RFC3339.write(milliseconds: Int64(Date().timeIntervalSince1970 * 1000), into: &line)
        line.append("\",\"level\":\"")
        line.append(contentsOf: event.level.rawValue.utf8)
        line.append("\",\"logger\":")
        JSONWriter.writeEscaped(label, into: &line)
        line.append(",\"msg\":")
        JSONWriter.writeEscaped(event.message.description, into: &line)
        var merged = metadata
        if let extra = event.metadata { merged.merge(extra) { _, new in new } }
        for (key, value) in merged.sorted(by: { $0.key < $1.key }) {
            line.append(",")
            JSONWriter.writeEscaped(key, into: &line)
            line.append(":")
            Self.write(value, into: &line)
        }
        line.append("}\n")
        output.write(line)
    }

    /// True when `logRequest` may write request lines: no metadata of this handler's own to
    /// merge (the general path merges it), level info or lower.
    var writesRequestLines: Bool { metadata.isEmpty && logLevel <= .info }

    /// The request log line, written straight into the line buffer: the same JSON as
    /// `log(event:)` gives for `RequestLog`'s metadata (keys in order), without building and
    /// sorting a metadata dictionary on every request. Only when `writesRequestLines`.
    func logRequest(requestID: String, method: String, route: String, status: Int, nanoseconds: Int64, handle: String?) {
        var line = [UInt8]()
        line.reserveCapacity(256)
        line.append("{\"ts\":\"")
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        RFC3339.write(milliseconds: Int64(now.tv_sec) * 1000 + Int64(now.tv_nsec) / 1_000_000, into: &line)
        line.append("\",\"level\":\"info\",\"logger\":")
        JSONWriter.writeEscaped(label, into: &line)
        line.append(",\"msg\":\"request\",\"duration_ms\":")
        Self.writeMilliseconds(nanoseconds: nanoseconds, into: &line)
        if let handle {
            line.append(",\"handle\":")
            JSONWriter.writeEscaped(handle, into: &line)
        }
        line.append(",\"method\":")
        JSONWriter.writeEscaped(method, into: &line)
        line.append(",\"request_id\":")
        JSONWriter.writeEscaped(requestID, into: &line)
        line.append(",\"route\":")
        JSONWriter.writeEscaped(route, into: &line)
        line.append(",\"status\":")
        line.append(contentsOf: String(status).utf8)
        line.append("}\n")
        output.write(line)
    }

    /// Milliseconds with three decimals (microseconds), as integers: `Double.description` went
    /// through `snprintf` on every request line.
    static func writeMilliseconds(nanoseconds: Int64, into line: inout [UInt8]) {
        let microseconds = max(0, nanoseconds) / 1000
        line.append(contentsOf: String(microseconds / 1000).utf8)
        let fraction = Int(microseconds % 1000)
        line.append(UInt8(ascii: "."))
        line.append(UInt8(ascii: "0") + UInt8(fraction / 100))
        line.append(UInt8(ascii: "0") + UInt8(fraction / 10 % 10))
        line.append(UInt8(ascii: "0") + UInt8(fraction % 10))
    }

    private static func write(_ value: Logger.Metadata.Value, into line: inout [UInt8]) {
        switch value {
        case .string(let text):
            JSONWriter.writeEscaped(text, into: &line)
        case .stringConvertible(let convertible):
            if convertible is any BinaryInteger || convertible is Double || convertible is LogMilliseconds {
                line.append(contentsOf: convertible.description.utf8)
            } else {
                JSONWriter.writeEscaped(convertible.description, into: &line)
            }
        case .array(let values):
            line.append("[")
            for (index, element) in values.enumerated() {
                if index > 0 { line.append(",") }
                write(element, into: &line)
            }
            line.append("]")
        case .dictionary(let values):
            line.append("{")
            for (index, (key, element)) in values.sorted(by: { $0.key < $1.key }).enumerated() {
                if index > 0 { line.append(",") }
                JSONWriter.writeEscaped(key, into: &line)
                line.append(":")
                write(element, into: &line)
            }
            line.append("}")
        }
    }
}

/// Where JSON log lines go: standard output, or a closure (tests capture the lines).
public struct JSONLineOutput: Sendable {
    private let sink: @Sendable ([UInt8]) -> Void

    public init(_ sink: @escaping @Sendable ([UInt8]) -> Void) {
        self.sink = sink
    }

    func write(_ line: [UInt8]) { sink(line) }

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

    func append(_ line: [UInt8]) {
        let full = pending.withLockedValue { buffer -> Bool in
            buffer.writeBytes(line)
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
