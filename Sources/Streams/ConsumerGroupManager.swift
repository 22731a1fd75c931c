import Redis

/// A consumer group as `XINFO GROUPS` reports it.
public struct GroupInfo: Sendable, Hashable, Codable {
    public var name: String
    public var consumers: Int
    /// Entries delivered and not yet acknowledged.
    public var pending: Int
    public var lastDeliveredID: String
    /// Entries in the stream not yet delivered to the group; `nil` when Redis cannot tell
    /// (after deletions in the stream).
    public var lag: Int?
}

/// Where a consumer is in its lifecycle, derived from its idle time.
public enum ConsumerState: String, Sendable, Hashable, Codable {
    /// Read recently.
    case active
    /// Quiet for a while; still holds its entries.
    case idle
    /// Gone: its pending entries will be reclaimed by others, and it can be reaped once it holds none.
    case disconnected
}

/// A consumer as `XINFO CONSUMERS` reports it, with its lifecycle state and checkpoint.
public struct ConsumerInfo: Sendable, Hashable, Codable {
    public var name: String
    public var pending: Int
    public var idleMs: Int
    public var state: ConsumerState
    /// The last id it acknowledged through this library.
    public var lastAcknowledgedID: String?
}

/// An entry delivered to a consumer and not yet acknowledged.
public struct PendingEntry: Sendable, Hashable, Codable {
    public var id: String
    public var consumer: String
    public var idleMs: Int
    public var deliveryCount: Int
}

/// Creates, lists and inspects consumer groups of one tenant's streams.
public final class ConsumerGroupManager: Sendable {
    /// Idle times that separate the consumer states.
    public struct Thresholds: Sendable, Hashable {
        /// Idle longer than this: `idle`.
        public var idleAfter: Duration
        /// Idle longer than this: `disconnected`.
        public var disconnectedAfter: Duration

        public init(idleAfter: Duration = .seconds(10), disconnectedAfter: Duration = .seconds(300)) {
            self.idleAfter = idleAfter
            self.disconnectedAfter = disconnectedAfter
        }

        func state(idleMs: Int) -> ConsumerState {
            if Duration.milliseconds(idleMs) > disconnectedAfter { return .disconnected }
            if Duration.milliseconds(idleMs) > idleAfter { return .idle }
            return .active
        }
    }

    public let keys: StreamKeys
    public let thresholds: Thresholds
    private let manager: StreamManager

    public init(redisURL: String, tenant: String, thresholds: Thresholds = Thresholds()) throws(StreamError) {
        manager = try StreamManager(redisURL: redisURL, tenant: tenant)
        keys = manager.keys
        self.thresholds = thresholds
    }

    /// Shares an existing pool.
    public init(pool: RedisConnectionPool, tenant: String, thresholds: Thresholds = Thresholds()) throws(StreamError) {
        manager = try StreamManager(pool: pool, tenant: tenant)
        keys = manager.keys
        self.thresholds = thresholds
    }

    public func close() {
        manager.close()
    }

    /// Creates a group reading from `startID` (`0`: the whole stream, `$`: only new entries).
    /// - Throws: `stream_not_found`, `group_exists`, or invalid names.
    public func createGroup(stream: String, group: String, startID: String = "0") async throws(StreamError) {
        try StreamName.validate(stream)
        try StreamName.validateGroup(group)
        try StreamName.validateID(startID)
        let reply = try await manager.run { [keys] connection in
            try connection.send(["XGROUP", "CREATE", keys.stream(stream), group, startID])
        }
        if case .error(let message) = reply {
            if message.hasPrefix("BUSYGROUP") { throw StreamError(.groupExists, "group '\(group)' already exists on stream '\(stream)'") }
            if message.contains("MKSTREAM") || message.contains("key to exist") {
                throw StreamError(.streamNotFound, "stream '\(stream)' does not exist in tenant '\(keys.tenant)'; create it first")
            }
            throw StreamError(.redis, message)
        }
    }

    /// Creates the group unless it exists.
    public func ensureGroup(stream: String, group: String, startID: String = "0") async throws(StreamError) {
        do {
            try await createGroup(stream: stream, group: group, startID: startID)
        } catch where error.code == .groupExists {}
    }

    /// Deletes a group with its pending entries list.
    /// - Throws: `group_not_found`.
    public func deleteGroup(stream: String, group: String) async throws(StreamError) {
        try StreamName.validate(stream)
        try StreamName.validateGroup(group)
        let reply = try await manager.run { [keys] connection in
            try connection.send(["XGROUP", "DESTROY", keys.stream(stream), group])
        }
        if reply.int != 1 {
            throw StreamError(.groupNotFound, "group '\(group)' does not exist on stream '\(stream)'")
        }
    }

    /// Every group of the stream.
    public func listGroups(stream: String) async throws(StreamError) -> [GroupInfo] {
        try StreamName.validate(stream)
        let reply = try await manager.run { [keys] connection in
            try connection.send(["XINFO", "GROUPS", keys.stream(stream)])
        }
        if case .error(let message) = reply {
            if message.contains("no such key") { throw StreamError(.streamNotFound, "stream '\(stream)' does not exist in tenant '\(keys.tenant)'") }
            throw StreamError(.redis, message)
        }
        return (reply.array ?? []).compactMap { group in
            guard let fields = group.pairs, let name = fields["name"]?.string else { return nil }
            return GroupInfo(
                name: name,
                consumers: fields["consumers"]?.int ?? 0,
                pending: fields["pending"]?.int ?? 0,
                lastDeliveredID: fields["last-delivered-id"]?.string ?? "0-0",
                lag: fields["lag"]?.int
            )
        }
    }

    /// One group with its consumers.
    /// - Throws: `stream_not_found`, `group_not_found`.
    public func groupInfo(stream: String, group: String) async throws(StreamError) -> (group: GroupInfo, consumers: [ConsumerInfo]) {
        guard let info = try await listGroups(stream: stream).first(where: { $0.name == group }) else {
            throw StreamError(.groupNotFound, "group '\(group)' does not exist on stream '\(stream)'")
        }
        return (info, try await consumers(stream: stream, group: group))
    }

    /// The group's consumers with their state and checkpoint.
    public func consumers(stream: String, group: String) async throws(StreamError) -> [ConsumerInfo] {
        try StreamName.validate(stream)
        try StreamName.validateGroup(group)
        let (reply, checkpoints) = try await manager.run { [keys] connection in
            let replies = try connection.pipeline([
                ["XINFO", "CONSUMERS", keys.stream(stream), group],
                ["HGETALL", keys.checkpoints(stream)],
            ])
            return (replies[0], replies[1])
        }
        if case .error(let message) = reply {
            if message.contains("NOGROUP") { throw StreamError(.groupNotFound, "group '\(group)' does not exist on stream '\(stream)'") }
            if message.contains("no such key") { throw StreamError(.streamNotFound, "stream '\(stream)' does not exist in tenant '\(keys.tenant)'") }
            throw StreamError(.redis, message)
        }
        let marks = checkpoints.pairs ?? [:]
        return (reply.array ?? []).compactMap { consumer in
            guard let fields = consumer.pairs, let name = fields["name"]?.string else { return nil }
            let idle = fields["idle"]?.int ?? 0
            return ConsumerInfo(
                name: name,
                pending: fields["pending"]?.int ?? 0,
                idleMs: idle,
                state: thresholds.state(idleMs: idle),
                lastAcknowledgedID: marks[group + "/" + name]?.string
            )
        }
    }

    /// The last id `consumer` acknowledged, if it acknowledged anything.
    public func checkpoint(stream: String, group: String, consumer: String) async throws(StreamError) -> String? {
        try StreamName.validate(stream)
        return try await manager.run { [keys] connection in
            try connection.command("HGET", keys.checkpoints(stream), group + "/" + consumer).string
        }
    }

    /// Pending entries of the group (or of one consumer), oldest first.
    public func pending(stream: String, group: String, consumer: String? = nil, count: Int = 100) async throws(StreamError) -> [PendingEntry] {
        try StreamName.validate(stream)
        try StreamName.validateGroup(group)
        var command = ["XPENDING", keys.stream(stream), group, "-", "+", String(max(1, count))]
        if let consumer { command.append(consumer) }
        let reply = try await manager.run { [command] connection in try connection.send(command) }
        if case .error(let message) = reply {
            if message.contains("NOGROUP") { throw StreamError(.groupNotFound, "group '\(group)' does not exist on stream '\(stream)'") }
            throw StreamError(.redis, message)
        }
        return PendingEntry.list(reply)
    }

    /// Deletes consumers that are disconnected and hold no pending entries; returns their names.
    public func reapConsumers(stream: String, group: String) async throws(StreamError) -> [String] {
        let gone = try await consumers(stream: stream, group: group).filter { $0.state == .disconnected && $0.pending == 0 }
        guard !gone.isEmpty else { return [] }
        let names = gone.map(\.name)
        try await manager.run { [keys] connection in
            // DELCONSUMER would drop entries a consumer still holds; each was checked to hold none,
            // and is checked again in the script in case it read meanwhile.
            for name in names {
                try connection.evaluate(Self.reapScript, keys: [keys.stream(stream), keys.checkpoints(stream)], arguments: [group, name]).unwrapped()
            }
        }
        return names
    }

    /// KEYS[1] stream, KEYS[2] checkpoints. ARGV[1] group, ARGV[2] consumer.
    static let reapScript = RedisScript(#"""
    for _, consumer in ipairs(redis.call('XINFO', 'CONSUMERS', KEYS[1], ARGV[1])) do
      local name, pending
      for i = 1, #consumer, 2 do
        if consumer[i] == 'name' then name = consumer[i + 1] elseif consumer[i] == 'pending' then pending = consumer[i + 1] end
      end
      if name == ARGV[2] and pending == 0 then
        redis.call('XGROUP', 'DELCONSUMER', KEYS[1], ARGV[1], ARGV[2])
        redis.call('HDEL', KEYS[2], ARGV[1] .. '/' .. ARGV[2])
        return 1
      end
    end
    return 0
    """#)
}

extension PendingEntry {
    /// Reads the extended XPENDING reply: `[[id, consumer, idle ms, deliveries], …]`.
    static func list(_ reply: RedisValue) -> [PendingEntry] {
        (reply.array ?? []).compactMap { item in
            guard let parts = item.array, parts.count == 4, let id = parts[0].string else { return nil }
            return PendingEntry(id: id, consumer: parts[1].string ?? "", idleMs: parts[2].int ?? 0, deliveryCount: parts[3].int ?? 0)
        }
    }
}
