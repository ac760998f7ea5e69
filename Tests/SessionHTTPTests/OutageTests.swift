import Foundation
import RedisTestSupport
import Testing

/// §5.7: while Redis is down every store operation answers 503 quickly and /readyz says so;
/// the service recovers by itself when Redis is back.
@Suite struct OutageTests {
    @Test func answers503DuringOutageThenRecovers() async throws {
        let redis = try await RedisServerProcess.start()
        defer { redis.stop() }
        try await Sessiond.with(redisURL: redis.url) { server in
            let session = try await server.create(user: "outage")
            #expect(try await server.lookup(session.token).status == 200)

            redis.kill()
            let requests: [(String, () async throws -> HTTPTestClient.Response)] = [
                ("lookup", { try await server.lookup(session.token) }),
                ("create", { try await server.request(.POST, "/v1/sessions", key: TestKeys.app, json: ["user_id": "outage"]) }),
                ("list", { try await server.list(user: "outage") }),
                ("revoke", { try await server.request(.DELETE, "/v1/session", key: TestKeys.app, headers: [("X-Session-Token", session.token)]) }),
                ("readyz", { try await server.client.send(.GET, "/readyz") }),
            ]
            for (name, send) in requests {
                let start = ContinuousClock.now
                let response = try await send()
                let elapsed = ContinuousClock.now - start
                #expect(response.status == 503, "\(name) during outage: \(response.text)")
                if name != "readyz" { #expect(response.errorCode == "store_unavailable") }
                // Half the test's 10-s command timeout: the answer comes from the broken connection.
                #expect(elapsed < .seconds(5), "\(name) took \(elapsed)")
            }
            #expect(try await server.client.send(.GET, "/healthz").status == 200, "the process itself is fine")
            let down = try await MetricsTests.scrape(server).samples
            #expect(down["sessiond_redis_up"] == 0, "the metrics say Redis is away")
            #expect(down[#"sessiond_redis_pool_connections{state="open"}"#] == 0)
            #expect(down[#"sessiond_http_requests_total{method="GET",route="/v1/session",status="503"}"#] == 1)
            // A well-formed but unknown token must not be answered 401 while Redis is away.
            let unknown = try await server.lookup("uQU_h9ztFxlvRrVs1RnLp9fsI9X5Qa2S3Wv1_zqCzWA")
            #expect(unknown.status == 503)

            try await redis.restart()
            let deadline = ContinuousClock.now + .seconds(10)
            var recovered = false
            while ContinuousClock.now < deadline {
                if try await server.client.send(.GET, "/readyz").status == 200 { recovered = true; break }
                try await Task.sleep(for: .milliseconds(50))
            }
            #expect(recovered, "sessiond reconnected by itself")
            #expect(try await MetricsTests.scrape(server).samples["sessiond_redis_up"] == 1)
            let fresh = try await server.create(user: "outage")
            #expect(try await server.lookup(fresh.token).status == 200)
        }
    }
}
