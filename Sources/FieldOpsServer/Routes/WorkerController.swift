import DocumentStore
import Domain
import Foundation
import Hummingbird
import Streams

/// Workers and their tracking devices; stream `workers`.
///
/// A worker's live `/workers/{id}/status` is `"active"` or `"inactive"`; positions and
/// assignments check it in the same script that writes them.
struct WorkerController {
    let writes: DomainWrites
    let devices: DeviceRegistry

    static func statusPath(_ workerID: String) -> String { "/workers/\(workerID)/status" }
    static let activeJSON = JSONCoding.string("active")
    static let inactiveJSON = JSONCoding.string("inactive")

    func addRoutes(to group: RouterGroup<FieldOpsRequestContext>) {
        group.post("workers", use: register)
        group.get("workers", use: list)
        group.get("workers/:workerId", use: get)
        group.patch("workers/:workerId", use: update)
        group.post("workers/:workerId/deactivate") { request, context in try await setActive(false, request, context) }
        group.delete("workers/:workerId") { request, context in try await setActive(false, request, context) }
        group.post("workers/:workerId/reactivate") { request, context in try await setActive(true, request, context) }
        group.post("workers/:workerId/devices", use: registerDevice)
        group.get("workers/:workerId/devices", use: listDevices)
        group.delete("devices/:deviceId", use: deactivateDevice)
    }

    struct RegisterBody: Decodable {
        var workerId: String?
        var name: String
        var phone: String?
        var team: String?
        var skills: [String]?
    }

    struct UpdateBody: Decodable {
        var name: String?
        var phone: String?
        var team: String?
        var skills: [String]?
    }

    struct DeviceBody: Decodable {
        var deviceId: String
        var `protocol`: String
        var user: String?
        var device: String?
        var secret: String?
    }

    @Sendable func register(_ request: Request, context: FieldOpsRequestContext) async throws -> Response {
        let caller = try context.requireIdentity()
        try caller.require(.dispatcher, .admin, .service, to: "register workers")
        let body = try await request.decodeJSON(RegisterBody.self)
        let workerID = try Identifiers.chosen(body.workerId, field: "workerId", prefix: "w")
        let payload = WorkerRegistered(
            workerId: workerID, name: try Self.name(body.name), phone: try Self.phone(body.phone),
            team: try Self.team(body.team), skills: try Self.skills(body.skills)
        )
        let written = try await writes.record(.init(
            tenant: caller.tenant, stream: StreamNames.workers,
            events: [.init(eventType: EventType.workerRegistered, payload: JSONCoding.text(payload), routing: [("workerId", workerID)])],
            conditions: [.init(path: Self.statusPath(workerID), .absent)],
            liveWrites: [.set(path: Self.statusPath(workerID), json: Self.activeJSON)],
            idempotencyKey: try request.idempotencyKey()
        )) { _, _ in APIError(.conflict, code: "already_exists", message: "worker \(workerID) already exists") }
        return try await writes.reply(written, "worker", from: "workers", id: written.id("workerId", made: workerID), request: request, created: true)
    }

    @Sendable func update(_ request: Request, context: FieldOpsRequestContext) async throws -> Response {
        let caller = try context.requireIdentity()
        try caller.require(.dispatcher, .admin, .service, to: "change workers")
        let workerID = try context.id("workerId")
        let body = try await request.decodeJSON(UpdateBody.self)
        let payload = WorkerUpdated(
            workerId: workerID, name: try body.name.map(Self.name), phone: try Self.phone(body.phone),
            team: try Self.team(body.team), skills: try Self.skills(body.skills)
        )
        let written = try await writes.record(.init(
            tenant: caller.tenant, stream: StreamNames.workers,
            events: [.init(eventType: EventType.workerUpdated, payload: JSONCoding.text(payload), routing: [("workerId", workerID)])],
            conditions: [.init(path: Self.statusPath(workerID), .exists)],
            idempotencyKey: try request.idempotencyKey()
        )) { _, _ in APIError.notFound("worker \(workerID)") }
        return try await writes.reply(written, "worker", from: "workers", id: workerID, request: request)
    }

    func setActive(_ active: Bool, _ request: Request, _ context: FieldOpsRequestContext) async throws -> Response {
        let caller = try context.requireIdentity()
        try caller.require(.dispatcher, .admin, .service, to: active ? "reactivate workers" : "deactivate workers")
        let workerID = try context.id("workerId")
        let (from, to) = active ? (Self.inactiveJSON, Self.activeJSON) : (Self.activeJSON, Self.inactiveJSON)
        let written = try await writes.record(.init(
            tenant: caller.tenant, stream: StreamNames.workers,
            events: [.init(
                eventType: active ? EventType.workerReactivated : EventType.workerDeactivated,
                payload: JSONCoding.text(WorkerActivation(workerId: workerID)), routing: [("workerId", workerID)]
            )],
            conditions: [.init(path: Self.statusPath(workerID), .exists), .init(path: Self.statusPath(workerID), .equals(from))],
            liveWrites: [.set(path: Self.statusPath(workerID), json: to)],
            idempotencyKey: try request.idempotencyKey()
        )) { index, _ in
            index == 0
                ? APIError.notFound("worker \(workerID)")
                : APIError(.conflict, code: active ? "already_active" : "already_inactive", message: "worker \(workerID) is already \(active ? "active" : "deactivated")")
        }
        return try await writes.reply(written, "worker", from: "workers", id: workerID, request: request)
    }

    @Sendable func get(_ request: Request, context: FieldOpsRequestContext) async throws -> Response {
        let caller = try context.requireIdentity()
        let workerID = try context.id("workerId")
        guard caller.seesWholeTenant || caller.subject == workerID,
              let document = try await writes.current(tenant: caller.tenant, collection: "workers", id: workerID, stream: StreamNames.workers) else {
            throw APIError.notFound("worker \(workerID)")
        }
        return Response.json(["worker": document.resource])
    }

    /// `GET /v1/workers?team=&active=true&limit=&cursor=`, by name.
    @Sendable func list(_ request: Request, context: FieldOpsRequestContext) async throws -> Response {
        let caller = try context.requireIdentity()
        try caller.require(.dispatcher, .admin, .service, to: "list workers")
        var query = Query("workers")
        if let team = request.uri.queryParameters.get("team") { query = query.where("team", .equal, .string(team)) }
        if let active = request.uri.queryParameters.get("active") {
            guard active == "true" || active == "false" else { throw APIError.invalid("active", "must be true or false") }
            query = query.where("active", .equal, .bool(active == "true"))
        }
        query = query.order(by: "name").limit(try request.intParameter("limit", default: 100, range: 1...1_000))
        if let cursor = try request.cursorParameter() { query = query.start(after: cursor) }
        return pageResponse(try await writes.query(tenant: caller.tenant, query), name: "workers")
    }

    // MARK: - Devices

    @Sendable func registerDevice(_ request: Request, context: FieldOpsRequestContext) async throws -> Response {
        let caller = try context.requireIdentity()
        try caller.require(.dispatcher, .admin, .service, to: "register devices")
        let workerID = try context.id("workerId")
        let body = try await request.decodeJSON(DeviceBody.self)
        try Identifiers.validate(body.deviceId, field: "deviceId")
        var entry = DeviceRegistry.Entry(tenant: caller.tenant, deviceId: body.deviceId, workerId: workerID, protocol: body.protocol, active: true)
        switch body.protocol {
        case "osmand":
            if let secret = body.secret { entry.secretHash = DeviceRegistry.hash(secret: secret) }
        case "owntracks":
            guard let user = body.user, let device = body.device else {
                throw APIError.invalid("user", "OwnTracks devices need 'user' and 'device', the names set in the app")
            }
            try Identifiers.validate(user, field: "user")
            try Identifiers.validate(device, field: "device")
            guard let secret = body.secret, secret.count >= 8 else {
                throw APIError.invalid("secret", "OwnTracks devices need a secret (the app's password) of at least 8 characters")
            }
            entry.user = user
            entry.device = device
            entry.secretHash = DeviceRegistry.hash(secret: secret)
        default:
            throw APIError.invalid("protocol", "must be osmand or owntracks")
        }
        guard try await writes.live(tenant: caller.tenant, path: Self.statusPath(workerID)) != nil else {
            throw APIError.notFound("worker \(workerID)")
        }
        guard try await devices.claim(entry) else {
            throw APIError(.conflict, code: "device_taken", message: "device id \(body.deviceId) (or its OwnTracks user and device names) is already registered")
        }
        let payload = DeviceRegistered(deviceId: entry.deviceId, workerId: workerID, protocol: entry.protocol, user: entry.user, device: entry.device)
        let written: DomainWrites.Written
        do {
            written = try await writes.record(.init(
                tenant: caller.tenant, stream: StreamNames.workers,
                events: [.init(eventType: EventType.deviceRegistered, payload: JSONCoding.text(payload), routing: [("workerId", workerID), ("deviceId", entry.deviceId)])],
                conditions: [.init(path: Self.statusPath(workerID), .exists)]
            )) { _, _ in APIError.notFound("worker \(workerID)") }
        } catch {
            await devices.release(entry)
            throw error
        }
        return try await writes.reply(written, "device", from: "devices", id: entry.deviceId, request: request, created: true)
    }

    @Sendable func listDevices(_ request: Request, context: FieldOpsRequestContext) async throws -> Response {
        let caller = try context.requireIdentity()
        let workerID = try context.id("workerId")
        guard caller.seesWholeTenant || caller.subject == workerID else { throw APIError.notFound("worker \(workerID)") }
        let page = try await writes.query(tenant: caller.tenant, Query("devices").where("workerId", .equal, .string(workerID)).limit(100))
        return pageResponse(page, name: "devices")
    }

    @Sendable func deactivateDevice(_ request: Request, context: FieldOpsRequestContext) async throws -> Response {
        let caller = try context.requireIdentity()
        try caller.require(.dispatcher, .admin, .service, to: "deactivate devices")
        let deviceID = try context.id("deviceId")
        guard var entry = try await devices.entry(deviceID: deviceID), entry.tenant == caller.tenant else {
            throw APIError.notFound("device \(deviceID)")
        }
        guard entry.active else { throw APIError(.conflict, code: "already_inactive", message: "device \(deviceID) is already deactivated") }
        entry.active = false
        try await devices.save(entry)
        let written = try await writes.record(.init(
            tenant: caller.tenant, stream: StreamNames.workers,
            events: [.init(
                eventType: EventType.deviceDeactivated, payload: JSONCoding.text(DeviceDeactivated(deviceId: deviceID, workerId: entry.workerId)),
                routing: [("workerId", entry.workerId), ("deviceId", deviceID)]
            )],
            idempotencyKey: try request.idempotencyKey()
        )) { _, _ in APIError.notFound("device \(deviceID)") }
        return try await writes.reply(written, "device", from: "devices", id: deviceID, request: request)
    }

    // MARK: - Validation

    static func name(_ name: String) throws -> String {
        let trimmed = name.trimmingCharacters(in: .whitespacesAndNewlines)
        guard (1...200).contains(trimmed.count) else { throw APIError.invalid("name", "must be 1-200 characters") }
        return trimmed
    }

    static func phone(_ phone: String?) throws -> String? {
        guard let phone else { return nil }
        guard phone.count <= 32, phone.allSatisfy({ $0.isNumber || " +-()./".contains($0) }) else {
            throw APIError.invalid("phone", "must be up to 32 digits, spaces and + - ( ) . /")
        }
        return phone
    }

    static func team(_ team: String?) throws -> String? {
        guard let team else { return nil }
        guard (1...100).contains(team.count) else { throw APIError.invalid("team", "must be 1-100 characters") }
        return team
    }

    static func skills(_ skills: [String]?) throws -> [String]? {
        guard let skills else { return nil }
        guard skills.count <= 50, skills.allSatisfy({ (1...64).contains($0.count) }) else {
            throw APIError.invalid("skills", "must be at most 50 skills of 1-64 characters")
        }
        return skills
    }
}
