import FieldOpsServer
import Foundation
import HTTPTypes
import Testing

@Suite("Resources over HTTP")
final class ResourceRoutesTests: Sendable {
    let fixture: APIFixture

    init() async throws {
        fixture = try await APIFixture()
    }

    @Test func stockIsAdjustedReservedAndNeverGoesBelowZero() async throws {
        let dispatcher = try await fixture.token(.dispatcher)
        let worker = try await fixture.token(.worker, sub: "w-1")
        try await fixture.test { api in
            let created = try await api.call(.post, "/v1/resources", token: dispatcher, json: [
                "resourceId": "R-3", "name": "Sandbags", "category": "flood", "unit": "bag", "quantity": 10, "site": "Depot North",
            ])
            #expect(created.status == .created, "\(created.object)")
            #expect(created.resource("resource")["available"] as? Double == 10)
            #expect(try await api.call(.post, "/v1/resources", token: worker, json: ["name": "x", "quantity": 1]).status == .forbidden)

            let used = try await api.call(.post, "/v1/resources/R-3/adjust", token: worker, json: ["delta": -2, "reason": "used on T-42"])
            #expect(used.resource("resource")["quantity"] as? Double == 8)
            #expect((used.resource("resource")["lastAdjustment"] as? [String: Any])?["reason"] as? String == "used on T-42")

            let tooMuch = try await api.call(.post, "/v1/resources/R-3/adjust", token: dispatcher, json: ["delta": -9])
            #expect(tooMuch.status == .conflict)
            #expect(tooMuch.errorCode == "insufficient_stock")
            let details = (tooMuch["error"] as? [String: Any])?["details"] as? [String: Any]
            #expect(details?["quantity"] as? Double == 8)
            #expect(details?["available"] as? Double == 8)

            // Reserved stock stays on hand but cannot be taken by others.
            _ = try await api.call(.post, "/v1/tasks", token: dispatcher, json: ["taskId": "T-1", "title": "Dyke"])
            let reserved = try await api.call(.post, "/v1/resources/R-3/reserve", token: dispatcher, json: ["taskId": "T-1", "quantity": 6])
            #expect(reserved.resource("resource")["available"] as? Double == 2, "\(reserved.object)")
            #expect(reserved.resource("resource")["quantity"] as? Double == 8)
            #expect(try await api.call(.post, "/v1/resources/R-3/reserve", token: dispatcher, json: ["taskId": "T-1", "quantity": 1]).errorCode == "already_reserved")
            #expect(try await api.call(.post, "/v1/resources/R-3/reserve", token: dispatcher, json: ["taskId": "nope", "quantity": 1]).errorCode == "unknown_task")
            #expect(try await api.call(.post, "/v1/resources/R-3/adjust", token: dispatcher, json: ["delta": -3]).errorCode == "insufficient_stock")
            let released = try await api.call(.post, "/v1/resources/R-3/release?wait=true", token: dispatcher, json: ["taskId": "T-1"])
            #expect(released.resource("resource")["available"] as? Double == 8)
            #expect(try await api.call(.post, "/v1/resources/R-3/release", token: dispatcher, json: ["taskId": "T-1"]).status == .notFound)

            #expect(try await api.call(.post, "/v1/resources/nope/adjust", token: dispatcher, json: ["delta": 1]).status == .notFound)
            #expect(try await api.call(.post, "/v1/resources/R-3/adjust", token: dispatcher, json: ["delta": 0]).status == .badRequest)
            let low = try await api.call(.get, "/v1/resources?below=9", token: worker)
            #expect(low.list("resources").map { $0["resourceId"] as? String } == ["R-3"])
            #expect(try await api.call(.get, "/v1/resources?category=other", token: worker).list("resources").isEmpty)
        }
    }

    @Test func concurrentTakesNeverOverdraw() async throws {
        let dispatcher = try await fixture.token(.dispatcher)
        try await fixture.test { api in
            _ = try await api.call(.post, "/v1/resources", token: dispatcher, json: ["resourceId": "R-1", "name": "Pumps", "quantity": 5])
            let statuses = try await withThrowingTaskGroup(of: HTTPResponse.Status.self) { group in
                for _ in 0..<12 {
                    group.addTask { try await api.call(.post, "/v1/resources/R-1/adjust", token: dispatcher, json: ["delta": -1]).status }
                }
                return try await group.reduce(into: []) { $0.append($1) }
            }
            #expect(statuses.filter { $0 == .ok }.count == 5)
            #expect(statuses.filter { $0 == .conflict }.count == 7)
            let final = try await api.call(.get, "/v1/resources/R-1", token: dispatcher)
            let deadline = ContinuousClock.now + .seconds(5)
            var quantity = final.resource("resource")["quantity"] as? Double
            while quantity != 0, ContinuousClock.now < deadline {
                try await Task.sleep(for: .milliseconds(50))
                quantity = try await api.call(.get, "/v1/resources/R-1", token: dispatcher).resource("resource")["quantity"] as? Double
            }
            #expect(quantity == 0)
        }
    }
}
