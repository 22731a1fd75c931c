/// A named collection of documents and the fields it keeps indexes on.
public struct CollectionDefinition: Sendable, Hashable {
    public let name: String
    /// Fields with an expression index: queries may filter and order on them at any size.
    public let indexedFields: [FieldPath]

    /// - Throws: `invalid_collection` unless the name is 1-64 letters, digits or '_'.
    public init(_ name: String, indexedFields: [FieldPath] = []) throws(DocumentStoreError) {
        guard Self.isValidName(name) else {
            throw DocumentStoreError(.invalidCollection, "collection name '\(name)' must be 1-64 letters, digits or '_', starting with a letter")
        }
        self.init(declared: name, indexedFields: indexedFields)
    }

    /// For collections declared in code; traps on an invalid name.
    init(declared name: String, indexedFields: [FieldPath]) {
        precondition(Self.isValidName(name), "invalid collection name \(name)")
        self.name = name
        var unique: [FieldPath] = []
        for field in indexedFields where !field.isDocumentID && !unique.contains(field) { unique.append(field) }
        self.indexedFields = unique
        let columns = unique.map { Self.column($0) }
        let names = (["tenant", "id", "body", "created_at", "updated_at", "version"] + columns).joined(separator: ", ")
        let placeholders = Array(repeating: "?", count: 6 + columns.count).joined(separator: ", ")
        let updates = (["body", "created_at", "updated_at", "version"] + columns).map { "\($0) = excluded.\($0)" }.joined(separator: ", ")
        upsertSQL = "INSERT INTO c_\(name) (\(names)) VALUES (\(placeholders)) ON CONFLICT (tenant, id) DO UPDATE SET \(updates)"
        selectSQL = "SELECT id, body, created_at, updated_at, version FROM c_\(name) WHERE tenant = ? AND id = ?"
    }

    /// The SQLite table holding the collection's documents.
    var table: String { "c_" + name }

    /// Writes one document row with its field columns (arguments: tenant, id, body, created_at,
    /// updated_at, version, then one value per indexed field).
    let upsertSQL: String

    /// Reads one document row (arguments: tenant, id). Built once: projections read a row per
    /// event they cannot find in their batch.
    let selectSQL: String

    /// The name of the index on `field`.
    func indexName(_ field: FieldPath) -> String {
        "x_\(name)_" + field.segments.joined(separator: "_")
    }

    /// The column that holds an indexed field's value, quoted: `"f:location.lat"`. The path
    /// grammar has no quotes, so the name is always a safe identifier.
    static func column(_ field: FieldPath) -> String {
        "\"f:\(field.description)\""
    }

    /// The SQL reading `field` of a row: the id, an indexed field's column (filled on write from
    /// the body, as `json_extract` would read it), or `json_extract` on the body.
    func expression(for field: FieldPath) -> String {
        if field.isDocumentID { return "id" }
        if indexedFields.contains(field) { return Self.column(field) }
        return "json_extract(body, '\(field.jsonPath)')"
    }

    func isIndexed(_ field: FieldPath) -> Bool {
        field.isDocumentID || indexedFields.contains(field)
    }

    static func isValidName(_ name: String) -> Bool {
        guard let first = name.utf8.first, (first >= 0x41 && first <= 0x5A) || (first >= 0x61 && first <= 0x7A), name.utf8.count <= 64 else {
            return false
        }
        return name.utf8.allSatisfy { ($0 >= 0x30 && $0 <= 0x39) || ($0 >= 0x41 && $0 <= 0x5A) || ($0 >= 0x61 && $0 <= 0x7A) || $0 == 0x5F }
    }
}

/// The collections FieldOps itself keeps (DESIGN.md §4).
public enum ProductCollections {
    public static let rooms = CollectionDefinition(declared: "rooms", indexedFields: ["name", "createdAt", "members"])
    public static let messages = CollectionDefinition(declared: "messages", indexedFields: ["roomId", "senderId", "createdAt", "sortKey"])
    public static let workers = CollectionDefinition(declared: "workers", indexedFields: ["name", "team", "active", "updatedAt", "location.lat", "location.lon"])
    public static let devices = CollectionDefinition(declared: "devices", indexedFields: ["workerId"])
    public static let tasks = CollectionDefinition(declared: "tasks", indexedFields: ["status", "assigneeId", "priority", "createdAt"])
    public static let resources = CollectionDefinition(declared: "resources", indexedFields: ["name", "category", "quantity"])
    public static let notifications = CollectionDefinition(declared: "notifications", indexedFields: ["recipient", "userId", "read", "createdAt"])
    public static let files = CollectionDefinition(declared: "files", indexedFields: ["ownerId", "area", "createdAt"])

    public static let all = [rooms, messages, workers, devices, tasks, resources, notifications, files]
}
