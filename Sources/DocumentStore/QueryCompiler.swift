import GRDB

/// Turns a `Query` into SQL with every value bound as a parameter.
///
/// Only three things are written into the SQL text: the collection's table name (a declared,
/// validated identifier), field paths (checked by `FieldPath`'s grammar, so they can appear as
/// JSON path literals or quoted column names) and operators from a fixed list. Values never are.

enum QueryCompiler {
    /// The WHERE clause (tenant, filters, order fields present) and its arguments.
    static func whereClause(_ query: Query, _ definition: CollectionDefinition, tenant: String) throws(DocumentStoreError) -> (String, [DatabaseValueConvertible?]) {
        var clauses = ["tenant = ?"]
        var arguments: [DatabaseValueConvertible?] = [tenant]
        for filter in query.filters {
            let (clause, values) = try compile(filter, definition)
            clauses.append(clause)
            arguments += values
        }
        // Like Firestore, ordering by a field keeps only documents that have it.
        for order in query.orders where !order.field.isDocumentID {
            clauses.append("\(definition.expression(for: order.field)) IS NOT NULL")
        }
        return (clauses.joined(separator: " AND "), arguments)
    }

    private static func compile(_ filter: Query.Filter, _ definition: CollectionDefinition) throws(DocumentStoreError) -> (String, [DatabaseValueConvertible?]) {
        let field = definition.expression(for: filter.field)
        let path = filter.field.jsonPath
        switch filter.op {
        case .equal, .notEqual:
            if case .null = filter.value {
                guard !filter.field.isDocumentID else { throw DocumentStoreError(.invalidQuery, "the document id is never null") }
                return filter.op == .equal
                    ? ("json_type(body, '\(path)') = 'null'", [])
                    : ("json_type(body, '\(path)') NOT IN ('null')", [])
            }
            return ("\(field) \(filter.op == .equal ? "=" : "!=") ?", [try scalar(filter)])
        case .less, .lessOrEqual, .greater, .greaterOrEqual:
            return ("\(field) \(filter.op.rawValue) ?", [try scalar(filter)])
        case .in, .notIn:
            guard case .array(let values) = filter.value, !values.isEmpty, values.count <= DocumentLimits.maxInValues else {
                throw DocumentStoreError(.invalidQuery, "'\(filter.op.rawValue)' on '\(filter.field)' needs a list of 1-\(DocumentLimits.maxInValues) values")
            }
            let bound = try values.map { value throws(DocumentStoreError) in try scalar(Query.Filter(field: filter.field, op: filter.op, value: value)) }
            let placeholders = Array(repeating: "?", count: values.count).joined(separator: ", ")
            return filter.op == .in
                ? ("\(field) IN (\(placeholders))", bound)
                : ("\(field) IS NOT NULL AND \(field) NOT IN (\(placeholders))", bound)
        case .arrayContains:
            guard !filter.field.isDocumentID else { throw DocumentStoreError(.invalidQuery, "the document id is not an array") }
            let value = try scalar(filter)
            return ("json_type(body, '\(path)') = 'array' AND EXISTS (SELECT 1 FROM json_each(body, '\(path)') AS element WHERE element.value = ?)", [value])
        }
    }

    /// A scalar filter value as SQLite sees JSON scalars: booleans are 1 and 0.
    private static func scalar(_ filter: Query.Filter) throws(DocumentStoreError) -> DatabaseValueConvertible? {
        switch filter.value {
        case .string(let text): return text
        case .number(let number): return number.rounded() == number && abs(number) < 9e15 ? Int64(number) : number
        case .bool(let flag): return flag ? 1 : 0
        case .null:
            throw DocumentStoreError(.invalidQuery, "'\(filter.op.rawValue)' on '\(filter.field)' cannot compare with null")
        case .array, .object:
            throw DocumentStoreError(.invalidQuery, "'\(filter.op.rawValue)' on '\(filter.field)' needs a string, number or boolean")
        }
    }

    /// ORDER BY with the document id as the final tie-breaker, in the last field's direction.
    static func orderClause(_ query: Query, _ definition: CollectionDefinition) -> String {
        sortKey(query).map { "\(definition.expression(for: $0.field)) \($0.direction == .ascending ? "ASC" : "DESC")" }.joined(separator: ", ")
    }

    /// The fields of the sort key: the query's orders, then the id (even if ordered on already,
    /// so a cursor always ends with the id).
    static func sortKey(_ query: Query) -> [(field: FieldPath, direction: Query.Direction)] {
        query.orders.map { ($0.field, $0.direction) } + [(.documentID, query.orders.last?.direction ?? .ascending)]
    }

    /// Keyset condition: rows strictly after `values` (one per sort-key field) in the sort order.
    static func afterClause(_ query: Query, _ definition: CollectionDefinition, values: [DatabaseValue]) -> (String, [DatabaseValueConvertible?]) {
        let key = sortKey(query)
        var alternatives: [String] = []
        var arguments: [DatabaseValueConvertible?] = []
        for index in key.indices {
            var parts: [String] = []
            for earlier in 0..<index {
                parts.append("\(definition.expression(for: key[earlier].field)) = ?")
                arguments.append(values[earlier])
            }
            parts.append("\(definition.expression(for: key[index].field)) \(key[index].direction == .ascending ? ">" : "<") ?")
            arguments.append(values[index])
            alternatives.append("(" + parts.joined(separator: " AND ") + ")")
        }
        return ("(" + alternatives.joined(separator: " OR ") + ")", arguments)
    }
}

extension JSONValue {
    /// The SQLite value `json_extract` yields for this JSON value.
    var databaseValue: DatabaseValue {
        switch self {
        case .null: return .null
        case .bool(let flag): return (flag ? 1 : 0).databaseValue
        case .number(let number): return number.rounded() == number && abs(number) < 9e15 ? Int64(number).databaseValue : number.databaseValue
        case .string(let text): return text.databaseValue
        case .array, .object: return jsonText.databaseValue
        }
    }

    /// The JSON value for a SQLite value read back from `json_extract`.
    init(_ value: DatabaseValue) {
        switch value.storage {
        case .null: self = .null
        case .int64(let number): self = .number(Double(number))
        case .double(let number): self = .number(number)
        case .string(let text): self = .string(text)
        case .blob: self = .null
        }
    }
}
