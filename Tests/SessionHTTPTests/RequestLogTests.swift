import Logging
import NIOCore
import Synchronization
import Testing

@testable import SessionHTTP

/// The request line written straight into the buffer is the same JSON as the general path of
/// `JSONLogHandler` gives for the same metadata, and the general path still serves a handler
/// that carries metadata of its own.
@Suite struct RequestLogTests {
    private static func lines(_ body: (JSONLogHandler) -> Void) -> [String] {
        let lines = Mutex<[String]>([])
        let handler = JSONLogHandler(label: "sessiond", level: .info, output: JSONLineOutput { line in
            lines.withLock { $0.append(String(decoding: line, as: UTF8.self)) }
        })
        body(handler)
        return lines.withLock { $0 }
    }

    /// The line without its timestamp.
    private static func withoutTime(_ line: String) -> Substring {
        line.drop { $0 != "," }
    }

    @Test(arguments: ["zH8dQ2xqFJ-3w0Ab", nil] as [String?])
    func directLineEqualsTheGeneralOne(handle: String?) {
        let direct = Self.lines { handler in
            handler.logRequest(requestID: "ab-1", method: "GET", route: "/v1/session", status: 200, nanoseconds: 250_400, handle: handle)
        }
        let general = Self.lines { handler in
            var metadata: Logger.Metadata = [
                "request_id": "ab-1", "method": "GET", "route": "/v1/session",
                "status": .stringConvertible(200), "duration_ms": .stringConvertible(LogMilliseconds(nanoseconds: 250_400)),
            ]
            if let handle { metadata["handle"] = .string(handle) }
            Logger(label: "sessiond") { _ in handler }.info("request", metadata: metadata)
        }
        #expect(direct.count == 1 && general.count == 1)
        #expect(direct.map(Self.withoutTime) == general.map(Self.withoutTime))
        #expect(direct.first?.hasPrefix("{\"ts\":\"") == true)
        #expect(direct.first?.contains("\"duration_ms\":0.250,") == true, "\(direct)")
    }

    @Test func millisecondsHaveThreeDecimals() {
        let cases: [(Int64, String)] = [(0, "0.000"), (999, "0.000"), (1_234_567, "1.234"), (12_000_000_000, "12000.000"), (-5, "0.000")]
        for (nanoseconds, text) in cases {
            #expect(LogMilliseconds(nanoseconds: nanoseconds).description == text)
        }
    }

    @Test func handlerMetadataTakesTheGeneralPath() {
        var handler = JSONLogHandler(label: "sessiond", level: .info, output: JSONLineOutput { _ in })
        handler[metadataKey: "component"] = "http"
        #expect(!handler.writesRequestLines)
        handler.logLevel = .warning
        handler[metadataKey: "component"] = nil
        #expect(!handler.writesRequestLines)
        handler.logLevel = .info
        #expect(handler.writesRequestLines)
    }
}
