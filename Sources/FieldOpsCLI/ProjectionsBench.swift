import ArgumentParser
import DocumentStore
import Domain
import Foundation
import GRDB
import Projections
import Redis
import Streams

/// Projection throughput and indexed query latency, beside raw SQLite on the same machine.
struct ProjectionsBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "projections",
        abstract: "Projection throughput and indexed query latency at 1M documents, beside raw SQLite.",
        discussion: """
            Without --redis-url a private redis-server is started and removed afterwards. The \
            1M-document collection is built once per --storage directory and reused by later runs.

              swift run -c release fieldops bench projections
              swift run -c release fieldops bench projections \\
                  --storage /tmp/fo-bench --events 200000
            """
    )

    @Option(name: .customLong("redis-url"), help: ArgumentHelp("Benchmark against this Redis; keys under tenant:{bench}: are deleted.", valueName: "url"))
    var redisURL: String?
    @Option(help: ArgumentHelp("Directory for the benchmark's SQLite files (kept for reuse). Defaults to a temporary one.", valueName: "dir"))
    var storage: String?
    @Option(help: "Events to project.") var events = 100_000
    @Option(help: "Documents in the queried collection.") var documents = 1_000_000
    @Option(help: "Queries to time.") var queries = 2_000
    @Option(help: "Entries per stream per projector read (and most per transaction).") var batch = 1_000
    @Option(help: "Times the projection and raw inserts are measured, in turn; the table shows medians.") var rounds = 3

    func validate() throws {
        guard events > 0, documents > 0, queries > 0, (1...20).contains(rounds) else { throw ValidationError("counts must be positive, --rounds 1-20") }
    }

    func run() async throws {
        let target = try BenchRedis(url: redisURL)
        defer { target.close() }
        let url = target.url
        let directory = URL(fileURLWithPath: storage ?? (NSTemporaryDirectory() + "fo-bench-\(UUID().uuidString.prefix(8))"))
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { if storage == nil { try? FileManager.default.removeItem(at: directory) } }

        say("FieldOps projection benchmark: SQLite \(sqliteVersion()), Redis at \(try RedisConfiguration(url: url)), data in \(directory.path)\n")
        // This machine's speed drifts between minutes: the throughputs are measured in turn,
        // round after round, and the medians reported beside each round's figures.
        var measured: [(projection: Double, applyOnly: Double, rawInserts: Double)] = []
        for round in 1...rounds {
            let figures = (
                projection: try await measureProjection(url: url, directory: directory),
                applyOnly: try await measureApplyOnly(directory: directory),
                rawInserts: try measureRawInserts(directory: directory)
            )
            measured.append(figures)
            say("round \(round): projection \(Int(figures.projection))/s, applying alone \(Int(figures.applyOnly))/s, raw SQLite \(Int(figures.rawInserts)) inserts/s")
        }
        func median(_ values: [Double]) -> Double { values.sorted()[values.count / 2] }
        let projection = median(measured.map(\.projection))
        let applyOnly = median(measured.map(\.applyOnly))
        let rawInserts = median(measured.map(\.rawInserts))
        let (ours, raw) = try await measureQueries(directory: directory)

        var table = Table(rounds > 1 ? "MEASUREMENT (MEDIAN OF \(rounds) ROUNDS)" : "MEASUREMENT", "FIELDOPS", "RAW SQLITE", "TARGET")
        table.append("projection, stream → committed SQLite", "\(Int(projection))/s", "\(Int(rawInserts)) inserts/s", "≥ 50000/s")
        table.append("  of which applying alone, no Redis", "\(Int(applyOnly))/s", "", "")
        table.append("indexed == query, limit 50, p50", String(format: "%.3f ms", ours.p50), String(format: "%.3f ms", raw.p50), "")
        table.append("indexed == query, limit 50, p99", String(format: "%.3f ms", ours.p99), String(format: "%.3f ms", raw.p99), "≤ 1 ms")
        say("")
        say(table.rendered)
        say("""

            Projection: \(events) events over 4 streams (resource adjustments, location reports, new tasks, chat
            messages) read by the projector's group in batches of \(batch) per stream, applied with ledger row and checkpoint in
            one transaction per batch, then acknowledged. Raw SQLite: prepared INSERTs of the same JSON size in
            one transaction, no indexes. Queries: status == one of 10 values over \(documents) tasks of one tenant,
            through DocumentStore.query (FIELDOPS) and through one prepared statement of the same SQL (RAW), both
            on the status column's index.
            """)
    }

    // MARK: - Projection

    private func measureProjection(url: String, directory: URL) async throws -> Double {
        let path = directory.appendingPathComponent("projection-\(UUID().uuidString.prefix(6)).sqlite").path
        // Only the million-document store is worth keeping between runs.
        defer { for suffix in ["", "-wal", "-shm"] { try? FileManager.default.removeItem(atPath: path + suffix) } }
        let store = try DocumentStore(path: path)
        let admin = try RedisConnection(url: url)
        for stream in ["resourceUpdates", "locationUpdates", "taskAssignments", "chat:bench"] {
            try admin.command("DEL", "tenant:{bench}:stream:" + stream)
        }
        let resources = try StreamProducer(redisURL: url, tenant: "bench", stream: StreamNames.resourceUpdates)
        let locations = try StreamProducer(redisURL: url, tenant: "bench", stream: StreamNames.locationUpdates)
        let tasks = try StreamProducer(redisURL: url, tenant: "bench", stream: StreamNames.taskAssignments)
        let chat = try StreamProducer(redisURL: url, tenant: "bench", stream: StreamNames.chat("bench"))
        defer { [resources, locations, tasks, chat].forEach { $0.close() } }
        _ = try resources.publishBatchBlocking((0..<100).map { n in
            (EventType.resourceCreated, #"{"resourceId":"r\#(n)","name":"Resource \#(n)","quantity":1000000}"#, [])
        })
        var last: [(String, String)] = []
        let perStream = events / 4
        let chunk = 500
        for start in stride(from: 0, to: perStream, by: chunk) {
            let range = start..<min(start + chunk, perStream)
            let adjusted = try resources.publishBatchBlocking(range.map { n in
                (EventType.resourceAdjusted, #"{"resourceId":"r\#(n % 100)","delta":-1,"reason":"bench"}"#, [])
            })
            let located = try locations.publishBatchBlocking(range.map { n in
                (EventType.locationReported, #"{"workerId":"w\#(n % 1000)","lat":52.\#(n % 1000),"lon":13.\#(n % 977),"accuracy":5}"#, [("workerId", "w\(n % 1000)")])
            })
            let created = try tasks.publishBatchBlocking(range.map { n in
                (EventType.taskCreated, #"{"taskId":"t\#(n)","title":"Inspect pump \#(n)","priority":\#(n % 3)}"#, [("taskId", "t\(n)")])
            })
            let messages = try chat.publishBatchBlocking(range.map { n in
                (EventType.messageCreated, #"{"messageId":"m\#(n)","roomId":"bench","senderId":"w\#(n % 50)","text":"status update \#(n)"}"#, [])
            })
            last = [
                (StreamNames.resourceUpdates, adjusted.last!), (StreamNames.locationUpdates, located.last!),
                (StreamNames.taskAssignments, created.last!), (StreamNames.chat("bench"), messages.last!),
            ]
        }
        let total = perStream * 4 + 100
        say("Projecting \(total) events…")
        let projector = try Projector(redisURL: url, store: store, configuration: .init(group: "bench", consumer: "bench-1", batchSize: batch))
        let started = ContinuousClock.now
        let running = Task { try await projector.run() }
        for (stream, id) in last {
            guard await projector.waitUntilApplied(tenant: "bench", stream: stream, id: id, timeout: .seconds(600)) else {
                throw CommandFailure("projection did not finish within 10 minutes")
            }
        }
        let elapsed = (ContinuousClock.now - started).secondsValue
        projector.stop()
        try await running.value
        projector.shutdown()
        let failed = try await store.read { try $0.ledger(tenant: "bench", failedOnly: true, limit: 10) }
        guard failed.isEmpty else { throw CommandFailure("benchmark events failed: \(failed.first?.error ?? "")") }
        for stream in ["resourceUpdates", "locationUpdates", "taskAssignments", "chat:bench"] {
            try admin.command("DEL", "tenant:{bench}:stream:" + stream)
        }
        return Double(total) / elapsed
    }

    /// The same events applied straight from memory, to separate SQLite and appliers from Redis.
    private func measureApplyOnly(directory: URL) async throws -> Double {
        let path = directory.appendingPathComponent("apply-\(UUID().uuidString.prefix(6)).sqlite").path
        defer { for suffix in ["", "-wal", "-shm"] { try? FileManager.default.removeItem(atPath: path + suffix) } }
        let store = try DocumentStore(path: path)
        let perStream = events / 4
        func records(_ payload: (Int) -> String, type: String, offset: Int) -> [StreamRecord] {
            (0..<perStream).map { n in
                StreamRecord(id: "\(1_800_000_000_000 + offset + n)-0", fields: [
                    ("event_type", type), ("payload", payload(n)), ("timestamp", "2027-01-15T08:00:00.000Z"),
                    ("metadata", "{}"), ("tenant", "bench"), ("schema_version", "1"),
                ])
            }
        }
        let setup = StreamSlice(tenant: "bench", stream: StreamNames.resourceUpdates, records: (0..<100).map { n in
            StreamRecord(id: "\(1_700_000_000_000 + n)-0", fields: [("event_type", EventType.resourceCreated), ("payload", #"{"resourceId":"r\#(n)","name":"Resource \#(n)","quantity":1000000}"#)])
        })
        _ = try await ProjectionMaintenance.apply([setup], group: "bench", store: store)
        let streams: [(String, [StreamRecord])] = [
            (StreamNames.resourceUpdates, records({ #"{"resourceId":"r\#($0 % 100)","delta":-1,"reason":"bench"}"# }, type: EventType.resourceAdjusted, offset: 0)),
            (StreamNames.locationUpdates, records({ #"{"workerId":"w\#($0 % 1000)","lat":52.\#($0 % 1000),"lon":13.\#($0 % 977),"accuracy":5}"# }, type: EventType.locationReported, offset: 0)),
            (StreamNames.taskAssignments, records({ #"{"taskId":"t\#($0)","title":"Inspect pump \#($0)","priority":\#($0 % 3)}"# }, type: EventType.taskCreated, offset: 0)),
            (StreamNames.chat("bench"), records({ #"{"messageId":"m\#($0)","roomId":"bench","senderId":"w\#($0 % 50)","text":"status update \#($0)"}"# }, type: EventType.messageCreated, offset: 0)),
        ]
        let started = ContinuousClock.now
        for start in stride(from: 0, to: perStream, by: batch) {
            let slices = streams.map { StreamSlice(tenant: "bench", stream: $0.0, records: Array($0.1[start..<min(start + batch, perStream)])) }
            let report = try await ProjectionMaintenance.apply(slices, group: "bench", store: store)
            guard report.failures.isEmpty else { throw CommandFailure("apply-only events failed: \(report.failures[0].reason)") }
        }
        return Double(perStream * 4) / (ContinuousClock.now - started).secondsValue
    }

    private func measureRawInserts(directory: URL) throws -> Double {
        let path = directory.appendingPathComponent("raw-\(UUID().uuidString.prefix(6)).sqlite").path
        defer { try? FileManager.default.removeItem(atPath: path) }
        let queue = try DatabaseQueue(path: path)
        try queue.writeWithoutTransaction { db in
            try db.execute(sql: "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; CREATE TABLE raw (k TEXT PRIMARY KEY, v TEXT NOT NULL)")
        }
        let body = #"{"taskId":"t-000000","title":"Inspect pump 000000","priority":1,"status":"open","createdAt":1795356180500}"#
        let started = ContinuousClock.now
        try queue.write { db in
            let statement = try db.makeStatement(sql: "INSERT INTO raw (k, v) VALUES (?, ?)")
            for n in 0..<events { try statement.execute(arguments: ["k\(n)", body]) }
        }
        return Double(events) / (ContinuousClock.now - started).secondsValue
    }

    // MARK: - Queries

    private struct Latency {
        let p50: Double
        let p99: Double

        init(_ samples: [Double]) {
            let sorted = samples.sorted()
            p50 = sorted[sorted.count / 2]
            p99 = sorted[min(sorted.count - 1, Int(Double(sorted.count) * 0.99))]
        }
    }

    private func measureQueries(directory: URL) async throws -> (Latency, Latency) {
        let path = directory.appendingPathComponent("query-\(documents).sqlite").path
        let store = try DocumentStore(path: path)
        let statuses = (0..<10).map { "status-\($0)" }
        var existing = try await store.count(tenant: "bench", Query("tasks"))
        if existing < documents {
            say("Filling tasks with \(documents) documents (kept in \(path) for later runs)…")
            let bar = ProgressBar()
            let started = ContinuousClock.now
            while existing < documents {
                let batch = (existing..<min(existing + 500, documents)).map { n -> WriteOperation in
                    .create(collection: "tasks", id: String(format: "t%07d", n), data: [
                        "taskId": .string(String(format: "t%07d", n)), "title": .string("Inspect pump \(n)"),
                        "status": .string(statuses[n % statuses.count]), "priority": .number(Double(n % 3)),
                        "assigneeId": .string("w\(n % 5000)"), "createdAt": .number(Double(1_795_356_180_500 + n)),
                    ])
                }
                try await store.commit(tenant: "bench", batch)
                existing += batch.count
                bar.update(done: existing, total: documents, label: "documents")
            }
            bar.finish()
            say(String(format: "Filled in %.1f s.", (ContinuousClock.now - started).secondsValue))
        }
        // Warm the page cache for both paths alike.
        for status in statuses { _ = try await store.query(tenant: "bench", Query("tasks").where("status", .equal, .string(status)).limit(50)) }

        var ours: [Double] = []
        for n in 0..<queries {
            let query = Query("tasks").where("status", .equal, .string(statuses[n % statuses.count])).limit(50)
            let started = ContinuousClock.now
            let page = try await store.query(tenant: "bench", query)
            ours.append((ContinuousClock.now - started).secondsValue * 1000)
            guard page.documents.count == 50 else { throw CommandFailure("query returned \(page.documents.count) documents") }
        }

        let reader = try DatabaseQueue(path: path, configuration: { var c = GRDB.Configuration(); c.readonly = true; return c }())
        let raw: [Double] = try await reader.read { [queries] db in
            var raw: [Double] = []
            let statement = try db.cachedStatement(sql: """
                SELECT id, body, created_at, updated_at, version, id FROM c_tasks
                WHERE tenant = ? AND "f:status" = ? ORDER BY id ASC LIMIT 50
                """)
            for n in 0..<queries {
                let started = ContinuousClock.now
                let rows = try Row.fetchAll(statement, arguments: ["bench", statuses[n % statuses.count]])
                raw.append((ContinuousClock.now - started).secondsValue * 1000)
                guard rows.count == 50 else { throw CommandFailure("raw query returned \(rows.count) rows") }
            }
            return raw
        }
        return (Latency(ours), Latency(raw))
    }

    private func sqliteVersion() -> String {
        (try? DatabaseQueue().read { try String.fetchOne($0, sql: "SELECT sqlite_version()") }) ?? "?"
    }
}
