import FieldOpsServer
import Foundation
import HTTPTypes
import Testing

@Suite("Reads by id right after the write that created the resource")
final class ReadAfterWriteTests: Sendable {
    let fixture: APIFixture

    init() async throws {
        fixture = try await APIFixture()
    }

    /// A client that creates something and reads it back at once (no `?wait=true`) must not be
    /// told it does not exist: a new room's stream, for one, is projected only once the projector
    /// next looks for new streams.
    @Test func eachResourceIsFoundAtOnce() async throws {
        let dispatcher = try await fixture.token(.dispatcher, sub: "d1")
        try await fixture.test { api in
            for n in 1...3 {
                let created: [(path: String, json: [String: Any])] = [
                    ("/v1/rooms", ["roomId": "room-\(n)", "name": "Room \(n)"]),
                    ("/v1/workers", ["workerId": "w-\(n)", "name": "Worker \(n)"]),
                    ("/v1/tasks", ["taskId": "T-\(n)", "title": "Task \(n)"]),
                    ("/v1/resources", ["resourceId": "r-\(n)", "name": "Cones", "unit": "piece", "quantity": 5]),
                ]
                for (path, json) in created {
                    let write = try await api.call(.post, path, token: dispatcher, json: json)
                    #expect(write.status == .created, "\(path): \(write.object)")
                    let id = try #require(json.first { $0.key.hasSuffix("Id") }?.value as? String)
                    let read = try await api.call(.get, "\(path)/\(id)", token: dispatcher)
                    #expect(read.status == .ok, "GET \(path)/\(id) right after its create: \(read.object)")
                }
            }
            // A resource that was never created is still a 404.
            #expect(try await api.call(.get, "/v1/rooms/never", token: dispatcher).status == .notFound)
            #expect(try await api.call(.get, "/v1/tasks/never", token: dispatcher).status == .notFound)
        }
    }
}
