/// Payloads of the events, as JSON in the entry's `payload` field.

public struct RoomCreated: Codable, Sendable, Hashable {
    public var roomId: String
    public var name: String
    public var members: [String]?

    public init(roomId: String, name: String, members: [String]? = nil) {
        self.roomId = roomId
        self.name = name
        self.members = members
    }
}

public struct MessageCreated: Codable, Sendable, Hashable {
    public var messageId: String
    public var roomId: String
    public var senderId: String
    public var text: String
    public var attachments: [String]?

    public init(messageId: String, roomId: String, senderId: String, text: String, attachments: [String]? = nil) {
        self.messageId = messageId
        self.roomId = roomId
        self.senderId = senderId
        self.text = text
        self.attachments = attachments
    }
}

public struct MessageEdited: Codable, Sendable, Hashable {
    public var messageId: String
    public var text: String

    public init(messageId: String, text: String) {
        self.messageId = messageId
        self.text = text
    }
}

public struct MessageDeleted: Codable, Sendable, Hashable {
    public var messageId: String

    public init(messageId: String) {
        self.messageId = messageId
    }
}

public struct LocationReported: Codable, Sendable, Hashable {
    public var workerId: String
    public var lat: Double
    public var lon: Double
    public var accuracy: Double?
    public var speed: Double?
    public var heading: Double?
    /// When the device took the fix (ISO 8601); defaults to the event's timestamp.
    public var recordedAt: String?

    public init(workerId: String, lat: Double, lon: Double, accuracy: Double? = nil, speed: Double? = nil, heading: Double? = nil, recordedAt: String? = nil) {
        self.workerId = workerId
        self.lat = lat
        self.lon = lon
        self.accuracy = accuracy
        self.speed = speed
        self.heading = heading
        self.recordedAt = recordedAt
    }
}

public struct ResourceCreated: Codable, Sendable, Hashable {
    public var resourceId: String
    public var name: String
    public var category: String?
    public var unit: String?
    public var quantity: Double

    public init(resourceId: String, name: String, category: String? = nil, unit: String? = nil, quantity: Double) {
        self.resourceId = resourceId
        self.name = name
        self.category = category
        self.unit = unit
        self.quantity = quantity
    }
}

public struct ResourceAdjusted: Codable, Sendable, Hashable {
    public var resourceId: String
    /// Added to the quantity; negative to take stock out.
    public var delta: Double
    public var reason: String?

    public init(resourceId: String, delta: Double, reason: String? = nil) {
        self.resourceId = resourceId
        self.delta = delta
        self.reason = reason
    }
}

public struct TaskCreated: Codable, Sendable, Hashable {
    public var taskId: String
    public var title: String
    public var description: String?
    public var priority: Int?
    public var assigneeId: String?

    public init(taskId: String, title: String, description: String? = nil, priority: Int? = nil, assigneeId: String? = nil) {
        self.taskId = taskId
        self.title = title
        self.description = description
        self.priority = priority
        self.assigneeId = assigneeId
    }
}

/// Payload of every task transition after creation (`task.assigned`, `task.started`…).
public struct TaskTransition: Codable, Sendable, Hashable {
    public var taskId: String
    /// Required for `task.assigned`.
    public var assigneeId: String?
    /// Who made the change.
    public var by: String?
    public var note: String?

    public init(taskId: String, assigneeId: String? = nil, by: String? = nil, note: String? = nil) {
        self.taskId = taskId
        self.assigneeId = assigneeId
        self.by = by
        self.note = note
    }
}

public struct NotificationCreated: Codable, Sendable, Hashable {
    public var notificationId: String
    public var userId: String
    public var title: String
    public var body: String?

    public init(notificationId: String, userId: String, title: String, body: String? = nil) {
        self.notificationId = notificationId
        self.userId = userId
        self.title = title
        self.body = body
    }
}

public struct NotificationRead: Codable, Sendable, Hashable {
    public var notificationId: String

    public init(notificationId: String) {
        self.notificationId = notificationId
    }
}
