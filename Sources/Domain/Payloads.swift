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
    /// Meters above sea level.
    public var altitude: Double?
    /// Battery level, percent.
    public var battery: Double?
    /// When the device took the fix (ISO 8601); defaults to the event's timestamp.
    public var recordedAt: String?
    /// The device that sent it, for positions from tracking apps.
    public var deviceId: String?

    public init(
        workerId: String, lat: Double, lon: Double, accuracy: Double? = nil, speed: Double? = nil, heading: Double? = nil,
        altitude: Double? = nil, battery: Double? = nil, recordedAt: String? = nil, deviceId: String? = nil
    ) {
        self.workerId = workerId
        self.lat = lat
        self.lon = lon
        self.accuracy = accuracy
        self.speed = speed
        self.heading = heading
        self.altitude = altitude
        self.battery = battery
        self.recordedAt = recordedAt
        self.deviceId = deviceId
    }
}

public struct ResourceCreated: Codable, Sendable, Hashable {
    public var resourceId: String
    public var name: String
    public var category: String?
    public var unit: String?
    public var quantity: Double
    /// Where it is kept: a named site (depot, van) and/or a position.
    public var site: String?
    public var location: GeoPoint?

    public init(resourceId: String, name: String, category: String? = nil, unit: String? = nil, quantity: Double, site: String? = nil, location: GeoPoint? = nil) {
        self.resourceId = resourceId
        self.name = name
        self.category = category
        self.unit = unit
        self.quantity = quantity
        self.site = site
        self.location = location
    }
}

/// `resource.reserved` and `resource.released`: stock set aside for a task, or given back.
public struct ResourceReservation: Codable, Sendable, Hashable {
    public var resourceId: String
    public var taskId: String
    public var quantity: Double

    public init(resourceId: String, taskId: String, quantity: Double) {
        self.resourceId = resourceId
        self.taskId = taskId
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
    /// 1 low, 2 normal, 3 high, 4 urgent.
    public var priority: Int?
    public var assigneeId: String?
    public var location: GeoPoint?
    /// When it should be done (ISO 8601).
    public var dueAt: String?
    /// Who created it.
    public var by: String?

    public init(taskId: String, title: String, description: String? = nil, priority: Int? = nil, assigneeId: String? = nil, location: GeoPoint? = nil, dueAt: String? = nil, by: String? = nil) {
        self.taskId = taskId
        self.title = title
        self.description = description
        self.priority = priority
        self.assigneeId = assigneeId
        self.location = location
        self.dueAt = dueAt
        self.by = by
    }
}

/// A place: latitude and longitude in degrees (WGS 84).
public struct GeoPoint: Codable, Sendable, Hashable {
    public var lat: Double
    public var lon: Double

    public init(lat: Double, lon: Double) {
        self.lat = lat
        self.lon = lon
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
    /// Files of the task's area that go with the step (photos, a signature).
    public var attachments: [String]?

    public init(taskId: String, assigneeId: String? = nil, by: String? = nil, note: String? = nil, attachments: [String]? = nil) {
        self.taskId = taskId
        self.assigneeId = assigneeId
        self.by = by
        self.note = note
        self.attachments = attachments
    }
}

/// `file.uploaded`: an attachment's bytes are stored.
public struct FileUploaded: Codable, Sendable, Hashable {
    public var fileId: String
    /// `rooms`, `tasks`, `workers` or `incidents`.
    public var area: String
    public var ownerId: String
    /// The sanitized display name.
    public var name: String
    /// Detected from the bytes.
    public var contentType: String
    public var size: Int64
    /// Lowercase hex SHA-256 of the bytes.
    public var sha256: String
    /// Below the file store's root.
    public var path: String
    public var uploadedBy: String

    public init(fileId: String, area: String, ownerId: String, name: String, contentType: String, size: Int64, sha256: String, path: String, uploadedBy: String) {
        self.fileId = fileId
        self.area = area
        self.ownerId = ownerId
        self.name = name
        self.contentType = contentType
        self.size = size
        self.sha256 = sha256
        self.path = path
        self.uploadedBy = uploadedBy
    }
}

/// `file.deleted`: an attachment and its bytes are gone.
public struct FileDeleted: Codable, Sendable, Hashable {
    public var fileId: String
    public var area: String
    public var ownerId: String
    /// Who deleted it (`gc` when the garbage collector found its bytes missing).
    public var by: String
    public var reason: String?

    public init(fileId: String, area: String, ownerId: String, by: String, reason: String? = nil) {
        self.fileId = fileId
        self.area = area
        self.ownerId = ownerId
        self.by = by
        self.reason = reason
    }
}

/// A notification for one user, everyone with a role, or the members of a room (one of the three).
public struct NotificationCreated: Codable, Sendable, Hashable {
    public var notificationId: String
    public var userId: String?
    public var role: String?
    public var roomId: String?
    public var title: String
    public var body: String?
    /// What it is about, e.g. `task:t1`.
    public var subject: String?

    public init(notificationId: String, userId: String? = nil, role: String? = nil, roomId: String? = nil, title: String, body: String? = nil, subject: String? = nil) {
        self.notificationId = notificationId
        self.userId = userId
        self.role = role
        self.roomId = roomId
        self.title = title
        self.body = body
        self.subject = subject
    }

    /// `user:ID`, `role:NAME` or `room:ID`: who it is for, as one queryable value.
    public var recipient: String? {
        if let userId { return "user:" + userId }
        if let role { return "role:" + role }
        if let roomId { return "room:" + roomId }
        return nil
    }
}

public struct NotificationRead: Codable, Sendable, Hashable {
    public var notificationId: String
    /// Who read it; each reader of a role or room notification is kept.
    public var userId: String?

    public init(notificationId: String, userId: String? = nil) {
        self.notificationId = notificationId
        self.userId = userId
    }
}

// MARK: - Rooms

public struct RoomMember: Codable, Sendable, Hashable {
    public var roomId: String
    public var userId: String

    public init(roomId: String, userId: String) {
        self.roomId = roomId
        self.userId = userId
    }
}

// MARK: - Workers and devices

public struct WorkerRegistered: Codable, Sendable, Hashable {
    public var workerId: String
    public var name: String
    public var phone: String?
    public var team: String?
    public var skills: [String]?

    public init(workerId: String, name: String, phone: String? = nil, team: String? = nil, skills: [String]? = nil) {
        self.workerId = workerId
        self.name = name
        self.phone = phone
        self.team = team
        self.skills = skills
    }
}

/// Changed fields of a worker; absent fields stay as they are.
public struct WorkerUpdated: Codable, Sendable, Hashable {
    public var workerId: String
    public var name: String?
    public var phone: String?
    public var team: String?
    public var skills: [String]?

    public init(workerId: String, name: String? = nil, phone: String? = nil, team: String? = nil, skills: [String]? = nil) {
        self.workerId = workerId
        self.name = name
        self.phone = phone
        self.team = team
        self.skills = skills
    }
}

/// `worker.deactivated` and `worker.reactivated`.
public struct WorkerActivation: Codable, Sendable, Hashable {
    public var workerId: String

    public init(workerId: String) {
        self.workerId = workerId
    }
}

/// A tracking device of a worker. The secret itself never enters a stream.
public struct DeviceRegistered: Codable, Sendable, Hashable {
    public var deviceId: String
    public var workerId: String
    /// `osmand` or `owntracks`.
    public var `protocol`: String
    /// OwnTracks user and device names.
    public var user: String?
    public var device: String?

    public init(deviceId: String, workerId: String, protocol: String, user: String? = nil, device: String? = nil) {
        self.deviceId = deviceId
        self.workerId = workerId
        self.protocol = `protocol`
        self.user = user
        self.device = device
    }
}

public struct DeviceDeactivated: Codable, Sendable, Hashable {
    public var deviceId: String
    public var workerId: String

    public init(deviceId: String, workerId: String) {
        self.deviceId = deviceId
        self.workerId = workerId
    }
}
