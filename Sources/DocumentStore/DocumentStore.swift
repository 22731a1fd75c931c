import Foundation
import GRDB

/// Named collections of JSON documents in SQLite: the queryable read model (DESIGN.md §4).
///
/// WAL mode with one serialized writer: every write is a `BEGIN IMMEDIATE` transaction, so
/// writers never fail half-way on a lock upgrade, and readers never wait for writers.
public final class DocumentStore: Sendable {
    /// How the store opens its database.
    public struct Configuration: Sendable {
        /// Collections to create (and index) on open.
        public var collections: [CollectionDefinition]
        /// How long a connection waits on a lock before failing.
        public var busyTimeout: Duration
        /// Queries on unindexed fields are refused once a tenant's collection holds more than
        /// this many documents.
        public var scanLimit: Int

        public init(
            collections: [CollectionDefinition] = ProductCollections.all,
            busyTimeout: Duration = .seconds(5),
            scanLimit: Int = 10_000
        ) {
            self.collections = collections
            self.busyTimeout = busyTimeout
            self.scanLimit = scanLimit
        }
    }

    let writer: any DatabaseWriter
    public let configuration: Configuration
    let collections: [String: CollectionDefinition]

    /// Opens (creating if needed) the store at `path`, or an in-memory store for `":memory:"`.
    /// - Throws: `storage_error` when the file cannot be opened or migrated.
    public init(path: String, configuration: Configuration = Configuration()) throws(DocumentStoreError) {
        self.configuration = configuration
        self.collections = Dictionary(configuration.collections.map { ($0.name, $0) }, uniquingKeysWith: { $1 })
        var database = GRDB.Configuration()
        database.busyMode = .timeout(TimeInterval(configuration.busyTimeout.components.seconds))
        database.foreignKeysEnabled = true
        database.prepareDatabase { db in
            // WAL keeps commits durable across a process crash; NORMAL skips the fsync per commit
            // (the store is a projection and can be rebuilt from the streams after power loss).
            if !db.configuration.readonly { try db.execute(sql: "PRAGMA synchronous = NORMAL") }
            // Statement journals and sorts stay in memory, not in temp files.
            try db.execute(sql: "PRAGMA temp_store = MEMORY")
            // 32 MiB of page cache per connection (SQLite's default is 2 MiB): index pages of
            // million-document collections stay in memory between batches.
            try db.execute(sql: "PRAGMA cache_size = -32768")
        }
        do {
            if path == ":memory:" {
                writer = try DatabaseQueue(configuration: database)
            } else {
                try FileManager.default.createDirectory(
                    at: URL(fileURLWithPath: path).deletingLastPathComponent(), withIntermediateDirectories: true
                )
                writer = try DatabasePool(path: path, configuration: database)
            }
            try Self.migrator.migrate(writer)
            try writer.write { db in
                for collection in configuration.collections { try Self.create(collection, in: db) }
            }
        } catch {
            throw DocumentStoreError(.storage, "cannot open document store at \(path): \(error)")
        }
    }

    /// The definition of a collection this store knows.
    /// - Throws: `unknown_collection`.
    func definition(_ name: String) throws(DocumentStoreError) -> CollectionDefinition {
        guard let collection = collections[name] else {
            throw DocumentStoreError(.unknownCollection, "no collection named '\(name)'; known: \(collections.keys.sorted().joined(separator: ", "))")
        }
        return collection
    }

    // MARK: - Schema

    /// Versioned migrations of the store's own tables. Collection tables are created from their
    /// definitions on open (idempotent), so adding an indexed field needs no migration.
    static var migrator: DatabaseMigrator {
        var migrator = DatabaseMigrator()
        migrator.registerMigration("v1-ledger-checkpoints-tracks") { db in
            // Small rows keyed by their natural key: WITHOUT ROWID stores each once, in key order,
            // instead of a table row plus a key index.
            // The processed-event ledger: one row per consumer group and event, kept as an audit trail.
            try db.execute(sql: """
                CREATE TABLE ledger (
                    consumer_group TEXT NOT NULL,
                    tenant TEXT NOT NULL,
                    stream TEXT NOT NULL,
                    event_id TEXT NOT NULL,
                    event_type TEXT NOT NULL,
                    status TEXT NOT NULL CHECK (status IN ('processed', 'failed')),
                    error TEXT,
                    processed_at INTEGER NOT NULL,
                    PRIMARY KEY (consumer_group, tenant, stream, event_id)
                ) WITHOUT ROWID;
                CREATE INDEX ledger_by_time ON ledger (tenant, processed_at);
                CREATE INDEX ledger_failures ON ledger (tenant, status, processed_at) WHERE status = 'failed';
                CREATE TABLE checkpoints (
                    consumer_group TEXT NOT NULL,
                    tenant TEXT NOT NULL,
                    stream TEXT NOT NULL,
                    last_id TEXT NOT NULL,
                    updated_at INTEGER NOT NULL,
                    PRIMARY KEY (consumer_group, tenant, stream)
                ) WITHOUT ROWID;
                CREATE TABLE track_points (
                    tenant TEXT NOT NULL,
                    worker_id TEXT NOT NULL,
                    recorded_at INTEGER NOT NULL,
                    lat REAL NOT NULL,
                    lon REAL NOT NULL,
                    accuracy REAL,
                    speed REAL,
                    heading REAL,
                    event_id TEXT NOT NULL,
                    PRIMARY KEY (tenant, event_id)
                ) WITHOUT ROWID;
                CREATE INDEX track_points_by_worker ON track_points (tenant, worker_id, recorded_at);
                CREATE INDEX track_points_by_time ON track_points (tenant, recorded_at);
                """)
        }
        return migrator
    }

    /// Creates the collection's table, one column per indexed field and an index on each.
    ///
    /// Indexes are on plain columns filled from the body on write, not on `json_extract`
    /// expressions: SQLite would parse the JSON body once per index on every insert and twice on
    /// every update. A field declared later gets its column filled from the stored bodies here.
    static func create(_ collection: CollectionDefinition, in db: Database) throws {
        try db.execute(sql: """
            CREATE TABLE IF NOT EXISTS \(collection.table) (
                tenant TEXT NOT NULL,
                id TEXT NOT NULL,
                body TEXT NOT NULL,
                created_at INTEGER NOT NULL,
                updated_at INTEGER NOT NULL,
                version INTEGER NOT NULL,
                PRIMARY KEY (tenant, id)
            )
            """)
        let existing = Set(try Row.fetchAll(db, sql: "PRAGMA table_info(\(collection.table))").map { $0["name"] as String })
        for field in collection.indexedFields where !existing.contains("f:\(field)") {
            let column = CollectionDefinition.column(field)
            try db.execute(sql: "ALTER TABLE \(collection.table) ADD COLUMN \(column)")
            try db.execute(sql: "UPDATE \(collection.table) SET \(column) = json_extract(body, '\(field.jsonPath)')")
        }
        // Expression indexes of earlier versions would only slow writes down.
        for legacy in try String.fetchAll(db, sql: "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = ? AND name LIKE 'i\\_%' ESCAPE '\\'", arguments: [collection.table]) {
            try db.execute(sql: "DROP INDEX \"\(legacy)\"")
        }
        // The id closes each index so equality on the field, ordered by id (every query's
        // tie-breaker), reads the index in order: no sort, and LIMIT stops early.
        for field in collection.indexedFields {
            try db.execute(sql: "CREATE INDEX IF NOT EXISTS \(collection.indexName(field)) ON \(collection.table) (tenant, \(CollectionDefinition.column(field)), id)")
        }
    }

    // MARK: - Transactions

    /// Runs `body` in one `BEGIN IMMEDIATE` transaction on the single writer; commits when it
    /// returns, rolls back when it throws.
    public func write<T: Sendable>(_ body: @escaping @Sendable (DocumentTransaction) throws -> T) async throws(DocumentStoreError) -> T {
        do {
            return try await writer.writeWithoutTransaction { db in
                var result: T?
                try db.inTransaction(.immediate) {
                    result = try body(DocumentTransaction(db: db, store: self))
                    return .commit
                }
                return result!
            }
        } catch {
            throw Self.mapped(error)
        }
    }

    /// Runs `body` on a read-only snapshot; never waits for writers.
    public func read<T: Sendable>(_ body: @escaping @Sendable (DocumentTransaction) throws -> T) async throws(DocumentStoreError) -> T {
        do {
            return try await writer.read { db in try body(DocumentTransaction(db: db, store: self)) }
        } catch {
            throw Self.mapped(error)
        }
    }

    static func mapped(_ error: any Error) -> DocumentStoreError {
        if let error = error as? DocumentStoreError { return error }
        return DocumentStoreError(.storage, "\(error)")
    }

    // MARK: - Convenience

    /// The document, or `nil`.
    public func get(tenant: String, collection: String, id: String) async throws(DocumentStoreError) -> Document? {
        try await read { try $0.get(tenant: tenant, collection: collection, id: id) }
    }

    /// Applies up to 500 operations atomically: all or nothing.
    @discardableResult
    public func commit(tenant: String, _ operations: [WriteOperation]) async throws(DocumentStoreError) -> [WriteResult] {
        try await write { try $0.apply(tenant: tenant, operations) }
    }

    /// One page of documents matching `query`.
    public func query(tenant: String, _ query: Query) async throws(DocumentStoreError) -> QueryPage {
        try await read { try $0.query(tenant: tenant, query) }
    }

    /// How many documents match the query's filters (order, limit and cursor ignored).
    public func count(tenant: String, _ query: Query) async throws(DocumentStoreError) -> Int {
        try await read { try $0.count(tenant: tenant, query) }
    }

    /// SQLite's plan for `query`, one line per step; for checking index use.
    public func explain(tenant: String, _ query: Query) async throws(DocumentStoreError) -> [String] {
        try await read { try $0.explain(tenant: tenant, query) }
    }
}
