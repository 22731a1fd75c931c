import GRDB

/// An entry of the processed-event ledger.
public struct LedgerEntry: Sendable, Hashable, Codable {
    public enum Status: String, Sendable, Hashable, Codable {
        case processed
        case failed
    }

    public var consumerGroup: String
    public var tenant: String
    public var stream: String
    public var eventID: String
    public var eventType: String
    public var status: Status
    public var error: String?
    /// Milliseconds since 1970.
    public var processedAt: Int64

    public init(consumerGroup: String, tenant: String, stream: String, eventID: String, eventType: String, status: Status, error: String? = nil, processedAt: Int64) {
        self.consumerGroup = consumerGroup
        self.tenant = tenant
        self.stream = stream
        self.eventID = eventID
        self.eventType = eventType
        self.status = status
        self.error = error
        self.processedAt = processedAt
    }
}

/// A track point: one reported position of a worker.
public struct TrackPoint: Sendable, Hashable, Codable {
    public var workerID: String
    /// Milliseconds since 1970.
    public var recordedAt: Int64
    public var lat: Double
    public var lon: Double
    public var accuracy: Double?
    public var speed: Double?
    public var heading: Double?
    public var eventID: String

    public init(workerID: String, recordedAt: Int64, lat: Double, lon: Double, accuracy: Double? = nil, speed: Double? = nil, heading: Double? = nil, eventID: String) {
        self.workerID = workerID
        self.recordedAt = recordedAt
        self.lat = lat
        self.lon = lon
        self.accuracy = accuracy
        self.speed = speed
        self.heading = heading
        self.eventID = eventID
    }
}

extension DocumentTransaction {
    // MARK: - Processed-event ledger

    /// Whether `group` already recorded this event (processed or failed).
    public func hasRecorded(group: String, tenant: String, stream: String, eventID: String) throws(DocumentStoreError) -> Bool {
        try run {
            try Bool.fetchOne(db.cachedStatement(sql: "SELECT 1 FROM ledger WHERE consumer_group = ? AND tenant = ? AND stream = ? AND event_id = ?"), arguments: [group, tenant, stream, eventID]) ?? false
        }
    }

    /// Records an event's outcome; returns false when it was already recorded (a redelivery).
    @discardableResult
    public func record(_ entry: LedgerEntry) throws(DocumentStoreError) -> Bool {
        try run {
            try db.cachedStatement(sql: """
                INSERT OR IGNORE INTO ledger (consumer_group, tenant, stream, event_id, event_type, status, error, processed_at)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?)
                """).execute(arguments: [entry.consumerGroup, entry.tenant, entry.stream, entry.eventID, entry.eventType, entry.status.rawValue, entry.error, entry.processedAt])
            return db.changesCount == 1
        }
    }

    /// Records many outcomes with multi-row inserts (a projection batch writes a thousand).
    /// Entries already recorded are left as they were.
    public func record(_ entries: [LedgerEntry]) throws(DocumentStoreError) {
        try insertRows(
            "ledger (consumer_group, tenant, stream, event_id, event_type, status, error, processed_at)", columns: 8,
            entries.map { [$0.consumerGroup, $0.tenant, $0.stream, $0.eventID, $0.eventType, $0.status.rawValue, $0.error, $0.processedAt] }
        )
    }

    /// `INSERT OR IGNORE` of many rows, a hundred per statement. Two statement shapes only (full
    /// chunks and the last one), so the statement cache stays small.
    private func insertRows(_ target: String, columns: Int, _ rows: [[DatabaseValueConvertible?]]) throws(DocumentStoreError) {
        let rowsPerStatement = 100
        let placeholder = "(" + Array(repeating: "?", count: columns).joined(separator: ", ") + ")"
        var start = 0
        while start < rows.count {
            let chunk = rows[start..<min(start + rowsPerStatement, rows.count)]
            let values = Array(repeating: placeholder, count: chunk.count).joined(separator: ", ")
            try run {
                try db.cachedStatement(sql: "INSERT OR IGNORE INTO \(target) VALUES \(values)")
                    .execute(arguments: StatementArguments(chunk.flatMap { $0 }))
            }
            start += chunk.count
        }
    }

    /// Ledger entries of a tenant, newest first; only failures when `failedOnly`.
    public func ledger(tenant: String, failedOnly: Bool = false, limit: Int = 100) throws(DocumentStoreError) -> [LedgerEntry] {
        try run {
            try Row.fetchAll(db, sql: """
                SELECT consumer_group, tenant, stream, event_id, event_type, status, error, processed_at FROM ledger
                WHERE tenant = ? \(failedOnly ? "AND status = 'failed'" : "") ORDER BY processed_at DESC, event_id DESC LIMIT ?
                """, arguments: [tenant, max(1, min(limit, 10_000))]).map { row in
                LedgerEntry(
                    consumerGroup: row[0], tenant: row[1], stream: row[2], eventID: row[3], eventType: row[4],
                    status: LedgerEntry.Status(rawValue: row[5]) ?? .failed, error: row[6], processedAt: row[7]
                )
            }
        }
    }

    // MARK: - Projection checkpoints

    /// The last stream id `group` applied for the tenant's stream.
    public func checkpoint(group: String, tenant: String, stream: String) throws(DocumentStoreError) -> String? {
        try run {
            try String.fetchOne(db.cachedStatement(sql: "SELECT last_id FROM checkpoints WHERE consumer_group = ? AND tenant = ? AND stream = ?"), arguments: [group, tenant, stream])
        }
    }

    /// Every checkpoint of `group`, keyed by tenant and stream.
    public func checkpoints(group: String) throws(DocumentStoreError) -> [(tenant: String, stream: String, lastID: String, updatedAt: Int64)] {
        try run {
            try Row.fetchAll(db.cachedStatement(sql: "SELECT tenant, stream, last_id, updated_at FROM checkpoints WHERE consumer_group = ? ORDER BY tenant, stream"), arguments: [group])
                .map { (tenant: $0[0], stream: $0[1], lastID: $0[2], updatedAt: $0[3]) }
        }
    }

    /// Moves the checkpoint forward to `id` (never back).
    public func advanceCheckpoint(group: String, tenant: String, stream: String, to id: String) throws(DocumentStoreError) {
        let current = try checkpoint(group: group, tenant: tenant, stream: stream)
        if let current, !Self.streamID(current, isLessThan: id) { return }
        try run {
            try db.cachedStatement(sql: """
                INSERT INTO checkpoints (consumer_group, tenant, stream, last_id, updated_at) VALUES (?, ?, ?, ?, ?)
                ON CONFLICT (consumer_group, tenant, stream) DO UPDATE SET last_id = excluded.last_id, updated_at = excluded.updated_at
                """).execute(arguments: [group, tenant, stream, id, Int64.nowMilliseconds])
        }
    }

    /// Removes a tenant's checkpoints and ledger entries of `group` (before a rebuild).
    public func resetProjection(group: String, tenant: String) throws(DocumentStoreError) {
        try run {
            try db.cachedStatement(sql: "DELETE FROM checkpoints WHERE consumer_group = ? AND tenant = ?").execute(arguments: [group, tenant])
            try db.cachedStatement(sql: "DELETE FROM ledger WHERE consumer_group = ? AND tenant = ?").execute(arguments: [group, tenant])
            try db.cachedStatement(sql: "DELETE FROM track_points WHERE tenant = ?").execute(arguments: [tenant])
        }
    }

    // MARK: - Track points

    /// Adds many track points with multi-row inserts.
    public func addTrackPoints(tenant: String, _ points: [TrackPoint]) throws(DocumentStoreError) {
        try insertRows(
            "track_points (tenant, worker_id, recorded_at, lat, lon, accuracy, speed, heading, event_id)", columns: 9,
            points.map { [tenant, $0.workerID, $0.recordedAt, $0.lat, $0.lon, $0.accuracy, $0.speed, $0.heading, $0.eventID] }
        )
    }

    /// Adds a track point; a second point from the same event is ignored.
    public func addTrackPoint(tenant: String, _ point: TrackPoint) throws(DocumentStoreError) {
        try run {
            try db.cachedStatement(sql: """
                INSERT OR IGNORE INTO track_points (tenant, worker_id, recorded_at, lat, lon, accuracy, speed, heading, event_id)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
                """).execute(arguments: [tenant, point.workerID, point.recordedAt, point.lat, point.lon, point.accuracy, point.speed, point.heading, point.eventID])
        }
    }

    /// A worker's track between two times (milliseconds), oldest first.
    public func track(tenant: String, workerID: String, from start: Int64, to end: Int64, limit: Int = 10_000) throws(DocumentStoreError) -> [TrackPoint] {
        try run {
            try Row.fetchAll(db.cachedStatement(sql: """
                SELECT worker_id, recorded_at, lat, lon, accuracy, speed, heading, event_id FROM track_points
                WHERE tenant = ? AND worker_id = ? AND recorded_at BETWEEN ? AND ? ORDER BY recorded_at LIMIT ?
                """), arguments: [tenant, workerID, start, end, max(1, min(limit, 100_000))]).map {
                TrackPoint(workerID: $0[0], recordedAt: $0[1], lat: $0[2], lon: $0[3], accuracy: $0[4], speed: $0[5], heading: $0[6], eventID: $0[7])
            }
        }
    }

    static func streamID(_ lhs: String, isLessThan rhs: String) -> Bool {
        func parts(_ id: String) -> (UInt64, UInt64) {
            let split = id.split(separator: "-", maxSplits: 1)
            return (UInt64(split.first ?? "") ?? 0, split.count > 1 ? UInt64(split[1]) ?? 0 : 0)
        }
        let (lm, ls) = parts(lhs)
        let (rm, rs) = parts(rhs)
        return lm < rm || (lm == rm && ls < rs)
    }
}
