import FieldOpsServer
import Foundation
import HTTPTypes
import Testing

@Suite("Tracking apps: OsmAnd (Traccar Client) and OwnTracks")
final class IngestRoutesTests: Sendable {
    let fixture: APIFixture

    init() async throws {
        fixture = try await APIFixture()
    }

    func setUp(_ api: APIClient, _ dispatcher: String) async throws {
        _ = try await api.call(.post, "/v1/workers", token: dispatcher, json: ["workerId": "w-1", "name": "Ana"])
        let osmand = try await api.call(.post, "/v1/workers/w-1/devices", token: dispatcher, json: ["deviceId": "860123", "protocol": "osmand"])
        #expect(osmand.status == .created, "\(osmand.object)")
        let owntracks = try await api.call(.post, "/v1/workers/w-1/devices", token: dispatcher, json: [
            "deviceId": "ana-phone", "protocol": "owntracks", "user": "ana", "device": "phone", "secret": "correct horse",
        ])
        #expect(owntracks.status == .created, "\(owntracks.object)")
    }

    func location(_ api: APIClient, _ token: String) async throws -> [String: Any] {
        try await api.call(.get, "/v1/workers/w-1/location", token: token).resource("location")
    }

    @Test func traccarClientRequestsAreStoredAsTheWorkersPositions() async throws {
        let dispatcher = try await fixture.token(.dispatcher)
        try await fixture.test { api in
            try await self.setUp(api, dispatcher)
            // As Traccar Client sends it: POST, parameters in the query, empty body, speed in knots.
            let now = Int(Date().timeIntervalSince1970)
            let post = try await api.call(.post, "/v1/ingest/osmand?id=860123&timestamp=\(now - 60)&lat=52.52&lon=13.405&speed=10&bearing=90&altitude=34&accuracy=5&batt=77", token: nil)
            #expect(post.status == .ok, "\(post.object)")
            var location = try await self.location(api, dispatcher)
            #expect(location["lat"] as? Double == 52.52)
            #expect(location["heading"] as? Double == 90)
            #expect(location["battery"] as? Double == 77)
            #expect(abs((location["speed"] as? Double ?? 0) - 5.14444) < 0.001)
            #expect(location["deviceId"] as? String == "860123")

            // GET with `location=lat,lon`, `deviceid` and a millisecond timestamp.
            let get = try await api.call(.get, "/v1/ingest/osmand?deviceid=860123&location=52.53,13.41&timestamp=\((now - 30) * 1000)", token: nil)
            #expect(get.status == .ok)
            #expect(try await self.location(api, dispatcher)["lat"] as? Double == 52.53)

            // A form body.
            let form = try await api.call(.post, "/v1/ingest/osmand", token: nil, raw: "id=860123&lat=52.54&lon=13.42", headers: [.contentType: "application/x-www-form-urlencoded"])
            #expect(form.status == .ok)
            #expect(try await self.location(api, dispatcher)["lat"] as? Double == 52.54)

            // The JSON variant of Traccar Client 8.
            let json: [String: Any] = ["device_id": "860123", "location": [
                "timestamp": ISO8601DateFormatter().string(from: Date().addingTimeInterval(2)),
                "coords": ["latitude": 52.55, "longitude": 13.43, "accuracy": 4, "speed": 1.5, "heading": -1, "altitude": 40],
                "battery": ["level": 0.66, "is_charging": false], "is_moving": true,
            ]]
            let variant = try await api.call(.post, "/v1/ingest/osmand", token: nil, json: json)
            #expect(variant.status == .ok, "\(variant.object)")
            location = try await self.location(api, dispatcher)
            #expect(location["lat"] as? Double == 52.55)
            #expect(location["battery"] as? Double == 66)
            #expect(location["heading"] == nil)

            let unknown = try await api.call(.post, "/v1/ingest/osmand?id=999&lat=1&lon=1", token: nil)
            #expect(unknown.status == .forbidden)
            #expect(unknown.errorCode == "unknown_device")
            let bad = try await api.call(.post, "/v1/ingest/osmand?id=860123&lat=95&lon=1", token: nil)
            #expect(bad.status == .badRequest)
            let noPosition = try await api.call(.post, "/v1/ingest/osmand?id=860123", token: nil)
            #expect(noPosition.status == .badRequest)
            // Negative speed, bearing, accuracy and battery mean "unknown": the fix is kept without them.
            let unknowns = try await api.call(.post, "/v1/ingest/osmand?id=860123&timestamp=\(now + 5)&lat=52.56&lon=13.44&speed=-1&bearing=-1&accuracy=-1&batt=-1&altitude=-3", token: nil)
            #expect(unknowns.status == .ok, "\(unknowns.object)")
            location = try await self.location(api, dispatcher)
            #expect(location["lat"] as? Double == 52.56)
            #expect(location["speed"] == nil && location["heading"] == nil && location["accuracy"] == nil && location["battery"] == nil)
            #expect(location["altitude"] as? Double == -3)
            // A timestamp no Int64 of milliseconds holds is a 400, not a trap that takes the server down.
            let farFuture = try await api.call(.post, "/v1/ingest/osmand?id=860123&lat=1&lon=1&timestamp=999999999999999999999999999999", token: nil)
            #expect(farFuture.status == .badRequest)
            #expect(farFuture.errorMessage.hasPrefix("recordedAt:"))

            #expect(try await api.call(.delete, "/v1/devices/860123", token: dispatcher).status == .ok)
            #expect(try await api.call(.post, "/v1/ingest/osmand?id=860123&lat=1&lon=1", token: nil).errorCode == "device_deactivated")
        }
    }

    @Test func ownTracksHTTPModeIsAuthenticatedAndAnswersWithAnArray() async throws {
        let dispatcher = try await fixture.token(.dispatcher)
        try await fixture.test { api in
            try await self.setUp(api, dispatcher)
            let basic = "Basic " + Data("ana:correct horse".utf8).base64EncodedString()
            let headers: HTTPFields = [.authorization: basic, HTTPField.Name("X-Limit-U")!: "ana", HTTPField.Name("X-Limit-D")!: "phone"]
            let tst = Int(Date().timeIntervalSince1970) - 10
            let reply = try await api.call(.post, "/v1/ingest/owntracks", token: nil, json: [
                "_type": "location", "lat": 48.85833, "lon": 2.29513, "tst": tst, "acc": 5, "alt": 35, "vel": 36, "cog": 271, "batt": 41, "tid": "JJ",
            ], headers: headers)
            #expect(reply.status == .ok, "\(reply.object)")
            #expect((reply.json as? [Any])?.isEmpty == true)
            let location = try await self.location(api, dispatcher)
            #expect(location["lat"] as? Double == 48.85833)
            #expect(location["speed"] as? Double == 10)  // 36 km/h
            #expect(location["recordedAt"] as? Double == Double(tst) * 1000)

            // The topic names the device when the headers do not.
            let byTopic = try await api.call(.post, "/v1/ingest/owntracks", token: nil, json: [
                "_type": "location", "lat": 48.86, "lon": 2.3, "tst": tst + 1, "topic": "owntracks/ana/phone",
            ], headers: [.authorization: basic])
            #expect(byTopic.status == .ok)
            #expect(try await self.location(api, dispatcher)["lat"] as? Double == 48.86)

            // -1 for an unknown speed or course (iOS) drops the field, not the fix.
            let unknowns = try await api.call(.post, "/v1/ingest/owntracks", token: nil, json: [
                "_type": "location", "lat": 48.87, "lon": 2.31, "tst": tst + 2, "vel": -1, "cog": -1, "acc": -1,
            ], headers: headers)
            #expect(unknowns.status == .ok, "\(unknowns.object)")
            let unknown = try await self.location(api, dispatcher)
            #expect(unknown["lat"] as? Double == 48.87)
            #expect(unknown["speed"] == nil && unknown["heading"] == nil && unknown["accuracy"] == nil)

            // Other message types are accepted and ignored.
            let transition = try await api.call(.post, "/v1/ingest/owntracks", token: nil, json: ["_type": "transition", "event": "enter", "tst": tst], headers: headers)
            #expect(transition.status == .ok)

            let wrong = try await api.call(.post, "/v1/ingest/owntracks", token: nil, json: ["_type": "location", "lat": 1, "lon": 1, "tst": tst], headers: [
                .authorization: "Basic " + Data("ana:guess".utf8).base64EncodedString(), HTTPField.Name("X-Limit-D")!: "phone",
            ])
            #expect(wrong.status == .unauthorized)
            #expect(wrong.headers[.wwwAuthenticate]?.hasPrefix("Basic") == true)
            #expect(try await api.call(.post, "/v1/ingest/owntracks", token: nil, json: ["_type": "location", "lat": 1, "lon": 1]).status == .unauthorized)
            #expect(try await self.location(api, dispatcher)["lat"] as? Double == 48.87)
        }
    }

    @Test func deviceIDsAreUniqueAcrossTenantsAndPositionsFollowTheWorkersState() async throws {
        let acme = try await fixture.token(.dispatcher, tenant: "acme")
        let globex = try await fixture.token(.dispatcher, tenant: "globex")
        try await fixture.test { api in
            try await self.setUp(api, acme)
            _ = try await api.call(.post, "/v1/workers", token: globex, json: ["workerId": "w-1", "name": "Eve"])
            let taken = try await api.call(.post, "/v1/workers/w-1/devices", token: globex, json: ["deviceId": "860123", "protocol": "osmand"])
            #expect(taken.status == .conflict)
            #expect(taken.errorCode == "device_taken")
            #expect(try await api.call(.delete, "/v1/devices/860123", token: globex).status == .notFound)
            #expect(try await api.call(.get, "/v1/workers/w-1/devices?wait=true", token: acme).status == .ok)

            #expect(try await api.call(.post, "/v1/workers/w-1/deactivate", token: acme).status == .ok)
            let refused = try await api.call(.post, "/v1/ingest/osmand?id=860123&lat=1&lon=1", token: nil)
            #expect(refused.status == .unprocessableContent)
            #expect(try await api.call(.get, "/v1/workers/w-1/location", token: globex).status == .notFound)
        }
    }
}
