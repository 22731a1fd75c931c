import FieldOpsServer
import Foundation
import HTTPTypes
import Testing

@Suite("Streams over HTTP for applications that do not speak Redis")
final class StreamRoutesTests: Sendable {
    let fixture: APIFixture

    init() async throws {
        fixture = try await APIFixture()
    }

    @Test func listReadARangeAndConsumeThroughAGroup() async throws {
        let service = try await fixture.token(.service, sub: "billing")
        let worker = try await fixture.token(.worker, sub: "w-1")
        let globex = try await fixture.token(.service, tenant: "globex")
        try await fixture.test { api in
            for n in 1...3 {
                _ = try await api.call(.post, "/v1/tasks", token: service, json: ["taskId": "t\(n)", "title": "Task \(n)"])
            }
            let streams = try await api.call(.get, "/v1/streams", token: service)
            let tasks = try #require(streams.list("streams").first { $0["name"] as? String == "taskAssignments" })
            #expect(tasks["length"] as? Double == 3)

            let range = try await api.call(.get, "/v1/streams/taskAssignments/entries?count=2", token: service)
            let entries = range.list("entries")
            #expect(entries.map { ($0["payload"] as? [String: Any])?["taskId"] as? String } == ["t1", "t2"])
            #expect((entries[0]["routing"] as? [String: Any])?["taskId"] as? String == "t1")
            #expect(entries[0]["eventType"] as? String == "task.created")
            let next = try #require(range["nextFrom"] as? String)
            let rest = try await api.call(.get, "/v1/streams/taskAssignments/entries?from=\(next)", token: service)
            #expect(rest.list("entries").count == 1)

            #expect(try await api.call(.post, "/v1/streams/taskAssignments/groups", token: service, json: ["group": "billing", "start": "0"]).status == .created)
            #expect(try await api.call(.post, "/v1/streams/taskAssignments/groups", token: service, json: ["group": "billing"]).errorCode == "group_exists")
            let read = try await api.call(.post, "/v1/streams/taskAssignments/groups/billing/read", token: service, json: ["consumer": "b-1", "count": 2])
            let delivered = read.list("entries").compactMap { $0["id"] as? String }
            #expect(delivered.count == 2)
            // Not acknowledged: read again as pending. Acknowledged: gone from pending.
            let pending = try await api.call(.post, "/v1/streams/taskAssignments/groups/billing/read", token: service, json: ["consumer": "b-1", "pending": true])
            #expect(pending.list("entries").compactMap { $0["id"] as? String } == delivered)
            #expect(try await api.call(.post, "/v1/streams/taskAssignments/groups/billing/ack", token: service, json: ["ids": delivered])["acknowledged"] as? Double == 2)
            #expect(try await api.call(.post, "/v1/streams/taskAssignments/groups/billing/read", token: service, json: ["consumer": "b-1", "pending": true]).list("entries").isEmpty)
            let third = try await api.call(.post, "/v1/streams/taskAssignments/groups/billing/read", token: service, json: ["consumer": "b-1", "blockMs": 100])
            #expect(third.list("entries").count == 1)

            #expect(try await api.call(.post, "/v1/streams/taskAssignments/groups/projector/read", token: service, json: ["consumer": "x"]).status == .forbidden)
            #expect(try await api.call(.post, "/v1/streams/taskAssignments/groups/nope/read", token: service, json: ["consumer": "x"]).errorCode == "group_not_found")
            #expect(try await api.call(.get, "/v1/streams/bad%20name/entries", token: service).status == .badRequest)
            #expect(try await api.call(.get, "/v1/streams/taskAssignments/entries?from=yesterday", token: service).status == .badRequest)
            #expect(try await api.call(.get, "/v1/streams", token: worker).status == .forbidden)
            // Another tenant's view of the same name is its own, empty stream.
            #expect(try await api.call(.get, "/v1/streams/taskAssignments/entries", token: globex).list("entries").isEmpty)
        }
    }
}
