/// Where an attachment belongs: the first level under a tenant's directory.
public enum FileArea: String, Sendable, Hashable, CaseIterable, Codable {
    /// Chat attachments, owned by a room.
    case rooms
    /// Photos, signatures and reports, owned by a task.
    case tasks
    /// A worker's documents, owned by the worker.
    case workers
    /// Material about an incident, owned by an incident id.
    case incidents
}
