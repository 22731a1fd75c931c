import FieldOpsServer
import Foundation
import HTTPTypes
import Testing

@Suite("Locations over HTTP")
final class LocationRoutesTests: Sendable {
    let fixture: APIFixture

    init() async throws {
        fixture = try await APIFixture()
    }

    func registerWorkers(_ api: APIClient, _ token: String, _ ids: String...) async throws {
        for id in ids {
            let reply = try await api.call(.post, "/v1/workers", token: token, json: ["workerId": id, "name": "Worker \(id)"])
            #expect(reply.status == .created, "\(reply.object)")
        }
    }

    @Test func aWorkerReportsPositionsAndTheNewestIsItsLocation() async throws {
        let dispatcher = try await fixture.token(.dispatcher)
        let worker = try await fixture.token(.worker, sub: "w-1")
        try await fixture.test { api in
            try await self.registerWorkers(api, dispatcher, "w-1", "w-2")
            let one = try await api.call(.post, "/v1/workers/w-1/locations", token: worker, json: [
                "lat": 52.52, "lon": 13.40, "accuracy": 5, "speed": 1.4, "battery": 80, "recordedAt": "2026-11-22T05:00:00Z",
            ])
            #expect(one.status == .created, "\(one.object)")
            #expect(one["accepted"] as? Double == 1)
            // A batch flushed by a phone that was offline: older fixes join the track only.
            let batch = try await api.call(.post, "/v1/workers/w-1/locations?wait=true", token: worker, json: ["locations": [
                ["lat": 52.50, "lon": 13.38, "recordedAt": 1_795_323_000_000 as Int64],   // 2026-11-22T04:50:00Z in ms
                ["lat": 52.51, "lon": 13.39, "recordedAt": 1_795_323_300],                // 04:55:00Z in seconds
            ]])
            #expect(batch.status == .created, "\(batch.object)")
            #expect(batch["accepted"] as? Double == 2)
            #expect(batch["applied"] as? Bool == true)

            let latest = try await api.call(.get, "/v1/workers/w-1/location", token: dispatcher)
            let location = latest.resource("location")
            #expect(location["lat"] as? Double == 52.52)
            #expect(location["battery"] as? Double == 80)

            let track = try await api.call(.get, "/v1/workers/w-1/track?from=2026-11-22T04:00:00Z&to=2026-11-22T06:00:00Z", token: dispatcher)
            #expect(track.list("points").map { $0["lat"] as? Double } == [52.50, 52.51, 52.52])

            let inBox = try await api.call(.get, "/v1/locations?bbox=13.3,52.4,13.5,52.6", token: dispatcher)
            #expect(inBox.list("workers").map { $0["workerId"] as? String } == ["w-1"])
            #expect(try await api.call(.get, "/v1/locations?bbox=0,0,1,1", token: dispatcher).list("workers").isEmpty)

            // Only its own position, and nobody else's track.
            #expect(try await api.call(.post, "/v1/workers/w-2/locations", token: worker, json: ["lat": 1, "lon": 1]).status == .forbidden)
            #expect(try await api.call(.get, "/v1/workers/w-2/track", token: worker).status == .notFound)
        }
    }

    @Test func impossiblePositionsAreRefusedNamingTheField() async throws {
        let dispatcher = try await fixture.token(.dispatcher)
        try await fixture.test { api in
            try await self.registerWorkers(api, dispatcher, "w-1")
            let lat = try await api.call(.post, "/v1/workers/w-1/locations", token: dispatcher, json: ["lat": 91, "lon": 0])
            #expect(lat.status == .badRequest)
            #expect(lat.errorMessage.hasPrefix("lat:"))
            let lon = try await api.call(.post, "/v1/workers/w-1/locations", token: dispatcher, json: ["locations": [["lat": 1, "lon": 1], ["lat": 1, "lon": -181]]])
            #expect(lon.errorMessage.hasPrefix("locations[1].lon:"))
            let future = try await api.call(.post, "/v1/workers/w-1/locations", token: dispatcher, json: ["lat": 1, "lon": 1, "recordedAt": "2099-01-01T00:00:00Z"])
            #expect(future.status == .badRequest)
            #expect(future.errorMessage.contains("future"))
            for huge in ["1e300", "999999999999999999999999999999", "-5"] {
                let time = try await api.call(.post, "/v1/workers/w-1/locations", token: dispatcher, json: ["lat": 1, "lon": 1, "recordedAt": huge])
                #expect(time.status == .badRequest)
                #expect(time.errorMessage.hasPrefix("recordedAt:"))
                let track = try await api.call(.get, "/v1/workers/w-1/track?from=\(huge)", token: dispatcher)
                #expect(track.status == .badRequest)
                #expect(track.errorMessage.hasPrefix("from:"))
            }
            let heading = try await api.call(.post, "/v1/workers/w-1/locations", token: dispatcher, json: ["lat": 1, "lon": 1, "heading": 400])
            #expect(heading.errorMessage.hasPrefix("heading:"))
            let tooMany = try await api.call(.post, "/v1/workers/w-1/locations", token: dispatcher, json: ["locations": Array(repeating: ["lat": 1, "lon": 1], count: 1_001)])
            #expect(tooMany.status == .badRequest)
            let unknown = try await api.call(.post, "/v1/workers/nobody/locations", token: dispatcher, json: ["lat": 1, "lon": 1])
            #expect(unknown.status == .unprocessableContent)
            // None of the refused positions reached the stream.
            #expect(try await api.call(.get, "/v1/workers/w-1/location", token: dispatcher).status == .notFound)
        }
    }

    @Test func aDeactivatedWorkersPositionsAreRefused() async throws {
        let dispatcher = try await fixture.token(.dispatcher)
        try await fixture.test { api in
            try await self.registerWorkers(api, dispatcher, "w-1")
            #expect(try await api.call(.post, "/v1/workers/w-1/locations", token: dispatcher, json: ["lat": 1, "lon": 1]).status == .created)
            #expect(try await api.call(.delete, "/v1/workers/w-1", token: dispatcher).status == .ok)
            #expect(try await api.call(.post, "/v1/workers/w-1/locations", token: dispatcher, json: ["lat": 1, "lon": 1]).errorCode == "worker_unavailable")
            #expect(try await api.call(.post, "/v1/workers/w-1/reactivate?wait=true", token: dispatcher).resource("worker")["active"] as? Bool == true)
            #expect(try await api.call(.post, "/v1/workers/w-1/locations", token: dispatcher, json: ["lat": 1, "lon": 1]).status == .created)
        }
    }
}
