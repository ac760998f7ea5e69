import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// A slow or idle client cannot hold a connection for ever (SESSIOND_CONNECTION_IDLE_TIMEOUT
/// also bounds headers sent byte by byte), and SESSIOND_MAX_CONNECTIONS holds: beyond it a new
/// connection waits, and is served once another closes.
@Suite struct ConnectionLimitsTests {
    /// A plain TCP connection to the test server, read without blocking the test's threads.
    final class RawConnection {
        let fd: Int32

        init(port: Int) throws {
            fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
            var address = sockaddr_in()
            address.sin_family = sa_family_t(AF_INET)
            address.sin_port = in_port_t(UInt16(port).bigEndian)
            address.sin_addr.s_addr = inet_addr("127.0.0.1")
            let connected = withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
            }
            guard fd >= 0, connected == 0 else { throw TestSetupError("cannot connect to 127.0.0.1:\(port)") }
        }

        deinit { close(fd) }

        func write(_ text: String) {
            _ = text.withCString { send(fd, $0, strlen($0), Int32(MSG_NOSIGNAL)) }
        }

        /// One whole answer (head and Content-Length body) as text, or nil when the connection
        /// closed or nothing complete came within `timeout`. Bytes past it stay in `buffered`.
        /// The socket is read once more after the deadline: a test task that wakes late (a
        /// loaded machine) must not take an answer waiting in the socket for none.
        func readResponse(buffered: inout [UInt8], for timeout: Duration) async throws -> String? {
            let deadline = ContinuousClock.now + timeout
            var chunk = [UInt8](repeating: 0, count: 4096)
            while true {
                let late = ContinuousClock.now >= deadline
                if let end = buffered.firstRange(of: Array("\r\n\r\n".utf8))?.upperBound {
                    let head = String(decoding: buffered[..<end], as: UTF8.self)
                    let length = head.split(separator: "\r\n").first { $0.lowercased().hasPrefix("content-length:") }
                        .flatMap { Int($0.split(separator: ":")[1].trimmingCharacters(in: .whitespaces)) } ?? 0
                    if buffered.count >= end + length {
                        let answer = String(decoding: buffered[..<(end + length)], as: UTF8.self)
                        buffered.removeFirst(end + length)
                        return answer
                    }
                }
                let count = recv(fd, &chunk, chunk.count, Int32(MSG_DONTWAIT))
                if count == 0 { return nil }
                if count > 0 {
                    buffered += chunk[0..<count]
                    continue
                }
                if errno == ECONNRESET || late { return nil }
                try await Task.sleep(for: .milliseconds(10))
            }
        }

        /// What arrives within `timeout`: the bytes, and whether the server closed the connection.
        func read(for timeout: Duration) async throws -> (text: String, closed: Bool) {
            var received = [UInt8]()
            let deadline = ContinuousClock.now + timeout
            var buffer = [UInt8](repeating: 0, count: 4096)
            while ContinuousClock.now < deadline {
                let count = recv(fd, &buffer, buffer.count, Int32(MSG_DONTWAIT))
                if count == 0 { return (String(decoding: received, as: UTF8.self), true) }
                if count > 0 {
                    received += buffer[0..<count]
                    if String(decoding: received, as: UTF8.self).contains("\r\n\r\n") { break }
                    continue
                }
                if errno == ECONNRESET { return (String(decoding: received, as: UTF8.self), true) }
                try await Task.sleep(for: .milliseconds(20))
            }
            return (String(decoding: received, as: UTF8.self), false)
        }
    }

    @Test func slowHeadersAreCutAtTheIdleTimeout() async throws {
        try await Sessiond.with(settings: ["SESSIOND_CONNECTION_IDLE_TIMEOUT": "1"]) { server in
            let slow = try RawConnection(port: server.client.port)
            // One header line every 300 ms, never the blank line that ends them: 20 lines take at
            // least 6 s, so a server that restarted its 1-s timer on every byte would never cut.
            let lines = ["GET /healthz HTTP/1.1\r\n", "Host: x\r\n"] + (1...18).map { "X-Header-\($0): \($0)\r\n" }
            var closedAfter: Int?
            for (count, line) in zip(1..., lines) {
                slow.write(line)
                if try await slow.read(for: .milliseconds(300)).closed {
                    closedAfter = count
                    break
                }
            }
            #expect(closedAfter != nil, "the server closed the slow client before its 20th header line")
            #expect(try await server.client.send(.GET, "/healthz").status == 200, "others are served")
        }
    }

    /// The idle timeout never cuts a connection that keeps sending requests, lookups (answered
    /// by the fast path) included: the connection lives well past the timeout. The gaps are a
    /// seventh of the timeout, so a client slowed by the parallel suite stays busy.
    @Test func busyKeepAliveConnectionStaysOpen() async throws {
        try await Sessiond.with(settings: ["SESSIOND_CONNECTION_IDLE_TIMEOUT": "2"]) { server in
            let session = try await server.create(user: "keepalive")
            let connection = try RawConnection(port: server.client.port)
            let request = "GET /v1/session?touch=false HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer \(TestKeys.reader)\r\nX-Session-Token: \(session.token)\r\n\r\n"
            var pending = [UInt8]()
            let start = ContinuousClock.now
            for _ in 0..<14 {
                connection.write(request)
                let answer = try await connection.readResponse(buffered: &pending, for: .seconds(5))
                #expect(answer?.hasPrefix("HTTP/1.1 200") == true, "\(answer?.prefix(40) ?? "closed")")
                try await Task.sleep(for: .milliseconds(300))
            }
            #expect(ContinuousClock.now - start > .seconds(4), "the connection outlived twice the idle timeout")
            connection.write("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            #expect(try await connection.readResponse(buffered: &pending, for: .seconds(5))?.hasPrefix("HTTP/1.1 200") == true)
        }
    }

    @Test func connectionLimitHolds() async throws {
        try await Sessiond.with(settings: ["SESSIOND_MAX_CONNECTIONS": "3", "SESSIOND_CONNECTION_IDLE_TIMEOUT": "30"]) { server in
            // waitUntilReady's connections have closed; give the server a moment to count them out.
            try await Task.sleep(for: .milliseconds(200))
            var held = try (0..<3).map { _ in try RawConnection(port: server.client.port) }
            try await Task.sleep(for: .milliseconds(200))
            let waiting = try RawConnection(port: server.client.port)  // the kernel's backlog takes it
            waiting.write("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            let early = try await waiting.read(for: .seconds(1))
            #expect(early.text.isEmpty && !early.closed, "a fourth connection is not served while three are open")
            held.removeFirst()  // closes one
            let late = try await waiting.read(for: .seconds(5))
            #expect(late.text.hasPrefix("HTTP/1.1 200"), "served once a slot is free: \(late.text.prefix(40))")
            withExtendedLifetime(held) {}
        }
    }
}
