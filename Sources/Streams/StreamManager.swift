import Foundation
import Redis

/// What `StreamManager.streamInfo` reports.
public struct StreamInfo: Sendable, Hashable, Codable {
    public var name: String
    public var length: Int
    public var firstID: String?
    public var lastID: String?
    /// The id Redis generated last, even if that entry was trimmed or deleted.
    public var lastGeneratedID: String
    public var groups: Int
    /// ISO 8601 creation time; `nil` for streams created outside `createStream` (plain XADD).
    public var createdAt: String?
    public var retentionMs: Int?
    public var maxLength: Int?
    /// Changes when a stream is deleted and created again, so readers know ids do not continue.
    public var epoch: String?
}

/// A dead letter: an entry that exhausted its deliveries or could not be parsed.
public struct DeadLetter: Sendable, Hashable, Codable {
    /// Id in the dead-letter stream.
    public var id: String
    public var originStream: String
    public var originID: String
    public var group: String
    public var consumer: String
    public var error: String
    public var deliveryCount: Int
    public var failedAt: String
    /// The original entry's fields, flat and in order.
    public var fields: [String]
}

/// Creates, inspects, trims and deletes the streams of one tenant; lists and re-drives dead letters.
public final class StreamManager: Sendable {
    /// Default retention: one day.
    public static let defaultRetentionMs = 86_400_000

    public let keys: StreamKeys
    let pool: RedisConnectionPool

    public init(redisURL: String, tenant: String, pool configuration: RedisConnectionPool.Configuration = .init(maxConnections: 2)) throws(StreamError) {
        self.keys = try StreamKeys(tenant: tenant)
        self.pool = try redisCall { try RedisConnectionPool(url: redisURL, configuration: configuration) }
    }

    /// Shares an existing pool.
    public init(pool: RedisConnectionPool, tenant: String) throws(StreamError) {
        self.keys = try StreamKeys(tenant: tenant)
        self.pool = pool
    }

    public func close() {
        pool.close()
    }

    /// Creates an empty stream with its metadata.
    /// - Parameters:
    ///   - retentionMs: entries older than this are trimmed once every group has them (0: keep).
    ///   - maxLength: keep about this many entries (0: no limit).
    /// - Throws: `stream_exists` when the stream is already there.
    @discardableResult
    public func createStream(name: String, retentionMs: Int = StreamManager.defaultRetentionMs, maxLength: Int = 0) async throws(StreamError) -> StreamInfo {
        try StreamName.validate(name)
        guard retentionMs >= 0, maxLength >= 0 else {
            throw StreamError(.invalidField, "retentionMs and maxLength must not be negative")
        }
        let created = try await run { [keys] connection in
            let reply = try connection.evaluate(Self.createScript, keys: [keys.stream(name), keys.meta(name)], arguments: [
                Timestamp.now(), String(retentionMs), String(maxLength), Self.newEpoch(),
            ]).unwrapped()
            return reply.int == 1
        }
        guard created else { throw StreamError(.streamExists, "stream '\(name)' already exists in tenant '\(keys.tenant)'") }
        return try await streamInfo(name: name)
    }

    /// Creates the stream unless it exists; returns its info either way.
    @discardableResult
    public func ensureStream(name: String, retentionMs: Int = StreamManager.defaultRetentionMs, maxLength: Int = 0) async throws(StreamError) -> StreamInfo {
        do {
            return try await createStream(name: name, retentionMs: retentionMs, maxLength: maxLength)
        } catch where error.code == .streamExists {
            return try await streamInfo(name: name)
        }
    }

    /// Deletes the stream, its metadata, groups and checkpoints.
    /// - Throws: `stream_not_found` when there is nothing to delete.
    public func deleteStream(name: String) async throws(StreamError) {
        try StreamName.validate(name)
        let deleted = try await run { [keys] connection in
            try connection.send(["DEL", keys.stream(name), keys.meta(name), keys.checkpoints(name)]).unwrapped().int ?? 0
        }
        guard deleted > 0 else { throw StreamError(.streamNotFound, "stream '\(name)' does not exist in tenant '\(keys.tenant)'") }
    }

    /// Length, first and last ids, group count and the stream's metadata.
    /// - Throws: `stream_not_found`.
    public func streamInfo(name: String) async throws(StreamError) -> StreamInfo {
        try StreamName.validate(name)
        let (info, meta) = try await run { [keys] connection in
            let replies = try connection.pipeline([["XINFO", "STREAM", keys.stream(name)], ["HGETALL", keys.meta(name)]])
            return (replies[0], replies[1])
        }
        if case .error(let message) = info {
            if message.contains("no such key") {
                throw StreamError(.streamNotFound, "stream '\(name)' does not exist in tenant '\(keys.tenant)'")
            }
            throw StreamError(.redis, message)
        }
        guard let fields = info.pairs else { throw StreamError(.redis, "XINFO STREAM returned \(info)") }
        let metaFields = meta.pairs ?? [:]
        func entryID(_ value: RedisValue?) -> String? { value?.array?.first?.string }
        return StreamInfo(
            name: name,
            length: fields["length"]?.int ?? 0,
            firstID: entryID(fields["first-entry"]),
            lastID: entryID(fields["last-entry"]),
            lastGeneratedID: fields["last-generated-id"]?.string ?? "0-0",
            groups: fields["groups"]?.int ?? 0,
            createdAt: metaFields["created_at"]?.string,
            retentionMs: metaFields["retention_ms"]?.int,
            maxLength: metaFields["max_length"]?.int,
            epoch: metaFields["epoch"]?.string
        )
    }

    /// Names of the tenant's streams, sorted.
    public func listStreams() async throws(StreamError) -> [String] {
        let prefix = keys.stream("")
        let pattern = keys.streamPattern
        return try await run { connection in
            var cursor = "0"
            var names: Set<String> = []
            repeat {
                let reply = try connection.command("SCAN", cursor, "MATCH", pattern, "COUNT", "1000", "TYPE", "stream")
                guard let parts = reply.array, parts.count == 2, let next = parts[0].string else {
                    throw StreamError(.redis, "SCAN returned \(reply)")
                }
                for key in parts[1].array ?? [] {
                    if let key = key.string, key.hasPrefix(prefix) { names.insert(String(key.dropFirst(prefix.count))) }
                }
                cursor = next
            } while cursor != "0"
            return names.sorted()
        }
    }

    /// Trims by the stream's `max_length` and `retention_ms` (or `maxLength` if given), never
    /// removing an entry a group has pending or not yet received.
    public func trim(name: String, maxLength: Int = 0) async throws(StreamError) -> TrimResult {
        try StreamName.validate(name)
        return try await run { [keys] connection in
            try StreamTrimmer.trim(connection, keys: keys, stream: name, maxLength: maxLength)
        }
    }

    /// Entries from `start` (inclusive) onwards, oldest first.
    public func entries(name: String, from start: String = "-", count: Int = 100) async throws(StreamError) -> [StreamEntry] {
        try StreamName.validate(name)
        try StreamName.validateID(start)
        return try await run { [keys] connection in
            try connection.rangeEntries(["XRANGE", keys.stream(name), start, "+", "COUNT", String(max(1, count))]).map { StreamEntry($0, stream: name, tenant: keys.tenant) }
        }
    }

    /// The newest `count` entries, oldest first.
    public func lastEntries(name: String, count: Int = 10) async throws(StreamError) -> [StreamEntry] {
        try StreamName.validate(name)
        return try await run { [keys] connection in
            try connection.rangeEntries(["XREVRANGE", keys.stream(name), "+", "-", "COUNT", String(max(1, count))]).reversed().map { StreamEntry($0, stream: name, tenant: keys.tenant) }
        }
    }

    /// Entries after `id`, waiting up to `block` for the first one (XREAD).
    public func entries(name: String, after id: String, count: Int = 100, block: Duration) async throws(StreamError) -> [StreamEntry] {
        try StreamName.validate(name)
        try StreamName.validateID(id)
        let milliseconds = String(max(1, min(block.milliseconds, 1000)))
        return try await run { [keys] connection in
            try connection.readEntries(["XREAD", "COUNT", String(max(1, count)), "BLOCK", milliseconds, "STREAMS", keys.stream(name), id]).map { StreamEntry($0, stream: name, tenant: keys.tenant) }
        }
    }

    // MARK: - Dead letters

    /// Dead letters, oldest first, starting at `start`.
    public func deadLetters(from start: String = "-", count: Int = 100) async throws(StreamError) -> [DeadLetter] {
        try StreamName.validateID(start)
        return try await run { [keys] connection in
            try connection.rangeEntries(["XRANGE", keys.deadLetters, start, "+", "COUNT", String(max(1, count))]).compactMap(DeadLetter.init)
        }
    }

    /// Appends the dead letter's original entry to its origin stream again and removes the
    /// dead letter; returns the new entry's id.
    /// - Throws: `dead_letter_not_found`, or `invalid_field` when the letter kept no fields.
    @discardableResult
    public func redriveDeadLetter(id: String) async throws(StreamError) -> String {
        try StreamName.validateID(id)
        let letters = try await deadLetters(from: id, count: 1)
        guard let letter = letters.first, letter.id == id else {
            throw StreamError(.deadLetterNotFound, "dead letter \(id) does not exist in tenant '\(keys.tenant)'")
        }
        let reply = try await run { [keys] connection in
            try connection.evaluate(Scripts.redrive, keys: [keys.deadLetters, keys.stream(letter.originStream)], arguments: [id, letter.originStream])
        }
        switch reply {
        case .error(let message) where message.hasPrefix("NOTFOUND"):
            throw StreamError(.deadLetterNotFound, "dead letter \(id) does not exist in tenant '\(keys.tenant)'")
        case .error(let message):
            throw StreamError(.invalidField, String(message.drop(while: { $0 != " " }).dropFirst()))
        default:
            guard let newID = reply.string else { throw StreamError(.redis, "redrive returned \(reply)") }
            return newID
        }
    }

    // MARK: - Helpers

    func run<T: Sendable>(_ body: @escaping @Sendable (RedisConnection) throws -> T) async throws(StreamError) -> T {
        do {
            return try await pool.withConnection(body)
        } catch {
            throw StreamError.wrapping(error)
        }
    }

    static func newEpoch() -> String {
        String(UInt64.random(in: 1...UInt64.max), radix: 16)
    }

    /// KEYS[1] stream, KEYS[2] meta. ARGV created_at, retention_ms, max_length, epoch.
    /// Returns 0 when the stream already exists.
    static let createScript = RedisScript(#"""
    if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
    redis.call('XGROUP', 'CREATE', KEYS[1], '__create', '$', 'MKSTREAM')
    redis.call('XGROUP', 'DESTROY', KEYS[1], '__create')
    redis.call('DEL', KEYS[2])
    redis.call('HSET', KEYS[2], 'created_at', ARGV[1], 'retention_ms', ARGV[2], 'max_length', ARGV[3], 'epoch', ARGV[4])
    return 1
    """#)
}

/// One entry as read for inspection: its envelope when it parses, its raw fields always.
public struct StreamEntry: Sendable, Hashable {
    public let id: String
    public let fields: [String]
    /// `nil` when the entry is not a valid envelope (a foreign producer's, for example).
    public let event: StreamEvent?

    init(_ raw: StreamRecord, stream: String, tenant: String) {
        id = raw.id
        fields = (raw.fields ?? []).flatMap { [$0.0, $0.1] }
        event = raw.fields.flatMap { try? StreamEvent(id: raw.id, stream: stream, tenant: tenant, fields: $0) }
    }
}

extension DeadLetter {
    init?(_ raw: StreamRecord) {
        guard let flat = raw.fields else { return nil }
        var values: [String: String] = [:]
        for (name, value) in flat { values[name] = value }
        id = raw.id
        originStream = values["origin_stream"] ?? ""
        originID = values["origin_id"] ?? ""
        group = values["group"] ?? ""
        consumer = values["consumer"] ?? ""
        error = values["error"] ?? ""
        deliveryCount = Int(values["delivery_count"] ?? "") ?? 0
        failedAt = values["failed_at"] ?? ""
        let json = values["fields"] ?? "[]"
        fields = (try? JSONSerialization.jsonObject(with: Data(json.utf8)) as? [String]) ?? []
    }
}
