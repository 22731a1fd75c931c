import DocumentStore
import Domain
import Foundation
import Hummingbird
import Streams

/// Worker positions: report one or a batch, latest position, workers in a box, tracks;
/// stream `locationUpdates`.
struct LocationController {
    let writes: DomainWrites

    /// Most positions one request may carry.
    static let maxBatch = 1_000
    /// How far ahead of the server's clock a fix may claim to be (clock skew of phones).
    static let maxFutureSkew: Int64 = 10 * 60 * 1000
    /// Fixes before this (2000-01-01) are a device with a reset clock, not history.
    static let earliest: Int64 = 946_684_800_000

    static func locationPath(_ workerID: String) -> String { "/workers/\(workerID)/location" }

    func addRoutes(to group: RouterGroup<FieldOpsRequestContext>) {
        group.post("workers/:workerId/locations", use: report)
        group.get("workers/:workerId/location", use: latest)
        group.get("workers/:workerId/track", use: track)
        group.get("locations", use: within)
    }

    /// One fix as the API takes it. `recordedAt` is ISO 8601 or epoch seconds/milliseconds.
    struct Position: Decodable, Sendable {
        var lat: Double
        var lon: Double
        var accuracy: Double?
        var speed: Double?
        var heading: Double?
        var altitude: Double?
        var battery: Double?
        var recordedAt: TimeValue?
    }

    /// A time given as a string or a number.
    struct TimeValue: Decodable, Sendable {
        let text: String

        init(text: String) {
            self.text = text
        }

        init(from decoder: any Decoder) throws {
            let container = try decoder.singleValueContainer()
            if let number = try? container.decode(Double.self) {
                text = String(format: "%.0f", number)
            } else {
                text = try container.decode(String.self)
            }
        }
    }

    /// A single position, or `{"locations": [...]}`.
    struct ReportBody: Decodable {
        var positions: [Position]

        private enum Keys: String, CodingKey { case locations }

        init(from decoder: any Decoder) throws {
            let container = try decoder.container(keyedBy: Keys.self)
            if container.contains(.locations) {
                positions = try container.decode([Position].self, forKey: .locations)
            } else {
                positions = [try Position(from: decoder)]
            }
        }
    }

    @Sendable func report(_ request: Request, context: FieldOpsRequestContext) async throws -> Response {
        let caller = try context.requireIdentity()
        let workerID = try context.id("workerId")
        if caller.role == .worker && caller.subject != workerID {
            throw APIError.forbidden("a worker reports only its own position")
        }
        let body = try await request.decodeJSON(ReportBody.self)
        let delivery = try request.delivery()
        let written = try await record(
            body.positions, tenant: caller.tenant, workerID: workerID, deviceID: nil, idempotencyKey: try request.idempotencyKey(), delivery: delivery
        )
        if delivery == .realtime {
            // Fanned out and kept as the live location, but never stored: no id, no track.
            return Response.json(["accepted": .number(Double(body.positions.count)), "delivery": "realtime"], status: .accepted)
        }
        let wait = try request.flag("wait")
        let applied = await writes.waitIfAsked(written, wait: wait)
        var reply: JSONObject = [
            "streamId": .string(written.lastID), "accepted": .number(Double(written.events.count)),
        ]
        if wait { reply["applied"] = .bool(applied) }
        return Response.json(.object(reply), status: wait && !applied ? .accepted : .created)
    }

    /// Validates and appends positions of one worker; the newest becomes its live location.
    /// - Throws: 400 naming the first bad position, 422 when the worker is unknown or deactivated.
    func record(
        _ positions: [Position], tenant: String, workerID: String, deviceID: String?, idempotencyKey: String?, delivery: EventWriter.Delivery = .both
    ) async throws -> DomainWrites.Written {
        guard !positions.isEmpty, positions.count <= Self.maxBatch else {
            throw APIError.invalid("locations", "send 1-\(Self.maxBatch) positions per request (got \(positions.count))")
        }
        let now = APITime.nowMilliseconds
        var drafts: [EventWriter.Draft] = []
        drafts.reserveCapacity(positions.count)
        var newest: (recordedAt: Int64, json: String)?
        for (index, position) in positions.enumerated() {
            let field = positions.count == 1 ? "" : "locations[\(index)]."
            let recordedAt = try Self.validate(position, field: field, now: now)
            drafts.append(.init(
                eventType: EventType.locationReported, payload: Self.payload(position, workerID: workerID, recordedAt: recordedAt, deviceID: deviceID),
                routing: [("workerId", workerID), ("lat", String(position.lat)), ("lon", String(position.lon))]
            ))
            if newest == nil || recordedAt >= newest!.recordedAt {
                newest = (recordedAt, Self.liveLocation(position, recordedAt: recordedAt, deviceID: deviceID))
            }
        }
        let live = newest.map { [EventWriter.LiveWrite.setIfNewer(path: Self.locationPath(workerID), json: $0.json, recordedAt: $0.recordedAt)] } ?? []
        return try await writes.record(.init(
            tenant: tenant, stream: StreamNames.locationUpdates, events: drafts,
            conditions: [.init(path: WorkerController.statusPath(workerID), .equals(WorkerController.activeJSON))],
            liveWrites: live, idempotencyKey: idempotencyKey, delivery: delivery
        )) { _, _ in TaskController.inactiveWorker(workerID) }
    }


    /// The recorded time of a valid position, in milliseconds.
    static func validate(_ position: Position, field: String, now: Int64) throws -> Int64 {
        try validate(lat: position.lat, lon: position.lon, field: field.isEmpty ? "" : String(field.dropLast()))
        func check(_ value: Double?, _ name: String, _ range: ClosedRange<Double>, _ rule: String) throws {
            guard let value else { return }
            guard value.isFinite, range.contains(value) else { throw APIError.invalid(field + name, rule) }
        }
        try check(position.accuracy, "accuracy", 0...1_000_000, "must be 0 or more meters")
        try check(position.speed, "speed", 0...1_000, "must be 0-1000 m/s")
        try check(position.heading, "heading", 0...360, "must be 0-360 degrees")
        try check(position.altitude, "altitude", -1_000...100_000, "must be -1000 to 100000 meters")
        try check(position.battery, "battery", 0...100, "must be 0-100 percent")
        guard let text = position.recordedAt?.text else { return now }
        guard let recordedAt = APITime.milliseconds(text) else {
            throw APIError.invalid(field + "recordedAt", "'\(text)' is not a time: use ISO 8601 or epoch seconds or milliseconds")
        }
        guard recordedAt <= now + maxFutureSkew else {
            throw APIError.invalid(field + "recordedAt", "\(APITime.iso(recordedAt)) is in the future (server time \(APITime.iso(now)))")
        }
        guard recordedAt >= earliest else {
            throw APIError.invalid(field + "recordedAt", "\(APITime.iso(recordedAt)) is before 2000; the device clock is not set")
        }
        return recordedAt
    }

    static func validate(lat: Double, lon: Double, field: String) throws {
        let prefix = field.isEmpty ? "" : field + "."
        guard lat.isFinite, (-90...90).contains(lat) else { throw APIError.invalid(prefix + "lat", "\(lat) is outside -90...90") }
        guard lon.isFinite, (-180...180).contains(lon) else { throw APIError.invalid(prefix + "lon", "\(lon) is outside -180...180") }
    }

    /// The `location.reported` payload (`LocationReported`), written by the store's JSON writer:
    /// a batch encodes a thousand of them.
    static func payload(_ position: Position, workerID: String, recordedAt: Int64, deviceID: String?) -> String {
        var fields: JSONObject = [
            "workerId": .string(workerID), "lat": .number(position.lat), "lon": .number(position.lon),
            "recordedAt": .string(APITime.iso(recordedAt)),
        ]
        if let accuracy = position.accuracy { fields["accuracy"] = .number(accuracy) }
        if let speed = position.speed { fields["speed"] = .number(speed) }
        if let heading = position.heading { fields["heading"] = .number(heading) }
        if let altitude = position.altitude { fields["altitude"] = .number(altitude) }
        if let battery = position.battery { fields["battery"] = .number(battery) }
        if let deviceID { fields["deviceId"] = .string(deviceID) }
        return JSONValue.object(fields).jsonText
    }

    /// The live `/workers/{id}/location` value: the same fields as the worker document's `location`.
    static func liveLocation(_ position: Position, recordedAt: Int64, deviceID: String?) -> String {
        var location: JSONObject = ["lat": .number(position.lat), "lon": .number(position.lon), "recordedAt": .number(Double(recordedAt))]
        if let accuracy = position.accuracy { location["accuracy"] = .number(accuracy) }
        if let speed = position.speed { location["speed"] = .number(speed) }
        if let heading = position.heading { location["heading"] = .number(heading) }
        if let altitude = position.altitude { location["altitude"] = .number(altitude) }
        if let battery = position.battery { location["battery"] = .number(battery) }
        if let deviceID { location["deviceId"] = .string(deviceID) }
        return JSONValue.object(location).jsonText
    }

    // MARK: - Reads

    /// The newest position, from the live tree (current even before the projection catches up).
    @Sendable func latest(_ request: Request, context: FieldOpsRequestContext) async throws -> Response {
        let caller = try context.requireIdentity()
        let workerID = try context.id("workerId")
        guard caller.seesWholeTenant || caller.subject == workerID,
              let location = try await writes.live(tenant: caller.tenant, path: Self.locationPath(workerID)) else {
            throw APIError.notFound("a position of worker \(workerID)")
        }
        return Response.json(["workerId": .string(workerID), "location": location])
    }

    /// `GET /v1/workers/{id}/track?from=&to=&limit=`: positions between two times, oldest first.
    @Sendable func track(_ request: Request, context: FieldOpsRequestContext) async throws -> Response {
        let caller = try context.requireIdentity()
        let workerID = try context.id("workerId")
        guard caller.seesWholeTenant || caller.subject == workerID else { throw APIError.notFound("worker \(workerID)") }
        let to = try request.timeParameter("to") ?? APITime.nowMilliseconds
        let from = try request.timeParameter("from") ?? to - 24 * 3_600_000
        guard from <= to else { throw APIError.invalid("from", "must not be after 'to'") }
        let limit = try request.intParameter("limit", default: 10_000, range: 1...100_000)
        let tenant = caller.tenant
        let points = try await writes.readStore { try $0.track(tenant: tenant, workerID: workerID, from: from, to: to, limit: limit) }
        let encoded: [JSONValue] = points.map { point in
            var fields: JSONObject = ["lat": .number(point.lat), "lon": .number(point.lon), "recordedAt": .number(Double(point.recordedAt)), "streamId": .string(point.eventID)]
            if let accuracy = point.accuracy { fields["accuracy"] = .number(accuracy) }
            if let speed = point.speed { fields["speed"] = .number(speed) }
            if let heading = point.heading { fields["heading"] = .number(heading) }
            return .object(fields)
        }
        return Response.json(["workerId": .string(workerID), "from": .number(Double(from)), "to": .number(Double(to)), "points": .array(encoded)])
    }

    /// `GET /v1/locations?bbox=minLon,minLat,maxLon,maxLat`: workers whose latest position is in the box.
    @Sendable func within(_ request: Request, context: FieldOpsRequestContext) async throws -> Response {
        let caller = try context.requireIdentity()
        try caller.require(.dispatcher, .admin, .service, to: "see all workers' positions")
        guard let text = request.uri.queryParameters.get("bbox") else {
            throw APIError.invalid("bbox", "is required: minLon,minLat,maxLon,maxLat")
        }
        let numbers = text.split(separator: ",").compactMap { Double($0) }
        guard numbers.count == 4, numbers[0] <= numbers[2], numbers[1] <= numbers[3] else {
            throw APIError.invalid("bbox", "must be minLon,minLat,maxLon,maxLat with min <= max")
        }
        try Self.validate(lat: numbers[1], lon: numbers[0], field: "bbox")
        try Self.validate(lat: numbers[3], lon: numbers[2], field: "bbox")
        let query = Query("workers")
            .where("location.lat", .greaterOrEqual, .number(numbers[1])).where("location.lat", .lessOrEqual, .number(numbers[3]))
            .where("location.lon", .greaterOrEqual, .number(numbers[0])).where("location.lon", .lessOrEqual, .number(numbers[2]))
            .limit(try request.intParameter("limit", default: 500, range: 1...1_000))
        return pageResponse(try await writes.query(tenant: caller.tenant, query), name: "workers")
    }
}
