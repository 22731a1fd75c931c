import Crypto
import FileStore
import Foundation
import NIOCore
import Testing

@Suite("File store: resumable uploads")
struct UploadSessionTests {
    static func hex(_ data: [UInt8]) -> String { SHA256.hash(data: data).map { String(format: "%02x", $0) }.joined() }

    @Test func anUploadSurvivesABrokenChunkAndFinishesWhole() async throws {
        let temporary = try TemporaryStore()
        let store = temporary.store
        let size = 3 * 100_000
        let content = (0..<size).map { UInt8(truncatingIfNeeded: $0 * 7) }
        let session = try await store.createUpload(tenant: "acme", area: .tasks, ownerId: "T-1", name: "site photo.jpg", size: Int64(size), createdBy: "w-1")
        #expect(session.offset == 0)

        // The first chunk breaks off after 5 of its 10 pieces: what arrived is kept.
        let pieces = stride(from: 0, to: 100_000, by: 10_000).map { ByteBuffer(bytes: content[$0..<($0 + 10_000)]) }
        await #expect(throws: Generated.Dropped.self) {
            try await store.appendUpload(tenant: "acme", id: session.uploadId, offset: 0, from: Breaking(pieces: pieces, breakAfter: 5))
        }
        let standing = try await store.upload(tenant: "acme", id: session.uploadId)
        #expect(standing.offset == 50_000)

        // A resend from a stale offset is refused and says where to go on.
        let stale = await #expect(throws: FileStoreError.self) {
            try await store.appendUpload(tenant: "acme", id: session.uploadId, offset: 0, from: Breaking(pieces: [ByteBuffer(bytes: content[0..<10])]))
        }
        #expect(stale?.code == .offsetMismatch)
        #expect(stale?.message.contains("50000") == true)

        let early = await #expect(throws: FileStoreError.self) { try await store.finishUpload(tenant: "acme", id: session.uploadId, fileId: FileStore.makeFileID()) }
        #expect(early?.code == .incomplete)

        var offset = standing.offset
        while offset < size {
            let end = min(Int(offset) + 120_000, size)
            offset = try await store.appendUpload(tenant: "acme", id: session.uploadId, offset: offset, from: Breaking(pieces: [ByteBuffer(bytes: content[Int(offset)..<end])])).offset
        }
        let fileID = FileStore.makeFileID()
        let stored = try await store.finishUpload(tenant: "acme", id: session.uploadId, fileId: fileID)
        #expect(stored.size == Int64(size))
        #expect(stored.sha256 == Self.hex(content))
        #expect(stored.location.relativePath == "acme/tasks/T-1/\(fileID)-site_photo.jpg")
        let (path, _) = try await store.readable(stored.location)
        #expect(try Data(contentsOf: URL(fileURLWithPath: path)) == Data(content))
        // The session is gone with its part file.
        await #expect(throws: FileStoreError.self) { try await store.upload(tenant: "acme", id: session.uploadId) }
        #expect(temporary.allPaths() == [stored.location.relativePath])
    }

    @Test func bytesPastTheAnnouncedSizeAreRefused() async throws {
        let store = try TemporaryStore().store
        let session = try await store.createUpload(tenant: "acme", area: .rooms, ownerId: "ops", name: "a.txt", size: 10, createdBy: "d-1")
        let error = await #expect(throws: FileStoreError.self) {
            try await store.appendUpload(tenant: "acme", id: session.uploadId, offset: 0, from: Breaking(pieces: [ByteBuffer(string: "0123456789AB")]))
        }
        #expect(error?.code == .tooLarge)
        await #expect(throws: FileStoreError.self) {
            try await store.createUpload(tenant: "acme", area: .rooms, ownerId: "ops", name: "huge", size: 26 << 20, createdBy: "d-1")
        }
    }

    @Test func uploadsAreTenantScopedAndExpire() async throws {
        let temporary = try TemporaryStore(configuration: .init(reserveBytes: 0, uploadLifetime: .seconds(60)))
        let store = temporary.store
        let session = try await store.createUpload(tenant: "acme", area: .rooms, ownerId: "ops", name: "a.txt", size: 10, createdBy: "d-1")
        await #expect(throws: FileStoreError.self) { try await store.upload(tenant: "globex", id: session.uploadId) }
        #expect(try await store.removeExpiredUploads(now: Date()) == 0)
        #expect(try await store.removeExpiredUploads(now: Date().addingTimeInterval(61)) == 1)
        await #expect(throws: FileStoreError.self) { try await store.upload(tenant: "acme", id: session.uploadId) }
        #expect(temporary.allPaths() == [])
    }
}

/// A body of `pieces` that breaks off after `breakAfter` of them, like a dropped connection.
struct Breaking: AsyncSequence, Sendable {
    let pieces: [ByteBuffer]
    var breakAfter: Int? = nil

    struct AsyncIterator: AsyncIteratorProtocol {
        var remaining: ArraySlice<ByteBuffer>
        var left: Int?
        mutating func next() async throws -> ByteBuffer? {
            if let count = left {
                guard count > 0 else { throw Generated.Dropped() }
                left = count - 1
            }
            return remaining.popFirst()
        }
    }

    func makeAsyncIterator() -> AsyncIterator { AsyncIterator(remaining: pieces[...], left: breakAfter) }
}
