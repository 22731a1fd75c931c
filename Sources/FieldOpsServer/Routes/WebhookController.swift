import DocumentStore
import Foundation
import Hummingbird

/// Outgoing webhooks: a backend registers a URL and the event types it wants from the
/// `notifications` and `taskAssignments` streams; the notifier delivers them signed.
struct WebhookController {
    let registry: WebhookRegistry

    func addRoutes(to group: RouterGroup<FieldOpsRequestContext>) {
        group.post("webhooks", use: create)
        group.get("webhooks", use: list)
        group.delete("webhooks/:webhookId", use: delete)
    }

    struct CreateBody: Decodable {
        var url: String
        var eventTypes: [String]
        var secret: String?
    }

    @Sendable func create(_ request: Request, context: FieldOpsRequestContext) async throws -> Response {
        let caller = try context.requireIdentity()
        try caller.require(.admin, .service, to: "register webhooks")
        let body = try await request.decodeJSON(CreateBody.self)
        guard let url = URL(string: body.url), let scheme = url.scheme?.lowercased(), scheme == "http" || scheme == "https", url.host?.isEmpty == false,
              body.url.utf8.count <= 2_000 else {
            throw APIError.invalid("url", "must be an http or https URL")
        }
        guard (1...50).contains(body.eventTypes.count), body.eventTypes.allSatisfy({ $0 == "*" || Self.deliverable.contains($0) }) else {
            throw APIError.invalid("eventTypes", "give 1-50 of \(Self.deliverable.sorted().joined(separator: ", ")), or *")
        }
        if let secret = body.secret, !(16...200).contains(secret.utf8.count) { throw APIError.invalid("secret", "must be 16-200 bytes") }
        let webhook = WebhookRegistry.Webhook(
            webhookId: Identifiers.make("wh"), url: body.url, eventTypes: body.eventTypes, secret: body.secret ?? WebhookRegistry.makeSecret(),
            createdAt: APITime.nowMilliseconds, createdBy: caller.subject
        )
        try await registry.add(webhook, tenant: caller.tenant)
        guard case .object(var view) = webhook.publicView else { return Response(status: .created) }
        // The only time the secret is shown.
        view["secret"] = .string(webhook.secret)
        return Response.json(["webhook": .object(view)], status: .created)
    }

    @Sendable func list(_ request: Request, context: FieldOpsRequestContext) async throws -> Response {
        let caller = try context.requireIdentity()
        try caller.require(.admin, .service, to: "list webhooks")
        let hooks = try await registry.list(tenant: caller.tenant)
        return Response.json(["webhooks": .array(hooks.map(\.publicView))])
    }

    @Sendable func delete(_ request: Request, context: FieldOpsRequestContext) async throws -> Response {
        let caller = try context.requireIdentity()
        try caller.require(.admin, .service, to: "remove webhooks")
        let id = try context.id("webhookId")
        guard try await registry.remove(id, tenant: caller.tenant) else { throw APIError.notFound("webhook \(id)") }
        return Response(status: .noContent)
    }

    /// What the notifier's streams carry.
    static let deliverable: Set<String> = [
        "notification.created", "notification.read", "task.created", "task.assigned", "task.accepted", "task.started", "task.completed", "task.cancelled",
    ]
}
