import FieldOpsServer
import Foundation
import HTTPTypes
import Testing

@Suite("Generic document queries over HTTP")
final class CollectionRoutesTests: Sendable {
    let fixture: APIFixture

    init() async throws {
        fixture = try await APIFixture()
    }

    static func uri(_ path: String, _ items: [(String, String)]) -> String {
        var components = URLComponents()
        components.path = path
        components.queryItems = items.map { URLQueryItem(name: $0.0, value: $0.1) }
        // `+` would read as a space.
        return components.string!.replacingOccurrences(of: "+", with: "%2B")
    }

    @Test func queriesFilterOrderPageAndCount() async throws {
        let dispatcher = try await fixture.token(.dispatcher)
        let worker = try await fixture.token(.worker, sub: "w-1")
        try await fixture.test { api in
            _ = try await api.call(.post, "/v1/workers", token: dispatcher, json: ["workerId": "w-1", "name": "Ana"])
            for n in 1...8 {
                var body: [String: Any] = ["taskId": "t\(n)", "title": "Task \(n)", "priority": n % 4 + 1]
                if n % 2 == 0 { body["assigneeId"] = "w-1" }
                #expect(try await api.call(.post, "/v1/tasks\(n == 8 ? "?wait=true" : "")", token: dispatcher, json: body).status == .created)
            }
            let path = "/v1/collections/tasks/documents"
            let urgent = try await api.call(.get, Self.uri(path, [("where", "priority >= 3"), ("orderBy", "priority desc"), ("orderBy", "__id__"), ("count", "true")]), token: dispatcher)
            #expect(urgent.status == .ok, "\(urgent.object)")
            #expect(urgent.list("documents").map { $0["id"] as? String } == ["t3", "t7", "t2", "t6"])
            #expect(urgent["count"] as? Double == 4)

            let statuses = try await api.call(.get, Self.uri(path, [("where", #"status in ["assigned"]"#), ("orderBy", "__id__"), ("limit", "2")]), token: dispatcher)
            #expect(statuses.list("documents").map { $0["id"] as? String } == ["t2", "t4"])
            let cursor = try #require(statuses["nextCursor"] as? String)
            let next = try await api.call(.get, Self.uri(path, [("where", #"status in ["assigned"]"#), ("orderBy", "__id__"), ("limit", "2"), ("startAfter", cursor)]), token: dispatcher)
            #expect(next.list("documents").map { $0["id"] as? String } == ["t6", "t8"])

            // A bare word is a string.
            #expect(try await api.call(.get, Self.uri(path, [("where", "status == open")]), token: dispatcher).list("documents").count == 4)

            // A worker sees its own tasks only, whatever it asks for.
            let mine = try await api.call(.get, Self.uri(path, [("where", "status == open")]), token: worker)
            #expect(mine.list("documents").isEmpty)
            #expect(try await api.call(.get, path, token: worker).list("documents").count == 4)
            #expect(try await api.call(.get, "\(path)/t1", token: worker).status == .notFound)
            #expect(try await api.call(.get, "\(path)/t2", token: worker).status == .ok)
            #expect(try await api.call(.get, "/v1/collections/notifications/documents", token: worker).status == .forbidden)
        }
    }

    @Test func badQueriesAreRefusedAndCannotInjectSQL() async throws {
        let dispatcher = try await fixture.token(.dispatcher)
        let globex = try await fixture.token(.dispatcher, tenant: "globex")
        try await fixture.test { api in
            _ = try await api.call(.post, "/v1/tasks?wait=true", token: dispatcher, json: ["taskId": "t1", "title": "secret"])
            let path = "/v1/collections/tasks/documents"
            for clause in ["status') OR 1=1 -- == x", "status ~= 1", "status", "a..b == 1", "status in 5"] {
                let reply = try await api.call(.get, Self.uri(path, [("where", clause)]), token: dispatcher)
                #expect(reply.status == .badRequest, "\(clause): \(reply.object)")
            }
            let injected = try await api.call(.get, Self.uri(path, [("where", #"title == "x' OR '1'='1""#)]), token: dispatcher)
            #expect(injected.list("documents").isEmpty)
            #expect(try await api.call(.get, Self.uri(path, [("orderBy", "title sideways")]), token: dispatcher).status == .badRequest)
            #expect(try await api.call(.get, "/v1/collections/ledger/documents", token: dispatcher).errorCode == "unknown_collection")
            #expect(try await api.call(.get, Self.uri(path, [("limit", "5000")]), token: dispatcher).status == .badRequest)
            #expect(try await api.call(.get, Self.uri(path, [("startAfter", "garbage")]), token: dispatcher).status == .badRequest)
            // Another tenant's query sees nothing of acme's.
            #expect(try await api.call(.get, path, token: globex).list("documents").isEmpty)
            #expect(try await api.call(.get, "\(path)/t1", token: globex).status == .notFound)
        }
    }
}
