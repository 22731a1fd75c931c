import DocumentStore
import Foundation
import Testing

/// A store in a fresh temporary file (WAL needs a file).
func temporaryStore(_ configuration: DocumentStore.Configuration = .init()) throws -> (DocumentStore, URL) {
    let directory = URL(fileURLWithPath: NSTemporaryDirectory()).appendingPathComponent("fo-docs-\(UUID().uuidString.prefix(8))")
    let store = try DocumentStore(path: directory.appendingPathComponent("store.sqlite").path, configuration: configuration)
    return (store, directory)
}

@discardableResult
func expectStoreError(
    _ code: DocumentStoreError.Code,
    sourceLocation: SourceLocation = #_sourceLocation,
    _ body: () async throws -> Void
) async -> DocumentStoreError? {
    do {
        try await body()
        Issue.record("expected \(code), nothing was thrown", sourceLocation: sourceLocation)
    } catch let error as DocumentStoreError {
        #expect(error.code == code, "\(error)", sourceLocation: sourceLocation)
        return error
    } catch {
        Issue.record("expected \(code), got \(error)", sourceLocation: sourceLocation)
    }
    return nil
}

@Suite("Document store: writes")
struct DocumentWriteTests {
    let store: DocumentStore
    let directory: URL

    init() throws {
        (store, directory) = try temporaryStore()
    }

    @Test func opensInWALModeWithForeignKeys() async throws {
        let (mode, foreignKeys) = try await store.read { transaction in
            (try transaction.pragma("journal_mode"), try transaction.pragma("foreign_keys"))
        }
        #expect(mode == "wal")
        #expect(foreignKeys == "1")
    }

    @Test func createsReadsUpdatesAndDeletesWithVersions() async throws {
        let created = try await store.commit(tenant: "acme", [.create(collection: "tasks", id: "t1", data: ["title": "Fix pump", "status": "open", "site": ["name": "North"]])])
        #expect(created.first?.version == 1)
        await expectStoreError(.alreadyExists) { try await store.commit(tenant: "acme", [.create(collection: "tasks", id: "t1", data: [:])]) }

        try await store.commit(tenant: "acme", [.update(collection: "tasks", id: "t1", fields: ["status": "assigned", "site.crew": 3], ifVersion: 1)])
        let updated = try #require(try await store.get(tenant: "acme", collection: "tasks", id: "t1"))
        #expect(updated.version == 2)
        #expect(updated.data == ["title": "Fix pump", "status": "assigned", "site": ["name": "North", "crew": 3]])
        #expect(updated.updatedAt >= updated.createdAt)

        let conflict = await expectStoreError(.versionConflict) {
            try await store.commit(tenant: "acme", [.set(collection: "tasks", id: "t1", data: ["status": "done"], ifVersion: 1)])
        }
        #expect(conflict?.message == "tasks/t1 expected version 1 but found version 2")
        try await store.commit(tenant: "acme", [.set(collection: "tasks", id: "t1", data: ["status": "done"], ifVersion: 2)])
        #expect(try await store.get(tenant: "acme", collection: "tasks", id: "t1")?.data == ["status": "done"])

        await expectStoreError(.notFound) { try await store.commit(tenant: "acme", [.update(collection: "tasks", id: "nope", fields: ["a": 1])]) }
        await expectStoreError(.versionConflict) { try await store.commit(tenant: "acme", [.delete(collection: "tasks", id: "t1", ifVersion: 7)]) }
        try await store.commit(tenant: "acme", [.delete(collection: "tasks", id: "t1", ifVersion: 3)])
        #expect(try await store.get(tenant: "acme", collection: "tasks", id: "t1") == nil)
        // ifVersion 0 means "must not exist".
        try await store.commit(tenant: "acme", [.set(collection: "tasks", id: "t1", data: ["status": "new"], ifVersion: 0)])
        await expectStoreError(.versionConflict) { try await store.commit(tenant: "acme", [.set(collection: "tasks", id: "t1", data: [:], ifVersion: 0)]) }
    }

    @Test func batchesAreAllOrNothing() async throws {
        try await store.commit(tenant: "acme", [.create(collection: "resources", id: "r1", data: ["quantity": 5])])
        await expectStoreError(.versionConflict) {
            try await store.commit(tenant: "acme", [
                .create(collection: "resources", id: "r2", data: ["quantity": 1]),
                .update(collection: "resources", id: "r1", fields: ["quantity": 4]),
                .set(collection: "resources", id: "r1", data: ["quantity": 0], ifVersion: 1),
            ])
        }
        #expect(try await store.get(tenant: "acme", collection: "resources", id: "r2") == nil)
        #expect(try await store.get(tenant: "acme", collection: "resources", id: "r1")?.data == ["quantity": 5])

        let many = (0..<500).map { WriteOperation.create(collection: "resources", id: "bulk-\($0)", data: ["n": .number(Double($0))]) }
        #expect(try await store.commit(tenant: "acme", many).count == 500)
        let tooMany = await expectStoreError(.batchTooLarge) {
            try await store.commit(tenant: "acme", many + [.delete(collection: "resources", id: "x")])
        }
        #expect(tooMany?.message.contains("501") == true)
    }

    @Test func refusesDocumentsOverOneMebibyte() async throws {
        let fits = String(repeating: "x", count: 1_048_576 - #"{"text":""}"#.utf8.count)
        try await store.commit(tenant: "acme", [.create(collection: "messages", id: "m1", data: ["text": .string(fits)])])
        #expect(try await store.get(tenant: "acme", collection: "messages", id: "m1")?.data["text"]?.stringValue?.count == fits.count)
        let error = await expectStoreError(.documentTooLarge) {
            try await store.commit(tenant: "acme", [.create(collection: "messages", id: "m2", data: ["text": .string(fits + "y")])])
        }
        #expect(error?.message == "document 'm2' is 1048577 bytes as JSON; the limit is 1048576 bytes (1 MiB)")
        await expectStoreError(.documentTooLarge) {
            try await store.commit(tenant: "acme", [.update(collection: "messages", id: "m1", fields: ["more": "y"])])
        }
    }

    @Test func rejectsBadNamesAndShapes() async throws {
        await expectStoreError(.unknownCollection) { try await store.commit(tenant: "acme", [.create(collection: "cats", id: "c", data: [:])]) }
        await expectStoreError(.invalidDocumentID) { try await store.commit(tenant: "acme", [.create(collection: "tasks", id: "a/b", data: [:])]) }
        await expectStoreError(.invalidDocumentID) { try await store.commit(tenant: "acme", [.create(collection: "tasks", id: "", data: [:])]) }
        await expectStoreError(.invalidTenant) { try await store.commit(tenant: "a'b", [.create(collection: "tasks", id: "t", data: [:])]) }
        await expectStoreError(.invalidJSON) { try await store.commit(tenant: "acme", [.create(collection: "tasks", id: "t", data: [1, 2])]) }
        #expect(throws: DocumentStoreError.self) { try FieldPath(validating: "a..b") }
        #expect(throws: DocumentStoreError.self) { try FieldPath(validating: "1abc") }
        #expect(throws: DocumentStoreError.self) { try CollectionDefinition("bad-name") }
    }

    @Test func tenantsNeverSeeEachOther() async throws {
        try await store.commit(tenant: "acme", [.create(collection: "workers", id: "w1", data: ["name": "Ana", "status": "on-shift"])])
        #expect(try await store.get(tenant: "globex", collection: "workers", id: "w1") == nil)
        #expect(try await store.query(tenant: "globex", Query("workers")).documents.isEmpty)
        #expect(try await store.count(tenant: "acme", Query("workers").where("status", .equal, "on-shift")) == 1)
        try await store.commit(tenant: "globex", [.delete(collection: "workers", id: "w1")])
        #expect(try await store.get(tenant: "acme", collection: "workers", id: "w1") != nil)
    }

    @Test func recordsLedgerCheckpointsAndTracks() async throws {
        let (first, second) = try await store.write { transaction in
            let entry = LedgerEntry(consumerGroup: "projector", tenant: "acme", stream: "tasks", eventID: "5-0", eventType: "task.created", status: .processed, processedAt: 1)
            let first = try transaction.record(entry)
            let second = try transaction.record(entry)
            try transaction.record(LedgerEntry(consumerGroup: "projector", tenant: "acme", stream: "tasks", eventID: "6-0", eventType: "task.completed", status: .failed, error: "illegal transition", processedAt: 2))
            try transaction.advanceCheckpoint(group: "projector", tenant: "acme", stream: "tasks", to: "6-0")
            try transaction.advanceCheckpoint(group: "projector", tenant: "acme", stream: "tasks", to: "5-3")
            try transaction.addTrackPoint(tenant: "acme", TrackPoint(workerID: "w1", recordedAt: 1_000, lat: 52.5, lon: 13.4, eventID: "7-0"))
            try transaction.addTrackPoint(tenant: "acme", TrackPoint(workerID: "w1", recordedAt: 1_000, lat: 52.5, lon: 13.4, eventID: "7-0"))
            return (first, second)
        }
        #expect(first && !second)
        let (recorded, failures, checkpoint, track) = try await store.read { transaction in
            (
                try transaction.hasRecorded(group: "projector", tenant: "acme", stream: "tasks", eventID: "5-0"),
                try transaction.ledger(tenant: "acme", failedOnly: true).map(\.error),
                try transaction.checkpoint(group: "projector", tenant: "acme", stream: "tasks"),
                try transaction.track(tenant: "acme", workerID: "w1", from: 0, to: 2_000)
            )
        }
        #expect(recorded)
        #expect(failures == ["illegal transition"])
        #expect(checkpoint == "6-0")
        #expect(track.count == 1)
    }
}
