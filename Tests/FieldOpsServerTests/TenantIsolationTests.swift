import FieldOpsServer
import Foundation
import HTTPTypes
import Testing

/// Another tenant's ids answer 404 on every resource type, and its lists stay empty.
@Suite("Nothing crosses tenants")
final class TenantIsolationTests: Sendable {
    let fixture: APIFixture

    init() async throws {
        fixture = try await APIFixture()
    }

    @Test func everyResourceTypeIsInvisibleToAnotherTenant() async throws {
        let acme = try await fixture.token(.dispatcher, tenant: "acme")
        let acmeService = try await fixture.token(.service, tenant: "acme")
        let globex = try await fixture.token(.dispatcher, tenant: "globex")
        let globexService = try await fixture.token(.service, tenant: "globex")
        try await fixture.test { api in
            _ = try await api.call(.post, "/v1/workers", token: acme, json: ["workerId": "w-1", "name": "Ana"])
            _ = try await api.call(.post, "/v1/workers/w-1/locations", token: acme, json: ["lat": 52.5, "lon": 13.4])
            _ = try await api.call(.post, "/v1/tasks", token: acme, json: ["taskId": "t-1", "title": "acme task", "assigneeId": "w-1"])
            _ = try await api.call(.post, "/v1/resources", token: acme, json: ["resourceId": "r-1", "name": "Pumps", "quantity": 3])
            _ = try await api.call(.post, "/v1/rooms", token: acme, json: ["roomId": "ops", "name": "Ops", "members": ["w-1"]])
            let message = try await api.call(.post, "/v1/rooms/ops/messages", token: acme, json: ["text": "acme only"])
            let messageID = message.resource("message")["messageId"] as? String ?? ""
            let note = try await api.call(.post, "/v1/notifications?wait=true", token: acme, json: ["role": "dispatcher", "title": "acme alert"])
            let noteID = note.resource("notification")["notificationId"] as? String ?? ""
            let hook = try await api.call(.post, "/v1/webhooks", token: acmeService, json: ["url": "http://127.0.0.1:9/h", "eventTypes": ["*"]])
            let hookID = hook.resource("webhook")["webhookId"] as? String ?? ""

            let notFound: [(HTTPRequest.Method, String, [String: Any]?)] = [
                (.get, "/v1/workers/w-1", nil), (.get, "/v1/workers/w-1/location", nil), (.patch, "/v1/workers/w-1", ["name": "x"]),
                (.post, "/v1/workers/w-1/deactivate", nil),
                (.get, "/v1/tasks/t-1", nil), (.post, "/v1/tasks/t-1/cancel", nil), (.post, "/v1/tasks/t-1/assign", ["assigneeId": "w-1"]),
                (.get, "/v1/resources/r-1", nil), (.post, "/v1/resources/r-1/adjust", ["delta": -1]),
                (.get, "/v1/rooms/ops", nil), (.get, "/v1/rooms/ops/messages", nil), (.post, "/v1/rooms/ops/messages", ["text": "hi"]),
                (.delete, "/v1/rooms/ops/messages/\(messageID)", nil), (.post, "/v1/rooms/ops/members", ["userId": "x"]),
                (.post, "/v1/notifications/\(noteID)/read", nil),
                (.get, "/v1/collections/tasks/documents/t-1", nil), (.get, "/v1/collections/messages/documents/\(messageID)", nil),
            ]
            for (method, path, body) in notFound {
                let reply = try await api.call(method, path, token: globex, json: body)
                #expect(reply.status == .notFound, "\(method) \(path) answered \(reply.status): \(reply.object)")
                #expect(!"\(reply.object)".contains("acme"), "\(path) leaked: \(reply.object)")
            }
            #expect(try await api.call(.delete, "/v1/webhooks/\(hookID)", token: globexService).status == .notFound)
            for (path, name) in [
                ("/v1/workers", "workers"), ("/v1/tasks", "tasks"), ("/v1/resources", "resources"), ("/v1/rooms", "rooms"),
                ("/v1/notifications", "notifications"), ("/v1/locations?bbox=13,52,14,53", "workers"), ("/v1/collections/messages/documents", "documents"),
            ] {
                #expect(try await api.call(.get, path, token: globex).list(name).isEmpty, "\(path)")
            }
            #expect(try await api.call(.get, "/v1/webhooks", token: globexService).list("webhooks").isEmpty)
            #expect(try await api.call(.get, "/v1/streams", token: globexService).list("streams").isEmpty)
            // The owner still sees everything.
            #expect(try await api.call(.get, "/v1/rooms/ops/messages", token: acme).status == .ok)
        }
    }
}
