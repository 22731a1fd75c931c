@testable import FieldOpsServer
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Testing

@Suite("Operations: /metrics and per-tenant rate limits")
struct OperationsTests {
    @Test func metricsReportRequestsAndStreams() async throws {
        let fixture = try await APIFixture()
        let dispatcher = try await fixture.token(.dispatcher)
        try await fixture.test { api in
            _ = try await api.call(.post, "/v1/tasks?wait=true", token: dispatcher, json: ["taskId": "t1", "title": "x"])
            _ = try await api.call(.get, "/v1/tasks/t1", token: dispatcher)
            _ = try await api.call(.get, "/v1/tasks/nope", token: dispatcher)
            try await api.client.execute(uri: "/metrics", method: .get) { response in
                #expect(response.status == .ok)
                #expect(response.headers[.contentType]?.hasPrefix("text/plain") == true)
                let text = String(buffer: response.body)
                #expect(text.contains(#"fieldops_http_requests_total{method="GET",route="/v1/tasks/{taskId}",status="200"} 1"#), "\(text)")
                #expect(text.contains(#"fieldops_http_requests_total{method="GET",route="/v1/tasks/{taskId}",status="404"} 1"#))
                #expect(text.contains(#"fieldops_stream_length{tenant="acme",stream="taskAssignments"} 1"#))
                #expect(text.contains(#"fieldops_consumer_group_pending{tenant="acme",stream="taskAssignments",group="projector"} 0"#))
                #expect(text.contains("fieldops_http_request_duration_seconds_bucket"))
            }
        }
    }

    @Test func aTenantOverItsRateGets429WithRetryAfterAndOthersAreUnaffected() async throws {
        // One request per 100 s after a burst of 3: the test never waits long enough for a refill.
        let fixture = try await APIFixture(rateLimit: RateLimit(requestsPerSecond: 0.01, burst: 3))
        let acme = try await fixture.token(.dispatcher, tenant: "acme")
        let globex = try await fixture.token(.dispatcher, tenant: "globex")
        try await fixture.test { api in
            var statuses: [HTTPResponse.Status] = []
            var limited: APIReply?
            for _ in 0..<5 {
                let reply = try await api.call(.get, "/v1/tasks", token: acme)
                statuses.append(reply.status)
                if reply.status == .tooManyRequests { limited = reply }
            }
            #expect(statuses == [.ok, .ok, .ok, .tooManyRequests, .tooManyRequests])
            #expect(limited?.errorCode == "rate_limited")
            #expect(Int(limited?.headers[.retryAfter] ?? "") ?? 0 >= 90)
            #expect(try await api.call(.get, "/v1/tasks", token: globex).status == .ok)
            // Positions from tracking apps count against their device's tenant too.
            let globexWorker = try await api.call(.post, "/v1/workers", token: globex, json: ["workerId": "w-1", "name": "Eve"])
            #expect(globexWorker.status == .created)
            #expect(try await api.call(.post, "/v1/workers/w-1/devices", token: globex, json: ["deviceId": "gx-1", "protocol": "osmand"]).status == .created)
            #expect(try await api.call(.post, "/v1/ingest/osmand?id=gx-1&lat=1&lon=1", token: nil).errorCode == "rate_limited")
        }
    }

    @Test func theBucketRefillsAtItsRate() {
        let limiter = TenantRateLimiter(limit: RateLimit(requestsPerSecond: 10, burst: 2))
        let origin = ContinuousClock.now
        func take(at offset: Duration) -> Bool { limiter.take("acme", now: origin + offset) == nil }
        #expect(take(at: .zero) && take(at: .zero))
        #expect(!take(at: .zero))
        #expect(!take(at: .milliseconds(50)))
        #expect(take(at: .milliseconds(120)))
        #expect(!take(at: .milliseconds(130)))
        // Idle time refills up to the burst only.
        #expect(take(at: .seconds(10)) && take(at: .seconds(10)))
        #expect(!take(at: .seconds(10)))
    }
}
