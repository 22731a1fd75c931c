/// One write in a batch.
public enum WriteOperation: Sendable, Hashable {
    /// Creates the document; fails with `already_exists` if it is there.
    case create(collection: String, id: String, data: JSONValue)
    /// Creates or replaces the whole document.
    case set(collection: String, id: String, data: JSONValue, ifVersion: Int? = nil)
    /// Sets the given fields (dotted paths), keeping the others; fails with `not_found`.
    case update(collection: String, id: String, fields: [FieldPath: JSONValue], ifVersion: Int? = nil)
    /// Deletes the document; deleting a missing document is not an error unless `ifVersion` is given.
    case delete(collection: String, id: String, ifVersion: Int? = nil)
}

/// What a write left behind.
public struct WriteResult: Sendable, Hashable {
    public let collection: String
    public let id: String
    /// The document's version after the write; 0 after a delete.
    public let version: Int
}
