import DocumentStore
import Domain
import FileStore
import Foundation
import Streams

/// `fieldops files gc`: finds bytes without metadata, metadata without bytes, leftovers of
/// unfinished writes and expired uploads; reports them, and with `apply` acts.
///
/// Bytes without metadata are removed; metadata without bytes is retired the way every change
/// is, with a `file.deleted` event (`by: gc`) in the owner's stream, so the projection, the live
/// marker and a later replay agree. Anything younger than `minimumAge` is left alone: it may
/// belong to a write still in flight.
public struct FileGarbageCollector: Sendable {
    public struct Finding: Sendable, Hashable, Encodable {
        public enum Kind: String, Sendable, Encodable {
            /// A stored file no `files` document describes.
            case bytesWithoutMetadata = "bytes_without_metadata"
            /// A `files` document whose bytes are gone.
            case metadataWithoutBytes = "metadata_without_bytes"
            /// A temporary file of a write that never finished, or anything else the store did not make.
            case leftover
            /// A resumable upload past its expiry.
            case expiredUpload = "expired_upload"
        }

        public let kind: Kind
        public let tenant: String?
        public let fileId: String?
        /// Below the file store's root, or the upload id.
        public let path: String
        public let bytes: Int64
        /// What was done: `removed`, `recorded file.deleted`, `skipped: …`, or `reported` without `apply`.
        public var action: String
    }

    public struct Report: Sendable, Encodable {
        public var findings: [Finding] = []
        public var applied: Bool
        /// Files that are fine.
        public var healthy = 0
        /// Findings left alone for being younger than the minimum age.
        public var tooYoung = 0
    }

    let files: FileStore
    let store: DocumentStore
    let writer: EventWriter
    let minimumAge: Duration

    public init(files: FileStore, store: DocumentStore, writer: EventWriter, minimumAge: Duration = .seconds(3_600)) {
        self.files = files
        self.store = store
        self.writer = writer
        self.minimumAge = minimumAge
    }

    public func run(apply: Bool, now: Date = Date()) async throws -> Report {
        var report = Report(applied: apply)
        let cutoff = now.addingTimeInterval(-TimeInterval(minimumAge.components.seconds))
        let inventory = try await files.inventory()
        let onDisk = Dictionary(inventory.files.map { ($0.location.relativePath, $0) }, uniquingKeysWith: { first, _ in first })
        let tenants = try await store.read { try $0.tenants(collection: "files") }
        var described: Set<String> = []

        for tenant in tenants {
            for document in try await documents(tenant) {
                guard let path = document.data["path"]?.stringValue else { continue }
                described.insert(path)
                if onDisk[path] != nil {
                    report.healthy += 1
                    continue
                }
                var finding = Finding(kind: .metadataWithoutBytes, tenant: tenant, fileId: document.id, path: path, bytes: Int64(document.data["size"]?.doubleValue ?? 0), action: "reported")
                if apply { finding.action = try await retire(document, tenant: tenant) }
                report.findings.append(finding)
            }
        }
        for entry in inventory.files where !described.contains(entry.location.relativePath) {
            let location = entry.location
            // A marker without a document: uploaded a moment ago, not projected yet.
            if try await writer.liveValue(tenant: location.tenant, path: FileRecords.livePath(location.fileId)) != nil { continue }
            guard entry.modified <= cutoff else {
                report.tooYoung += 1
                continue
            }
            var finding = Finding(kind: .bytesWithoutMetadata, tenant: location.tenant, fileId: location.fileId, path: location.relativePath, bytes: entry.size, action: "reported")
            if apply {
                try await files.remove(location)
                finding.action = "removed"
            }
            report.findings.append(finding)
        }
        for leftover in inventory.leftovers {
            guard leftover.modified <= cutoff else {
                report.tooYoung += 1
                continue
            }
            var finding = Finding(kind: .leftover, tenant: leftover.relativePath.split(separator: "/").first.map(String.init), fileId: nil, path: leftover.relativePath, bytes: leftover.size, action: "reported")
            if apply {
                try await files.removeLeftover(leftover)
                finding.action = "removed"
            }
            report.findings.append(finding)
        }
        for upload in try await files.expiredUploads(now: now) {
            var finding = Finding(kind: .expiredUpload, tenant: upload.tenant, fileId: nil, path: upload.uploadId, bytes: upload.offset, action: "reported")
            if apply {
                try await files.cancelUpload(tenant: upload.tenant, id: upload.uploadId)
                finding.action = "removed"
            }
            report.findings.append(finding)
        }
        return report
    }

    /// Every `files` document of a tenant, page by page.
    private func documents(_ tenant: String) async throws -> [Document] {
        var all: [Document] = []
        var query = Query("files").order(by: "createdAt").limit(1_000)
        while true {
            let page = try await store.query(tenant: tenant, query)
            all += page.documents
            guard let next = page.nextCursor else { return all }
            query = query.start(after: next)
        }
    }

    /// `file.deleted` for a file whose bytes are gone, if its marker still says it exists.
    private func retire(_ document: Document, tenant: String) async throws -> String {
        guard let area = document.data["area"]?.stringValue.flatMap(FileArea.init(rawValue:)), let owner = document.data["ownerId"]?.stringValue else {
            return "skipped: the document names no area and owner"
        }
        let payload = FileDeleted(fileId: document.id, area: area.rawValue, ownerId: owner, by: "gc", reason: "bytes missing from the file store")
        let outcome = try await writer.append(.init(
            tenant: tenant, stream: FileRecords.stream(area, owner),
            events: [.init(eventType: EventType.fileDeleted, payload: JSONCoding.text(payload), routing: FileRecords.routing(area, owner, document.id))],
            conditions: [.init(path: FileRecords.livePath(document.id), .exists)],
            liveWrites: [.delete(path: FileRecords.livePath(document.id))],
            idempotencyKey: "gc-missing-\(document.id)"
        ))
        switch outcome {
        case .appended, .repeated: return "recorded file.deleted"
        case .refused: return "skipped: already being deleted"
        }
    }
}
