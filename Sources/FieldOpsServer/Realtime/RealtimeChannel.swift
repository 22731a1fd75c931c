import Domain
import LiveTree
import Streams

/// A channel a realtime client subscribes to, and where its messages come from.
///
/// | channel | source | filter |
/// |---|---|---|
/// | `room:{id}` | stream `chat:{id}` | — |
/// | `worker:{id}` | stream `locationUpdates` | `workerId` |
/// | `locations` | stream `locationUpdates` (every worker; dispatchers) | — |
/// | `workers` | stream `workers` (registrations, changes, devices; dispatchers) | — |
/// | `tasks` | stream `taskAssignments` | — |
/// | `tasks:{assigneeId}` | stream `taskAssignments` | `assigneeId` |
/// | `resources` | stream `resourceUpdates` | — |
/// | `notifications:{userId}` | stream `notifications` | addressed to the user, their role or a room of theirs |
/// | `live:{path}` | the live tree's changes below the path | — |
///
/// Each channel also carries ephemeral messages published to it (never stored).
struct RealtimeChannel: Sendable, Hashable {
    enum Source: Sendable, Hashable {
        case stream(name: String, filter: Filter?)
        case live(LivePath)
    }

    enum Filter: Sendable, Hashable {
        /// The entry's routing field equals the value.
        case routing(field: String, value: String)
        /// A notification for this user: to them, to their role, or to a room they are in.
        case recipient(userID: String)
    }

    /// As the client wrote it.
    let name: String
    let source: Source

    /// - Throws: 400 `invalid_channel` naming the forms that exist.
    init(_ name: String) throws {
        self.name = name
        self.source = try Self.source(of: name)
    }

    private static func source(of name: String) throws -> Source {
        let parts = name.split(separator: ":", maxSplits: 1, omittingEmptySubsequences: false).map(String.init)
        let kind = parts[0]
        let argument = parts.count == 2 ? parts[1] : nil
        func id() throws -> String {
            guard let argument, StreamKeys.isIdentifier(argument, maxLength: 128) else {
                throw invalid(name, "'\(kind):' needs an id of 1-128 letters, digits, '-' or '_'")
            }
            return argument
        }
        switch (kind, argument) {
        case ("room", _): return .stream(name: StreamNames.chat(try id()), filter: nil)
        case ("worker", _): return .stream(name: StreamNames.locationUpdates, filter: .routing(field: "workerId", value: try id()))
        case ("locations", nil): return .stream(name: StreamNames.locationUpdates, filter: nil)
        case ("workers", nil): return .stream(name: StreamNames.workers, filter: nil)
        case ("tasks", nil): return .stream(name: StreamNames.taskAssignments, filter: nil)
        case ("tasks", _): return .stream(name: StreamNames.taskAssignments, filter: .routing(field: "assigneeId", value: try id()))
        case ("resources", nil): return .stream(name: StreamNames.resourceUpdates, filter: nil)
        case ("notifications", _): return .stream(name: StreamNames.notifications, filter: .recipient(userID: try id()))
        case ("live", let path?):
            guard let parsed = try? LivePath(path) else {
                throw invalid(name, "not a live path: segments hold no . $ # [ ] / or control characters, at most 32 levels")
            }
            return .live(parsed)
        default:
            throw invalid(name, "channels are room:ID, worker:ID, locations, workers, tasks, tasks:ASSIGNEE, resources, notifications:USER and live:PATH")
        }
    }

    static func invalid(_ name: String, _ message: String) -> APIError {
        APIError(.badRequest, code: "invalid_channel", message: "channel '\(name)': \(message)")
    }

    /// The pub/sub channel of the stream entries or live changes.
    func sourceChannel(_ keys: StreamKeys) -> String {
        switch source {
        case .stream(let name, _): keys.channel(name)
        case .live: keys.liveChanges
        }
    }

    /// The pub/sub channel of ephemeral messages published to this channel.
    func ephemeralChannel(_ keys: StreamKeys) -> String {
        keys.channel("realtime:" + name)
    }

    var streamName: String? {
        if case .stream(let name, _) = source { return name }
        return nil
    }

    /// Who may subscribe (and publish): dispatchers, services and admins everything of their
    /// tenant; a worker its own worker, tasks and notifications, the inventory, its rooms and
    /// the live paths it may read. A refusal never says whether the thing exists.
    func mayAccess(_ caller: Identity, access: LiveAccess) async throws -> Bool {
        if case .live(let path) = source { return try await access.mayRead(caller, path) }
        if caller.seesWholeTenant { return true }
        let parts = name.split(separator: ":", maxSplits: 1).map(String.init)
        switch parts[0] {
        case "worker", "tasks", "notifications":
            return parts.count == 2 && parts[1] == caller.subject
        case "resources":
            return true
        case "room":
            return try await access.mayRead(caller, try LivePath(segments: ["rooms", parts[1]]))
        default:
            return false
        }
    }
}
