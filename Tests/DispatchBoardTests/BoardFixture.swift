import DispatchBoard
import DocumentStore
import Domain
import Foundation

/// A small tenant at 14:02:00 UTC on 2026-11-22, built the way the client builds it: REST
/// snapshots first, then realtime events.
enum BoardFixture {
    static let now: Int64 = 1_795_356_120_000  // 2026-11-22T14:02:00Z
    static let minute: Int64 = 60_000

    static func event(_ type: String, _ payload: JSONValue, at time: Int64, stream: String = "taskAssignments", id: Int = 0) -> BoardEvent {
        BoardEvent(channel: "tasks", stream: stream, id: "\(time)-\(id)", epoch: "e1", eventType: type, time: time, payload: payload)
    }

    static func board() -> BoardState {
        var board = BoardState(tenant: "acme")
        board.load(
            workers: [
                ["workerId": "w-1", "name": "Ana Lima", "active": true, "location": ["lat": 52.52, "lon": 13.40, "recordedAt": .number(Double(now - 12_000)), "speed": 1.4, "battery": 87]],
                ["workerId": "w-2", "name": "Bo Chen", "active": true, "location": ["lat": 52.50, "lon": 13.37, "recordedAt": .number(Double(now - 9 * minute)), "battery": 23]],
                ["workerId": "w-3", "name": "Cleo Park", "active": false],
            ],
            tasks: [
                ["taskId": "T-41", "title": "Inspect pump", "status": "open", "priority": 2, "createdAt": .number(Double(now - 30 * minute)), "updatedAt": .number(Double(now - 30 * minute))],
                ["taskId": "T-42", "title": "Replace valve", "status": "in_progress", "priority": 4, "assigneeId": "w-1", "createdAt": .number(Double(now - 90 * minute)), "updatedAt": .number(Double(now - 5 * minute))],
                ["taskId": "T-40", "title": "Read meters", "status": "completed", "priority": 1, "assigneeId": "w-2", "createdAt": .number(Double(now - 300 * minute)), "updatedAt": .number(Double(now - 60 * minute))],
            ],
            rooms: [["roomId": "ops", "name": "Operations"], ["roomId": "leads", "name": "Leads"]],
            resources: [["resourceId": "R-3", "name": "Sandbags", "quantity": 40, "unit": "bag"]],
            now: now
        )
        board.select(room: "ops")
        board.load(messages: [
            ["messageId": "m-2", "senderId": "d-1", "text": "Storm front at 14:00", "createdAt": .number(Double(now - 3 * minute))],
            ["messageId": "m-1", "senderId": "w-1", "text": "On site", "createdAt": .number(Double(now - 8 * minute))],
        ], room: "ops")
        board.apply(event("message.created", ["messageId": "m-3", "roomId": "leads", "senderId": "d-2", "text": "Need two more crews"], at: now - minute, stream: "chat:leads"), receivedAt: now - minute)
        board.apply(event("notification.created", ["notificationId": "n-1", "role": "dispatcher", "title": "Flood warning", "body": "River gauge above 4 m"], at: now - 2 * minute, stream: "notifications"), receivedAt: now - 2 * minute)
        board.connection = .live
        return board
    }
}
