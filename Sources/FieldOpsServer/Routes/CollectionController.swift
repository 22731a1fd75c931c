import DocumentStore
import Foundation
import Hummingbird

/// Read and query any product collection with the store's query language:
///
/// ```
/// GET /v1/collections/tasks/documents?where=status in ["open","assigned"]&where=priority >= 3
///     &orderBy=createdAt desc&limit=50&startAfter=CURSOR
/// GET /v1/collections/tasks/documents/T-42
/// ```
///
/// `where` is `FIELD OP VALUE` (ops `== != < <= > >= in not-in array-contains`, VALUE as JSON;
/// a bare word is a string), repeatable; `orderBy` is `FIELD [asc|desc]`, repeatable; `__id__`
/// names the document id. Workers see only their own share: their tasks, their rooms, their
/// worker document, and the inventory.
struct CollectionController {
    let writes: DomainWrites

    func addRoutes(to group: RouterGroup<FieldOpsRequestContext>) {
        group.get("collections/:collection/documents", use: query)
        group.get("collections/:collection/documents/:id", use: get)
    }

    @Sendable func query(_ request: Request, context: FieldOpsRequestContext) async throws -> Response {
        let caller = try context.requireIdentity()
        let collection = try Self.collection(context)
        var query = Query(collection)
        let parameters = request.uri.queryParameters
        for clause in parameters.getAll("where") { query.filters.append(try Self.filter(clause)) }
        for clause in parameters.getAll("orderBy") { query.orders.append(try Self.order(clause)) }
        query.limit = try request.intParameter("limit", default: 50, range: 1...DocumentLimits.maxPageSize)
        if let token = parameters.get("startAfter") {
            do {
                query.cursor = try QueryCursor(token: token)
            } catch {
                throw APIError.invalid("startAfter", "not a cursor this server issued")
            }
        }
        query.filters += try Self.scope(caller, collection)
        var reply: JSONObject = [:]
        let page = try await writes.query(tenant: caller.tenant, query)
        reply["documents"] = .array(page.documents.map { Self.render($0) })
        reply["nextCursor"] = page.nextCursor.map { .string($0.token) } ?? .null
        if try request.flag("count") {
            var counting = query
            counting.limit = nil
            counting.cursor = nil
            counting.orders = []
            let tenant = caller.tenant
            let total = counting
            reply["count"] = .number(Double(try await writes.readStore { try $0.count(tenant: tenant, total) }))
        }
        return Response.json(.object(reply))
    }

    @Sendable func get(_ request: Request, context: FieldOpsRequestContext) async throws -> Response {
        let caller = try context.requireIdentity()
        let collection = try Self.collection(context)
        let id = try context.parameters.require("id")
        let scope = try Self.scope(caller, collection)
        guard let document = try await writes.get(tenant: caller.tenant, collection: collection, id: id),
              scope.allSatisfy({ Self.matches(document, $0) }) else {
            throw APIError.notFound("\(collection)/\(id)")
        }
        return Response.json(Self.render(document))
    }

    // MARK: - Parsing

    static func collection(_ context: FieldOpsRequestContext) throws -> String {
        let name = try context.parameters.require("collection")
        guard ProductCollections.all.contains(where: { $0.name == name }) else {
            throw APIError(.notFound, code: "unknown_collection", message: "no collection '\(name)'; the collections are \(ProductCollections.all.map(\.name).joined(separator: ", "))")
        }
        return name
    }

    /// `FIELD OP VALUE`, e.g. `status == "open"`, `priority >= 3`, `skills array-contains valves`.
    static func filter(_ clause: String) throws -> Query.Filter {
        let parts = clause.trimmingCharacters(in: .whitespaces).split(separator: " ", maxSplits: 2, omittingEmptySubsequences: true).map(String.init)
        guard parts.count == 3, let op = Query.Operator(rawValue: parts[1]) else {
            throw APIError.invalid("where", "'\(clause)' must be FIELD OP VALUE with OP one of \(Query.Operator.allCases.map(\.rawValue).joined(separator: " "))")
        }
        let field: FieldPath
        do {
            field = try FieldPath(validating: parts[0])
        } catch {
            throw APIError.invalid("where", error.message)
        }
        let value = (try? JSONValue(jsonText: parts[2])) ?? .string(parts[2])
        return Query.Filter(field: field, op: op, value: value)
    }

    /// `FIELD [asc|desc]`.
    static func order(_ clause: String) throws -> Query.Order {
        let parts = clause.split(separator: " ", omittingEmptySubsequences: true).map(String.init)
        guard (1...2).contains(parts.count), let field = try? FieldPath(validating: parts[0]) else {
            throw APIError.invalid("orderBy", "'\(clause)' must be FIELD, FIELD asc or FIELD desc")
        }
        let direction = parts.count == 2 ? Query.Direction(rawValue: parts[1].lowercased()) : .ascending
        guard let direction else { throw APIError.invalid("orderBy", "direction must be asc or desc") }
        return Query.Order(field: field, direction: direction)
    }

    // MARK: - Scope

    /// Filters every query of a worker carries; dispatchers, admins and services see the tenant.
    static func scope(_ caller: Identity, _ collection: String) throws -> [Query.Filter] {
        guard !caller.seesWholeTenant else { return [] }
        let subject = JSONValue.string(caller.subject)
        switch collection {
        case "tasks": return [Query.Filter(field: "assigneeId", op: .equal, value: subject)]
        case "rooms": return [Query.Filter(field: "members", op: .arrayContains, value: subject)]
        case "workers": return [Query.Filter(field: .documentID, op: .equal, value: subject)]
        case "resources": return []
        default: throw APIError.forbidden("a worker may not query '\(collection)'; use the routes for its own messages and notifications")
        }
    }

    static func matches(_ document: Document, _ filter: Query.Filter) -> Bool {
        let value = filter.field.isDocumentID ? JSONValue.string(document.id) : document.data[path: filter.field]
        switch filter.op {
        case .equal: return value == filter.value
        case .arrayContains: return value?.arrayValue?.contains(filter.value) == true
        default: return false
        }
    }

    static func render(_ document: Document) -> JSONValue {
        [
            "id": .string(document.id), "data": document.data, "version": .number(Double(document.version)),
            "createdAt": .number(Double(document.createdAt)), "updatedAt": .number(Double(document.updatedAt)),
        ]
    }
}
