import DocumentStore
import Domain
import Foundation
import Streams

/// Why an event cannot take effect (an illegal transition, stock below zero…). The projector
/// records it as failed in the ledger and goes on; it is a fact about the event, not a fault.
public struct ApplyFailure: Error, Sendable, Hashable, CustomStringConvertible {
    public let description: String

    public init(_ description: String) {
        self.description = description
    }
}

/// What applying an event did.
public enum ApplyOutcome: Sendable, Hashable {
    /// Documents changed.
    case applied
    /// No applier knows this event type; recorded, nothing changed.
    case ignored
}

/// Applies one event to the documents of its tenant.
///
/// Appliers read and write only through the transaction and take time only from the event
/// (its stream id), so replaying the same events yields the same documents.
public enum Appliers {
    /// Applies `event` to the documents of `workspace`, all or nothing: the applier plans its
    /// writes, and they reach the workspace only if it finishes without failing.
    /// - Throws: `ApplyFailure` when the event cannot take effect; `DocumentStoreError` when storage fails.
    public static func apply(_ event: borrowing StreamEvent, in workspace: DocumentWorkspace) throws -> ApplyOutcome {
        try apply(Event(event), in: workspace)
    }

    /// The parts of an event the appliers read. A fold that keeps thousands of events in
    /// memory keeps these: copying one retains two strings, copying a `StreamEvent` four or more.
    public struct Event: Sendable {
        public let id: String
        public let eventType: String
        public let payload: String
        public let tenant: String

        public init(_ event: borrowing StreamEvent) {
            (id, eventType, payload, tenant) = (event.id, event.eventType, event.payload, event.tenant)
        }
    }

    public static func apply(_ event: Event, in workspace: DocumentWorkspace) throws -> ApplyOutcome {
        let context = Context(event: event, workspace: workspace)
        switch event.eventType {
        case EventType.roomCreated: try context.roomCreated()
        case EventType.messageCreated: try context.messageCreated()
        case EventType.messageEdited: try context.messageEdited()
        case EventType.messageDeleted: try context.messageDeleted()
        case EventType.roomMemberAdded: try context.roomMember(added: true)
        case EventType.roomMemberRemoved: try context.roomMember(added: false)
        case EventType.workerRegistered: try context.workerRegistered()
        case EventType.workerUpdated: try context.workerUpdated()
        case EventType.workerDeactivated: try context.workerActivation(active: false)
        case EventType.workerReactivated: try context.workerActivation(active: true)
        case EventType.deviceRegistered: try context.deviceRegistered()
        case EventType.deviceDeactivated: try context.deviceDeactivated()
        case EventType.locationReported: try context.locationReported()
        case EventType.resourceCreated: try context.resourceCreated()
        case EventType.resourceAdjusted: try context.resourceAdjusted()
        case EventType.resourceReserved: try context.resourceReservation(reserve: true)
        case EventType.resourceReleased: try context.resourceReservation(reserve: false)
        case EventType.taskCreated: try context.taskCreated()
        case EventType.taskAssigned, EventType.taskAccepted, EventType.taskStarted, EventType.taskCompleted, EventType.taskCancelled:
            try context.taskTransition()
        case EventType.fileUploaded: try context.fileUploaded()
        case EventType.fileDeleted: try context.fileDeleted()
        case EventType.notificationCreated: try context.notificationCreated()
        case EventType.notificationRead: try context.notificationRead()
        default: return .ignored
        }
        try context.commit()
        return .applied
    }

    /// An event's time in milliseconds: its stream id's, which Redis assigned on append.
    static func time(ofID id: String) -> Int64 {
        Int64(streamIDParts(id).milliseconds)
    }
}

/// One event being applied, with helpers for its payload and documents.
private final class Context {
    let event: Appliers.Event
    let workspace: DocumentWorkspace
    /// The event's time, read once from its id.
    let time: Int64
    let timeValue: JSONValue
    /// Writes planned by the applier, committed together when it succeeds.
    private var operations: [WriteOperation] = []
    private var trackPoints: [TrackPoint] = []

    init(event: Appliers.Event, workspace: DocumentWorkspace) {
        self.event = event
        self.workspace = workspace
        self.time = Appliers.time(ofID: event.id)
        self.timeValue = .number(Double(time))
    }

    func commit() throws {
        if !operations.isEmpty { try workspace.apply(tenant: tenant, operations, at: time) }
        for point in trackPoints { workspace.addTrackPoint(tenant: tenant, point) }
    }

    var tenant: String { event.tenant }

    func payload<T: Decodable>(_ type: T.Type) throws -> T {
        do {
            return try JSONValue.decode(T.self, fromJSON: event.payload)
        } catch let error as DocumentStoreError {
            throw ApplyFailure("payload of \(event.eventType) is not JSON: \(error.message)")
        } catch {
            throw ApplyFailure("payload of \(event.eventType) is not a valid \(T.self): \(Self.describe(error))")
        }
    }

    func existing(_ collection: String, _ id: String) throws -> Document? {
        try workspace.get(tenant: tenant, collection: collection, id: id)
    }

    func require(_ collection: String, _ id: String) throws -> Document {
        guard let document = try existing(collection, id) else {
            throw ApplyFailure("\(collection)/\(id) does not exist")
        }
        return document
    }

    func write(_ operations: [WriteOperation]) {
        self.operations += operations
    }

    func write(_ operation: WriteOperation) {
        operations.append(operation)
    }

    /// Writes the document read as `document` with `changes` applied, in one statement.
    /// Top-level fields only, so no paths are parsed per event.
    func update<Changes: Sequence>(_ document: Document, _ changes: Changes) throws where Changes.Element == (key: String, value: JSONValue) {
        guard case .object(var fields) = document.data else { throw ApplyFailure("\(document.collection)/\(document.id) is not an object") }
        for (key, value) in changes { fields[key] = value }
        write(.set(collection: document.collection, id: document.id, data: .object(fields), ifVersion: document.version))
    }

    func create(_ collection: String, _ id: String, _ data: JSONValue) throws {
        guard try existing(collection, id) == nil else { throw ApplyFailure("\(collection)/\(id) already exists") }
        write(.create(collection: collection, id: id, data: data))
    }

    // MARK: - Chat

    func roomCreated() throws {
        let room = try payload(RoomCreated.self)
        try create("rooms", room.roomId, [
            "roomId": .string(room.roomId), "name": .string(room.name),
            "members": .array((room.members ?? []).map(JSONValue.string)), "createdAt": timeValue,
        ])
    }

    func roomMember(added: Bool) throws {
        let change = try payload(RoomMember.self)
        let room = try require("rooms", change.roomId)
        var members = room.data["members"]?.arrayValue ?? []
        let member = JSONValue.string(change.userId)
        if added {
            guard !members.contains(member) else { return }
            members.append(member)
        } else {
            guard members.contains(member) else { return }
            members.removeAll { $0 == member }
        }
        try update(room, ["members": .array(members), "updatedAt": timeValue])
    }

    func messageCreated() throws {
        let message = try payload(MessageCreated.self)
        try create("messages", message.messageId, [
            "messageId": .string(message.messageId), "roomId": .string(message.roomId), "senderId": .string(message.senderId),
            "text": .string(message.text), "attachments": .array((message.attachments ?? []).map(JSONValue.string)),
            "createdAt": timeValue, "streamId": .string(event.id), "sortKey": .string(Self.sortKey(event.id)), "deleted": false,
        ])
        try reference(message.attachments, ["kind": "message", "id": .string(message.messageId), "roomId": .string(message.roomId)])
    }

    func messageEdited() throws {
        let edit = try payload(MessageEdited.self)
        let message = try require("messages", edit.messageId)
        guard message.data["deleted"] != .bool(true) else { throw ApplyFailure("messages/\(edit.messageId) was deleted and cannot be edited") }
        try update(message, ["text": .string(edit.text), "editedAt": timeValue])
    }

    func messageDeleted() throws {
        let deletion = try payload(MessageDeleted.self)
        let message = try require("messages", deletion.messageId)
        try update(message, ["deleted": true, "text": "", "attachments": [], "deletedAt": timeValue])
    }

    // MARK: - Workers and devices

    func workerRegistered() throws {
        let worker = try payload(WorkerRegistered.self)
        var data: JSONObject = [
            "workerId": .string(worker.workerId), "name": .string(worker.name), "active": true,
            "skills": .array((worker.skills ?? []).map(JSONValue.string)), "createdAt": timeValue, "updatedAt": timeValue,
        ]
        if let phone = worker.phone { data["phone"] = .string(phone) }
        if let team = worker.team { data["team"] = .string(team) }
        // Positions come on their own stream, accepted as soon as the registration is written:
        // its first fixes can be projected before it (a batch applies its streams one after
        // another), leaving a document with a location and no `createdAt`. The registration
        // completes that document instead of failing, keeping the fix and its newer `updatedAt`.
        if let located = try existing("workers", worker.workerId), located.data["createdAt"] == nil {
            data["updatedAt"] = nil
            try update(located, data)
            return
        }
        try create("workers", worker.workerId, .object(data))
    }

    func workerUpdated() throws {
        let change = try payload(WorkerUpdated.self)
        let worker = try require("workers", change.workerId)
        var fields: [(key: String, value: JSONValue)] = [("updatedAt", timeValue)]
        if let name = change.name { fields.append(("name", .string(name))) }
        if let phone = change.phone { fields.append(("phone", .string(phone))) }
        if let team = change.team { fields.append(("team", .string(team))) }
        if let skills = change.skills { fields.append(("skills", .array(skills.map(JSONValue.string)))) }
        try update(worker, fields)
    }

    func workerActivation(active: Bool) throws {
        let change = try payload(WorkerActivation.self)
        let worker = try require("workers", change.workerId)
        try update(worker, ["active": .bool(active), "updatedAt": timeValue])
    }

    func deviceRegistered() throws {
        let device = try payload(DeviceRegistered.self)
        var data: JSONObject = [
            "deviceId": .string(device.deviceId), "workerId": .string(device.workerId), "protocol": .string(device.protocol),
            "active": true, "createdAt": timeValue, "updatedAt": timeValue,
        ]
        if let user = device.user { data["user"] = .string(user) }
        if let name = device.device { data["device"] = .string(name) }
        try create("devices", device.deviceId, .object(data))
    }

    func deviceDeactivated() throws {
        let change = try payload(DeviceDeactivated.self)
        let device = try require("devices", change.deviceId)
        try update(device, ["active": false, "updatedAt": timeValue])
    }

    // MARK: - Locations

    /// The hottest applier: it reads the parsed payload's fields directly rather than through
    /// `Decodable`, which cost more than the rest of applying (measured with `perf` under
    /// `fieldops bench api`). The fields are those of `LocationReported`.
    func locationReported() throws {
        let fields: JSONObject
        do {
            guard case .object(let object) = try JSONValue(jsonText: event.payload) else { throw ApplyFailure("payload of \(event.eventType) is not an object") }
            fields = object
        } catch let error as DocumentStoreError {
            throw ApplyFailure("payload of \(event.eventType) is not JSON: \(error.message)")
        }
        func number(_ name: String) throws -> Double? {
            guard let value = fields[name], value != .null else { return nil }
            guard let number = value.doubleValue else { throw ApplyFailure("payload of \(event.eventType) is not a valid LocationReported: wrong type at '\(name)'") }
            return number
        }
        guard let workerID = fields["workerId"]?.stringValue else { throw ApplyFailure("payload of \(event.eventType) is not a valid LocationReported: missing field 'workerId'") }
        guard let lat = try number("lat"), let lon = try number("lon") else {
            throw ApplyFailure("payload of \(event.eventType) is not a valid LocationReported: missing field 'lat' or 'lon'")
        }
        guard (-90...90).contains(lat), (-180...180).contains(lon) else {
            throw ApplyFailure("position \(lat),\(lon) of worker \(workerID) is out of range")
        }
        let recordedAt = fields["recordedAt"]?.stringValue.flatMap(ISOTime.milliseconds) ?? time
        let accuracy = try number("accuracy"), speed = try number("speed"), heading = try number("heading")
        trackPoints.append(TrackPoint(
            workerID: workerID, recordedAt: recordedAt, lat: lat, lon: lon,
            accuracy: accuracy, speed: speed, heading: heading, eventID: event.id
        ))
        var location = JSONObject(minimumCapacity: 10)
        location["lat"] = .number(lat)
        location["lon"] = .number(lon)
        location["recordedAt"] = .number(Double(recordedAt))
        if let accuracy { location["accuracy"] = .number(accuracy) }
        if let speed { location["speed"] = .number(speed) }
        if let heading { location["heading"] = .number(heading) }
        if let altitude = try number("altitude") { location["altitude"] = .number(altitude) }
        if let battery = try number("battery") { location["battery"] = .number(battery) }
        if let device = fields["deviceId"]?.stringValue { location["deviceId"] = .string(device) }
        guard let worker = try existing("workers", workerID) else {
            write([.create(collection: "workers", id: workerID, data: [
                "workerId": .string(workerID), "location": .object(location), "updatedAt": timeValue,
            ])])
            return
        }
        // A fix older than the one shown (a phone flushing its backlog) only joins the track.
        if let shown = worker.data["location"]?["recordedAt"]?.doubleValue, Double(recordedAt) < shown { return }
        try update(worker, ["location": .object(location), "updatedAt": timeValue])
    }

    // MARK: - Resources

    func resourceCreated() throws {
        let resource = try payload(ResourceCreated.self)
        guard resource.quantity >= 0 else { throw ApplyFailure("resources/\(resource.resourceId) cannot start with a negative quantity (\(resource.quantity))") }
        var data: JSONObject = [
            "resourceId": .string(resource.resourceId), "name": .string(resource.name), "quantity": .number(resource.quantity),
            "createdAt": timeValue, "updatedAt": timeValue,
        ]
        if let category = resource.category { data["category"] = .string(category) }
        if let unit = resource.unit { data["unit"] = .string(unit) }
        if let site = resource.site { data["site"] = .string(site) }
        if let location = resource.location { data["location"] = ["lat": .number(location.lat), "lon": .number(location.lon)] }
        data["reserved"] = 0
        data["available"] = .number(resource.quantity)
        try create("resources", resource.resourceId, .object(data))
    }

    func resourceAdjusted() throws {
        let adjustment = try payload(ResourceAdjusted.self)
        let resource = try require("resources", adjustment.resourceId)
        let quantity = resource.data["quantity"]?.doubleValue ?? 0
        let updated = quantity + adjustment.delta
        guard updated >= 0 else {
            throw ApplyFailure("adjusting resources/\(adjustment.resourceId) by \(Self.format(adjustment.delta)) would leave \(Self.format(updated)) (has \(Self.format(quantity))); stock never goes below zero")
        }
        var last: JSONObject = ["delta": .number(adjustment.delta), "eventId": .string(event.id)]
        if let reason = adjustment.reason { last["reason"] = .string(reason) }
        let reserved = resource.data["reserved"]?.doubleValue ?? 0
        try update(resource, [
            "quantity": .number(updated), "available": .number(updated - reserved), "updatedAt": timeValue, "lastAdjustment": .object(last),
        ])
    }

    /// Reserved stock stays on hand but is no longer available to other tasks.
    func resourceReservation(reserve: Bool) throws {
        let change = try payload(ResourceReservation.self)
        let resource = try require("resources", change.resourceId)
        let quantity = resource.data["quantity"]?.doubleValue ?? 0
        var reservations = resource.data["reservations"]?.objectValue ?? [:]
        if reserve {
            guard reservations[change.taskId] == nil else { throw ApplyFailure("resources/\(change.resourceId) is already reserved for task \(change.taskId)") }
            reservations[change.taskId] = .number(change.quantity)
        } else {
            guard reservations[change.taskId] != nil else { throw ApplyFailure("resources/\(change.resourceId) holds no reservation for task \(change.taskId)") }
            reservations[change.taskId] = Optional<JSONValue>.none
        }
        let reserved = reservations.fields.reduce(0) { $0 + ($1.value.doubleValue ?? 0) }
        guard quantity - reserved >= 0 else {
            throw ApplyFailure("reserving \(Self.format(change.quantity)) of resources/\(change.resourceId) would leave \(Self.format(quantity - reserved)) available")
        }
        try update(resource, [
            "reservations": .object(reservations), "reserved": .number(reserved), "available": .number(quantity - reserved), "updatedAt": timeValue,
        ])
    }

    // MARK: - Tasks

    func taskCreated() throws {
        let task = try payload(TaskCreated.self)
        var data: JSONObject = [
            "taskId": .string(task.taskId), "title": .string(task.title),
            "status": .string((task.assigneeId == nil ? TaskStatus.open : .assigned).rawValue),
            "createdAt": timeValue, "updatedAt": timeValue,
        ]
        if let description = task.description { data["description"] = .string(description) }
        if let priority = task.priority { data["priority"] = .number(Double(priority)) }
        if let assignee = task.assigneeId { data["assigneeId"] = .string(assignee) }
        if let location = task.location { data["location"] = ["lat": .number(location.lat), "lon": .number(location.lon)] }
        if let dueAt = task.dueAt { data["dueAt"] = .string(dueAt) }
        if let by = task.by { data["createdBy"] = .string(by) }
        try create("tasks", task.taskId, .object(data))
    }

    func taskTransition() throws {
        let transition = try payload(TaskTransition.self)
        let task = try require("tasks", transition.taskId)
        guard let current = task.data["status"]?.stringValue.flatMap(TaskStatus.init(rawValue:)) else {
            throw ApplyFailure("tasks/\(transition.taskId) has no valid status")
        }
        guard let next = current.after(event.eventType) else {
            throw ApplyFailure("tasks/\(transition.taskId) cannot go from \(current.rawValue) via \(event.eventType)")
        }
        var fields: [(key: String, value: JSONValue)] = [("status", .string(next.rawValue)), ("updatedAt", timeValue)]
        if event.eventType == EventType.taskAssigned {
            guard let assignee = transition.assigneeId, !assignee.isEmpty else { throw ApplyFailure("task.assigned for tasks/\(transition.taskId) names no assigneeId") }
            fields.append(("assigneeId", .string(assignee)))
        }
        if let by = transition.by { fields.append(("lastChangedBy", .string(by))) }
        if let attachments = transition.attachments, !attachments.isEmpty {
            let known = task.data["attachments"]?.arrayValue ?? []
            fields.append(("attachments", .array(known + attachments.map(JSONValue.string).filter { !known.contains($0) })))
        }
        try update(task, fields)
        try reference(transition.attachments, ["kind": "task", "id": .string(transition.taskId), "eventType": .string(event.eventType)])
    }

    // MARK: - Files

    func fileUploaded() throws {
        let file = try payload(FileUploaded.self)
        try create("files", file.fileId, [
            "fileId": .string(file.fileId), "area": .string(file.area), "ownerId": .string(file.ownerId), "name": .string(file.name),
            "contentType": .string(file.contentType), "size": .number(Double(file.size)), "sha256": .string(file.sha256),
            "path": .string(file.path), "uploadedBy": .string(file.uploadedBy), "createdAt": timeValue, "streamId": .string(event.id),
            "references": [],
        ])
    }

    func fileDeleted() throws {
        let deletion = try payload(FileDeleted.self)
        let file = try require("files", deletion.fileId)
        write([.delete(collection: "files", id: file.id, ifVersion: file.version)])
    }

    /// Notes on each attached file what refers to it; a file deleted since is skipped.
    func reference(_ fileIDs: [String]?, _ reference: JSONValue) throws {
        for fileID in fileIDs ?? [] {
            guard let file = try existing("files", fileID) else { continue }
            var references = file.data["references"]?.arrayValue ?? []
            guard !references.contains(reference) else { continue }
            references.append(reference)
            try update(file, ["references": .array(references)])
        }
    }

    // MARK: - Notifications

    func notificationCreated() throws {
        let notification = try payload(NotificationCreated.self)
        guard let recipient = notification.recipient else {
            throw ApplyFailure("notifications/\(notification.notificationId) names no userId, role or roomId")
        }
        var data: JSONObject = [
            "notificationId": .string(notification.notificationId), "recipient": .string(recipient),
            "title": .string(notification.title), "read": false, "readBy": [], "createdAt": timeValue,
        ]
        if let userId = notification.userId { data["userId"] = .string(userId) }
        if let role = notification.role { data["role"] = .string(role) }
        if let roomId = notification.roomId { data["roomId"] = .string(roomId) }
        if let body = notification.body { data["body"] = .string(body) }
        if let subject = notification.subject { data["subject"] = .string(subject) }
        try create("notifications", notification.notificationId, .object(data))
    }

    func notificationRead() throws {
        let read = try payload(NotificationRead.self)
        let notification = try require("notifications", read.notificationId)
        var readBy = notification.data["readBy"]?.arrayValue ?? []
        if let reader = read.userId.map(JSONValue.string), !readBy.contains(reader) { readBy.append(reader) }
        // A personal notification is read once its user (or, in older events, anyone) read it.
        let personal = notification.data["userId"]
        let readByTheirUser = personal != nil && (read.userId == nil || personal == read.userId.map(JSONValue.string))
        if notification.data["read"] == .bool(true) || !readByTheirUser {
            guard readBy != (notification.data["readBy"]?.arrayValue ?? []) else { return }
            try update(notification, ["readBy": .array(readBy)])
            return
        }
        try update(notification, ["read": true, "readAt": timeValue, "readBy": .array(readBy)])
    }

    // MARK: - Formatting

    /// A stream id that sorts as text in stream order: `MS-SEQ` with both parts zero-padded.
    static func sortKey(_ id: String) -> String {
        let (milliseconds, sequence) = streamIDParts(id)
        let ms = String(milliseconds), seq = String(sequence)
        return String(repeating: "0", count: max(0, 15 - ms.count)) + ms + "-" + String(repeating: "0", count: max(0, 10 - seq.count)) + seq
    }

    static func format(_ number: Double) -> String {
        number.rounded() == number && abs(number) < 1e15 ? String(Int64(number)) : String(number)
    }

    static func describe(_ error: any Error) -> String {
        switch error {
        case DecodingError.keyNotFound(let key, _): return "missing field '\(key.stringValue)'"
        case DecodingError.typeMismatch(_, let context), DecodingError.valueNotFound(_, let context):
            return "wrong type at '\(context.codingPath.map(\.stringValue).joined(separator: "."))'"
        case DecodingError.dataCorrupted(let context): return context.debugDescription
        default: return "\(error)"
        }
    }
}
