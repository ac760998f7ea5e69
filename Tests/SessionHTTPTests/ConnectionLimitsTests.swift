import Foundation
import RedisTestSupport
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// A slow or idle client cannot hold a connection for ever (SESSIOND_CONNECTION_IDLE_TIMEOUT
/// also bounds headers and bodies sent byte by byte), and SESSIOND_MAX_CONNECTIONS holds: at it,
/// idle connections are closed to make room for a new one; when every connection has a request
/// in flight, a new one waits and is served once one is free.
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

    /// A request counts from the moment it is whole: a body sent a byte at a time is cut at the
    /// idle timeout like slow headers, or it would hold its connection for ever.
    @Test func slowBodyIsCutAtTheIdleTimeout() async throws {
        try await Sessiond.with(settings: ["SESSIOND_CONNECTION_IDLE_TIMEOUT": "1"]) { server in
            let session = try await server.create(user: "slow-body")
            let slow = try RawConnection(port: server.client.port)
            let body = String(repeating: " ", count: 40) + #"{"n":1}"#
            slow.write(
                "PATCH /v1/session HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer \(TestKeys.app)\r\nX-Session-Token: \(session.token)\r\n"
                    + "Content-Type: application/json\r\nContent-Length: \(body.utf8.count)\r\n\r\n"
            )
            // A byte every 300 ms: 47 bytes take 14 s.
            var closedAfter: Int?
            for (count, byte) in zip(1..., body) {
                slow.write(String(byte))
                if try await slow.read(for: .milliseconds(300)).closed {
                    closedAfter = count
                    break
                }
            }
            #expect(closedAfter != nil, "the server closed the slow body before its last byte")
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

    /// Whether the server has closed the connection, without waiting: bytes it sent stay unread.
    func isClosed(_ connection: RawConnection) -> Bool {
        var byte: UInt8 = 0
        let count = recv(connection.fd, &byte, 1, Int32(MSG_DONTWAIT | MSG_PEEK))
        return count == 0 || (count < 0 && errno == ECONNRESET)
    }

    /// A lookup sent while `redis` is stopped: a request received whole and in flight, since its
    /// answer waits for Redis.
    func startLookup(on connection: RawConnection, token: String) {
        connection.write("GET /v1/session HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer \(TestKeys.reader)\r\nX-Session-Token: \(token)\r\n\r\n")
    }

    /// When every connection has a request in flight, none is closed to make room: a new one
    /// waits in the backlog, and is served once one of them has its answer and is idle.
    @Test func connectionLimitHoldsWhileEveryConnectionIsBusy() async throws {
        try await RedisServerProcess.withServer { redis in
            try await Sessiond.with(redisURL: redis.url, settings: ["SESSIOND_MAX_CONNECTIONS": "3", "SESSIOND_CONNECTION_IDLE_TIMEOUT": "30"]) { server in
                let session = try await server.create(user: "busy-limit")
                // waitUntilReady's connections have closed; give the server a moment to count them out.
                try await Task.sleep(for: .milliseconds(200))
                let held = try (0..<3).map { _ in try RawConnection(port: server.client.port) }
                // Each held connection answers a first request, so all three are accepted and
                // counted before any is held: a connect still in the listen backlog (behind a
                // connection of the test client that was closing) made room for the fourth once.
                for connection in held {
                    var pending = [UInt8]()
                    connection.write("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
                    let answer = try await connection.readResponse(buffered: &pending, for: .seconds(5))
                    try #require(answer?.hasPrefix("HTTP/1.1 200") == true, "a held connection is served: \(answer?.prefix(40) ?? "closed")")
                }
                // SIGSTOP, not CLIENT PAUSE: the requests stay in flight until resume(), however
                // slowly a loaded machine runs the steps below.
                redis.pause()
                defer { redis.resume() }
                for connection in held { startLookup(on: connection, token: session.token) }
                // Until sessiond has read all three requests (a loaded CI machine may take a
                // while): a request not yet whole counts as idle, and would be drained.
                try await Task.sleep(for: .milliseconds(1000))
                let waiting = try RawConnection(port: server.client.port)  // the kernel's backlog takes it
                waiting.write("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
                let early = try await waiting.read(for: .seconds(1))
                #expect(early.text.isEmpty && !early.closed, "a fourth connection is not served while three are busy: \(early.text.prefix(60))")
                // Redis answers again: each held lookup gets its 200, and the first connection to go
                // idle makes room for the waiting one.
                redis.resume()
                for connection in held {
                    var pending = [UInt8]()
                    let answer = try await connection.readResponse(buffered: &pending, for: .seconds(10))
                    #expect(answer?.hasPrefix("HTTP/1.1 200") == true, "the request in flight is answered: \(answer?.prefix(40) ?? "closed")")
                }
                let late = try await waiting.read(for: .seconds(5))
                #expect(late.text.hasPrefix("HTTP/1.1 200"), "served once a connection is idle: \(late.text.prefix(40))")
            }
        }
    }

    /// At the limit, a new client is served at once: idle connections are closed to make room,
    /// longest idle first (one that has not sent a whole request counts as idle, however long
    /// ago it began), never one with a request in flight; `sessiond_connections_drained_total`
    /// counts them.
    @Test func idleConnectionsAreDrainedLongestIdleFirst() async throws {
        try await RedisServerProcess.withServer { redis in
            try await Sessiond.with(redisURL: redis.url, settings: ["SESSIOND_MAX_CONNECTIONS": "50", "SESSIOND_CONNECTION_IDLE_TIMEOUT": "30"]) { server in
                try await drainingOrder(server: server, redis: redis)
            }
        }
    }

    private func drainingOrder(server: Sessiond, redis: RedisServerProcess) async throws {
        let session = try await server.create(user: "drain-order")
        try await Task.sleep(for: .milliseconds(200))
        let old = try (0..<50).map { _ in try RawConnection(port: server.client.port) }
        let healthz = "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"
        // The last two send half a request head (slowloris) and a head with half a body: idle
        // since they opened, the longest.
        old[49].write("GET /healthz HTTP/1.1\r\nHost: x\r\n")
        old[48].write("PATCH /v1/session HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer \(TestKeys.app)\r\nX-Session-Token: \(session.token)\r\nContent-Length: 100\r\n\r\n{")
        // The others one request each, answered before the next is sent: each went idle after the
        // one before it (the order of opening is not enough: two event loops accept them). The
        // first five go last, and the sixth will have a request in flight.
        for connection in Array(old[6..<48]) + Array(old[0..<5]) {
            var pending = [UInt8]()
            connection.write(healthz)
            #expect(try await connection.readResponse(buffered: &pending, for: .seconds(5))?.hasPrefix("HTTP/1.1 200") == true)
        }
        redis.pause()
        defer { redis.resume() }
        startLookup(on: old[5], token: session.token)
        try await Task.sleep(for: .milliseconds(100))
        // 20 new clients, each kept open: every one needs room made for it.
        var new = [RawConnection]()
        for _ in 0..<20 {
            let connection = try RawConnection(port: server.client.port)
            let start = ContinuousClock.now
            var pending = [UInt8]()
            connection.write(healthz)
            let answer = try await connection.readResponse(buffered: &pending, for: .seconds(5))
            #expect(answer?.hasPrefix("HTTP/1.1 200") == true, "a new client is served at the limit: \(answer?.prefix(40) ?? "none")")
            #expect(ContinuousClock.now - start < .seconds(1), "without waiting for the idle timeout")
            new.append(connection)
        }
        try await Task.sleep(for: .milliseconds(300))
        let order = [old[48], old[49]] + Array(old[6..<48]) + Array(old[0..<5]) + new
        let closed = order.map(isClosed)
        let count = closed.prefix { $0 }.count
        #expect(closed.dropFirst(count).allSatisfy { !$0 }, "closed longest idle first: \(closed.map { $0 ? "x" : "." }.joined())")
        #expect(count >= 20 && count <= 20 + 32, "room for 20 new clients, at most one batch more: \(count) closed")
        #expect(!isClosed(old[5]), "the connection with a request in flight stays open")
        redis.resume()
        var pending = [UInt8]()
        let answer = try await old[5].readResponse(buffered: &pending, for: .seconds(10))
        #expect(answer?.hasPrefix("HTTP/1.1 200") == true, "the request in flight is answered: \(answer?.prefix(40) ?? "closed")")
        // The first metrics request needs room made for it (a batch, whose closes may still be
        // under way when it is answered); the second finds room and reads the settled count.
        _ = try await server.request(.GET, "/metrics", key: TestKeys.reader)
        try await Task.sleep(for: .milliseconds(300))
        let metrics = try await server.request(.GET, "/metrics", key: TestKeys.reader).text
        let drained = metrics.split(separator: "\n").first { $0.hasPrefix("sessiond_connections_drained_total ") }
        #expect(drained.flatMap { Int($0.split(separator: " ")[1]) } == order.filter(isClosed).count, "\(drained ?? "no drained metric")")
    }
}
