/// A task's state, and the transitions between them.
///
/// ```
/// open ──assign──▶ assigned ──accept──▶ accepted ──start──▶ in_progress ──complete──▶ completed
///   ▲                 │ assign (reassign)                                     
///   └─ any state but completed/cancelled ──cancel──▶ cancelled
/// ```
public enum TaskStatus: String, Codable, Sendable, Hashable, CaseIterable {
    case open
    case assigned
    case accepted
    case inProgress = "in_progress"
    case completed
    case cancelled

    public var isTerminal: Bool { self == .completed || self == .cancelled }

    /// The state after `eventType`, or `nil` when the transition is not allowed.
    public func after(_ eventType: String) -> TaskStatus? {
        switch (eventType, self) {
        case (EventType.taskAssigned, .open), (EventType.taskAssigned, .assigned), (EventType.taskAssigned, .accepted):
            return .assigned
        case (EventType.taskAccepted, .assigned):
            return .accepted
        case (EventType.taskStarted, .accepted):
            return .inProgress
        case (EventType.taskCompleted, .inProgress):
            return .completed
        case (EventType.taskCancelled, let status) where !status.isTerminal:
            return .cancelled
        default:
            return nil
        }
    }
}
