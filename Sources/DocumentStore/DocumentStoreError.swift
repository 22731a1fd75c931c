/// Every failure of the document store, with a stable code and a message for people.
public struct DocumentStoreError: Error, Sendable, Hashable {
    public struct Code: Sendable, Hashable, CustomStringConvertible {
        public let rawValue: String
        public init(_ rawValue: String) { self.rawValue = rawValue }
        public var description: String { rawValue }

        public static let invalidTenant = Code("invalid_tenant")
        public static let invalidCollection = Code("invalid_collection")
        public static let unknownCollection = Code("unknown_collection")
        public static let invalidDocumentID = Code("invalid_document_id")
        public static let invalidFieldPath = Code("invalid_field_path")
        public static let invalidJSON = Code("invalid_json")
        public static let invalidQuery = Code("invalid_query")
        /// The query filters or orders on a field without an index, in a collection too large to scan.
        public static let indexRequired = Code("index_required")
        public static let documentTooLarge = Code("document_too_large")
        public static let batchTooLarge = Code("batch_too_large")
        public static let notFound = Code("not_found")
        public static let alreadyExists = Code("already_exists")
        /// `ifVersion` did not match the stored version.
        public static let versionConflict = Code("version_conflict")
        /// SQLite failed (disk full, corruption…).
        public static let storage = Code("storage_error")
    }

    public let code: Code
    public let message: String

    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }
}

extension DocumentStoreError: CustomStringConvertible {
    public var description: String { "\(code): \(message)" }
}
