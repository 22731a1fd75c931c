import DispatchBoard
import DocumentStore
import Domain
import Testing

@Suite("Dispatch board state from events")
struct BoardStateTests {
    let now = BoardFixture.now
    func event(_ type: String, _ payload: JSONValue, at time: Int64, stream: String = "taskAssignments") -> BoardEvent {
        BoardFixture.event(type, payload, at: time, stream: stream)
    }

    @Test func tasksFollowTheirLifecycleAndIllegalStepsAreIgnored() {
        var board = BoardState(tenant: "acme")
        board.apply(event("task.created", ["taskId": "T-1", "title": "Valve", "priority": 3], at: now), receivedAt: now)
        #expect(board.tasks["T-1"]?.status == .open)
        board.apply(event("task.assigned", ["taskId": "T-1", "assigneeId": "w-7"], at: now + 1), receivedAt: now)
        board.apply(event("task.accepted", ["taskId": "T-1"], at: now + 2), receivedAt: now)
        board.apply(event("task.started", ["taskId": "T-1"], at: now + 3), receivedAt: now)
        #expect(board.tasks["T-1"]?.status == .inProgress)
        #expect(board.tasks["T-1"]?.assigneeId == "w-7")
        #expect(board.currentTask(of: "w-7")?.id == "T-1")
        // A replayed accept after start changes nothing.
        board.apply(event("task.accepted", ["taskId": "T-1"], at: now + 4), receivedAt: now)
        #expect(board.tasks["T-1"]?.status == .inProgress)
        board.apply(event("task.completed", ["taskId": "T-1"], at: now + 5), receivedAt: now)
        #expect(board.tasks["T-1"]?.status == .completed)
        #expect(board.currentTask(of: "w-7") == nil)
    }

    @Test func workersMoveButNeverBackInTime() {
        var board = BoardState(tenant: "acme")
        board.apply(event("worker.registered", ["workerId": "w-1", "name": "Ana"], at: now, stream: "workers"), receivedAt: now)
        board.apply(event("location.reported", ["workerId": "w-1", "lat": 52.5, "lon": 13.4, "speed": 2, "battery": 80], at: now + 1_000, stream: "locationUpdates"), receivedAt: now)
        board.apply(event("location.reported", ["workerId": "w-1", "lat": 1, "lon": 1, "recordedAt": "2026-11-22T13:00:00Z"], at: now + 2_000, stream: "locationUpdates"), receivedAt: now)
        #expect(board.workers["w-1"]?.lat == 52.5)
        #expect(board.workers["w-1"]?.positionAt == now + 1_000)
        board.apply(event("location.reported", ["workerId": "w-1", "lat": 52.6, "lon": 13.5], at: now + 3_000, stream: "locationUpdates"), receivedAt: now)
        #expect(board.workers["w-1"]?.lat == 52.6)
        #expect(board.workers["w-1"]?.battery == 80)
        board.apply(event("worker.deactivated", ["workerId": "w-1"], at: now + 4_000, stream: "workers"), receivedAt: now)
        #expect(board.workers["w-1"]?.active == false)
    }

    @Test func chatCountsUnreadOutsideTheOpenRoomAndKeepsABoundedHistory() {
        var board = BoardState(tenant: "acme")
        board.apply(event("room.created", ["roomId": "ops", "name": "Ops"], at: now, stream: "chat:ops"), receivedAt: now)
        board.apply(event("room.created", ["roomId": "leads", "name": "Leads"], at: now, stream: "chat:leads"), receivedAt: now)
        #expect(board.selectedRoom == "ops")
        for n in 0..<(BoardState.messagesPerRoom + 50) {
            board.apply(event("message.created", ["messageId": .string("m\(n)"), "roomId": "leads", "senderId": "d-1", "text": .string("n\(n)")], at: now + Int64(n), stream: "chat:leads"), receivedAt: now)
        }
        #expect(board.rooms["leads"]?.unread == BoardState.messagesPerRoom + 50)
        #expect(board.rooms["leads"]?.messages.count == BoardState.messagesPerRoom)
        #expect(board.rooms["leads"]?.messages.last?.text == "n249")
        // The same message delivered twice (a resume seam) shows once.
        board.apply(event("message.created", ["messageId": "m249", "roomId": "leads", "senderId": "d-1", "text": "n249"], at: now, stream: "chat:leads"), receivedAt: now)
        #expect(board.rooms["leads"]?.messages.count == BoardState.messagesPerRoom)
        board.select(room: "leads")
        #expect(board.rooms["leads"]?.unread == 0)
        board.apply(event("message.edited", ["messageId": "m249", "text": "fixed"], at: now, stream: "chat:leads"), receivedAt: now)
        #expect(board.rooms["leads"]?.messages.last?.text == "fixed")
    }

    @Test func alertsAreNewestFirstAndBounded() {
        var board = BoardState(tenant: "acme")
        for n in 0..<(BoardState.maxAlerts + 10) {
            board.apply(event("notification.created", ["notificationId": .string("n\(n)"), "role": "dispatcher", "title": .string("alert \(n)")], at: now + Int64(n), stream: "notifications"), receivedAt: now)
        }
        #expect(board.alerts.count == BoardState.maxAlerts)
        #expect(board.alerts.first?.title == "alert 209")
        board.apply(event("resource.created", ["resourceId": "R-3", "name": "Sandbags", "quantity": 2], at: now, stream: "resourceUpdates"), receivedAt: now)
        board.apply(event("resource.adjusted", ["resourceId": "R-3", "delta": -2, "reason": "used on T-42"], at: now, stream: "resourceUpdates"), receivedAt: now)
        #expect(board.resources["R-3"]?.quantity == 0)
        #expect(board.alerts.first?.title == "Sandbags is out of stock")
    }

    @Test func eventsPerSecondCountsTheLastFiveSeconds() {
        var board = BoardState(tenant: "acme")
        for n in 0..<10_000 {
            board.apply(event("task.accepted", ["taskId": "none"], at: now, stream: "taskAssignments"), receivedAt: now + Int64(n))
        }
        // 10 000 events over 10 s: the last 5 s hold 5 000 of them.
        #expect(board.eventsPerSecond(now: now + 9_999) == 1_000)
        #expect(board.eventsApplied == 10_000)
        // Quiet for three seconds: only the last two seconds of traffic still count.
        #expect(board.eventsPerSecond(now: now + 12_999) == 400)
        #expect(board.eventsPerSecond(now: now + 60_000) == 0)
    }

    @Test func aRealtimeMessageBecomesAnEvent() throws {
        let message = try JSONValue(jsonText: #"{"type":"event","channel":"tasks","stream":"taskAssignments","id":"1795356120000-3","epoch":"e","eventType":"task.created","timestamp":"2026-11-22T14:02:00.000Z","payload":{"taskId":"T-1","title":"x"},"routing":{}}"#)
        let event = try #require(BoardEvent(message: message))
        #expect(event.time == 1_795_356_120_000)
        #expect(event.payload["taskId"] == "T-1")
        #expect(BoardEvent(message: ["type": "subscribed", "channel": "tasks"]) == nil)
    }
}
