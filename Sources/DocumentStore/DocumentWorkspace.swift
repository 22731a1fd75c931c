import GRDB

/// A write-behind view of the documents of one transaction.
///
/// Reads see earlier writes; `flush()` writes each changed document once, however many
/// operations touched it. A projection batch of a thousand events that moves the same worker or
/// stock level many times writes its row once, with the version it would have had after each
/// write in turn, so the stored result is the same as writing every step.
public final class DocumentWorkspace {
    private let transaction: DocumentTransaction
    private var entries: [Key: Entry] = [:]
    private var trackPoints: [(tenant: String, point: TrackPoint)] = []
    /// Off for a scratch fold that only needs the latest state (a replay's `--at`): the points
    /// are dropped instead of growing with the window.
    public var keepsTrackPoints = true

    private struct Key: Hashable {
        let tenant: String
        let collection: String
        let id: String
    }

    private struct Entry {
        /// `nil` once deleted (or never there).
        var document: Document?
        var dirty: Bool
    }

    /// - Parameter overlay: changes of an earlier batch that `transaction` may not see yet
    ///   (read from a snapshot while the writer commits them); they win over stored rows.
    public init(_ transaction: DocumentTransaction, overlay: DocumentChanges? = nil) {
        self.transaction = transaction
        for row in overlay?.rows ?? [] {
            entries[Key(tenant: row.tenant, collection: row.collection, id: row.id)] = Entry(document: row.document, dirty: false)
        }
    }

    /// The document as this workspace sees it: stored, plus changes not yet flushed.
    public func get(tenant: String, collection: String, id: String) throws(DocumentStoreError) -> Document? {
        try get(Key(tenant: tenant, collection: collection, id: id))
    }

    private func get(_ key: Key) throws(DocumentStoreError) -> Document? {
        if let entry = entries[key] { return entry.document }
        let document = try transaction.get(tenant: key.tenant, collection: key.collection, id: key.id)
        entries[key] = Entry(document: document, dirty: false)
        return document
    }

    /// Applies operations in memory, all or nothing.
    @discardableResult
    public func apply(tenant: String, _ operations: [WriteOperation], at time: Int64? = nil) throws(DocumentStoreError) -> [WriteResult] {
        try DocumentLimits.validateTenant(tenant)
        guard operations.count <= DocumentLimits.maxBatchOperations else {
            throw DocumentStoreError(.batchTooLarge, "a batch holds at most \(DocumentLimits.maxBatchOperations) operations; this one has \(operations.count)")
        }
        let now = time ?? Int64.nowMilliseconds
        if operations.count == 1 {
            // Nothing to roll back when the one operation fails: it goes straight in (most
            // appliers write one document per event, so this is the hot path).
            let (key, entry, result) = try stage(operations[0], tenant: tenant, now: now) { (key: Key) throws(DocumentStoreError) in try get(key) }
            if let entry { entries[key] = entry }
            return [result]
        }
        var staged: [Key: Entry] = [:]
        var results: [WriteResult] = []
        results.reserveCapacity(operations.count)
        for operation in operations {
            let (key, entry, result) = try stage(operation, tenant: tenant, now: now) { (key: Key) throws(DocumentStoreError) in
                if let entry = staged[key] { return entry.document }
                return try get(key)
            }
            if let entry { staged[key] = entry }
            results.append(result)
        }
        entries.merge(staged) { $1 }
        return results
    }

    /// What one operation makes of the document `current` shows: the entry to store (`nil`
    /// when nothing changes) and the result. Throws without changing anything.
    private func stage(
        _ operation: WriteOperation, tenant: String, now: Int64, current: (Key) throws(DocumentStoreError) -> Document?
    ) throws(DocumentStoreError) -> (Key, Entry?, WriteResult) {
        func key(_ collection: String, _ id: String) throws(DocumentStoreError) -> Key {
            _ = try transaction.store.definition(collection)
            try DocumentLimits.validateID(id)
            return Key(tenant: tenant, collection: collection, id: id)
        }
        func put(_ key: Key, _ data: JSONValue, previous: Document?) throws(DocumentStoreError) -> (Key, Entry?, WriteResult) {
            // Encoded once, on flush: a hot document changed many times is encoded once.
            try DocumentLimits.checkSize(data, id: key.id)
            let document = Document(
                id: key.id, collection: key.collection, data: data,
                createdAt: previous?.createdAt ?? now, updatedAt: now, version: (previous?.version ?? 0) + 1
            )
            return (key, Entry(document: document, dirty: true), WriteResult(collection: key.collection, id: key.id, version: document.version))
        }
        switch operation {
        case .create(let collection, let id, let data):
            let key = try key(collection, id)
            guard try current(key) == nil else { throw DocumentStoreError(.alreadyExists, "\(collection)/\(id) already exists") }
            return try put(key, data, previous: nil)
        case .set(let collection, let id, let data, let ifVersion):
            let key = try key(collection, id)
            let existing = try current(key)
            try Self.check(ifVersion, against: existing?.version, collection: collection, id: id)
            return try put(key, data, previous: existing)
        case .update(let collection, let id, let fields, let ifVersion):
            let key = try key(collection, id)
            guard let existing = try current(key) else { throw DocumentStoreError(.notFound, "\(collection)/\(id) does not exist") }
            try Self.check(ifVersion, against: existing.version, collection: collection, id: id)
            var data = existing.data
            for (path, value) in fields.sorted(by: { $0.key.description < $1.key.description }) {
                guard !path.isDocumentID else { throw DocumentStoreError(.invalidFieldPath, "the document id cannot be updated") }
                data.set(value, at: path)
            }
            return try put(key, data, previous: existing)
        case .delete(let collection, let id, let ifVersion):
            let key = try key(collection, id)
            let existing = try current(key)
            if ifVersion != nil { try Self.check(ifVersion, against: existing?.version, collection: collection, id: id) }
            return (key, existing == nil ? nil : Entry(document: nil, dirty: true), WriteResult(collection: collection, id: id, version: 0))
        }
    }

    /// Adds a track point, written on `flush()`.
    public func addTrackPoint(tenant: String, _ point: TrackPoint) {
        guard keepsTrackPoints else { return }
        trackPoints.append((tenant, point))
    }

    /// Writes every changed document once, and the track points; the workspace stays usable.
    public func flush() throws(DocumentStoreError) {
        try transaction.write(takeChanges())
    }

    /// The changes since the last call, ready for `DocumentTransaction.write`, which may run on
    /// another connection (the single writer) while this one reads on. Encoding happens there,
    /// which balances the two stages of a pipelined projector.
    public func takeChanges() throws(DocumentStoreError) -> DocumentChanges {
        var rows: [DocumentChanges.Row] = []
        for (key, entry) in entries where entry.dirty {
            rows.append(DocumentChanges.Row(tenant: key.tenant, collection: key.collection, id: key.id, document: entry.document))
            entries[key]?.dirty = false
        }
        defer { trackPoints.removeAll() }
        return DocumentChanges(rows: rows, trackPoints: trackPoints)
    }

    private static func check(_ expected: Int?, against current: Int?, collection: String, id: String) throws(DocumentStoreError) {
        guard let expected, expected != (current ?? 0) else { return }
        let actual = current.map { "version \($0)" } ?? "no document"
        throw DocumentStoreError(.versionConflict, "\(collection)/\(id) expected version \(expected) but found \(actual)")
    }
}

/// Document rows and track points to write, as a workspace produced them.
public struct DocumentChanges: Sendable {
    struct Row: Sendable {
        let tenant: String
        let collection: String
        let id: String
        /// `nil`: delete the row.
        let document: Document?
    }

    var rows: [Row]
    var trackPoints: [(tenant: String, point: TrackPoint)]

    public var isEmpty: Bool { rows.isEmpty && trackPoints.isEmpty }
}

extension DocumentTransaction {
    /// Writes changes a workspace produced: each document row once, then the track points.
    public func write(_ changes: DocumentChanges) throws(DocumentStoreError) {
        // One statement per collection for the whole write: the statement cache is keyed by
        // the SQL text, which it would hash and compare for every row.
        var upserts: [String: Statement] = [:]
        for row in changes.rows {
            let definition = try store.definition(row.collection)
            if let document = row.document {
                let body = try DocumentLimits.encode(document.data, id: document.id)
                var arguments: [DatabaseValueConvertible?] = [row.tenant, row.id, body, document.createdAt, document.updatedAt, document.version]
                // The indexed fields' columns hold what json_extract would read from the body.
                for field in definition.indexedFields {
                    arguments.append(document.data[path: field]?.databaseValue ?? .null)
                }
                try run {
                    let statement = try upserts[row.collection] ?? db.cachedStatement(sql: definition.upsertSQL)
                    upserts[row.collection] = statement
                    try statement.execute(arguments: StatementArguments(arguments))
                }
            } else {
                try run {
                    try db.cachedStatement(sql: "DELETE FROM \(definition.table) WHERE tenant = ? AND id = ?").execute(arguments: [row.tenant, row.id])
                }
            }
        }
        for (tenant, points) in Dictionary(grouping: changes.trackPoints, by: \.tenant) {
            try addTrackPoints(tenant: tenant, points.map(\.point))
        }
    }
}
