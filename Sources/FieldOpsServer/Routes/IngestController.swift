import DocumentStore
import Foundation
import HTTPTypes
import Hummingbird
import NIOCore

/// Positions from real tracking apps, at the URLs a user types into them:
/// `/v1/ingest/osmand` (Traccar Client and other OsmAnd-protocol senders) and
/// `/v1/ingest/owntracks` (OwnTracks in HTTP mode). They carry no bearer token: the registered
/// device is the credential and names the tenant and worker.
struct IngestController {
    let locations: LocationController
    let devices: DeviceRegistry
    /// The device's tenant pays for its positions, as a token's tenant does for its requests.
    let rateLimiter: TenantRateLimiter

    func addRoutes(to group: RouterGroup<FieldOpsRequestContext>) {
        group.get("osmand", use: osmand)
        group.post("osmand", use: osmand)
        group.post("owntracks", use: ownTracks)
    }

    // MARK: - OsmAnd

    /// Query or form parameters (`id`, `lat`, `lon` or `location=lat,lon`, `timestamp`,
    /// `speed` in knots, `bearing`/`heading`, `altitude`, `accuracy`, `batt`), or the JSON
    /// variant (`device_id` and a `location` with `coords`). Replies 200 with no body, as
    /// Traccar does.
    @Sendable func osmand(_ request: Request, context: FieldOpsRequestContext) async throws -> Response {
        var request = request
        let body = try await request.collectBody(upTo: RequestLimits.jsonBody)
        let type = request.headers[.contentType]?.lowercased() ?? ""
        let reports: [(deviceID: String, position: LocationController.Position)]
        if type.hasPrefix("application/json") {
            reports = try OsmAndJSON.positions(Request.decode(OsmAndJSON.Body.self, from: body))
        } else {
            var parameters: [String: String] = [:]
            for (key, value) in request.uri.queryParameters { parameters[String(key)] = String(value) }
            if type.hasPrefix("application/x-www-form-urlencoded") {
                for pair in String(buffer: body).split(separator: "&") {
                    let parts = pair.split(separator: "=", maxSplits: 1).map { String($0).replacingOccurrences(of: "+", with: " ").removingPercentEncoding ?? String($0) }
                    if let key = parts.first { parameters[key] = parts.count > 1 ? parts[1] : "" }
                }
            }
            reports = [try OsmAndParameters.position(parameters)]
        }
        for (deviceID, positions) in Dictionary(grouping: reports, by: \.deviceID) {
            let entry = try await device(deviceID, protocol: "osmand")
            if let stored = entry.secretHash {
                // A device with a secret sends it as the password of HTTP Basic auth.
                guard let secret = Self.basicCredentials(request)?.password, DeviceRegistry.verify(secret: secret, against: stored) else {
                    throw Self.unauthorized("device \(deviceID) needs its secret as the HTTP Basic password")
                }
            }
            try RateLimitMiddleware.check(rateLimiter, tenant: entry.tenant)
            _ = try await locations.record(positions.map(\.position), tenant: entry.tenant, workerID: entry.workerId, deviceID: deviceID, idempotencyKey: nil)
        }
        return Response(status: .ok)
    }

    // MARK: - OwnTracks

    /// OwnTracks HTTP mode: HTTP Basic auth with the registered user and secret, the device
    /// named by `X-Limit-D` or the `topic`. Replies `[]`; messages other than locations are
    /// accepted and ignored.
    @Sendable func ownTracks(_ request: Request, context: FieldOpsRequestContext) async throws -> Response {
        guard let credentials = Self.basicCredentials(request) else {
            throw Self.unauthorized("OwnTracks must send the user and secret with HTTP Basic auth")
        }
        let message = try Request.decode(OwnTracksMessage.self, from: try await request.collectJSON())
        let user = request.headers[HTTPField.Name("X-Limit-U")!] ?? credentials.user
        let deviceName = request.headers[HTTPField.Name("X-Limit-D")!] ?? message.topic.flatMap(Self.deviceName)
        guard user == credentials.user, let deviceName else {
            throw APIError.invalid("topic", "name the device with the X-Limit-D header or a topic owntracks/USER/DEVICE")
        }
        guard let entry = try await devices.entry(ownTracksUser: user, device: deviceName), let stored = entry.secretHash,
              DeviceRegistry.verify(secret: credentials.password, against: stored) else {
            throw Self.unauthorized("unknown OwnTracks user or device, or a wrong secret")
        }
        guard entry.active else { throw Self.deviceInactive(entry.deviceId) }
        try RateLimitMiddleware.check(rateLimiter, tenant: entry.tenant)
        if message.type == "location" {
            guard let lat = message.lat, let lon = message.lon else { throw APIError.invalid("lat", "a location needs lat and lon") }
            let position = LocationController.Position(
                lat: lat, lon: lon, accuracy: known(message.acc), speed: known(message.vel).map { $0 / 3.6 }, heading: known(message.cog),
                altitude: message.alt, battery: known(message.batt), recordedAt: message.tst.map { .init(text: String($0)) }
            )
            _ = try await locations.record([position], tenant: entry.tenant, workerID: entry.workerId, deviceID: entry.deviceId, idempotencyKey: nil)
        }
        return Response.json([])
    }

    struct OwnTracksMessage: Decodable {
        var type: String
        var lat: Double?
        var lon: Double?
        var tst: Int64?
        var acc: Double?
        var alt: Double?
        /// km/h
        var vel: Double?
        var cog: Double?
        var batt: Double?
        var topic: String?

        enum CodingKeys: String, CodingKey {
            case type = "_type"
            case lat, lon, tst, acc, alt, vel, cog, batt, topic
        }
    }

    static func deviceName(fromTopic topic: String) -> String? {
        let parts = topic.split(separator: "/")
        return parts.count >= 3 ? String(parts[2]) : nil
    }

    // MARK: - Helpers

    private func device(_ deviceID: String, protocol: String) async throws -> DeviceRegistry.Entry {
        guard let entry = try await devices.entry(deviceID: deviceID) else {
            throw APIError(.forbidden, code: "unknown_device", message: "device \(deviceID) is not registered; register it with POST /v1/workers/{id}/devices")
        }
        guard entry.active else { throw Self.deviceInactive(deviceID) }
        return entry
    }

    static func deviceInactive(_ deviceID: String) -> APIError {
        APIError(.forbidden, code: "device_deactivated", message: "device \(deviceID) is deactivated")
    }

    static func unauthorized(_ message: String) -> APIError {
        APIError(.unauthorized, code: "invalid_device_credentials", message: message, headers: [.wwwAuthenticate: #"Basic realm="fieldops""#])
    }

    static func basicCredentials(_ request: Request) -> (user: String, password: String)? {
        guard let header = request.headers[.authorization], header.lowercased().hasPrefix("basic "),
              let decoded = Data(base64Encoded: String(header.dropFirst(6)).trimmingCharacters(in: .whitespaces)),
              let text = String(data: decoded, encoding: .utf8), let colon = text.firstIndex(of: ":") else { return nil }
        return (String(text[..<colon]), String(text[text.index(after: colon)...]))
    }
}

/// A tracking app's accuracy, speed, heading or battery, or `nil` for a negative one: that is how
/// devices say "unknown" (iOS's Core Location reports -1), so the field is dropped and the fix
/// kept rather than refused.
private func known(_ value: Double?) -> Double? {
    value.flatMap { $0 < 0 ? nil : $0 }
}

/// The OsmAnd query/form parameters as Traccar reads them.
enum OsmAndParameters {
    static let knotsToMetersPerSecond = 0.514444

    static func position(_ parameters: [String: String]) throws -> (deviceID: String, position: LocationController.Position) {
        guard let deviceID = parameters["id"] ?? parameters["deviceid"], !deviceID.isEmpty else {
            throw APIError.invalid("id", "the device id is required (id or deviceid)")
        }
        try Identifiers.validate(deviceID, field: "id")
        var lat = try number(parameters, "lat")
        var lon = try number(parameters, "lon")
        if let location = parameters["location"] {
            let parts = location.split(separator: ",").compactMap { Double($0) }
            guard parts.count == 2 else { throw APIError.invalid("location", "must be lat,lon") }
            (lat, lon) = (parts[0], parts[1])
        }
        guard let lat, let lon else { throw APIError.invalid("lat", "lat and lon (or location=lat,lon) are required") }
        let position = LocationController.Position(
            lat: lat, lon: lon,
            accuracy: known(try number(parameters, "accuracy")),
            speed: known(try number(parameters, "speed")).map { $0 * knotsToMetersPerSecond },
            heading: known(try number(parameters, "bearing") ?? number(parameters, "heading")),
            altitude: try number(parameters, "altitude"),
            battery: known(try number(parameters, "batt")),
            recordedAt: parameters["timestamp"].map { .init(text: timestamp($0)) }
        )
        return (deviceID, position)
    }

    /// Epoch seconds or milliseconds, ISO 8601, or `yyyy-MM-dd HH:mm:ss` (UTC).
    static func timestamp(_ text: String) -> String {
        if text.count == 19, text.dropFirst(10).first == " " { return text.replacingOccurrences(of: " ", with: "T") + "Z" }
        return text
    }

    static func number(_ parameters: [String: String], _ name: String) throws -> Double? {
        guard let text = parameters[name], !text.isEmpty else { return nil }
        guard let value = Double(text) else { throw APIError.invalid(name, "'\(text)' is not a number") }
        return value
    }
}

/// The JSON variant of the OsmAnd protocol (Traccar Client 8+): `device_id` and one `location`
/// (or a `location` array) with `coords`, speed in m/s and battery level 0-1.
enum OsmAndJSON {
    struct Body: Decodable {
        var device_id: String
        var location: OneOrMany
    }

    enum OneOrMany: Decodable {
        case one(Location)
        case many([Location])

        init(from decoder: any Decoder) throws {
            let container = try decoder.singleValueContainer()
            if let many = try? container.decode([Location].self) { self = .many(many) } else { self = .one(try container.decode(Location.self)) }
        }

        var all: [Location] {
            switch self {
            case .one(let location): return [location]
            case .many(let locations): return locations
            }
        }
    }

    struct Location: Decodable {
        struct Coords: Decodable {
            var latitude: Double
            var longitude: Double
            var accuracy: Double?
            var speed: Double?
            var heading: Double?
            var altitude: Double?
        }
        struct Battery: Decodable {
            var level: Double?
        }
        var timestamp: String?
        var coords: Coords
        var battery: Battery?
    }

    static func positions(_ body: Body) throws -> [(deviceID: String, position: LocationController.Position)] {
        try Identifiers.validate(body.device_id, field: "device_id")
        return body.location.all.map { location in
            let coords = location.coords
            let position = LocationController.Position(
                lat: coords.latitude, lon: coords.longitude, accuracy: known(coords.accuracy),
                speed: known(coords.speed), heading: known(coords.heading),
                altitude: coords.altitude, battery: known(location.battery?.level).map { ($0 * 100).rounded() },
                recordedAt: location.timestamp.map { .init(text: $0) }
            )
            return (body.device_id, position)
        }
    }
}
