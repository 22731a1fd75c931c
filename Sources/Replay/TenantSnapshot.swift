import DocumentStore
import Domain
import Foundation
import Projections
import Streams

/// A tenant as it stood at one instant: its streams up to then folded, in id order, through
/// the projector's own appliers into a scratch in-memory store.
public final class TenantFold {
    public let tenant: String
    let redisURL: String
    let store: DocumentStore
    /// Where the fold has reached (ms, inclusive); -1 before anything.
    public private(set) var position: Int64 = -1
    public private(set) var folded = 0
    /// Events the appliers refused (an illegal transition, stock below zero), as the projector would.
    public private(set) var refused = 0
    /// Time spent applying (the second stage of the pipeline), for the benchmark.
    public private(set) var applying: Duration = .zero
    /// Events per transaction: each changed document is written once per batch, so larger
    /// batches write a moving worker's row less often (40 000 measured best with
    /// `fieldops bench replay`; the batch in memory is a few megabytes).
    let batchSize: Int

    public init(redisURL: String, tenant: String, batchSize: Int = 40_000) throws {
        self.redisURL = redisURL
        self.tenant = tenant
        self.batchSize = max(1, batchSize)
        self.store = try DocumentStore(path: ":memory:")
    }

    /// Folds the entries after the current position up to `instant` (inclusive). Reading the
    /// next batch from Redis overlaps with applying the previous one.
    public func advance(to instant: Int64, progress: @escaping (Int64, Int) -> Void = { _, _ in }) async throws {
        guard instant > position else { return }
        let reader = try TimelineReader(redisURL: redisURL, tenant: tenant, from: position + 1, to: instant, filter: ReplayFilter())
        let (store, batchSize) = (self.store, self.batchSize)
        var batch: [Appliers.Event] = []
        var pending: Task<Applied, any Error>?
        var applied = Applied()
        let read = try await reader.read(try await reader.streams(), parsePayloads: false, progress: progress) { entry in
            batch.append(Appliers.Event(entry.event))
            if batch.count >= batchSize {
                if let pending { applied.add(try await pending.value) }
                pending = Task { [batch, overlay = applied.changes] in try await Self.apply(batch, to: store, overlay: overlay) }
                batch.removeAll(keepingCapacity: true)
            }
        }
        if let pending { applied.add(try await pending.value) }
        applied.add(try await Self.apply(batch, to: store, overlay: applied.changes))
        refused += applied.refused
        applying += applied.took
        folded += read
        position = instant
    }

    struct Applied: Sendable {
        var refused = 0
        var took = Duration.zero
        /// The documents the latest batch changed: the next batch starts from them instead of
        /// reading and parsing each again from SQLite.
        var changes: DocumentChanges?

        mutating func add(_ other: Applied) {
            refused += other.refused
            took += other.took
            changes = other.changes
        }
    }

    /// Runs the appliers over `events` in one transaction: how many they refused, how long it
    /// took, and what it changed.
    private static func apply(_ events: [Appliers.Event], to store: DocumentStore, overlay: DocumentChanges?) async throws -> Applied {
        guard !events.isEmpty else { return Applied() }
        return try await store.write { transaction in
            let started = ContinuousClock.now
            let workspace = DocumentWorkspace(transaction, overlay: overlay)
            workspace.keepsTrackPoints = false
            var refused = 0
            for event in events {
                do {
                    _ = try Appliers.apply(event, in: workspace)
                } catch let error as DocumentStoreError where error.code == .storage {
                    throw error
                } catch {
                    refused += 1
                }
            }
            let changes = try workspace.takeChanges()
            try transaction.write(changes)
            return Applied(refused: refused, took: ContinuousClock.now - started, changes: changes)
        }
    }

    /// What the fold shows now.
    public func snapshot() async throws -> TenantSnapshot {
        func all(_ collection: String) async throws -> [Document] {
            var documents: [Document] = []
            var query = Query(collection)
            while true {
                let page = try await store.query(tenant: tenant, query)
                documents += page.documents
                guard let next = page.nextCursor else { break }
                query = query.start(after: next)
            }
            return documents.sorted { $0.id < $1.id }
        }
        return TenantSnapshot(
            at: position,
            folded: folded,
            rows: [
                .workers: try await all("workers").map(TenantSnapshot.worker),
                .tasks: try await all("tasks").map(TenantSnapshot.task),
                .stock: try await all("resources").map(TenantSnapshot.resource),
                .unread: try await all("notifications").filter { $0.data["read"] != .bool(true) }.map(TenantSnapshot.notification),
            ]
        )
    }
}

/// The state shown for an instant: per kind, one row of named fields per entity.
public struct TenantSnapshot: Sendable {
    public enum Kind: String, Sendable, CaseIterable, Comparable {
        case workers, tasks, stock, unread

        public var title: String {
            switch self {
            case .workers: "Workers"
            case .tasks: "Tasks"
            case .stock: "Stock"
            case .unread: "Unread notifications"
            }
        }

        public static func < (a: Kind, b: Kind) -> Bool { allCases.firstIndex(of: a)! < allCases.firstIndex(of: b)! }
    }

    /// An entity and its shown fields, in display order.
    public struct Row: Sendable, Hashable {
        public let id: String
        public let fields: [Field]

        public func value(_ name: String) -> String? { fields.first { $0.name == name }?.value }
    }

    public struct Field: Sendable, Hashable {
        public let name: String
        public let value: String
    }

    public let at: Int64
    public let folded: Int
    public let rows: [Kind: [Row]]

    static func text(_ value: JSONValue?) -> String? {
        switch value {
        case .string(let text)?: text
        case .number(let number)?: number.rounded() == number && abs(number) < 1e15 ? String(Int64(number)) : String(format: "%.5g", number)
        case .bool(let flag)?: flag ? "yes" : "no"
        default: nil
        }
    }

    static func row(_ id: String, _ pairs: [(String, String?)]) -> Row {
        Row(id: id, fields: pairs.compactMap { name, value in value.map { Field(name: name, value: $0) } })
    }

    static func worker(_ document: Document) -> Row {
        let data = document.data, location = data["location"]
        let position = location.flatMap { location in
            location["lat"]?.doubleValue.flatMap { lat in location["lon"]?.doubleValue.map { String(format: "%.5f,%.5f", lat, $0) } }
        }
        return row(document.id, [
            ("name", text(data["name"])), ("active", text(data["active"] ?? .bool(true))), ("position", position),
            ("fix", location?["recordedAt"]?.doubleValue.map { ISOTime.string(milliseconds: Int64($0)) }),
            ("battery", text(location?["battery"])), ("speed", text(location?["speed"])),
        ])
    }

    static func task(_ document: Document) -> Row {
        let data = document.data
        return row(document.id, [
            ("status", text(data["status"])), ("assignee", text(data["assigneeId"])), ("priority", text(data["priority"])), ("title", text(data["title"])),
        ])
    }

    static func resource(_ document: Document) -> Row {
        let data = document.data
        return row(document.id, [("name", text(data["name"])), ("quantity", text(data["quantity"])), ("unit", text(data["unit"])), ("reserved", text(data["reserved"]))])
    }

    static func notification(_ document: Document) -> Row {
        let data = document.data
        return row(document.id, [("to", text(data["userId"]) ?? text(data["role"])), ("title", text(data["title"]))])
    }

    /// What changed from `earlier` to this one: per kind, entities added, removed, or with
    /// fields that differ.
    public func changes(since earlier: TenantSnapshot) -> [(kind: Kind, id: String, change: String)] {
        var result: [(Kind, String, String)] = []
        for kind in Kind.allCases {
            let before = Dictionary((earlier.rows[kind] ?? []).map { ($0.id, $0) }, uniquingKeysWith: { $1 })
            let after = Dictionary((rows[kind] ?? []).map { ($0.id, $0) }, uniquingKeysWith: { $1 })
            for id in Set(before.keys).union(after.keys).sorted() {
                switch (before[id], after[id]) {
                case (nil, let new?):
                    result.append((kind, id, "new: " + new.fields.map { "\($0.name) \($0.value)" }.joined(separator: ", ")))
                case (let old?, nil):
                    result.append((kind, id, kind == .unread ? "read" : "gone"))
                case (let old?, let new?) where old != new:
                    let names = (old.fields + new.fields).map(\.name).reduce(into: [String]()) { if !$0.contains($1) { $0.append($1) } }
                    let differences = names.compactMap { name -> String? in
                        let (a, b) = (old.value(name), new.value(name))
                        return a == b ? nil : "\(name) \(a ?? "—") → \(b ?? "—")"
                    }
                    result.append((kind, id, differences.joined(separator: "; ")))
                default:
                    break
                }
            }
        }
        return result
    }
}
