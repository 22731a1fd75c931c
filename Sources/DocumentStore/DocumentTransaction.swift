import GRDB

/// Reads and writes inside one transaction of a `DocumentStore`.
///
/// Only valid inside the `write` or `read` closure that received it.
public struct DocumentTransaction {
    let db: Database
    let store: DocumentStore

    // MARK: - Documents

    /// The document, or `nil`.
    public func get(tenant: String, collection: String, id: String) throws(DocumentStoreError) -> Document? {
        try DocumentLimits.validateTenant(tenant)
        let definition = try store.definition(collection)
        return try run {
            try Row.fetchOne(db.cachedStatement(sql: definition.selectSQL), arguments: [tenant, id])
                .map { try document($0, collection: collection) }
        }
    }

    /// Applies up to 500 operations; the enclosing transaction makes them all or nothing.
    /// - Parameter time: the write time to record (ms since 1970); projections pass the event's
    ///   time so a rebuild writes identical rows. Defaults to now.
    @discardableResult
    public func apply(tenant: String, _ operations: [WriteOperation], at time: Int64? = nil) throws(DocumentStoreError) -> [WriteResult] {
        let workspace = DocumentWorkspace(self)
        let results = try workspace.apply(tenant: tenant, operations, at: time)
        try workspace.flush()
        return results
    }

    /// Deletes every document of a tenant in a collection; returns how many.
    @discardableResult
    public func deleteAll(tenant: String, collection: String) throws(DocumentStoreError) -> Int {
        let definition = try store.definition(collection)
        return try run {
            try db.cachedStatement(sql: "DELETE FROM \(definition.table) WHERE tenant = ?").execute(arguments: [tenant])
            return db.changesCount
        }
    }

    /// The tenants that hold documents in a collection, sorted (for maintenance across tenants).
    public func tenants(collection: String) throws(DocumentStoreError) -> [String] {
        let definition = try store.definition(collection)
        return try run { try String.fetchAll(db, sql: "SELECT DISTINCT tenant FROM \(definition.table) ORDER BY tenant") }
    }

    // MARK: - Queries

    /// One page of documents matching `query`.
    public func query(tenant: String, _ query: Query) throws(DocumentStoreError) -> QueryPage {
        let (sql, arguments, definition) = try compile(tenant: tenant, query)
        let rows = try run { try Row.fetchAll(db, sql: sql, arguments: StatementArguments(arguments)) }
        var documents: [Document] = []
        documents.reserveCapacity(rows.count)
        for row in rows { documents.append(try run { try document(row, collection: definition.name) }) }
        let limit = pageSize(query)
        var next: QueryCursor?
        if documents.count == limit, let last = documents.last, let lastRow = rows.last {
            let key = QueryCompiler.sortKey(query)
            // The sort-key values are the trailing columns of each row.
            let values = key.indices.dropLast().map { JSONValue(lastRow[5 + $0] as DatabaseValue) }
            next = .position(values: values, id: last.id)
        }
        return QueryPage(documents: documents, nextCursor: next)
    }

    /// How many documents match the query's filters.
    public func count(tenant: String, _ query: Query) throws(DocumentStoreError) -> Int {
        try DocumentLimits.validateTenant(tenant)
        let definition = try store.definition(query.collection)
        try requireIndexes(query, definition, tenant: tenant)
        let (clause, arguments) = try QueryCompiler.whereClause(query, definition, tenant: tenant)
        return try run { try Int.fetchOne(db, sql: "SELECT count(*) FROM \(definition.table) WHERE \(clause)", arguments: StatementArguments(arguments)) ?? 0 }
    }

    /// SQLite's plan for the query.
    public func explain(tenant: String, _ query: Query) throws(DocumentStoreError) -> [String] {
        let (sql, arguments, _) = try compile(tenant: tenant, query)
        return try run {
            try Row.fetchAll(db, sql: "EXPLAIN QUERY PLAN " + sql, arguments: StatementArguments(arguments)).map { $0["detail"] as String }
        }
    }

    private func pageSize(_ query: Query) -> Int {
        min(query.limit ?? DocumentLimits.maxPageSize, DocumentLimits.maxPageSize)
    }

    private func compile(tenant: String, _ query: Query) throws(DocumentStoreError) -> (String, [DatabaseValueConvertible?], CollectionDefinition) {
        try DocumentLimits.validateTenant(tenant)
        let definition = try store.definition(query.collection)
        if let limit = query.limit, !(1...DocumentLimits.maxPageSize).contains(limit) {
            throw DocumentStoreError(.invalidQuery, "limit must be 1-\(DocumentLimits.maxPageSize); got \(limit)")
        }
        guard query.filters.count <= 20, query.orders.count <= 5 else {
            throw DocumentStoreError(.invalidQuery, "a query takes at most 20 filters and 5 orderBy fields")
        }
        try requireIndexes(query, definition, tenant: tenant)
        var (clause, arguments) = try QueryCompiler.whereClause(query, definition, tenant: tenant)
        if let cursor = query.cursor {
            let values = try cursorValues(cursor, query: query, definition: definition, tenant: tenant)
            let (after, afterArguments) = QueryCompiler.afterClause(query, definition, values: values)
            clause += " AND " + after
            arguments += afterArguments
        }
        let key = QueryCompiler.sortKey(query)
        let keyColumns = key.map { ", " + definition.expression(for: $0.field) }.joined()
        let sql = """
            SELECT id, body, created_at, updated_at, version\(keyColumns) FROM \(definition.table)
            WHERE \(clause) ORDER BY \(QueryCompiler.orderClause(query, definition)) LIMIT \(pageSize(query))
            """
        return (sql, arguments, definition)
    }

    /// The sort-key values the cursor points after, id last.
    private func cursorValues(_ cursor: QueryCursor, query: Query, definition: CollectionDefinition, tenant: String) throws(DocumentStoreError) -> [DatabaseValue] {
        let key = QueryCompiler.sortKey(query)
        switch cursor {
        case .position(let values, let id):
            guard values.count == key.count - 1 else {
                throw DocumentStoreError(.invalidQuery, "the cursor belongs to a query with a different orderBy")
            }
            return values.map(\.databaseValue) + [id.databaseValue]
        case .document(let id):
            let columns = key.map { definition.expression(for: $0.field) }.joined(separator: ", ")
            guard let row = try run({ try Row.fetchOne(db, sql: "SELECT \(columns) FROM \(definition.table) WHERE tenant = ? AND id = ?", arguments: [tenant, id]) }) else {
                throw DocumentStoreError(.notFound, "cursor document \(definition.name)/\(id) does not exist")
            }
            let values = key.indices.map { row[$0] as DatabaseValue }
            if values.contains(where: \.isNull) {
                throw DocumentStoreError(.invalidQuery, "cursor document \(definition.name)/\(id) lacks a field the query orders by")
            }
            return values
        }
    }

    /// Refuses a query on an unindexed field once the collection is too large to scan.
    private func requireIndexes(_ query: Query, _ definition: CollectionDefinition, tenant: String) throws(DocumentStoreError) {
        let fields = query.filters.map(\.field) + query.orders.map(\.field)
        guard let missing = fields.first(where: { !definition.isIndexed($0) }) else { return }
        let limit = store.configuration.scanLimit
        let size = try run {
            try Int.fetchOne(db.cachedStatement(sql: "SELECT count(*) FROM (SELECT 1 FROM \(definition.table) WHERE tenant = ? LIMIT ?)"), arguments: [tenant, limit + 1]) ?? 0
        }
        guard size > limit else { return }
        throw DocumentStoreError(
            .indexRequired,
            "'\(definition.name)' holds more than \(limit) documents and has no index on '\(missing)'; "
                + "add '\(missing)' to the collection's indexedFields (index \(definition.indexName(missing))) or filter on an indexed field: "
                + (definition.indexedFields.map(\.description).joined(separator: ", "))
        )
    }

    // MARK: - Helpers

    private func document(_ row: Row, collection: String) throws -> Document {
        Document(
            id: row[0], collection: collection, data: try JSONValue(jsonText: row[1]),
            createdAt: row[2], updatedAt: row[3], version: row[4]
        )
    }

    func run<T>(_ body: () throws -> T) throws(DocumentStoreError) -> T {
        do {
            return try body()
        } catch {
            throw DocumentStore.mapped(error)
        }
    }
}

extension DocumentTransaction {
    /// Reads a PRAGMA's value (`journal_mode`, `foreign_keys`…) for diagnostics.
    public func pragma(_ name: String) throws(DocumentStoreError) -> String? {
        guard name.utf8.allSatisfy({ ($0 >= 0x61 && $0 <= 0x7A) || $0 == 0x5F }) else {
            throw DocumentStoreError(.invalidQuery, "not a pragma name: \(name)")
        }
        return try run { try String.fetchOne(db, sql: "PRAGMA \(name)") }
    }
}
