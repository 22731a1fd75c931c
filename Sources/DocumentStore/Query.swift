import Foundation

/// A query over one collection of one tenant: filters, order, page size and cursor.
///
/// ```swift
/// let page = try await store.query(tenant: "acme", Query("tasks")
///     .where("status", .equal, "open")
///     .order(by: "createdAt", .descending)
///     .limit(50))
/// ```
public struct Query: Sendable, Hashable {
    public enum Operator: String, Sendable, Hashable, CaseIterable {
        case equal = "=="
        case notEqual = "!="
        case less = "<"
        case lessOrEqual = "<="
        case greater = ">"
        case greaterOrEqual = ">="
        case `in` = "in"
        case notIn = "not-in"
        case arrayContains = "array-contains"
    }

    public enum Direction: String, Sendable, Hashable {
        case ascending = "asc"
        case descending = "desc"
    }

    public struct Filter: Sendable, Hashable {
        public var field: FieldPath
        public var op: Operator
        public var value: JSONValue

        public init(field: FieldPath, op: Operator, value: JSONValue) {
            self.field = field
            self.op = op
            self.value = value
        }
    }

    public struct Order: Sendable, Hashable {
        public var field: FieldPath
        public var direction: Direction

        public init(field: FieldPath, direction: Direction) {
            self.field = field
            self.direction = direction
        }
    }

    public var collection: String
    public var filters: [Filter] = []
    public var orders: [Order] = []
    /// Page size; `nil` means the largest page (`DocumentLimits.maxPageSize`).
    public var limit: Int?
    /// Continue after this point (from `QueryPage.nextCursor`, or a document).
    public var cursor: QueryCursor?

    public init(_ collection: String) {
        self.collection = collection
    }

    public func `where`(_ field: FieldPath, _ op: Operator, _ value: JSONValue) -> Query {
        var copy = self
        copy.filters.append(Filter(field: field, op: op, value: value))
        return copy
    }

    public func order(by field: FieldPath, _ direction: Direction = .ascending) -> Query {
        var copy = self
        copy.orders.append(Order(field: field, direction: direction))
        return copy
    }

    public func limit(_ count: Int) -> Query {
        var copy = self
        copy.limit = count
        return copy
    }

    public func start(after cursor: QueryCursor) -> Query {
        var copy = self
        copy.cursor = cursor
        return copy
    }
}

/// Where a page ends: the order values and id of its last document.
///
/// Keyset pagination: the next page is everything strictly after this point in the query's
/// order, so documents inserted meanwhile never shift or repeat a page.
public enum QueryCursor: Sendable, Hashable {
    /// After this stored document (read again to find its order values).
    case document(id: String)
    /// After these order values and id, as `QueryPage.nextCursor` returns them.
    case position(values: [JSONValue], id: String)

    /// An opaque token for APIs (base64url of JSON).
    public var token: String {
        guard case .position(let values, let id) = self else {
            if case .document(let id) = self { return Self.encode(["d", .string(id)]) }
            return ""
        }
        return Self.encode(["p", .string(id), .array(values)])
    }

    /// Reads a token made by `token`.
    /// - Throws: `invalid_query` for anything else.
    public init(token: String) throws(DocumentStoreError) {
        var base64 = token.replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
        while base64.count % 4 != 0 { base64 += "=" }
        guard token.utf8.count <= 16_384, let data = Data(base64Encoded: base64),
              let value = try? JSONDecoder().decode(JSONValue.self, from: data), case .array(let parts) = value,
              let kind = parts.first?.stringValue, parts.count >= 2, let id = parts[1].stringValue
        else {
            throw DocumentStoreError(.invalidQuery, "cursor token is not one this server issued")
        }
        switch kind {
        case "d" where parts.count == 2: self = .document(id: id)
        case "p" where parts.count == 3:
            guard case .array(let values) = parts[2] else {
                throw DocumentStoreError(.invalidQuery, "cursor token is not one this server issued")
            }
            self = .position(values: values, id: id)
        default:
            throw DocumentStoreError(.invalidQuery, "cursor token is not one this server issued")
        }
    }

    private static func encode(_ value: JSONValue) -> String {
        Data(value.jsonText.utf8).base64EncodedString()
            .replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_").replacingOccurrences(of: "=", with: "")
    }
}

/// One page of results.
public struct QueryPage: Sendable, Hashable {
    public var documents: [Document]
    /// Pass to `Query.start(after:)` for the next page; `nil` when this page was not full.
    public var nextCursor: QueryCursor?
}
