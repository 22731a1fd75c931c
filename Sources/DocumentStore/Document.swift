import Foundation

/// One stored document.
public struct Document: Sendable, Hashable, Codable {
    public var id: String
    public var collection: String
    public var data: JSONValue
    /// Milliseconds since 1970, UTC.
    public var createdAt: Int64
    public var updatedAt: Int64
    /// Starts at 1 and grows by one with every write; `ifVersion` compares against it.
    public var version: Int

    public init(id: String, collection: String, data: JSONValue, createdAt: Int64, updatedAt: Int64, version: Int) {
        self.id = id
        self.collection = collection
        self.data = data
        self.createdAt = createdAt
        self.updatedAt = updatedAt
        self.version = version
    }
}

/// Limits that protect the store.
public enum DocumentLimits {
    /// Largest document body, as JSON text: 1 MiB.
    public static let maxDocumentBytes = 1_048_576
    /// Most operations in one batch.
    public static let maxBatchOperations = 500
    /// Most documents per query page.
    public static let maxPageSize = 1_000
    /// Most values in an `in` / `not-in` filter.
    public static let maxInValues = 30
    /// Longest document id.
    public static let maxDocumentIDBytes = 256

    static func validateID(_ id: String) throws(DocumentStoreError) {
        // Bytes, not Foundation's `contains`: this runs for every write of every projected event.
        guard !id.isEmpty, id.utf8.count <= maxDocumentIDBytes,
              !id.utf8.contains(where: { $0 == UInt8(ascii: "/") || $0 < 0x20 || $0 == 0x7F })
        else {
            throw DocumentStoreError(.invalidDocumentID, "document id '\(id.prefix(64))' must be 1-\(maxDocumentIDBytes) bytes without '/' or control characters")
        }
    }

    static func validateTenant(_ tenant: String) throws(DocumentStoreError) {
        guard !tenant.isEmpty, tenant.utf8.count <= 64,
              tenant.utf8.allSatisfy({ ($0 >= 0x30 && $0 <= 0x39) || ($0 >= 0x41 && $0 <= 0x5A) || ($0 >= 0x61 && $0 <= 0x7A) || $0 == 0x2D || $0 == 0x5F })
        else {
            throw DocumentStoreError(.invalidTenant, "tenant '\(tenant)' must be 1-64 letters, digits, '-' or '_'")
        }
    }

    /// Checks a body's size without encoding it when a cheap upper bound already fits; encodes
    /// only documents that might be too large.
    static func checkSize(_ data: JSONValue, id: String) throws(DocumentStoreError) {
        guard case .object = data else {
            throw DocumentStoreError(.invalidJSON, "document '\(id)' must be a JSON object")
        }
        if data.encodedSizeUpperBound <= maxDocumentBytes { return }
        _ = try encode(data, id: id)
    }

    /// Encodes a body and checks its size.
    static func encode(_ data: JSONValue, id: String) throws(DocumentStoreError) -> String {
        guard case .object = data else {
            throw DocumentStoreError(.invalidJSON, "document '\(id)' must be a JSON object")
        }
        let text = data.jsonText
        guard text.utf8.count <= maxDocumentBytes else {
            throw DocumentStoreError(
                .documentTooLarge,
                "document '\(id)' is \(text.utf8.count) bytes as JSON; the limit is \(maxDocumentBytes) bytes (1 MiB)"
            )
        }
        return text
    }
}

extension Int64 {
    /// Now in milliseconds since 1970.
    static var nowMilliseconds: Int64 {
        Int64((Date().timeIntervalSince1970 * 1000).rounded())
    }
}
