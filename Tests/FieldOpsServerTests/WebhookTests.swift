import Crypto
import FieldOpsServer
import Foundation
import HTTPTypes
import Hummingbird
import Logging
import NIOCore
import Redis
import Streams
import Synchronization
import Testing

/// A local HTTP endpoint standing in for a mobile-client backend.
final class WebhookReceiver: Sendable {
    struct Delivery: Sendable {
        let headers: HTTPFields
        let body: String
    }

    let deliveries = Mutex<[Delivery]>([])
    /// Statuses to answer, in order; the last one repeats.
    let statuses: [HTTPResponse.Status]
    let port = Mutex<Int?>(nil)
    private let serving: Mutex<Task<Void, any Error>?> = Mutex(nil)

    init(statuses: [HTTPResponse.Status]) async throws {
        self.statuses = statuses
        let router = Router()
        router.post("hook") { [self] request, _ -> Response in
            let body = String(buffer: try await request.body.collect(upTo: 1 << 20))
            let count = deliveries.withLock { deliveries in
                deliveries.append(Delivery(headers: request.headers, body: body))
                return deliveries.count
            }
            // No keep-alive: the receiver's server stops at once when the test ends.
            return Response(status: statuses[min(count, statuses.count) - 1], headers: [.connection: "close"])
        }
        let app = Application(router: router, configuration: .init(address: .hostname("127.0.0.1", port: 0)), onServerRunning: { [self] channel in
            self.port.withLock { $0 = channel.localAddress?.port }
        })
        serving.withLock { $0 = Task { try await app.runService() } }
        let deadline = ContinuousClock.now + .seconds(10)
        while port.withLock({ $0 }) == nil, ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(20)) }
    }

    var url: String { "http://127.0.0.1:\(port.withLock { $0 } ?? 0)/hook" }

    func stop() {
        serving.withLock { $0?.cancel() }
    }
}

@Suite("Webhooks delivered by the notifier group")
final class WebhookTests: Sendable {
    let fixture: APIFixture
    let notifier: NotifierService
    let running: Task<Void, any Error>

    init() async throws {
        fixture = try await APIFixture()
        notifier = NotifierService(
            dependencies: fixture.dependencies,
            configuration: .init(
                attempts: 3, backoff: .milliseconds(20), timeout: .seconds(5), discoveryInterval: .milliseconds(100),
                consumer: .init(batchSize: 10, block: .milliseconds(100), claimMinIdle: .milliseconds(300), claimInterval: .milliseconds(100), maxDeliveries: 2, leaseTTL: .seconds(2))
            ),
            logger: Logger(label: "test.notifier")
        )
        running = Task { [notifier] in try await notifier.run() }
    }

    deinit {
        running.cancel()
    }

    func waitFor(_ condition: () throws -> Bool) async throws -> Bool {
        let deadline = ContinuousClock.now + .seconds(15)
        while ContinuousClock.now < deadline {
            if try condition() { return true }
            try await Task.sleep(for: .milliseconds(50))
        }
        return false
    }

    @Test func assignmentsReachTheWebhookSignedAfterRetries() async throws {
        // Two failures, then success: the notifier's retries with backoff get it through.
        let receiver = try await WebhookReceiver(statuses: [.internalServerError, .serviceUnavailable, .ok])
        defer { receiver.stop() }
        let service = try await fixture.token(.service, sub: "backend")
        let dispatcher = try await fixture.token(.dispatcher)
        try await fixture.test { api in
            let created = try await api.call(.post, "/v1/webhooks", token: service, json: ["url": receiver.url, "eventTypes": ["task.assigned"]])
            #expect(created.status == .created, "\(created.object)")
            let secret = try #require(created.resource("webhook")["secret"] as? String)
            let listed = try await api.call(.get, "/v1/webhooks", token: service)
            #expect(listed.list("webhooks").count == 1)
            #expect(listed.list("webhooks").first?["secret"] == nil)
            #expect(try await api.call(.post, "/v1/webhooks", token: dispatcher, json: ["url": receiver.url, "eventTypes": ["*"]]).status == .forbidden)
            #expect(try await api.call(.post, "/v1/webhooks", token: service, json: ["url": "file:///etc/passwd", "eventTypes": ["*"]]).status == .badRequest)

            _ = try await api.call(.post, "/v1/workers", token: dispatcher, json: ["workerId": "w-1", "name": "Ana"])
            _ = try await api.call(.post, "/v1/tasks", token: dispatcher, json: ["taskId": "T-9", "title": "Pump"])
            #expect(try await api.call(.post, "/v1/tasks/T-9/assign", token: dispatcher, json: ["assigneeId": "w-1"]).status == .ok)

            #expect(try await self.waitFor { receiver.deliveries.withLock { $0.count } >= 3 })
            try await Task.sleep(for: .milliseconds(500))
            let deliveries = receiver.deliveries.withLock { $0 }
            // task.created is not subscribed; task.assigned came three times, the third answered 200.
            #expect(deliveries.count == 3)
            let last = try #require(deliveries.last)
            #expect(last.headers[HTTPField.Name("X-FieldOps-Event")!] == "task.assigned")
            let body = try #require(try JSONSerialization.jsonObject(with: Data(last.body.utf8)) as? [String: Any])
            #expect((body["payload"] as? [String: Any])?["assigneeId"] as? String == "w-1")
            #expect((body["routing"] as? [String: Any])?["taskId"] as? String == "T-9")

            // The signature is HMAC-SHA256 of "t.body" with the secret shown at registration.
            let signature = try #require(last.headers[HTTPField.Name("X-FieldOps-Signature")!])
            let parts = Dictionary(uniqueKeysWithValues: signature.split(separator: ",").map { pair -> (String, String) in
                let kv = pair.split(separator: "=", maxSplits: 1)
                return (String(kv[0]), String(kv[1]))
            })
            let mac = HMAC<SHA256>.authenticationCode(for: Array("\(parts["t"]!).\(last.body)".utf8), using: SymmetricKey(data: Array(secret.utf8)))
            #expect(parts["v1"] == mac.map { String(format: "%02x", $0) }.joined())
        }
    }

    @Test func anEndpointThatKeepsFailingEndsInTheDeadLetters() async throws {
        let receiver = try await WebhookReceiver(statuses: [.internalServerError])
        defer { receiver.stop() }
        let service = try await fixture.token(.service)
        let dispatcher = try await fixture.token(.dispatcher)
        try await fixture.test { api in
            _ = try await api.call(.post, "/v1/webhooks", token: service, json: ["url": receiver.url, "eventTypes": ["notification.created"]])
            _ = try await api.call(.post, "/v1/notifications", token: dispatcher, json: ["role": "worker", "title": "Storm"])
            let connection = try RedisConnection(url: self.fixture.server.url)
            let deadLettered = try await self.waitFor {
                let entries = try connection.command("XRANGE", "tenant:{acme}:stream:deadLetters", "-", "+").array ?? []
                return entries.contains { entry in
                    let flat = entry.array?[1].array?.compactMap(\.string) ?? []
                    return zip(flat, flat.dropFirst()).contains { $0 == "group" && $1 == "notifier" }
                }
            }
            #expect(deadLettered)
            // Two reads of three tries each, then no more.
            #expect(receiver.deliveries.withLock { $0.count } == 6)
            let pending = try connection.command("XPENDING", "tenant:{acme}:stream:notifications", "notifier").array?.first?.int
            #expect(pending == 0)
        }
    }
}
