import DocumentStore
import Domain
import Foundation
import Redis
import Streams

/// One event of a tenant, read back from its stream.
public struct TimelineEntry: Sendable {
    public let event: StreamEvent
    /// The payload parsed; `.null` when it is not JSON.
    public let payload: JSONValue
    /// The stream id's two numbers, read once: the merge orders by them.
    let order: (milliseconds: UInt64, sequence: UInt64)

    init(event: StreamEvent, payload: JSONValue) {
        self.event = event
        self.payload = payload
        self.order = streamIDParts(event.id)
    }

    /// Milliseconds since 1970, from the stream id (when Redis stored it).
    public var time: Int64 { Int64(order.milliseconds) }

    /// Who did it, as far as the event says.
    public var actor: String? {
        for key in ["by", "senderId", "uploadedBy"] {
            if let value = payload[key]?.stringValue { return value }
        }
        return event.eventType == "location.reported" ? payload["workerId"]?.stringValue : nil
    }

    /// The event's position, if it has one (a fix, a task's place).
    public var position: (lat: Double, lon: Double)? {
        if let lat = payload["lat"]?.doubleValue, let lon = payload["lon"]?.doubleValue { return (lat, lon) }
        if let lat = payload["location"]?["lat"]?.doubleValue, let lon = payload["location"]?["lon"]?.doubleValue { return (lat, lon) }
        return nil
    }
}

/// Which events an investigator asked for. Kinds combine with AND; several values of one kind
/// with OR (`--worker w-1 --worker w-2`).
public struct ReplayFilter: Sendable {
    public var workers: Set<String> = []
    public var rooms: Set<String> = []
    public var tasks: Set<String> = []
    public var streams: Set<String> = []
    public var eventTypes: Set<String> = []
    /// South-west and north-east corners.
    public var box: (minLat: Double, minLon: Double, maxLat: Double, maxLon: Double)?

    public init() {}

    /// Streams worth reading at all, of those the tenant has.
    public func streams(among names: [String]) -> [String] {
        names.filter { name in
            if !streams.isEmpty { return streams.contains(name) }
            // Only chat streams hold room events; other streams are still read for tasks and
            // workers, which chat never mentions by room.
            if !rooms.isEmpty, workers.isEmpty, tasks.isEmpty { return rooms.contains { name == "chat:" + $0 } }
            return true
        }
    }

    public func matches(_ entry: TimelineEntry) -> Bool {
        let event = entry.event, payload = entry.payload
        if !streams.isEmpty, !streams.contains(event.stream) { return false }
        if !eventTypes.isEmpty, !eventTypes.contains(event.eventType) { return false }
        func mentions(_ ids: Set<String>, _ keys: [String]) -> Bool {
            keys.contains { key in
                (payload[key]?.stringValue).map(ids.contains) ?? false
                    || event.routing.contains { $0.name == key && ids.contains($0.value) }
            }
        }
        if !workers.isEmpty, !mentions(workers, ["workerId", "assigneeId", "senderId", "userId", "by", "uploadedBy"]) { return false }
        if !tasks.isEmpty, !mentions(tasks, ["taskId"]) { return false }
        if !rooms.isEmpty, !(rooms.contains { event.stream == "chat:" + $0 } || mentions(rooms, ["roomId"])) { return false }
        if let box {
            guard let (lat, lon) = entry.position, lat >= box.minLat, lat <= box.maxLat, lon >= box.minLon, lon <= box.maxLon else { return false }
        }
        return true
    }
}

/// What a stream can tell about a window: whether the entries are all still there.
public struct StreamCoverage: Sendable, Hashable {
    public let stream: String
    public let epoch: String?
    /// When `createStream` made it (ms), if it says.
    public let createdAt: Int64?
    /// The oldest entry still in Redis (ms).
    public let firstRetained: Int64?
    /// Set when entries at or after the window's start were trimmed or deleted: up to when.
    public let missingUntil: Int64?
}

/// Reads a tenant's streams between two instants and merges them into one timeline in id
/// order (ties between streams by stream name), a page per stream at a time: memory stays
/// bounded by the page size times the number of streams, whatever the window's length.
public final class TimelineReader: Sendable {
    public let tenant: String
    public let from: Int64
    public let to: Int64
    public let filter: ReplayFilter
    let pool: RedisConnectionPool
    let keys: StreamKeys
    static let pageSize = 1_000

    public init(redisURL: String, tenant: String, from: Int64, to: Int64, filter: ReplayFilter) throws {
        self.tenant = tenant
        self.from = from
        self.to = to
        self.filter = filter
        self.keys = try StreamKeys(tenant: tenant)
        // 3 s rides out a restart of the embedded Redis (well under a second) and still tells
        // someone who asked the wrong Redis promptly; the pool's default is 10 s.
        self.pool = try RedisConnectionPool(url: redisURL, configuration: .init(maxConnections: 1, connectDeadline: .seconds(3)))
    }

    deinit {
        pool.close()
    }

    /// The streams that will be read, sorted.
    public func streams() async throws -> [String] {
        let manager = try StreamManager(pool: pool, tenant: tenant)
        return filter.streams(among: try await manager.listStreams()).filter { $0 != StreamName.deadLetters }
    }

    /// Per stream: epoch, creation, oldest entry kept, and entries of the window that are gone.
    public func coverage(of streams: [String]) async throws -> [StreamCoverage] {
        let keys = self.keys, from = self.from
        return try await pool.withConnection { connection in
            try streams.map { name in
                let replies = try connection.pipeline([["XINFO", "STREAM", keys.stream(name)], ["HGETALL", keys.meta(name)]])
                let info = replies[0].pairs ?? [:]
                let meta = replies[1].pairs ?? [:]
                let first = info["first-entry"]?.array?.first?.string.map { Int64(streamIDParts($0).milliseconds) }
                let deleted = Int64(streamIDParts(info["max-deleted-entry-id"]?.string ?? "0-0").milliseconds)
                let added = info["entries-added"]?.int ?? 0, length = info["length"]?.int ?? 0
                // Trimming removes the oldest entries: if any were removed and the oldest kept
                // one is after the window's start, the window's beginning may be gone.
                var missingUntil: Int64?
                if deleted > 0, deleted >= from { missingUntil = deleted }
                if added != length, let first, first > from { missingUntil = max(missingUntil ?? 0, first) }
                let created = meta["created_at"]?.string.flatMap(ISOTime.milliseconds)
                return StreamCoverage(stream: name, epoch: meta["epoch"]?.string, createdAt: created, firstRetained: first, missingUntil: missingUntil)
            }
        }
    }

    /// Every matching entry of the window, in order, to `body`; returns how many were read.
    /// `progress` gets the time reached now and then. Without `parsePayloads` (folding, where
    /// the appliers parse them) payloads stay `.null` and only the stream and type filters apply.
    @discardableResult
    public func read(
        _ streams: [String], parsePayloads: Bool = true, progress: (Int64, Int) -> Void = { _, _ in }, _ body: (TimelineEntry) async throws -> Void
    ) async throws -> Int {
        var cursors = streams.map { Cursor(stream: $0, after: nil, parsePayloads: parsePayloads) }
        // Each page newest first, so the next entry is taken with `popLast()`: moved out, not
        // copied (a copy retains every string of the event).
        var pages: [[TimelineEntry]] = Array(repeating: [], count: streams.count)
        for index in cursors.indices { pages[index] = try await nextPage(&cursors[index]) }
        var read = 0
        // Each stream's next entry's id and name. Keys only: copying entries to compare them
        // retained every string of two events per comparison.
        func head(_ index: Int) -> Head? {
            guard !pages[index].isEmpty else { return nil }
            let order = pages[index][pages[index].count - 1].order
            return Head(milliseconds: order.milliseconds, sequence: order.sequence, stream: streams[index])
        }
        var heads = pages.indices.map(head)
        while true {
            // The stream whose next entry comes first (few streams: a scan beats a heap).
            var best: Int?
            for index in heads.indices {
                guard let head = heads[index] else { continue }
                guard let current = best, let leader = heads[current] else { best = index; continue }
                if head.precedes(leader) { best = index }
            }
            guard let index = best else { break }
            let entry = pages[index].removeLast()
            read += 1
            if filter.matches(entry) { try await body(entry) }
            if read % 10_000 == 0 { progress(entry.time, read) }
            if pages[index].isEmpty, !cursors[index].done {
                pages[index] = try await nextPage(&cursors[index])
            }
            heads[index] = head(index)
        }
        return read
    }

    /// A stream's next entry, as the merge compares it.
    struct Head {
        let milliseconds: UInt64
        let sequence: UInt64
        let stream: String

        func precedes(_ other: Head) -> Bool {
            if milliseconds != other.milliseconds { return milliseconds < other.milliseconds }
            if sequence != other.sequence { return sequence < other.sequence }
            return stream < other.stream
        }
    }

    struct Cursor {
        let stream: String
        var after: String?
        let parsePayloads: Bool
        var done = false
    }

    private func nextPage(_ cursor: inout Cursor) async throws -> [TimelineEntry] {
        let key = keys.stream(cursor.stream)
        let start = cursor.after.map { "(" + $0 } ?? "\(from)-0"
        let command = ["XRANGE", key, start, "\(to)-\(UInt64.max)", "COUNT", String(Self.pageSize)]
        let (stream, tenant, parse) = (cursor.stream, self.tenant, cursor.parsePayloads)
        let page = try await pool.withConnection { connection in
            try connection.send(command) { try $0.streamEvents(stream: stream, tenant: tenant) }
        }
        if page.entries < Self.pageSize { cursor.done = true }
        cursor.after = page.lastID ?? cursor.after
        var entries = page.events.map { event in
            TimelineEntry(event: event, payload: parse ? (try? JSONValue(jsonText: event.payload)) ?? .null : .null)
        }
        entries.reverse()
        return entries
    }
}
