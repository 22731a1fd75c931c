import DocumentStore
import Domain

/// What the dispatcher sees, built from REST snapshots and then kept current by realtime
/// events. Every history is bounded, so a shift-long session keeps a flat memory.
public struct BoardState: Sendable {
    public struct Worker: Sendable, Hashable {
        public var id: String
        public var name: String
        public var active = true
        public var lat: Double?
        public var lon: Double?
        /// m/s as the device reported it.
        public var speed: Double?
        /// Percent.
        public var battery: Double?
        /// When the last position was taken (ms).
        public var positionAt: Int64?
    }

    public struct TaskItem: Sendable, Hashable {
        public var id: String
        public var title: String
        public var status: TaskStatus
        /// 1 low … 4 urgent.
        public var priority: Int
        public var assigneeId: String?
        public var createdAt: Int64
        public var updatedAt: Int64
    }

    public struct Message: Sendable, Hashable {
        public var id: String
        public var senderId: String
        public var text: String
        public var at: Int64
    }

    public struct Room: Sendable, Hashable {
        public var id: String
        public var name: String
        public var unread = 0
        /// Oldest first, at most `BoardState.messagesPerRoom`.
        public var messages: [Message] = []
    }

    public struct Alert: Sendable, Hashable {
        /// The notification's id; nil for alerts the board raises itself.
        public var id: String? = nil
        public var title: String
        public var body: String?
        public var at: Int64
    }

    public struct Resource: Sendable, Hashable {
        public var id: String
        public var name: String
        public var quantity: Double
        public var unit: String?
        /// The last adjustment counted in `quantity`.
        public var lastEventID: String?
    }

    public enum Connection: Sendable, Hashable {
        case connecting
        case live
        case reconnecting(attempt: Int, reason: String)
    }

    public static let messagesPerRoom = 200
    public static let maxAlerts = 200
    /// Finished tasks are kept this long after their last change ("done today" and a little more).
    public static let finishedTaskRetention: Int64 = 24 * 3_600_000

    public var tenant: String
    public var workers: [String: Worker] = [:]
    public var tasks: [String: TaskItem] = [:]
    public var rooms: [String: Room] = [:]
    public var resources: [String: Resource] = [:]
    /// Newest first.
    public var alerts: [Alert] = []
    public var selectedRoom: String?
    public var connection: Connection = .connecting
    /// The last outcome worth telling the dispatcher (a command's result, a server error).
    public var status: (text: String, isError: Bool)?
    /// Events applied since start.
    public private(set) var eventsApplied = 0
    /// Arrivals of the last five seconds in 100 ms buckets (a ring, so counting costs the same
    /// at 10 events/s and at 10 000).
    private var arrivalCounts = [Int](repeating: 0, count: BoardState.arrivalBuckets)
    private var arrivalBucketIDs = [Int64](repeating: -1, count: BoardState.arrivalBuckets)
    private static let arrivalBuckets = 50

    public init(tenant: String) {
        self.tenant = tenant
    }

    // MARK: - Events

    /// Applies one event; events of kinds the board does not show are ignored.
    public mutating func apply(_ event: BoardEvent, receivedAt now: Int64) {
        noteArrival(now)
        let payload = event.payload
        func string(_ key: String) -> String? { payload[key]?.stringValue }
        switch event.eventType {
        case EventType.locationReported:
            guard let id = string("workerId") else { return }
            var worker = workers[id] ?? Worker(id: id, name: id)
            let at = string("recordedAt").flatMap(ISOTime.milliseconds) ?? event.time
            // A phone flushing old fixes never moves the worker back.
            if let shown = worker.positionAt, at < shown { return }
            worker.lat = payload["lat"]?.doubleValue
            worker.lon = payload["lon"]?.doubleValue
            worker.speed = payload["speed"]?.doubleValue ?? worker.speed
            worker.battery = payload["battery"]?.doubleValue ?? worker.battery
            worker.positionAt = at
            workers[id] = worker
        case EventType.workerRegistered:
            guard let id = string("workerId") else { return }
            var worker = workers[id] ?? Worker(id: id, name: id)
            worker.name = string("name") ?? id
            worker.active = true
            workers[id] = worker
        case EventType.workerUpdated:
            guard let id = string("workerId"), let name = string("name") else { return }
            workers[id, default: Worker(id: id, name: id)].name = name
        case EventType.workerDeactivated, EventType.workerReactivated:
            guard let id = string("workerId") else { return }
            workers[id, default: Worker(id: id, name: id)].active = event.eventType == EventType.workerReactivated
        case EventType.taskCreated:
            // Already known (from a snapshot, or a resend at a resume seam): nothing to add.
            guard let id = string("taskId"), tasks[id] == nil else { return }
            tasks[id] = TaskItem(
                id: id, title: string("title") ?? id, status: string("assigneeId") == nil ? .open : .assigned,
                priority: payload["priority"]?.intValue ?? 2, assigneeId: string("assigneeId"), createdAt: event.time, updatedAt: event.time
            )
        case EventType.taskAssigned, EventType.taskAccepted, EventType.taskStarted, EventType.taskCompleted, EventType.taskCancelled:
            guard let id = string("taskId"), var task = tasks[id], let next = task.status.after(event.eventType) else { return }
            task.status = next
            task.updatedAt = event.time
            if event.eventType == EventType.taskAssigned { task.assigneeId = string("assigneeId") }
            tasks[id] = task
            pruneFinishedTasks(now: now)
        case EventType.roomCreated:
            guard let id = string("roomId") else { return }
            rooms[id] = rooms[id] ?? Room(id: id, name: string("name") ?? id)
            if selectedRoom == nil { selectedRoom = id }
        case EventType.messageCreated:
            guard let roomID = string("roomId"), let id = string("messageId") else { return }
            var room = rooms[roomID] ?? Room(id: roomID, name: roomID)
            guard !room.messages.contains(where: { $0.id == id }) else { return }
            room.messages.append(Message(id: id, senderId: string("senderId") ?? "?", text: string("text") ?? "", at: event.time))
            if room.messages.count > Self.messagesPerRoom { room.messages.removeFirst(room.messages.count - Self.messagesPerRoom) }
            if roomID != selectedRoom { room.unread += 1 }
            rooms[roomID] = room
        case EventType.messageEdited:
            guard let id = string("messageId"), let text = string("text") else { return }
            updateMessage(id) { $0.text = text }
        case EventType.messageDeleted:
            guard let id = string("messageId") else { return }
            updateMessage(id) { $0.text = "(deleted)" }
        case EventType.resourceCreated:
            guard let id = string("resourceId"), resources[id] == nil else { return }
            resources[id] = Resource(id: id, name: string("name") ?? id, quantity: payload["quantity"]?.doubleValue ?? 0, unit: string("unit"))
        case EventType.resourceAdjusted:
            guard let id = string("resourceId"), let delta = payload["delta"]?.doubleValue else { return }
            // Stock is a sum: an adjustment the snapshot already counted must not count twice.
            if let last = resources[id]?.lastEventID, !event.id.isEmpty, !isAfter(event.id, last) { return }
            resources[id, default: Resource(id: id, name: id, quantity: 0)].quantity += delta
            if !event.id.isEmpty { resources[id]?.lastEventID = event.id }
            if let quantity = resources[id]?.quantity, quantity <= 0 {
                addAlert(Alert(title: "\(resources[id]?.name ?? id) is out of stock", body: string("reason"), at: event.time))
            }
        case EventType.notificationCreated:
            let id = string("notificationId")
            if let id, alerts.contains(where: { $0.id == id }) { return }
            addAlert(Alert(id: id, title: string("title") ?? "notification", body: string("body"), at: event.time))
        default:
            return
        }
    }

    private mutating func updateMessage(_ id: String, _ change: (inout Message) -> Void) {
        for (roomID, room) in rooms {
            guard let index = room.messages.firstIndex(where: { $0.id == id }) else { continue }
            change(&rooms[roomID]!.messages[index])
            return
        }
    }

    public mutating func addAlert(_ alert: Alert) {
        alerts.insert(alert, at: 0)
        if alerts.count > Self.maxAlerts { alerts.removeLast(alerts.count - Self.maxAlerts) }
    }

    /// Drops finished tasks whose last change is older than the retention.
    mutating func pruneFinishedTasks(now: Int64) {
        guard tasks.count > 500 else { return }
        tasks = tasks.filter { !$0.value.status.isTerminal || now - $0.value.updatedAt < Self.finishedTaskRetention }
    }

    /// Opens a room: its unread count resets.
    public mutating func select(room id: String) {
        guard rooms[id] != nil else { return }
        selectedRoom = id
        rooms[id]?.unread = 0
    }

    // MARK: - Events per second

    private mutating func noteArrival(_ now: Int64) {
        eventsApplied += 1
        let bucket = now / 100
        let slot = Int(bucket % Int64(Self.arrivalBuckets))
        if arrivalBucketIDs[slot] != bucket {
            arrivalBucketIDs[slot] = bucket
            arrivalCounts[slot] = 0
        }
        arrivalCounts[slot] += 1
    }

    /// Events per second over the last five seconds (to the 100 ms).
    public func eventsPerSecond(now: Int64) -> Double {
        let newest = now / 100
        var recent = 0
        for slot in 0..<Self.arrivalBuckets where newest - arrivalBucketIDs[slot] < Int64(Self.arrivalBuckets) && arrivalBucketIDs[slot] <= newest {
            recent += arrivalCounts[slot]
        }
        return Double(recent) / 5
    }

    // MARK: - Snapshots

    /// Replaces what the board knows with REST snapshots (`/v1/workers`, `/v1/tasks`, …), as
    /// at start and after a gap the server could not fill.
    public mutating func load(workers: [JSONValue], tasks: [JSONValue], rooms: [JSONValue], resources: [JSONValue], now: Int64) {
        self.workers = [:]
        for document in workers {
            guard let id = document["workerId"]?.stringValue else { continue }
            var worker = Worker(id: id, name: document["name"]?.stringValue ?? id, active: document["active"]?.boolValue ?? true)
            if let location = document["location"] {
                worker.lat = location["lat"]?.doubleValue
                worker.lon = location["lon"]?.doubleValue
                worker.speed = location["speed"]?.doubleValue
                worker.battery = location["battery"]?.doubleValue
                worker.positionAt = location["recordedAt"]?.doubleValue.map { Int64($0) }
            }
            self.workers[id] = worker
        }
        self.tasks = [:]
        for document in tasks {
            guard let id = document["taskId"]?.stringValue else { continue }
            let status = document["status"]?.stringValue.flatMap(TaskStatus.init(rawValue:)) ?? .open
            let updated = Int64(document["updatedAt"]?.doubleValue ?? 0)
            if status.isTerminal, now - updated >= Self.finishedTaskRetention { continue }
            self.tasks[id] = TaskItem(
                id: id, title: document["title"]?.stringValue ?? id, status: status, priority: document["priority"]?.intValue ?? 2,
                assigneeId: document["assigneeId"]?.stringValue, createdAt: Int64(document["createdAt"]?.doubleValue ?? 0), updatedAt: updated
            )
        }
        var loadedRooms: [String: Room] = [:]
        for document in rooms {
            guard let id = document["roomId"]?.stringValue else { continue }
            var room = Room(id: id, name: document["name"]?.stringValue ?? id)
            room.messages = self.rooms[id]?.messages ?? []
            room.unread = self.rooms[id]?.unread ?? 0
            loadedRooms[id] = room
        }
        self.rooms = loadedRooms
        if selectedRoom == nil || loadedRooms[selectedRoom!] == nil { selectedRoom = loadedRooms.keys.sorted().first }
        self.resources = [:]
        for document in resources {
            guard let id = document["resourceId"]?.stringValue else { continue }
            self.resources[id] = Resource(
                id: id, name: document["name"]?.stringValue ?? id, quantity: document["quantity"]?.doubleValue ?? 0, unit: document["unit"]?.stringValue,
                lastEventID: document["lastAdjustment"]?["eventId"]?.stringValue
            )
        }
    }

    /// Adds rooms from `/v1/rooms` that the board does not know yet, keeping the rest.
    public mutating func add(rooms documents: [JSONValue]) {
        for document in documents {
            guard let id = document["roomId"]?.stringValue, rooms[id] == nil else { continue }
            rooms[id] = Room(id: id, name: document["name"]?.stringValue ?? id)
        }
        if selectedRoom == nil { selectedRoom = rooms.keys.sorted().first }
    }

    /// A room's recent messages (`/v1/rooms/{id}/messages`, newest first as the API pages them).
    public mutating func load(messages: [JSONValue], room id: String) {
        var list: [Message] = messages.reversed().compactMap { document in
            guard let messageID = document["messageId"]?.stringValue else { return nil }
            let deleted = document["deleted"]?.boolValue == true
            return Message(
                id: messageID, senderId: document["senderId"]?.stringValue ?? "?", text: deleted ? "(deleted)" : document["text"]?.stringValue ?? "",
                at: Int64(document["createdAt"]?.doubleValue ?? 0)
            )
        }
        if list.count > Self.messagesPerRoom { list.removeFirst(list.count - Self.messagesPerRoom) }
        rooms[id, default: Room(id: id, name: id)].messages = list
    }

    /// Notifications, newest first as the API lists them.
    public mutating func load(notifications: [JSONValue]) {
        alerts = notifications.prefix(Self.maxAlerts).map { document in
            Alert(id: document["notificationId"]?.stringValue, title: document["title"]?.stringValue ?? "notification", body: document["body"]?.stringValue, at: Int64(document["createdAt"]?.doubleValue ?? 0))
        }
    }

    /// The task a worker is on: the most recently changed one that is not finished.
    public func currentTask(of workerID: String) -> TaskItem? {
        tasks.values.filter { $0.assigneeId == workerID && !$0.status.isTerminal }.max { $0.updatedAt < $1.updatedAt }
    }
}

/// Whether stream id `a` comes after `b` (`ms-seq`, compared as numbers).
func isAfter(_ a: String, _ b: String) -> Bool {
    let parse = { (id: String) -> (Int64, Int64) in
        let parts = id.split(separator: "-")
        return (Int64(parts.first ?? "") ?? 0, Int64(parts.count > 1 ? parts[1] : "") ?? 0)
    }
    return parse(a) > parse(b)
}
