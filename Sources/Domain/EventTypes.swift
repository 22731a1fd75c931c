/// The event types FieldOps writes, by stream.
public enum EventType {
    // chat:ROOM
    public static let roomCreated = "room.created"
    public static let messageCreated = "message.created"
    public static let messageEdited = "message.edited"
    public static let messageDeleted = "message.deleted"
    public static let roomMemberAdded = "room.member_added"
    public static let roomMemberRemoved = "room.member_removed"
    // workers
    public static let workerRegistered = "worker.registered"
    public static let workerUpdated = "worker.updated"
    public static let workerDeactivated = "worker.deactivated"
    public static let workerReactivated = "worker.reactivated"
    public static let deviceRegistered = "device.registered"
    public static let deviceDeactivated = "device.deactivated"
    // locationUpdates
    public static let locationReported = "location.reported"
    // resourceUpdates
    public static let resourceCreated = "resource.created"
    public static let resourceAdjusted = "resource.adjusted"
    public static let resourceReserved = "resource.reserved"
    public static let resourceReleased = "resource.released"
    // taskAssignments
    public static let taskCreated = "task.created"
    public static let taskAssigned = "task.assigned"
    public static let taskAccepted = "task.accepted"
    public static let taskStarted = "task.started"
    public static let taskCompleted = "task.completed"
    public static let taskCancelled = "task.cancelled"
    // files: in the owner's stream (chat:ROOM, taskAssignments, workers, incidents)
    public static let fileUploaded = "file.uploaded"
    public static let fileDeleted = "file.deleted"
    // notifications
    public static let notificationCreated = "notification.created"
    public static let notificationRead = "notification.read"
}

/// The product's streams.
public enum StreamNames {
    /// Workers and their tracking devices.
    public static let workers = "workers"
    public static let locationUpdates = "locationUpdates"
    public static let resourceUpdates = "resourceUpdates"
    public static let taskAssignments = "taskAssignments"
    public static let notifications = "notifications"
    /// Material about incidents (their attachments).
    public static let incidents = "incidents"

    /// The stream of one chat room.
    public static func chat(_ roomID: String) -> String { "chat:" + roomID }
}
