import DocumentStore
import Domain
import FileStore
import Foundation
import Hummingbird
import Streams

/// Chat rooms, members and messages; one stream per room, `chat:{roomId}`.
///
/// Live `/rooms/{id}/name` marks a room as existing and `/rooms/{id}/members/{userId}` its
/// members, so the write script checks membership in the same step as the post.
struct ChatController {
    let writes: DomainWrites

    static func namePath(_ roomID: String) -> String { "/rooms/\(roomID)/name" }
    static func memberPath(_ roomID: String, _ userID: String) -> String { "/rooms/\(roomID)/members/\(userID)" }
    static func lastMessagePath(_ roomID: String) -> String { "/rooms/\(roomID)/lastMessage" }

    func addRoutes(to group: RouterGroup<FieldOpsRequestContext>) {
        group.post("rooms", use: createRoom)
        group.get("rooms", use: listRooms)
        group.get("rooms/:roomId", use: getRoom)
        group.post("rooms/:roomId/members", use: addMember)
        group.delete("rooms/:roomId/members/:userId", use: removeMember)
        group.post("rooms/:roomId/messages", use: post)
        group.get("rooms/:roomId/messages", use: messages)
        group.patch("rooms/:roomId/messages/:messageId", use: edit)
        group.delete("rooms/:roomId/messages/:messageId", use: delete)
    }

    struct RoomBody: Decodable {
        var roomId: String?
        var name: String
        var members: [String]?
    }

    struct MemberBody: Decodable {
        var userId: String
    }

    struct MessageBody: Decodable {
        var text: String
        var attachments: [String]?
    }

    struct EditBody: Decodable {
        var text: String
    }

    /// Longest message text, in characters.
    static let maxText = 4_000

    @Sendable func createRoom(_ request: Request, context: FieldOpsRequestContext) async throws -> Response {
        let caller = try context.requireIdentity()
        try caller.require(.dispatcher, .admin, .service, to: "create rooms")
        let body = try await request.decodeJSON(RoomBody.self)
        let roomID = try Identifiers.chosen(body.roomId, field: "roomId", prefix: "room")
        let name = try WorkerController.name(body.name)
        // Counted as sent, as the contract's maxItems says, before duplicates are dropped.
        guard (body.members ?? []).count <= 1_000 else { throw APIError.invalid("members", "a room holds at most 1000 members") }
        let members = Array(Set(body.members ?? [])).sorted()
        for member in members { try Identifiers.validate(member, field: "members") }
        var live: [EventWriter.LiveWrite] = [.set(path: Self.namePath(roomID), json: JSONCoding.string(name))]
        live += members.map { .set(path: Self.memberPath(roomID, $0), json: "true") }
        let written = try await writes.record(.init(
            tenant: caller.tenant, stream: StreamNames.chat(roomID),
            events: [.init(eventType: EventType.roomCreated, payload: JSONCoding.text(RoomCreated(roomId: roomID, name: name, members: members)), routing: [("roomId", roomID), ("senderId", caller.subject)])],
            conditions: [.init(path: Self.namePath(roomID), .absent)],
            liveWrites: live, idempotencyKey: try request.idempotencyKey()
        )) { _, _ in APIError(.conflict, code: "already_exists", message: "room \(roomID) already exists") }
        return try await writes.reply(written, "room", from: "rooms", id: written.id("roomId", made: roomID), request: request, created: true)
    }

    @Sendable func listRooms(_ request: Request, context: FieldOpsRequestContext) async throws -> Response {
        let caller = try context.requireIdentity()
        var query = Query("rooms").order(by: "name").limit(try request.intParameter("limit", default: 100, range: 1...1_000))
        if !caller.seesWholeTenant { query = query.where("members", .arrayContains, .string(caller.subject)) }
        if let cursor = try request.cursorParameter() { query = query.start(after: cursor) }
        return pageResponse(try await writes.query(tenant: caller.tenant, query), name: "rooms")
    }

    @Sendable func getRoom(_ request: Request, context: FieldOpsRequestContext) async throws -> Response {
        let caller = try context.requireIdentity()
        let roomID = try context.id("roomId")
        try await requireAccess(caller, roomID)
        guard let document = try await writes.current(tenant: caller.tenant, collection: "rooms", id: roomID, stream: StreamNames.chat(roomID)) else {
            throw APIError.notFound("room \(roomID)")
        }
        var reply: JSONObject = ["room": document.resource]
        reply["lastMessage"] = try await writes.live(tenant: caller.tenant, path: Self.lastMessagePath(roomID)) ?? .null
        return Response.json(.object(reply))
    }

    @Sendable func addMember(_ request: Request, context: FieldOpsRequestContext) async throws -> Response {
        try await membership(added: true, request, context)
    }

    @Sendable func removeMember(_ request: Request, context: FieldOpsRequestContext) async throws -> Response {
        try await membership(added: false, request, context)
    }

    private func membership(added: Bool, _ request: Request, _ context: FieldOpsRequestContext) async throws -> Response {
        let caller = try context.requireIdentity()
        try caller.require(.dispatcher, .admin, .service, to: "change room members")
        let roomID = try context.id("roomId")
        let userID = added ? try await request.decodeJSON(MemberBody.self).userId : try context.parameters.require("userId")
        try Identifiers.validate(userID, field: "userId")
        let path = Self.memberPath(roomID, userID)
        let written = try await writes.record(.init(
            tenant: caller.tenant, stream: StreamNames.chat(roomID),
            events: [.init(
                eventType: added ? EventType.roomMemberAdded : EventType.roomMemberRemoved,
                payload: JSONCoding.text(RoomMember(roomId: roomID, userId: userID)), routing: [("roomId", roomID), ("userId", userID)]
            )],
            conditions: [.init(path: Self.namePath(roomID), .exists), .init(path: path, added ? .absent : .exists)],
            liveWrites: [added ? .set(path: path, json: "true") : .delete(path: path)],
            idempotencyKey: try request.idempotencyKey()
        )) { index, _ in
            index == 0
                ? APIError.notFound("room \(roomID)")
                : APIError(.conflict, code: added ? "already_member" : "not_member", message: "\(userID) is \(added ? "already" : "not") a member of room \(roomID)")
        }
        return try await writes.reply(written, "room", from: "rooms", id: roomID, request: request, created: added)
    }

    @Sendable func post(_ request: Request, context: FieldOpsRequestContext) async throws -> Response {
        let caller = try context.requireIdentity()
        let roomID = try context.id("roomId")
        let body = try await request.decodeJSON(MessageBody.self)
        let text = try Self.text(body.text)
        let attachments = try Attachments.ids(body.attachments)
        let messageID = Identifiers.make("m")
        var conditions: [EventWriter.Condition] = [.init(path: Self.namePath(roomID), .exists)]
        if !caller.seesWholeTenant { conditions.append(.init(path: Self.memberPath(roomID, caller.subject), .exists)) }
        // Attachments are files uploaded to this room (PUT /v1/files/rooms/{roomId}).
        let firstAttachment = conditions.count
        conditions += Attachments.conditions(attachments, .rooms, roomID)
        let preview: JSONValue = ["messageId": .string(messageID), "senderId": .string(caller.subject), "text": .string(String(text.prefix(200)))]
        let delivery = try request.delivery()
        let written = try await writes.record(.init(
            tenant: caller.tenant, stream: StreamNames.chat(roomID),
            events: [.init(
                eventType: EventType.messageCreated,
                payload: JSONCoding.text(MessageCreated(messageId: messageID, roomId: roomID, senderId: caller.subject, text: text, attachments: attachments.isEmpty ? nil : attachments)),
                routing: [("roomId", roomID), ("senderId", caller.subject), ("messageId", messageID)]
            )],
            conditions: conditions,
            // A realtime-only message is not kept anywhere, not even as the room's last message.
            liveWrites: delivery == .realtime ? [] : [.set(path: Self.lastMessagePath(roomID), json: preview.jsonText)],
            idempotencyKey: try request.idempotencyKey(), delivery: delivery
        )) { index, _ in
            index >= firstAttachment ? Attachments.refused(attachments[index - firstAttachment], .rooms, roomID) : APIError.notFound("room \(roomID)")
        }
        if delivery == .realtime {
            var message = preview.objectValue ?? [:]
            message["roomId"] = .string(roomID)
            message["text"] = .string(text)
            return Response.json(["delivery": "realtime", "message": .object(message)], status: .accepted)
        }
        return try await writes.reply(written, "message", from: "messages", id: written.id("messageId", made: messageID), request: request, created: true)
    }

    @Sendable func edit(_ request: Request, context: FieldOpsRequestContext) async throws -> Response {
        let caller = try context.requireIdentity()
        let body = try await request.decodeJSON(EditBody.self)
        let text = try Self.text(body.text)
        return try await change(request, context, deleting: false) { message in
            // Only the sender rewrites its words.
            guard message.data["senderId"]?.stringValue == caller.subject else { throw APIError.forbidden("only the sender may edit a message") }
            return (EventType.messageEdited, JSONCoding.text(MessageEdited(messageId: message.id, text: text)))
        }
    }

    @Sendable func delete(_ request: Request, context: FieldOpsRequestContext) async throws -> Response {
        let caller = try context.requireIdentity()
        return try await change(request, context, deleting: true) { message in
            guard message.data["senderId"]?.stringValue == caller.subject || caller.seesWholeTenant else {
                throw APIError.forbidden("only the sender or a dispatcher may delete a message")
            }
            return (EventType.messageDeleted, JSONCoding.text(MessageDeleted(messageId: message.id)))
        }
    }

    private func change(
        _ request: Request, _ context: FieldOpsRequestContext, deleting: Bool,
        _ event: (Document) throws -> (type: String, payload: String)
    ) async throws -> Response {
        let caller = try context.requireIdentity()
        let roomID = try context.id("roomId")
        let messageID = try context.id("messageId")
        try await requireAccess(caller, roomID)
        guard let message = try await writes.current(tenant: caller.tenant, collection: "messages", id: messageID, stream: StreamNames.chat(roomID)),
              message.data["roomId"]?.stringValue == roomID else {
            throw APIError.notFound("message \(messageID) in room \(roomID)")
        }
        guard message.data["deleted"] != .bool(true) else { throw APIError(.conflict, code: "message_deleted", message: "message \(messageID) was deleted") }
        let (type, payload) = try event(message)
        let written = try await writes.record(.init(
            tenant: caller.tenant, stream: StreamNames.chat(roomID),
            events: [.init(eventType: type, payload: payload, routing: [("roomId", roomID), ("senderId", caller.subject), ("messageId", messageID)])],
            conditions: [.init(path: Self.namePath(roomID), .exists)],
            idempotencyKey: try request.idempotencyKey()
        )) { _, _ in APIError.notFound("room \(roomID)") }
        return try await writes.reply(written, "message", from: "messages", id: messageID, request: request)
    }

    /// `GET /v1/rooms/{id}/messages?before=MESSAGE&after=MESSAGE&limit=50`, newest first.
    /// `nextBefore` is the id to pass as `before` for the page of older messages.
    @Sendable func messages(_ request: Request, context: FieldOpsRequestContext) async throws -> Response {
        let caller = try context.requireIdentity()
        let roomID = try context.id("roomId")
        try await requireAccess(caller, roomID)
        let limit = try request.intParameter("limit", default: 50, range: 1...1_000)
        var query = Query("messages").where("roomId", .equal, .string(roomID))
        let parameters = request.uri.queryParameters
        let before = parameters.get("before"), after = parameters.get("after")
        if before != nil && after != nil { throw APIError.invalid("before", "give 'before' or 'after', not both") }
        if let anchor = before ?? after {
            try Identifiers.validate(anchor, field: before != nil ? "before" : "after")
            guard let message = try await writes.get(tenant: caller.tenant, collection: "messages", id: anchor),
                  message.data["roomId"]?.stringValue == roomID, let key = message.data["sortKey"] else {
                throw APIError.notFound("message \(anchor) in room \(roomID)")
            }
            query = query.where("sortKey", before != nil ? .less : .greater, key)
        }
        // Messages just after `after` come first in time; the page is still shown newest first.
        query = query.order(by: "sortKey", after != nil ? .ascending : .descending).limit(limit)
        var documents = try await writes.query(tenant: caller.tenant, query).documents
        if after != nil { documents.reverse() }
        let nextBefore: JSONValue = documents.count == limit ? documents.last.map { .string($0.id) } ?? .null : .null
        return Response.json(["messages": .array(documents.map(\.resource)), "nextBefore": nextBefore])
    }

    // MARK: - Helpers

    /// Dispatchers reach every room of their tenant; workers only rooms they are members of.
    private func requireAccess(_ caller: Identity, _ roomID: String) async throws {
        let path = caller.seesWholeTenant ? Self.namePath(roomID) : Self.memberPath(roomID, caller.subject)
        guard try await writes.live(tenant: caller.tenant, path: path) != nil else { throw APIError.notFound("room \(roomID)") }
    }

    static func text(_ text: String) throws -> String {
        guard !text.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty, text.count <= maxText else {
            throw APIError.invalid("text", "must be 1-\(maxText) characters")
        }
        return text
    }
}
