import DocumentStore
import Foundation
import Testing

/// A small seeded generator, so a failing seed can be replayed.
struct SplitMix64: RandomNumberGenerator {
    var state: UInt64
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

/// How SQLite sees a JSON value under `json_extract`, for the reference model.
enum SQLValue: Equatable {
    case null
    case number(Double)
    case text([UInt8])

    init(_ value: JSONValue?) {
        switch value {
        case nil, .null?: self = .null
        case .bool(let flag)?: self = .number(flag ? 1 : 0)
        case .number(let number)?: self = .number(number)
        case .string(let text)?: self = .text(Array(text.utf8))
        case .array?, .object?: self = .text(Array(value!.jsonText.utf8))
        }
    }

    /// SQLite's order: NULL < numbers < text (BINARY collation: bytes).
    static func compare(_ lhs: SQLValue, _ rhs: SQLValue) -> Int {
        switch (lhs, rhs) {
        case (.null, .null): return 0
        case (.null, _): return -1
        case (_, .null): return 1
        case (.number(let a), .number(let b)): return a < b ? -1 : (a > b ? 1 : 0)
        case (.number, .text): return -1
        case (.text, .number): return 1
        case (.text(let a), .text(let b)): return a.lexicographicallyPrecedes(b) ? -1 : (a == b ? 0 : 1)
        }
    }
}

/// The reference: the same query evaluated in Swift over the same documents.
enum Reference {
    static func value(_ document: (id: String, data: JSONValue), _ field: FieldPath) -> SQLValue {
        field.isDocumentID ? .text(Array(document.id.utf8)) : SQLValue(document.data[path: field])
    }

    static func matches(_ document: (id: String, data: JSONValue), _ filter: Query.Filter) -> Bool {
        let actual = value(document, filter.field)
        switch filter.op {
        case .equal, .notEqual, .less, .lessOrEqual, .greater, .greaterOrEqual:
            guard actual != .null else { return false }
            let order = SQLValue.compare(actual, SQLValue(filter.value))
            switch filter.op {
            case .equal: return order == 0
            case .notEqual: return order != 0
            case .less: return order < 0
            case .lessOrEqual: return order <= 0
            case .greater: return order > 0
            default: return order >= 0
            }
        case .in, .notIn:
            guard actual != .null, case .array(let candidates) = filter.value else { return false }
            let found = candidates.contains { SQLValue.compare(actual, SQLValue($0)) == 0 }
            return filter.op == .in ? found : !found
        case .arrayContains:
            guard case .array(let elements)? = document.data[path: filter.field] else { return false }
            return elements.contains { SQLValue.compare(SQLValue($0), SQLValue(filter.value)) == 0 }
        }
    }

    static func run(_ query: Query, over documents: [(id: String, data: JSONValue)]) -> [String] {
        var key = query.orders.map { ($0.field, $0.direction) }
        key.append((.documentID, query.orders.last?.direction ?? .ascending))
        return documents
            .filter { document in query.filters.allSatisfy { matches(document, $0) } }
            .filter { document in query.orders.allSatisfy { value(document, $0.field) != .null } }
            .sorted { a, b in
                for (field, direction) in key {
                    let order = SQLValue.compare(value(a, field), value(b, field))
                    if order != 0 { return direction == .ascending ? order < 0 : order > 0 }
                }
                return false
            }
            .map(\.id)
    }
}

@Suite("Document store: queries")
struct QueryTests {
    static let statuses = ["open", "assigned", "done", "Open", "ä-special"]

    static func randomDocument(_ rng: inout SplitMix64, id: String) -> JSONValue {
        var fields: [String: JSONValue] = [:]
        if Int.random(in: 0..<10, using: &rng) > 0 { fields["status"] = .string(statuses.randomElement(using: &rng)!) }
        switch Int.random(in: 0..<10, using: &rng) {
        case 0: break
        case 1: fields["priority"] = "high"
        case 2: fields["priority"] = .bool(Bool.random(using: &rng))
        case 3: fields["priority"] = .null
        default: fields["priority"] = .number(Double(Int.random(in: 0...5, using: &rng)))
        }
        fields["score"] = .number(Double(Int.random(in: -1000...1000, using: &rng)) / 8)
        fields["tags"] = .array((0..<Int.random(in: 0...3, using: &rng)).map { _ in .string(["red", "blue", "green", "x"].randomElement(using: &rng)!) })
        if Bool.random(using: &rng) { fields["site"] = ["level": .number(Double(Int.random(in: 0...3, using: &rng)))] }
        return .object(JSONObject(fields))
    }

    static func randomValue(for field: FieldPath, _ rng: inout SplitMix64) -> JSONValue {
        switch field.description {
        case "status": return .string(statuses.randomElement(using: &rng)!)
        case "priority": return [JSONValue.number(Double(Int.random(in: 0...5, using: &rng))), "high", .bool(true)].randomElement(using: &rng)!
        case "score": return .number(Double(Int.random(in: -1000...1000, using: &rng)) / 8)
        case "site.level": return .number(Double(Int.random(in: 0...3, using: &rng)))
        case "tags": return .string(["red", "blue", "green", "x"].randomElement(using: &rng)!)
        default: return .string("d\(Int.random(in: 0..<60, using: &rng))")
        }
    }

    static func randomQuery(_ rng: inout SplitMix64) -> Query {
        var query = Query("tasks")
        let fields: [FieldPath] = ["status", "priority", "score", "site.level", .documentID]
        for _ in 0..<Int.random(in: 0...2, using: &rng) {
            if Int.random(in: 0..<6, using: &rng) == 0 {
                query = query.where("tags", .arrayContains, randomValue(for: "tags", &rng))
                continue
            }
            let field = fields.randomElement(using: &rng)!
            let op = [Query.Operator.equal, .notEqual, .less, .lessOrEqual, .greater, .greaterOrEqual, .in, .notIn].randomElement(using: &rng)!
            if op == .in || op == .notIn {
                query = query.where(field, op, .array((0..<Int.random(in: 1...3, using: &rng)).map { _ in randomValue(for: field, &rng) }))
            } else {
                query = query.where(field, op, randomValue(for: field, &rng))
            }
        }
        for _ in 0..<Int.random(in: 0...2, using: &rng) {
            query = query.order(by: fields.randomElement(using: &rng)!, Bool.random(using: &rng) ? .ascending : .descending)
        }
        return query.limit(Int.random(in: 1...12, using: &rng))
    }

    @Test(arguments: 0..<8)
    func everyOperatorOrderAndPageMatchesTheReference(seed: UInt64) async throws {
        var rng = SplitMix64(state: seed &* 7919 &+ 1)
        let store = try DocumentStore(path: ":memory:")
        var documents: [(id: String, data: JSONValue)] = []
        for index in 0..<60 {
            documents.append((String(format: "d%02d", index), Self.randomDocument(&rng, id: "d\(index)")))
        }
        try await store.commit(tenant: "acme", documents.map { .create(collection: "tasks", id: $0.id, data: $0.data) })
        try await store.commit(tenant: "other", documents.prefix(10).map { .create(collection: "tasks", id: $0.id, data: $0.data) })

        for round in 0..<40 {
            let query = Self.randomQuery(&rng)
            let expected = Reference.run(query, over: documents)
            // Walk every page with the cursor; together they must be the reference, in order.
            var seen: [String] = []
            var page = try await store.query(tenant: "acme", query)
            seen += page.documents.map(\.id)
            var pages = 1
            while let cursor = page.nextCursor, pages < 100 {
                page = try await store.query(tenant: "acme", query.start(after: try QueryCursor(token: cursor.token)))
                seen += page.documents.map(\.id)
                pages += 1
            }
            #expect(seen == expected, "seed \(seed) round \(round): \(query)")
            #expect(try await store.count(tenant: "acme", query) == expected.count, "seed \(seed) round \(round): \(query)")
        }
    }

    @Test func cursorPagingIsStableUnderInserts() async throws {
        let store = try DocumentStore(path: ":memory:")
        try await store.commit(tenant: "acme", (0..<10).map { .create(collection: "messages", id: "m\($0)", data: ["roomId": "r1", "createdAt": .number(Double($0 * 10))]) })
        let query = Query("messages").where("roomId", .equal, "r1").order(by: "createdAt").limit(4)
        let first = try await store.query(tenant: "acme", query)
        #expect(first.documents.map(\.id) == ["m0", "m1", "m2", "m3"])
        // New messages land before and after the cursor while the client pages.
        try await store.commit(tenant: "acme", [
            .create(collection: "messages", id: "early", data: ["roomId": "r1", "createdAt": 5]),
            .create(collection: "messages", id: "late", data: ["roomId": "r1", "createdAt": 95]),
        ])
        let second = try await store.query(tenant: "acme", query.start(after: try #require(first.nextCursor)))
        #expect(second.documents.map(\.id) == ["m4", "m5", "m6", "m7"])
        let third = try await store.query(tenant: "acme", query.start(after: try #require(second.nextCursor)))
        #expect(third.documents.map(\.id) == ["m8", "m9", "late"])
        #expect(third.nextCursor == nil)
        // Starting after a document works too, and a deleted one is reported.
        let afterDocument = try await store.query(tenant: "acme", query.start(after: .document(id: "m8")))
        #expect(afterDocument.documents.map(\.id) == ["m9", "late"])
        await expectStoreError(.notFound) { _ = try await store.query(tenant: "acme", query.start(after: .document(id: "gone"))) }
        await expectStoreError(.invalidQuery) { _ = try await store.query(tenant: "acme", query.start(after: try QueryCursor(token: "garbage!"))) }
    }

    @Test func queriesOnDeclaredFieldsUseTheirIndexes() async throws {
        let (store, _) = try temporaryStore()
        try await store.commit(tenant: "acme", (0..<200).map { .create(collection: "tasks", id: "t\($0)", data: ["status": $0 % 2 == 0 ? "open" : "done", "createdAt": .number(Double($0))]) })
        let equality = try await store.explain(tenant: "acme", Query("tasks").where("status", .equal, "open").limit(50))
        #expect(equality.contains { $0.contains("USING INDEX x_tasks_status") }, "\(equality)")
        let ordered = try await store.explain(tenant: "acme", Query("tasks").order(by: "createdAt", .descending).limit(50))
        #expect(ordered.contains { $0.contains("USING INDEX x_tasks_createdAt") }, "\(ordered)")
        #expect(!ordered.contains { $0.contains("TEMP B-TREE") }, "\(ordered)")
        let byID = try await store.explain(tenant: "acme", Query("tasks").where(.documentID, .greater, "t5").limit(10))
        #expect(byID.contains { $0.contains("INDEX") }, "\(byID)")
    }

    @Test func unindexedQueriesOnLargeCollectionsAreRefusedByName() async throws {
        let store = try DocumentStore(path: ":memory:", configuration: .init(scanLimit: 20))
        try await store.commit(tenant: "acme", (0..<20).map { .create(collection: "tasks", id: "t\($0)", data: ["colour": "red"]) })
        // Small enough to scan.
        #expect(try await store.count(tenant: "acme", Query("tasks").where("colour", .equal, "red")) == 20)
        try await store.commit(tenant: "acme", [.create(collection: "tasks", id: "t20", data: ["colour": "blue"])])
        let error = await expectStoreError(.indexRequired) {
            _ = try await store.query(tenant: "acme", Query("tasks").where("colour", .equal, "red"))
        }
        #expect(error?.message.contains("no index on 'colour'") == true)
        #expect(error?.message.contains("x_tasks_colour") == true)
        // Indexed fields and other tenants' small collections are fine.
        _ = try await store.query(tenant: "acme", Query("tasks").where("status", .equal, "open"))
        _ = try await store.query(tenant: "globex", Query("tasks").where("colour", .equal, "red"))
    }

    @Test func injectionAttemptsAreRefusedOrInert() async throws {
        let store = try DocumentStore(path: ":memory:")
        try await store.commit(tenant: "acme", [.create(collection: "tasks", id: "t1", data: ["status": "open", "title": "x"])])
        for path in ["status'; DROP TABLE c_tasks; --", "status') OR 1=1 --", "a.b[0]", "$.status", "status\"", "a b", "status.*", "__proto__.x'"] {
            await expectStoreError(.invalidFieldPath) { _ = try FieldPath(validating: path) }
        }
        for value in ["' OR '1'='1", "open'; DELETE FROM c_tasks; --", "\") OR 1=1 --", "%", "\0"] {
            let page = try await store.query(tenant: "acme", Query("tasks").where("status", .equal, .string(value)))
            #expect(page.documents.isEmpty, "value \(value) matched")
            _ = try await store.query(tenant: "acme", Query("tasks").where("status", .in, [.string(value), "x"]))
            _ = try await store.query(tenant: "acme", Query("tasks").where("tags", .arrayContains, .string(value)))
        }
        await expectStoreError(.invalidTenant) { _ = try await store.query(tenant: "acme' OR '1'='1", Query("tasks")) }
        await expectStoreError(.unknownCollection) { _ = try await store.query(tenant: "acme", Query("tasks; DROP TABLE ledger")) }
        #expect(try await store.count(tenant: "acme", Query("tasks")) == 1)
        #expect(try await store.get(tenant: "acme", collection: "tasks", id: "t1")?.data["status"] == "open")
    }

    @Test func limitsAndValueShapesAreChecked() async throws {
        let store = try DocumentStore(path: ":memory:")
        await expectStoreError(.invalidQuery) { _ = try await store.query(tenant: "acme", Query("tasks").limit(1_001)) }
        await expectStoreError(.invalidQuery) { _ = try await store.query(tenant: "acme", Query("tasks").limit(0)) }
        await expectStoreError(.invalidQuery) { _ = try await store.query(tenant: "acme", Query("tasks").where("status", .in, .array(Array(repeating: "a", count: 31)))) }
        await expectStoreError(.invalidQuery) { _ = try await store.query(tenant: "acme", Query("tasks").where("status", .less, .null)) }
        await expectStoreError(.invalidQuery) { _ = try await store.query(tenant: "acme", Query("tasks").where("status", .equal, ["a": 1])) }
        try await store.commit(tenant: "acme", [
            .create(collection: "tasks", id: "a", data: ["status": .null]),
            .create(collection: "tasks", id: "b", data: ["status": "open"]),
            .create(collection: "tasks", id: "c", data: [:]),
        ])
        #expect(try await store.query(tenant: "acme", Query("tasks").where("status", .equal, .null)).documents.map(\.id) == ["a"])
        #expect(try await store.query(tenant: "acme", Query("tasks").where("status", .notEqual, .null)).documents.map(\.id) == ["b"])
    }
}

@Suite("Document store: declaring an index later")
struct LateIndexTests {
    @Test func aFieldDeclaredLaterIsFilledFromStoredDocuments() async throws {
        let directory = URL(fileURLWithPath: NSTemporaryDirectory()).appendingPathComponent("fo-late-\(UUID().uuidString.prefix(8))")
        defer { try? FileManager.default.removeItem(at: directory) }
        let path = directory.appendingPathComponent("store.sqlite").path
        let plain = try CollectionDefinition("gear", indexedFields: [])
        do {
            let store = try DocumentStore(path: path, configuration: .init(collections: [plain]))
            try await store.commit(tenant: "acme", (0..<30).map { .create(collection: "gear", id: "g\($0)", data: ["kind": .string($0 % 3 == 0 ? "pump" : "hose"), "flag": .bool($0 % 2 == 0)]) })
        }
        let indexed = try CollectionDefinition("gear", indexedFields: ["kind", "flag"])
        let store = try DocumentStore(path: path, configuration: .init(collections: [indexed]))
        let query = Query("gear").where("kind", .equal, "pump").where("flag", .equal, true).limit(50)
        let page = try await store.query(tenant: "acme", query)
        #expect(page.documents.map(\.id) == ["g0", "g12", "g18", "g24", "g6"])
        let plan = try await store.explain(tenant: "acme", query)
        #expect(plan.contains { $0.contains("x_gear_") }, "\(plan)")
        // New writes fill the columns too.
        try await store.commit(tenant: "acme", [.update(collection: "gear", id: "g1", fields: ["kind": "pump", "flag": true])])
        #expect(try await store.count(tenant: "acme", query) == 6)
    }
}
