import DocumentStore
import Foundation
import Redis
import Streams

/// Progress of a rebuild, reported as it goes.
public struct RebuildProgress: Sendable {
    public let tenant: String
    public let stream: String
    /// Entries replayed so far, over all streams.
    public let replayed: Int
    /// Entries to replay in all, as the streams held them when the rebuild began.
    public let total: Int
}

/// What a rebuild did.
public struct RebuildReport: Sendable {
    public var tenants: [String] = []
    public var streams = 0
    public var replayed = 0
    public var applied = 0
    public var failed = 0
}

/// Where one stream's projection stands.
public struct ProjectionStatus: Sendable, Codable, Hashable {
    public var tenant: String
    public var stream: String
    /// The last id applied to the documents.
    public var checkpoint: String?
    /// The stream's newest id.
    public var head: String
    /// Entries not yet applied; `nil` when more than `ProjectionMaintenance.lagCountLimit`.
    public var lagEntries: Int?
    /// Age of the oldest unapplied entry relative to the head, in seconds.
    public var lagSeconds: Double
}

/// Rebuild and status of the projections, for the `fieldops projections` commands.
public enum ProjectionMaintenance {
    /// Counting lag stops here; bigger lags print as "more than".
    public static let lagCountLimit = 100_000

    /// Drops the documents of `tenant` (every tenant when `nil`) and replays their streams into
    /// them from the start, as the projector would have applied them.
    ///
    /// Run it with the server's projector stopped: live events applied during the replay would
    /// land out of order. Entries already trimmed from the streams cannot be replayed.
    public static func rebuild(
        redisURL: String,
        store: DocumentStore,
        group: String = "projector",
        tenant: String? = nil,
        batchSize: Int = 1_000,
        progress: @Sendable (RebuildProgress) -> Void = { _ in }
    ) async throws -> RebuildReport {
        let pool = try RedisConnectionPool(url: redisURL, configuration: .init(maxConnections: 1))
        defer { pool.close() }
        let positions = try await streams(pool, tenant: tenant)
        var lengths: [StreamPosition: Int] = [:]
        for position in positions {
            let key = try StreamKeys(tenant: position.tenant).stream(position.stream)
            lengths[position] = try await pool.withConnection { try $0.command("XLEN", key).int ?? 0 }
        }
        let total = lengths.values.reduce(0, +)
        var report = RebuildReport()
        report.tenants = Array(Set(positions.map(\.tenant)).union(tenant.map { [$0] } ?? [])).sorted()
        report.streams = positions.count
        let collections = store.configuration.collections.map(\.name)
        for name in report.tenants {
            try await store.write { transaction in
                for collection in collections { try transaction.deleteAll(tenant: name, collection: collection) }
                try transaction.resetProjection(group: group, tenant: name)
            }
        }
        for position in positions {
            let key = try StreamKeys(tenant: position.tenant).stream(position.stream)
            var start = "-"
            while true {
                let records = try await pool.withConnection { [start] connection in
                    try connection.rangeEntries(["XRANGE", key, start, "+", "COUNT", String(batchSize)])
                }
                guard let last = records.last else { break }
                let slice = StreamSlice(tenant: position.tenant, stream: position.stream, records: records)
                let batch = try await apply([slice], group: group, store: store)
                report.replayed += records.count
                report.applied += batch.applied
                report.failed += batch.failures.count
                progress(RebuildProgress(tenant: position.tenant, stream: position.stream, replayed: report.replayed, total: max(total, report.replayed)))
                start = "(" + last.id
            }
        }
        return report
    }

    /// Applies entries read elsewhere in one transaction, exactly as the projector would.
    public static func apply(_ slices: [StreamSlice], group: String = "projector", store: DocumentStore) async throws -> BatchReport {
        try await store.write { try ProjectionBatch.apply(slices, group: group, in: $0) }
    }

    /// Per stream: checkpoint, head, lag in entries and seconds.
    public static func status(redisURL: String, store: DocumentStore, group: String = "projector", tenant: String? = nil) async throws -> [ProjectionStatus] {
        let pool = try RedisConnectionPool(url: redisURL, configuration: .init(maxConnections: 1))
        defer { pool.close() }
        let checkpoints = try await store.read { try $0.checkpoints(group: group) }
        var applied: [StreamPosition: String] = [:]
        for checkpoint in checkpoints { applied[StreamPosition(tenant: checkpoint.tenant, stream: checkpoint.stream)] = checkpoint.lastID }
        var result: [ProjectionStatus] = []
        for position in try await streams(pool, tenant: tenant) {
            let key = try StreamKeys(tenant: position.tenant).stream(position.stream)
            let checkpoint = applied[position]
            let (head, lag, oldest) = try await pool.withConnection { connection -> (String, Int?, String?) in
                let info = try connection.command("XINFO", "STREAM", key).pairs ?? [:]
                let head = info["last-generated-id"]?.string ?? "0-0"
                let after = checkpoint.map { "(" + $0 } ?? "-"
                let pending = try connection.rangeEntries(["XRANGE", key, after, "+", "COUNT", String(lagCountLimit + 1)])
                return (head, pending.count > lagCountLimit ? nil : pending.count, pending.first?.id)
            }
            let lagSeconds = oldest.map { Double(max(0, millis(head) - millis($0))) / 1000 } ?? 0
            result.append(ProjectionStatus(tenant: position.tenant, stream: position.stream, checkpoint: checkpoint, head: head, lagEntries: lag, lagSeconds: lagSeconds))
        }
        return result
    }

    private static func millis(_ id: String) -> Int64 {
        Int64(id.split(separator: "-").first ?? "") ?? 0
    }

    /// The streams of one tenant or of all, dead letters excluded, sorted.
    static func streams(_ pool: RedisConnectionPool, tenant: String?) async throws -> [StreamPosition] {
        let pattern = try tenant.map { try StreamKeys(tenant: $0).stream("*") } ?? StreamKeys.allStreamsPattern
        return try await pool.withConnection { connection in
            var cursor = "0"
            var found: Set<StreamPosition> = []
            repeat {
                let reply = try connection.command("SCAN", cursor, "MATCH", pattern, "COUNT", "1000", "TYPE", "stream")
                guard let parts = reply.array, parts.count == 2, let next = parts[0].string else { throw StreamError(.redis, "SCAN returned \(reply)") }
                for key in parts[1].array ?? [] {
                    guard let key = key.string, let (tenant, stream) = StreamKeys.parse(streamKey: key), stream != StreamName.deadLetters else { continue }
                    found.insert(StreamPosition(tenant: tenant, stream: stream))
                }
                cursor = next
            } while cursor != "0"
            return found.sorted { ($0.tenant, $0.stream) < ($1.tenant, $1.stream) }
        }
    }
}
