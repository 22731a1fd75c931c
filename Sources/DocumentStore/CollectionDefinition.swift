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
        self.name = name
        self.indexedFields = indexedFields
    }

    /// For collections declared in code; traps on an invalid name.
    init(declared name: String, indexedFields: [FieldPath]) {
        precondition(Self.isValidName(name), "invalid collection name \(name)")
        self.name = name
        self.indexedFields = indexedFields
    }

    /// The SQLite table holding the collection's documents.
    var table: String { "c_" + name }

    /// The name of the index on `field`.
    func indexName(_ field: FieldPath) -> String {
        "i_\(name)_" + field.segments.joined(separator: "_")
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
    public static let rooms = CollectionDefinition(declared: "rooms", indexedFields: ["name", "createdAt"])
    public static let messages = CollectionDefinition(declared: "messages", indexedFields: ["roomId", "senderId", "createdAt"])
    public static let workers = CollectionDefinition(declared: "workers", indexedFields: ["name", "status", "updatedAt"])
    public static let devices = CollectionDefinition(declared: "devices", indexedFields: ["workerId"])
    public static let tasks = CollectionDefinition(declared: "tasks", indexedFields: ["status", "assigneeId", "priority", "createdAt"])
    public static let resources = CollectionDefinition(declared: "resources", indexedFields: ["name", "category", "quantity"])
    public static let notifications = CollectionDefinition(declared: "notifications", indexedFields: ["userId", "read", "createdAt"])
    public static let files = CollectionDefinition(declared: "files", indexedFields: ["ownerId", "area", "createdAt"])

    public static let all = [rooms, messages, workers, devices, tasks, resources, notifications, files]
}
