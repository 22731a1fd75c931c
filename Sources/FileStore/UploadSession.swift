import Crypto
import Foundation
import NIOCore
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// A resumable upload: created with its total size, filled by chunks at known offsets (a phone
/// on a flaky network resends from the offset the server reports), finished into a file.
public struct UploadSession: Codable, Sendable, Hashable {
    public let uploadId: String
    public let tenant: String
    public let area: FileArea
    public let ownerId: String
    /// Display name of the file to be.
    public let name: String
    /// Total bytes announced at creation.
    public let size: Int64
    public let createdBy: String
    public let createdAt: Date
    public let expiresAt: Date
    /// Bytes received so far: the length of the part file, not stored in the session's JSON.
    public var offset: Int64 = 0

    enum CodingKeys: String, CodingKey {
        case uploadId, tenant, area, ownerId, name, size, createdBy, createdAt, expiresAt
    }
}

/// Which uploads a request is writing: one at a time each.
final class UploadLocks: Sendable {
    private let held = Mutex<Set<String>>([])

    func lock(_ key: String) throws {
        let taken = held.withLock { $0.insert(key).inserted }
        guard taken else { throw FileStoreError(.busy, "another request is sending to this upload; wait for it or query the offset") }
    }

    func unlock(_ key: String) {
        _ = held.withLock { $0.remove(key) }
    }
}

/// Resumable uploads under `{root}/.uploads/{tenant}/{uploadId}.json` and `.part` (the leading
/// dot keeps them apart from tenant directories, whose names are identifiers).
extension FileStore {
    var uploadsRoot: String { root.path + "/.uploads" }

    private func sessionPaths(_ tenant: String, _ uploadID: String) throws -> (json: String, part: String) {
        guard Self.isIdentifier(tenant), Self.isIdentifier(uploadID) else { throw FileStoreError(.notFound, "upload \(uploadID)") }
        let base = "\(uploadsRoot)/\(tenant)/\(uploadID)"
        return (base + ".json", base + ".part")
    }

    /// Starts an upload of `size` bytes.
    /// - Throws: `file_too_large`, `insufficient_storage`, `invalid_identifier`.
    public func createUpload(tenant: String, area: FileArea, ownerId: String, name: String, size: Int64, createdBy: String, now: Date = Date()) async throws -> UploadSession {
        guard size >= 0 else { throw FileStoreError(.invalidIdentifier, "size must be zero or more") }
        guard size <= configuration.maxFileSize else { throw tooLarge }
        _ = try location(tenant: tenant, area: area, ownerId: ownerId, fileId: "f", name: name)
        let session = UploadSession(
            uploadId: "u" + String(Self.makeFileID().dropFirst()), tenant: tenant, area: area, ownerId: ownerId, name: FileName.display(name),
            size: size, createdBy: createdBy, createdAt: now, expiresAt: now.addingTimeInterval(configuration.uploadLifetime.seconds)
        )
        let paths = try sessionPaths(tenant, session.uploadId)
        let encoder = JSONEncoder()
        encoder.dateEncodingStrategy = .iso8601
        let json = try encoder.encode(session)
        try await blocking { [self] in
            try checkFreeSpace(needed: size)
            _ = try Self.makeDirectory(tenant, under: uploadsRoot)
            let part = open(paths.part, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0o640)
            guard part >= 0 else { throw FileStoreError.errno(errno, "creating an upload") }
            close(part)
            // The session file appears whole or not at all.
            let temporary = paths.json + ".tmp"
            guard FileManager.default.createFile(atPath: temporary, contents: json), rename(temporary, paths.json) == 0 else {
                unlink(paths.part)
                throw FileStoreError(.storageFailure, "could not record the upload")
            }
            Self.syncDirectory("\(uploadsRoot)/\(tenant)")
        }
        return session
    }

    /// The upload with its received offset.
    /// - Throws: `not_found` for an unknown, finished, cancelled or expired upload (an expired
    ///   one is removed).
    public func upload(tenant: String, id uploadID: String, now: Date = Date()) async throws -> UploadSession {
        let paths = try sessionPaths(tenant, uploadID)
        let session: UploadSession? = try await blocking {
            guard let data = FileManager.default.contents(atPath: paths.json) else { return nil }
            let decoder = JSONDecoder()
            decoder.dateDecodingStrategy = .iso8601
            var session = try? decoder.decode(UploadSession.self, from: data)
            var info = stat()
            guard lstat(paths.part, &info) == 0, info.st_mode & S_IFMT == S_IFREG else { return nil }
            session?.offset = Int64(info.st_size)
            return session
        }
        guard let session, session.tenant == tenant else { throw FileStoreError(.notFound, "upload \(uploadID)") }
        guard session.expiresAt > now else {
            try await cancelUpload(tenant: tenant, id: uploadID)
            throw FileStoreError(.notFound, "upload \(uploadID) expired at \(session.expiresAt)")
        }
        return session
    }

    /// Appends `body` at `offset`, which must be where the upload stands. When the body breaks
    /// off (a dropped connection), the bytes that arrived are kept and synced: the client asks
    /// for the offset and goes on from there.
    /// - Returns: the upload with its new offset.
    /// - Throws: `offset_mismatch`, `file_too_large` past the announced size, `upload_busy`.
    public func appendUpload<Body: AsyncSequence>(tenant: String, id uploadID: String, offset: Int64, from body: Body) async throws -> UploadSession where Body.Element == ByteBuffer {
        let key = tenant + "/" + uploadID
        try uploadLocks.lock(key)
        defer { uploadLocks.unlock(key) }
        var session = try await upload(tenant: tenant, id: uploadID)
        guard offset == session.offset else {
            throw FileStoreError(.offsetMismatch, "upload \(uploadID) stands at offset \(session.offset), not \(offset); send from \(session.offset)")
        }
        let part = try sessionPaths(tenant, uploadID).part
        let fd = try await blocking {
            let fd = open(part, O_WRONLY | O_APPEND | O_CLOEXEC | O_NOFOLLOW)
            guard fd >= 0 else { throw FileStoreError.errno(errno, "opening upload \(uploadID)") }
            return fd
        }
        var received = session.offset
        var pending: [ByteBuffer] = []
        var pendingBytes = 0
        func flush() async throws {
            let buffers = pending
            pending = []
            pendingBytes = 0
            try await blocking { [self] in
                if configuration.reserveBytes > 0 { try checkFreeSpace(needed: 0) }
                for buffer in buffers { try FileWriter.writeAll(fd, buffer) }
                guard fsync(fd) == 0 else { throw FileStoreError.errno(errno, "syncing upload \(uploadID)") }
            }
        }
        do {
            defer { close(fd) }
            do {
                for try await buffer in body {
                    received += Int64(buffer.readableBytes)
                    guard received <= session.size else {
                        throw FileStoreError(.tooLarge, "upload \(uploadID) was announced as \(session.size) bytes; this chunk goes past it")
                    }
                    pending.append(buffer)
                    pendingBytes += buffer.readableBytes
                    if pendingBytes >= FileWriter.flushBytes { try await flush() }
                }
            } catch {
                // Keep what arrived whole: a resend starts after it.
                if (error as? FileStoreError)?.code != .tooLarge, (error as? FileStoreError)?.code != .insufficientStorage {
                    try? await flush()
                }
                throw error
            }
            try await flush()
        }
        session.offset = received
        return session
    }

    /// Turns a complete upload into a stored file under `fileId`.
    /// - Throws: `upload_incomplete` until every announced byte arrived.
    public func finishUpload(tenant: String, id uploadID: String, fileId: String) async throws -> StoredFile {
        let key = tenant + "/" + uploadID
        try uploadLocks.lock(key)
        defer { uploadLocks.unlock(key) }
        let session = try await upload(tenant: tenant, id: uploadID)
        guard session.offset == session.size else {
            throw FileStoreError(.incomplete, "upload \(uploadID) has \(session.offset) of \(session.size) bytes; send the rest from offset \(session.offset)")
        }
        let location = try location(tenant: tenant, area: session.area, ownerId: session.ownerId, fileId: fileId, name: session.name)
        let paths = try sessionPaths(tenant, uploadID)
        let directory = location.directory
        let final = path(location.relativePath)
        let (digest, prefix) = try await blocking { [self] in
            let fd = open(paths.part, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)
            guard fd >= 0 else { throw FileStoreError.errno(errno, "reading upload \(uploadID)") }
            defer { close(fd) }
            var hasher = SHA256()
            var prefix: [UInt8] = []
            var chunk = [UInt8](repeating: 0, count: 1 << 20)
            while true {
                let count = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
                if count < 0, errno == EINTR { continue }
                guard count >= 0 else { throw FileStoreError.errno(errno, "reading upload \(uploadID)") }
                if count == 0 { break }
                hasher.update(data: chunk[0..<count])
                if prefix.count < ContentSniffer.prefixLength { prefix += chunk[0..<min(count, ContentSniffer.prefixLength - prefix.count)] }
            }
            let directoryPath = try makeDirectory(directory)
            guard link(paths.part, final) == 0 else { throw FileStoreError.errno(errno, "naming a file") }
            Self.syncDirectory(directoryPath)
            unlink(paths.part)
            unlink(paths.json)
            Self.syncDirectory("\(uploadsRoot)/\(tenant)")
            return (hasher.finalize().map { String(format: "%02x", $0) }.joined(), prefix)
        }
        return StoredFile(
            location: location, size: session.size, sha256: digest,
            contentType: ContentSniffer.detect(prefix, complete: session.size <= Int64(ContentSniffer.prefixLength))
        )
    }

    /// Drops an upload and its bytes; an unknown one is not an error.
    public func cancelUpload(tenant: String, id uploadID: String) async throws {
        let paths = try sessionPaths(tenant, uploadID)
        try await blocking {
            unlink(paths.json)
            unlink(paths.part)
        }
    }

    /// The uploads past their expiry at `now`.
    public func expiredUploads(now: Date = Date()) async throws -> [UploadSession] {
        let base = uploadsRoot
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .iso8601
        return try await blocking {
            var expired: [UploadSession] = []
            let tenants = (try? FileManager.default.contentsOfDirectory(atPath: base)) ?? []
            for tenant in tenants.sorted() where Self.isIdentifier(tenant) {
                let names = (try? FileManager.default.contentsOfDirectory(atPath: "\(base)/\(tenant)")) ?? []
                for name in names.sorted() where name.hasSuffix(".json") {
                    guard let data = FileManager.default.contents(atPath: "\(base)/\(tenant)/\(name)"),
                          let session = try? decoder.decode(UploadSession.self, from: data), session.expiresAt <= now else { continue }
                    expired.append(session)
                }
            }
            return expired
        }
    }

    /// Removes every upload past its expiry; how many.
    public func removeExpiredUploads(now: Date = Date()) async throws -> Int {
        let expired = try await expiredUploads(now: now)
        for session in expired { try await cancelUpload(tenant: session.tenant, id: session.uploadId) }
        return expired.count
    }
}

extension Duration {
    var seconds: TimeInterval {
        let (seconds, attoseconds) = components
        return TimeInterval(seconds) + TimeInterval(attoseconds) / 1e18
    }
}
