/// A dotted path into a document (`status`, `location.lat`), checked against a safe grammar.
///
/// Segments are `[A-Za-z_][A-Za-z0-9_]*`, at most 10 deep and 200 bytes long, so a path can be
/// written into SQL as a JSON path literal or a quoted column name without ever
/// carrying a quote, bracket or operator.
public struct FieldPath: Sendable, Hashable, CustomStringConvertible, ExpressibleByStringLiteral {
    public let segments: [String]

    /// The special path naming the document id.
    public static let documentID = FieldPath(trusted: ["__id__"])

    /// - Throws: `invalid_field_path` naming the offending path.
    public init(validating text: String) throws(DocumentStoreError) {
        let segments = text.split(separator: ".", omittingEmptySubsequences: false).map(String.init)
        guard text.utf8.count <= 200, (1...10).contains(segments.count), segments.allSatisfy(Self.isSegment) else {
            throw DocumentStoreError(
                .invalidFieldPath,
                "field path '\(text)' must be 1-10 dot-separated names of letters, digits and '_' (not starting with a digit)"
            )
        }
        self.segments = segments
    }

    /// For literals in code; traps on an invalid path, as a programming error.
    public init(stringLiteral value: String) {
        do {
            try self.init(validating: value)
        } catch {
            preconditionFailure("\(error)")
        }
    }

    private init(trusted segments: [String]) {
        self.segments = segments
    }

    public var description: String { segments.joined(separator: ".") }

    public var isDocumentID: Bool { self == .documentID }

    /// The JSON path for SQLite's JSON functions: `$.location.lat`.
    var jsonPath: String { "$." + segments.joined(separator: ".") }


    private static func isSegment(_ segment: String) -> Bool {
        guard let first = segment.utf8.first, !(first >= 0x30 && first <= 0x39) else { return false }
        return segment.utf8.allSatisfy { byte in
            (byte >= 0x30 && byte <= 0x39) || (byte >= 0x41 && byte <= 0x5A) || (byte >= 0x61 && byte <= 0x7A) || byte == 0x5F
        }
    }
}
