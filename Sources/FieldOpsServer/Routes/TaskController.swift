import DocumentStore
import Domain
import FileStore
import Foundation
import Hummingbird
import Streams

/// Tasks: create, assign, accept, start, complete, cancel; stream `taskAssignments`.
///
/// The state machine is checked in the write script against the live path
/// `/tasks/{id}/status`, so two dispatchers racing on one task cannot both win.
struct TaskController {
    let writes: DomainWrites

    func addRoutes(to group: RouterGroup<FieldOpsRequestContext>) {
        group.post("tasks", use: create)
        group.get("tasks", use: list)
        group.get("tasks/:taskId", use: get)
        group.post("tasks/:taskId/assign") { request, context in try await transition(EventType.taskAssigned, request, context) }
        group.post("tasks/:taskId/accept") { request, context in try await transition(EventType.taskAccepted, request, context) }
        group.post("tasks/:taskId/start") { request, context in try await transition(EventType.taskStarted, request, context) }
        group.post("tasks/:taskId/complete") { request, context in try await transition(EventType.taskCompleted, request, context) }
        group.post("tasks/:taskId/cancel") { request, context in try await transition(EventType.taskCancelled, request, context) }
    }

    struct CreateBody: Decodable {
        var taskId: String?
        var title: String
        var description: String?
        var priority: Priority?
        var assigneeId: String?
        var location: GeoPoint?
        var dueAt: String?
    }

    /// 1 low, 2 normal, 3 high, 4 urgent; the names are accepted too.
    struct Priority: Decodable {
        static let names = ["low": 1, "normal": 2, "high": 3, "urgent": 4]
        let value: Int

        init(from decoder: any Decoder) throws {
            let container = try decoder.singleValueContainer()
            if let number = try? container.decode(Int.self), (1...4).contains(number) {
                value = number
            } else if let name = try? container.decode(String.self), let number = Self.names[name.lowercased()] {
                value = number
            } else {
                throw DecodingError.dataCorruptedError(in: container, debugDescription: "priority is 1-4 or low, normal, high, urgent")
            }
        }
    }

    struct TransitionBody: Decodable {
        var assigneeId: String?
        var note: String?
        /// Files uploaded to the task (PUT /v1/files/tasks/{taskId}): photos, a signature.
        var attachments: [String]?
    }

    static func statusPath(_ taskID: String) -> String { "/tasks/\(taskID)/status" }
    static func assigneePath(_ taskID: String) -> String { "/tasks/\(taskID)/assignee" }

    @Sendable func create(_ request: Request, context: FieldOpsRequestContext) async throws -> Response {
        let caller = try context.requireIdentity()
        try caller.require(.dispatcher, .admin, .service, to: "create tasks")
        let body = try await request.decodeJSON(CreateBody.self)
        let taskID = try Identifiers.chosen(body.taskId, field: "taskId", prefix: "t")
        let title = body.title.trimmingCharacters(in: .whitespacesAndNewlines)
        guard (1...200).contains(title.count) else { throw APIError.invalid("title", "must be 1-200 characters") }
        if let description = body.description, description.count > 10_000 { throw APIError.invalid("description", "must be at most 10 000 characters") }
        if let assignee = body.assigneeId { try Identifiers.validate(assignee, field: "assigneeId") }
        if let location = body.location { try LocationController.validate(lat: location.lat, lon: location.lon, field: "location") }
        if let dueAt = body.dueAt, APITime.milliseconds(dueAt) == nil { throw APIError.invalid("dueAt", "must be an ISO 8601 time") }

        let payload = TaskCreated(
            taskId: taskID, title: title, description: body.description, priority: body.priority?.value ?? 2,
            assigneeId: body.assigneeId, location: body.location, dueAt: body.dueAt, by: caller.subject
        )
        let status: TaskStatus = body.assigneeId == nil ? .open : .assigned
        var conditions: [EventWriter.Condition] = [.init(path: Self.statusPath(taskID), .absent)]
        var live: [EventWriter.LiveWrite] = [.set(path: Self.statusPath(taskID), json: JSONCoding.string(status.rawValue))]
        if let assignee = body.assigneeId {
            conditions.append(.init(path: WorkerController.statusPath(assignee), .equals(WorkerController.activeJSON)))
            live.append(.set(path: Self.assigneePath(taskID), json: JSONCoding.string(assignee)))
        }
        let key = try request.idempotencyKey()
        let written = try await writes.record(
            .init(
                tenant: caller.tenant, stream: StreamNames.taskAssignments,
                events: [.init(eventType: EventType.taskCreated, payload: JSONCoding.text(payload), routing: routing(taskID, body.assigneeId, key))],
                conditions: conditions, liveWrites: live, idempotencyKey: key
            )
        ) { index, _ in
            index == 0
                ? APIError(.conflict, code: "already_exists", message: "task \(taskID) already exists")
                : Self.inactiveWorker(body.assigneeId ?? "")
        }
        if let assignee = body.assigneeId {
            try await notifyAssignee(written, taskID: taskID, title: title, assigneeID: assignee)
        }
        return try await writes.reply(written, "task", from: "tasks", id: written.id("taskId", made: taskID), request: request, created: true)
    }

    @Sendable func transition(_ eventType: String, _ request: Request, _ context: FieldOpsRequestContext) async throws -> Response {
        let caller = try context.requireIdentity()
        let taskID = try context.id("taskId")
        let verb = String(eventType.dropFirst("task.".count))
        let body = try await request.decodeOptionalJSON(TransitionBody.self) ?? TransitionBody()
        if let note = body.note, note.count > 2_000 { throw APIError.invalid("note", "must be at most 2 000 characters") }
        let attachments = try Attachments.ids(body.attachments)

        let allowed = TaskStatus.allCases.filter { $0.after(eventType) != nil }
        guard let next = allowed.first?.after(eventType) else { throw APIError.notFound("transition \(verb)") }
        var conditions: [EventWriter.Condition] = [
            .init(path: Self.statusPath(taskID), .exists),
            .init(path: Self.statusPath(taskID), .oneOf(allowed.map { JSONCoding.string($0.rawValue) })),
        ]
        var live: [EventWriter.LiveWrite] = [.set(path: Self.statusPath(taskID), json: JSONCoding.string(next.rawValue))]
        var assignee: String?
        switch eventType {
        case EventType.taskAssigned:
            try caller.require(.dispatcher, .admin, .service, to: "assign tasks")
            guard let chosen = body.assigneeId else { throw APIError.invalid("assigneeId", "is required to assign a task") }
            try Identifiers.validate(chosen, field: "assigneeId")
            assignee = chosen
            conditions.append(.init(path: WorkerController.statusPath(chosen), .equals(WorkerController.activeJSON)))
            live.append(.set(path: Self.assigneePath(taskID), json: JSONCoding.string(chosen)))
        case EventType.taskCancelled:
            try caller.require(.dispatcher, .admin, .service, to: "cancel tasks")
        default:
            // Workers move their own tasks along; dispatchers may do it for them.
            if caller.role == .worker {
                conditions.append(.init(path: Self.assigneePath(taskID), .equals(JSONCoding.string(caller.subject))))
            }
        }
        let firstAttachment = conditions.count
        conditions += Attachments.conditions(attachments, .tasks, taskID)
        let payload = TaskTransition(taskId: taskID, assigneeId: assignee, by: caller.subject, note: body.note, attachments: attachments.isEmpty ? nil : attachments)
        // Every entry names the assignee, so `tasks:{assigneeId}` subscribers and plain Redis
        // consumers see accept, start, complete and cancel too. A worker moves only its own tasks.
        var routedAssignee = assignee
        if routedAssignee == nil {
            routedAssignee = caller.role == .worker ? caller.subject : try await writes.live(tenant: caller.tenant, path: Self.assigneePath(taskID))?.stringValue
        }
        let key = try request.idempotencyKey()
        let written = try await writes.record(
            .init(
                tenant: caller.tenant, stream: StreamNames.taskAssignments,
                events: [.init(eventType: eventType, payload: JSONCoding.text(payload), routing: routing(taskID, routedAssignee, key))],
                conditions: conditions, liveWrites: live, idempotencyKey: key
            )
        ) { index, current in
            if index >= firstAttachment { return Attachments.refused(attachments[index - firstAttachment], .tasks, taskID) }
            switch index {
            case 0: return APIError.notFound("task \(taskID)")
            case 1:
                let status = current.flatMap { try? JSONValue(jsonText: $0) }?.stringValue ?? "unknown"
                return APIError(
                    .conflict, code: "illegal_transition",
                    message: "task \(taskID) is \(status); it cannot be \(verb) (allowed from \(allowed.map(\.rawValue).joined(separator: ", ")))",
                    details: ["taskId": .string(taskID), "currentStatus": .string(status)]
                )
            default:
                return eventType == EventType.taskAssigned
                    ? Self.inactiveWorker(assignee ?? "")
                    : APIError.notFound("task \(taskID)")  // another worker's task: as if it did not exist
            }
        }
        if let assignee {
            let title = try await writes.get(tenant: caller.tenant, collection: "tasks", id: taskID)?.data["title"]?.stringValue ?? taskID
            try await notifyAssignee(written, taskID: taskID, title: title, assigneeID: assignee)
        }
        return try await writes.reply(written, "task", from: "tasks", id: taskID, request: request)
    }

    @Sendable func get(_ request: Request, context: FieldOpsRequestContext) async throws -> Response {
        let caller = try context.requireIdentity()
        let taskID = try context.id("taskId")
        guard let document = try await writes.current(tenant: caller.tenant, collection: "tasks", id: taskID, stream: StreamNames.taskAssignments),
              caller.seesWholeTenant || document.data["assigneeId"]?.stringValue == caller.subject else {
            throw APIError.notFound("task \(taskID)")
        }
        return Response.json(["task": document.resource])
    }

    /// `GET /v1/tasks?assigneeId=&status=open,assigned&priority=&createdAfter=&createdBefore=&limit=&cursor=`,
    /// newest first. A worker sees only its own tasks.
    @Sendable func list(_ request: Request, context: FieldOpsRequestContext) async throws -> Response {
        let caller = try context.requireIdentity()
        var query = Query("tasks")
        let parameters = request.uri.queryParameters
        let assignee = caller.seesWholeTenant ? parameters.get("assigneeId") : caller.subject
        if let assignee { query = query.where("assigneeId", .equal, .string(assignee)) }
        if let statuses = parameters.get("status") {
            let values = statuses.split(separator: ",").map(String.init)
            guard !values.isEmpty, values.allSatisfy({ TaskStatus(rawValue: $0) != nil }) else {
                throw APIError.invalid("status", "must be one or more of \(TaskStatus.allCases.map(\.rawValue).joined(separator: ", ")), comma-separated")
            }
            query = query.where("status", .in, .array(values.map(JSONValue.string)))
        }
        if parameters.get("priority") != nil {
            query = query.where("priority", .equal, .number(Double(try request.intParameter("priority", default: 2, range: 1...4))))
        }
        if let after = try request.timeParameter("createdAfter") { query = query.where("createdAt", .greaterOrEqual, .number(Double(after))) }
        if let before = try request.timeParameter("createdBefore") { query = query.where("createdAt", .less, .number(Double(before))) }
        query = query.order(by: "createdAt", .descending).limit(try request.intParameter("limit", default: 50, range: 1...1_000))
        if let cursor = try request.cursorParameter() { query = query.start(after: cursor) }
        return pageResponse(try await writes.query(tenant: caller.tenant, query), name: "tasks")
    }

    // MARK: - Helpers

    /// Flat fields for consumers that route without parsing JSON.
    private func routing(_ taskID: String, _ assignee: String?, _ key: String?) -> [(String, String)] {
        var fields = [("requestId", key ?? Identifiers.make("req")), ("taskId", taskID)]
        if let assignee { fields.append(("assigneeId", assignee)) }
        return fields
    }

    /// Tells the assignee, on the `notifications` stream. Keyed by the task event, so a retried
    /// request never notifies twice.
    private func notifyAssignee(_ written: DomainWrites.Written, taskID: String, title: String, assigneeID: String) async throws {
        guard let event = written.events.last else { return }
        let notification = NotificationCreated(
            notificationId: "n-" + event.id, userId: assigneeID, title: "New task: \(title)",
            body: "Task \(taskID) was assigned to you.", subject: "task:\(taskID)"
        )
        _ = try await writes.record(.init(
            tenant: written.tenant, stream: StreamNames.notifications,
            events: [.init(eventType: EventType.notificationCreated, payload: JSONCoding.text(notification), routing: [("notificationId", notification.notificationId), ("recipient", notification.recipient ?? "")])],
            idempotencyKey: "notify-" + event.id
        )) { _, _ in APIError(.conflict, code: "conflict", message: "notification refused") }
    }

    static func inactiveWorker(_ workerID: String) -> APIError {
        APIError(.unprocessableContent, code: "worker_unavailable", message: "worker \(workerID) is not registered or is deactivated", details: ["workerId": .string(workerID)])
    }
}
