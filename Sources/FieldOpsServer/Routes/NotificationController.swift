import DocumentStore
import Domain
import Foundation
import Hummingbird
import Streams

/// Notifications for a user, a role or a room's members; stream `notifications`.
struct NotificationController {
    let writes: DomainWrites

    func addRoutes(to group: RouterGroup<FieldOpsRequestContext>) {
        group.post("notifications", use: create)
        group.get("notifications", use: list)
        group.post("notifications/:notificationId/read", use: markRead)
    }

    struct CreateBody: Decodable {
        var userId: String?
        var role: String?
        var roomId: String?
        var title: String
        var body: String?
        var subject: String?
    }

    @Sendable func create(_ request: Request, context: FieldOpsRequestContext) async throws -> Response {
        let caller = try context.requireIdentity()
        try caller.require(.dispatcher, .admin, .service, to: "send notifications")
        let body = try await request.decodeJSON(CreateBody.self)
        let targets = [body.userId, body.role, body.roomId].compactMap { $0 }
        guard targets.count == 1 else { throw APIError.invalid("userId", "give exactly one of userId, role or roomId") }
        if let userID = body.userId { try Identifiers.validate(userID, field: "userId") }
        if let role = body.role, Role(rawValue: role) == nil {
            throw APIError.invalid("role", "must be one of \(Role.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        if let roomID = body.roomId {
            try Identifiers.validate(roomID, field: "roomId")
            guard try await writes.live(tenant: caller.tenant, path: ChatController.namePath(roomID)) != nil else { throw APIError.notFound("room \(roomID)") }
        }
        let title = body.title.trimmingCharacters(in: .whitespacesAndNewlines)
        guard (1...200).contains(title.count) else { throw APIError.invalid("title", "must be 1-200 characters") }
        if let text = body.body, text.count > 4_000 { throw APIError.invalid("body", "must be at most 4000 characters") }
        if let subject = body.subject, subject.count > 200 { throw APIError.invalid("subject", "must be at most 200 characters") }
        let notificationID = Identifiers.make("n")
        let payload = NotificationCreated(
            notificationId: notificationID, userId: body.userId, role: body.role, roomId: body.roomId,
            title: title, body: body.body, subject: body.subject
        )
        let written = try await writes.record(.init(
            tenant: caller.tenant, stream: StreamNames.notifications,
            events: [.init(eventType: EventType.notificationCreated, payload: JSONCoding.text(payload), routing: [("notificationId", notificationID), ("recipient", payload.recipient ?? "")])],
            idempotencyKey: try request.idempotencyKey()
        )) { _, _ in APIError(.conflict, code: "conflict", message: "the notification was refused") }
        return try await writes.reply(written, "notification", from: "notifications", id: written.id("notificationId", made: notificationID), request: request, created: true)
    }

    /// `GET /v1/notifications?unread=true&limit=&cursor=`: the caller's own, its role's and its
    /// rooms', newest first; `read` says whether the caller read each.
    @Sendable func list(_ request: Request, context: FieldOpsRequestContext) async throws -> Response {
        let caller = try context.requireIdentity()
        let recipients = try await recipients(of: caller)
        var query = Query("notifications")
            .where("recipient", .in, .array(recipients.map(JSONValue.string)))
            .order(by: "createdAt", .descending)
            .limit(try request.intParameter("limit", default: 50, range: 1...1_000))
        if let cursor = try request.cursorParameter() { query = query.start(after: cursor) }
        let unreadOnly = try request.flag("unread")
        let page = try await writes.query(tenant: caller.tenant, query)
        let reader = JSONValue.string(caller.subject)
        let items: [JSONValue] = page.documents.compactMap { document in
            guard case .object(var fields) = document.resource else { return nil }
            let read = fields["readBy"]?.arrayValue?.contains(reader) == true || (fields["userId"] == reader && fields["read"] == .bool(true))
            if unreadOnly && read { return nil }
            fields["read"] = .bool(read)
            return .object(fields)
        }
        return Response.json(["notifications": .array(items), "nextCursor": page.nextCursor.map { .string($0.token) } ?? .null])
    }

    @Sendable func markRead(_ request: Request, context: FieldOpsRequestContext) async throws -> Response {
        let caller = try context.requireIdentity()
        let notificationID = try context.id("notificationId")
        guard let notification = try await writes.current(tenant: caller.tenant, collection: "notifications", id: notificationID, stream: StreamNames.notifications),
              let recipient = notification.data["recipient"]?.stringValue,
              try await recipients(of: caller).contains(recipient) else {
            throw APIError.notFound("notification \(notificationID)")
        }
        let written = try await writes.record(.init(
            tenant: caller.tenant, stream: StreamNames.notifications,
            events: [.init(
                eventType: EventType.notificationRead, payload: JSONCoding.text(NotificationRead(notificationId: notificationID, userId: caller.subject)),
                routing: [("notificationId", notificationID), ("userId", caller.subject)]
            )],
            idempotencyKey: try request.idempotencyKey()
        )) { _, _ in APIError.notFound("notification \(notificationID)") }
        return try await writes.reply(written, "notification", from: "notifications", id: notificationID, request: request)
    }

    /// Who the caller is as a recipient: itself, its role, and (up to the `in` limit) its rooms.
    private func recipients(of caller: Identity) async throws -> [String] {
        var recipients = ["user:" + caller.subject, "role:" + caller.role.rawValue]
        let rooms = try await writes.query(
            tenant: caller.tenant,
            Query("rooms").where("members", .arrayContains, .string(caller.subject)).limit(DocumentLimits.maxInValues - recipients.count)
        )
        recipients += rooms.documents.map { "room:" + $0.id }
        return recipients
    }
}
