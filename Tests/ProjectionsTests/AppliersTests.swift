import DocumentStore
import Domain
import Foundation
import Projections
import Streams
import Testing

/// Applies events one by one to an in-memory store, as the projector would.
struct ApplierHarness {
    let store: DocumentStore
    var sequence = 1_700_000_000_000

    init() throws {
        store = try DocumentStore(path: ":memory:")
    }

    func event(_ type: String, _ payload: some Encodable, tenant: String = "acme", stream: String = "s", id: String) throws -> StreamEvent {
        let text = String(decoding: try JSONEncoder().encode(payload), as: UTF8.self)
        return StreamEvent(id: id, stream: stream, eventType: type, payload: text, timestamp: "", tenant: tenant)
    }

    /// Applies and returns the outcome, or the failure's text.
    mutating func apply(_ type: String, _ payload: some Encodable, tenant: String = "acme") async throws -> Result<ApplyOutcome, ApplyFailure> {
        sequence += 1
        let event = try event(type, payload, tenant: tenant, id: "\(sequence)-0")
        return try await store.write { transaction in
            let workspace = DocumentWorkspace(transaction)
            do {
                let outcome = try Appliers.apply(event, in: workspace)
                try workspace.flush()
                return .success(outcome)
            } catch let failure as ApplyFailure {
                return .failure(failure)
            }
        }
    }

    func document(_ collection: String, _ id: String, tenant: String = "acme") async throws -> Document? {
        try await store.get(tenant: tenant, collection: collection, id: id)
    }
}

extension Result where Failure == ApplyFailure {
    var failureText: String? {
        if case .failure(let failure) = self { return failure.description }
        return nil
    }
}

@Suite("Appliers")
struct AppliersTests {
    @Test func tasksFollowTheStateMachineAndIllegalTransitionsFail() async throws {
        var harness = try ApplierHarness()
        _ = try await harness.apply(EventType.taskCreated, TaskCreated(taskId: "t1", title: "Fix pump", priority: 2))
        #expect(try await harness.document("tasks", "t1")?.data["status"] == "open")
        let early = try await harness.apply(EventType.taskStarted, TaskTransition(taskId: "t1"))
        #expect(early.failureText == "tasks/t1 cannot go from open via task.started")
        #expect(try await harness.document("tasks", "t1")?.data["status"] == "open")
        let noAssignee = try await harness.apply(EventType.taskAssigned, TaskTransition(taskId: "t1"))
        #expect(noAssignee.failureText?.contains("names no assigneeId") == true)

        for (type, transition, status) in [
            (EventType.taskAssigned, TaskTransition(taskId: "t1", assigneeId: "w1", by: "dispatch"), "assigned"),
            (EventType.taskAssigned, TaskTransition(taskId: "t1", assigneeId: "w2"), "assigned"),
            (EventType.taskAccepted, TaskTransition(taskId: "t1", by: "w2"), "accepted"),
            (EventType.taskStarted, TaskTransition(taskId: "t1"), "in_progress"),
            (EventType.taskCompleted, TaskTransition(taskId: "t1"), "completed"),
        ] {
            let result = try await harness.apply(type, transition)
            #expect(result.failureText == nil, "\(type): \(result)")
            #expect(try await harness.document("tasks", "t1")?.data["status"] == .string(status))
        }
        #expect(try await harness.document("tasks", "t1")?.data["assigneeId"] == "w2")
        let afterDone = try await harness.apply(EventType.taskCancelled, TaskTransition(taskId: "t1"))
        #expect(afterDone.failureText == "tasks/t1 cannot go from completed via task.cancelled")
        let missing = try await harness.apply(EventType.taskAccepted, TaskTransition(taskId: "nope"))
        #expect(missing.failureText == "tasks/nope does not exist")
        let duplicate = try await harness.apply(EventType.taskCreated, TaskCreated(taskId: "t1", title: "again"))
        #expect(duplicate.failureText == "tasks/t1 already exists")
    }

    @Test func everyTransitionOfTheStateMachine() {
        let events = [EventType.taskAssigned, EventType.taskAccepted, EventType.taskStarted, EventType.taskCompleted, EventType.taskCancelled]
        var allowed: [String] = []
        for status in TaskStatus.allCases {
            for event in events {
                if let next = status.after(event) { allowed.append("\(status.rawValue) -\(event)-> \(next.rawValue)") }
            }
        }
        #expect(allowed == [
            "open -task.assigned-> assigned", "open -task.cancelled-> cancelled",
            "assigned -task.assigned-> assigned", "assigned -task.accepted-> accepted", "assigned -task.cancelled-> cancelled",
            "accepted -task.assigned-> assigned", "accepted -task.started-> in_progress", "accepted -task.cancelled-> cancelled",
            "in_progress -task.completed-> completed", "in_progress -task.cancelled-> cancelled",
        ])
    }

    @Test func stockNeverGoesBelowZero() async throws {
        var harness = try ApplierHarness()
        _ = try await harness.apply(EventType.resourceCreated, ResourceCreated(resourceId: "r1", name: "Sandbags", category: "flood", unit: "bag", quantity: 10))
        #expect(try await harness.apply(EventType.resourceAdjusted, ResourceAdjusted(resourceId: "r1", delta: -7, reason: "levee")).failureText == nil)
        let tooMuch = try await harness.apply(EventType.resourceAdjusted, ResourceAdjusted(resourceId: "r1", delta: -5))
        #expect(tooMuch.failureText == "adjusting resources/r1 by -5 would leave -2 (has 3); stock never goes below zero")
        let resource = try #require(try await harness.document("resources", "r1"))
        #expect(resource.data["quantity"] == 3)
        #expect(resource.data[path: "lastAdjustment.reason"] == "levee")
        #expect(try await harness.apply(EventType.resourceAdjusted, ResourceAdjusted(resourceId: "r1", delta: -3)).failureText == nil)
        #expect(try await harness.document("resources", "r1")?.data["quantity"] == 0)
        let negative = try await harness.apply(EventType.resourceCreated, ResourceCreated(resourceId: "r2", name: "x", quantity: -1))
        #expect(negative.failureText?.contains("negative") == true)
    }

    @Test func locationsKeepTheLatestFixAndEveryTrackPoint() async throws {
        var harness = try ApplierHarness()
        _ = try await harness.apply(EventType.locationReported, LocationReported(workerId: "w1", lat: 52.5, lon: 13.4, accuracy: 5, recordedAt: "2026-11-22T14:02:00Z"))
        _ = try await harness.apply(EventType.locationReported, LocationReported(workerId: "w1", lat: 52.6, lon: 13.5, recordedAt: "2026-11-22T14:03:00.500Z"))
        // A late, older fix joins the track but does not move the worker back.
        _ = try await harness.apply(EventType.locationReported, LocationReported(workerId: "w1", lat: 52.55, lon: 13.45, recordedAt: "2026-11-22T14:02:30Z"))
        let worker = try #require(try await harness.document("workers", "w1"))
        #expect(worker.data[path: "location.lat"] == 52.6)
        #expect(worker.data[path: "location.recordedAt"] == .number(1_795_356_180_500))
        let track = try await harness.store.read { try $0.track(tenant: "acme", workerID: "w1", from: 0, to: .max) }
        #expect(track.map(\.lat) == [52.5, 52.55, 52.6])
        let outOfRange = try await harness.apply(EventType.locationReported, LocationReported(workerId: "w1", lat: 91, lon: 0))
        #expect(outOfRange.failureText == "position 91.0,0.0 of worker w1 is out of range")
    }

    @Test func aRegistrationProjectedAfterTheWorkersFirstFixCompletesItsDocument() async throws {
        var harness = try ApplierHarness()
        // The API accepts positions once the registration is written; the projector may apply
        // the locationUpdates stream before the workers stream.
        _ = try await harness.apply(EventType.locationReported, LocationReported(workerId: "w1", lat: 52.5, lon: 13.4, recordedAt: "2026-11-22T14:02:00Z"))
        let registered = try await harness.apply(EventType.workerRegistered, WorkerRegistered(workerId: "w1", name: "Ana", team: "north"))
        #expect(registered.failureText == nil)
        let worker = try #require(try await harness.document("workers", "w1"))
        #expect(worker.data["name"] == "Ana")
        #expect(worker.data["team"] == "north")
        #expect(worker.data["active"] == true)
        #expect(worker.data[path: "location.lat"] == 52.5)
        #expect(worker.data["createdAt"] != nil)
        // A second registration of the same worker is still refused.
        let again = try await harness.apply(EventType.workerRegistered, WorkerRegistered(workerId: "w1", name: "Ana"))
        #expect(again.failureText == "workers/w1 already exists")
    }

    @Test func messagesAreCreatedEditedAndDeleted() async throws {
        var harness = try ApplierHarness()
        _ = try await harness.apply(EventType.roomCreated, RoomCreated(roomId: "r7", name: "Storm desk", members: ["u1", "u2"]))
        _ = try await harness.apply(EventType.messageCreated, MessageCreated(messageId: "m1", roomId: "r7", senderId: "u1", text: "on my way"))
        _ = try await harness.apply(EventType.messageEdited, MessageEdited(messageId: "m1", text: "on my way, 5 min"))
        #expect(try await harness.document("messages", "m1")?.data["text"] == "on my way, 5 min")
        _ = try await harness.apply(EventType.messageDeleted, MessageDeleted(messageId: "m1"))
        let deleted = try #require(try await harness.document("messages", "m1"))
        #expect(deleted.data["deleted"] == true && deleted.data["text"] == "")
        let editDeleted = try await harness.apply(EventType.messageEdited, MessageEdited(messageId: "m1", text: "x"))
        #expect(editDeleted.failureText == "messages/m1 was deleted and cannot be edited")
        #expect(try await harness.document("rooms", "r7")?.data["members"] == ["u1", "u2"])
    }

    @Test func notificationsAreCreatedAndRead() async throws {
        var harness = try ApplierHarness()
        _ = try await harness.apply(EventType.notificationCreated, NotificationCreated(notificationId: "n1", userId: "w1", title: "New task"))
        #expect(try await harness.document("notifications", "n1")?.data["read"] == false)
        _ = try await harness.apply(EventType.notificationRead, NotificationRead(notificationId: "n1"))
        #expect(try await harness.document("notifications", "n1")?.data["read"] == true)
        #expect(try await harness.apply(EventType.notificationRead, NotificationRead(notificationId: "n9")).failureText == "notifications/n9 does not exist")
    }

    @Test func badPayloadsAndUnknownTypesAreReportedNotFatal() async throws {
        var harness = try ApplierHarness()
        let bad = try await harness.apply(EventType.taskCreated, ["title": "no id"])
        #expect(bad.failureText == "payload of task.created is not a valid TaskCreated: missing field 'taskId'")
        let unknown = try await harness.apply("weather.changed", ["wind": 90])
        #expect(try unknown.get() == .ignored)
    }

    @Test func tenantsAreKeptApart() async throws {
        var harness = try ApplierHarness()
        _ = try await harness.apply(EventType.taskCreated, TaskCreated(taskId: "t1", title: "acme's"), tenant: "acme")
        _ = try await harness.apply(EventType.taskCreated, TaskCreated(taskId: "t1", title: "globex's"), tenant: "globex")
        #expect(try await harness.document("tasks", "t1", tenant: "acme")?.data["title"] == "acme's")
        #expect(try await harness.document("tasks", "t1", tenant: "globex")?.data["title"] == "globex's")
    }
}
