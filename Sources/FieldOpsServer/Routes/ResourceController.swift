import DocumentStore
import Domain
import Foundation
import Hummingbird
import Streams

/// Inventory: create, adjust, reserve for a task and release; stream `resourceUpdates`.
///
/// Live `/resources/{id}/quantity` is the stock on hand and `/resources/{id}/available` what
/// is not reserved; the write script refuses any change that would take `available` below
/// zero, so concurrent takes can never overdraw the stock.
struct ResourceController {
    let writes: DomainWrites

    static func quantityPath(_ id: String) -> String { "/resources/\(id)/quantity" }
    static func availablePath(_ id: String) -> String { "/resources/\(id)/available" }
    static func reservationPath(_ id: String, _ taskID: String) -> String { "/resources/\(id)/reservations/\(taskID)" }

    func addRoutes(to group: RouterGroup<FieldOpsRequestContext>) {
        group.post("resources", use: create)
        group.get("resources", use: list)
        group.get("resources/:resourceId", use: get)
        group.post("resources/:resourceId/adjust", use: adjust)
        group.post("resources/:resourceId/reserve", use: reserve)
        group.post("resources/:resourceId/release", use: release)
    }

    struct CreateBody: Decodable {
        var resourceId: String?
        var name: String
        var category: String?
        var unit: String?
        var quantity: Double
        var site: String?
        var location: GeoPoint?
    }

    struct AdjustBody: Decodable {
        var delta: Double
        var reason: String?
    }

    struct ReservationBody: Decodable {
        var taskId: String
        var quantity: Double?
    }

    @Sendable func create(_ request: Request, context: FieldOpsRequestContext) async throws -> Response {
        let caller = try context.requireIdentity()
        try caller.require(.dispatcher, .admin, .service, to: "create resources")
        let body = try await request.decodeJSON(CreateBody.self)
        let resourceID = try Identifiers.chosen(body.resourceId, field: "resourceId", prefix: "r")
        let name = try WorkerController.name(body.name)
        guard body.quantity.isFinite, body.quantity >= 0, body.quantity <= 1e12 else { throw APIError.invalid("quantity", "must be a number from 0 to 1e12") }
        for (field, value) in [("category", body.category), ("unit", body.unit), ("site", body.site)] {
            if let value, !(1...100).contains(value.count) { throw APIError.invalid(field, "must be 1-100 characters") }
        }
        if let location = body.location { try LocationController.validate(lat: location.lat, lon: location.lon, field: "location") }
        let payload = ResourceCreated(
            resourceId: resourceID, name: name, category: body.category, unit: body.unit, quantity: body.quantity,
            site: body.site, location: body.location
        )
        let quantity = EventWriter.number(body.quantity)
        let written = try await writes.record(.init(
            tenant: caller.tenant, stream: StreamNames.resourceUpdates,
            events: [.init(eventType: EventType.resourceCreated, payload: JSONCoding.text(payload), routing: [("resourceId", resourceID)])],
            conditions: [.init(path: Self.quantityPath(resourceID), .absent)],
            liveWrites: [.set(path: Self.quantityPath(resourceID), json: quantity), .set(path: Self.availablePath(resourceID), json: quantity)],
            idempotencyKey: try request.idempotencyKey()
        )) { _, _ in APIError(.conflict, code: "already_exists", message: "resource \(resourceID) already exists") }
        return try await writes.reply(written, "resource", from: "resources", id: written.id("resourceId", made: resourceID), request: request, created: true)
    }

    /// Adds `delta` (negative to take stock out). 409 with the current quantity when the stock
    /// (not counting what is reserved) would go below zero.
    @Sendable func adjust(_ request: Request, context: FieldOpsRequestContext) async throws -> Response {
        let caller = try context.requireIdentity()
        let resourceID = try context.id("resourceId")
        let body = try await request.decodeJSON(AdjustBody.self)
        guard body.delta.isFinite, body.delta != 0, abs(body.delta) <= 1e12 else { throw APIError.invalid("delta", "must be a non-zero number") }
        if let reason = body.reason, reason.count > 500 { throw APIError.invalid("reason", "must be at most 500 characters") }
        let written: DomainWrites.Written
        do {
            written = try await adjustment(caller: caller, resourceID: resourceID, body: body, idempotencyKey: try request.idempotencyKey())
        } catch let error as APIError where error.code == "insufficient_stock" {
            // Say how much is on hand too, not only what is available.
            let quantity = try await writes.live(tenant: caller.tenant, path: Self.quantityPath(resourceID))?.doubleValue ?? 0
            var details = error.details?.objectValue ?? [:]
            details["quantity"] = .number(quantity)
            throw APIError(error.status, code: error.code, message: error.message + " (on hand: \(EventWriter.number(quantity)))", details: .object(details))
        }
        return try await writes.reply(written, "resource", from: "resources", id: resourceID, request: request)
    }

    private func adjustment(caller: Identity, resourceID: String, body: AdjustBody, idempotencyKey: String?) async throws -> DomainWrites.Written {
        try await writes.record(.init(
            tenant: caller.tenant, stream: StreamNames.resourceUpdates,
            events: [.init(
                eventType: EventType.resourceAdjusted,
                payload: JSONCoding.text(ResourceAdjusted(resourceId: resourceID, delta: body.delta, reason: body.reason)),
                routing: [("resourceId", resourceID), ("delta", EventWriter.number(body.delta))]
            )],
            conditions: [
                .init(path: Self.quantityPath(resourceID), .exists),
                .init(path: Self.availablePath(resourceID), .staysNonNegative(delta: body.delta)),
            ],
            liveWrites: [.increment(path: Self.quantityPath(resourceID), by: body.delta), .increment(path: Self.availablePath(resourceID), by: body.delta)],
            idempotencyKey: idempotencyKey
        )) { index, current in
            index == 0 ? APIError.notFound("resource \(resourceID)") : Self.insufficient(resourceID, wanted: -body.delta, available: current)
        }
    }

    @Sendable func reserve(_ request: Request, context: FieldOpsRequestContext) async throws -> Response {
        let caller = try context.requireIdentity()
        try caller.require(.dispatcher, .admin, .service, to: "reserve stock")
        let resourceID = try context.id("resourceId")
        let body = try await request.decodeJSON(ReservationBody.self)
        try Identifiers.validate(body.taskId, field: "taskId")
        guard let quantity = body.quantity, quantity.isFinite, quantity > 0, quantity <= 1e12 else { throw APIError.invalid("quantity", "must be a positive number") }
        let reservation = ResourceReservation(resourceId: resourceID, taskId: body.taskId, quantity: quantity)
        let written = try await writes.record(.init(
            tenant: caller.tenant, stream: StreamNames.resourceUpdates,
            events: [.init(eventType: EventType.resourceReserved, payload: JSONCoding.text(reservation), routing: [("resourceId", resourceID), ("taskId", body.taskId)])],
            conditions: [
                .init(path: Self.quantityPath(resourceID), .exists),
                .init(path: TaskController.statusPath(body.taskId), .exists),
                .init(path: Self.reservationPath(resourceID, body.taskId), .absent),
                .init(path: Self.availablePath(resourceID), .staysNonNegative(delta: -quantity)),
            ],
            liveWrites: [
                .increment(path: Self.availablePath(resourceID), by: -quantity),
                .set(path: Self.reservationPath(resourceID, body.taskId), json: EventWriter.number(quantity)),
            ],
            idempotencyKey: try request.idempotencyKey()
        )) { index, current in
            switch index {
            case 0: return APIError.notFound("resource \(resourceID)")
            case 1: return APIError(.unprocessableContent, code: "unknown_task", message: "task \(body.taskId) does not exist")
            case 2: return APIError(.conflict, code: "already_reserved", message: "resource \(resourceID) is already reserved for task \(body.taskId); release it first")
            default: return Self.insufficient(resourceID, wanted: quantity, available: current)
            }
        }
        return try await writes.reply(written, "resource", from: "resources", id: resourceID, request: request)
    }

    @Sendable func release(_ request: Request, context: FieldOpsRequestContext) async throws -> Response {
        let caller = try context.requireIdentity()
        try caller.require(.dispatcher, .admin, .service, to: "release stock")
        let resourceID = try context.id("resourceId")
        let body = try await request.decodeJSON(ReservationBody.self)
        try Identifiers.validate(body.taskId, field: "taskId")
        let path = Self.reservationPath(resourceID, body.taskId)
        guard let held = try await writes.live(tenant: caller.tenant, path: path)?.doubleValue else {
            throw APIError.notFound("a reservation of resource \(resourceID) for task \(body.taskId)")
        }
        let written = try await writes.record(.init(
            tenant: caller.tenant, stream: StreamNames.resourceUpdates,
            events: [.init(
                eventType: EventType.resourceReleased,
                payload: JSONCoding.text(ResourceReservation(resourceId: resourceID, taskId: body.taskId, quantity: held)),
                routing: [("resourceId", resourceID), ("taskId", body.taskId)]
            )],
            // The amount read above must still be the one held: no release races another.
            conditions: [.init(path: path, .equals(EventWriter.number(held)))],
            liveWrites: [.increment(path: Self.availablePath(resourceID), by: held), .delete(path: path)],
            idempotencyKey: try request.idempotencyKey()
        )) { _, _ in APIError(.conflict, code: "reservation_changed", message: "the reservation of resource \(resourceID) for task \(body.taskId) changed meanwhile; read it and retry") }
        return try await writes.reply(written, "resource", from: "resources", id: resourceID, request: request)
    }

    @Sendable func get(_ request: Request, context: FieldOpsRequestContext) async throws -> Response {
        let caller = try context.requireIdentity()
        let resourceID = try context.id("resourceId")
        guard let document = try await writes.current(tenant: caller.tenant, collection: "resources", id: resourceID, stream: StreamNames.resourceUpdates) else {
            throw APIError.notFound("resource \(resourceID)")
        }
        return Response.json(["resource": document.resource])
    }

    /// `GET /v1/resources?category=&name=&below=&limit=&cursor=`: `below` lists what is running low.
    @Sendable func list(_ request: Request, context: FieldOpsRequestContext) async throws -> Response {
        let caller = try context.requireIdentity()
        var query = Query("resources")
        let parameters = request.uri.queryParameters
        if let category = parameters.get("category") { query = query.where("category", .equal, .string(category)) }
        if let name = parameters.get("name") { query = query.where("name", .equal, .string(name)) }
        if let below = parameters.get("below") {
            guard let limit = Double(below), limit.isFinite else { throw APIError.invalid("below", "must be a number") }
            query = query.where("quantity", .less, .number(limit)).order(by: "quantity")
        } else {
            query = query.order(by: "name")
        }
        query = query.limit(try request.intParameter("limit", default: 100, range: 1...1_000))
        if let cursor = try request.cursorParameter() { query = query.start(after: cursor) }
        return pageResponse(try await writes.query(tenant: caller.tenant, query), name: "resources")
    }

    static func insufficient(_ resourceID: String, wanted: Double, available: String?) -> APIError {
        let current = available.flatMap(Double.init) ?? 0
        return APIError(
            .conflict, code: "insufficient_stock",
            message: "resource \(resourceID) has \(EventWriter.number(current)) available; \(EventWriter.number(wanted)) cannot be taken (stock never goes below zero)",
            details: ["resourceId": .string(resourceID), "available": .number(current)]
        )
    }
}
