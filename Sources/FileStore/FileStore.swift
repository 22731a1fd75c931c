import Crypto
import Foundation
import NIOCore
import NIOPosix
#if canImport(Glibc)
import Glibc
#endif

/// Where one file's bytes live: `{root}/{tenant}/{area}/{ownerId}/{fileId}-{diskName}`. Every
/// part is a server-checked identifier or a sanitized name, so it never leaves the tenant's root.
public struct FileLocation: Sendable, Hashable, Codable {
    public let tenant: String
    public let area: FileArea
    public let ownerId: String
    public let fileId: String
    /// `{fileId}-{sanitized name}`.
    public let fileName: String

    /// A location as recorded earlier (`relativePath` of a stored file).
    public init(tenant: String, area: FileArea, ownerId: String, fileId: String, fileName: String) {
        self.tenant = tenant
        self.area = area
        self.ownerId = ownerId
        self.fileId = fileId
        self.fileName = fileName
    }

    /// The path below the store's root.
    public var relativePath: String { "\(tenant)/\(area.rawValue)/\(ownerId)/\(fileName)" }
    var directory: String { "\(tenant)/\(area.rawValue)/\(ownerId)" }
}

/// A file whose bytes are written and durable.
public struct StoredFile: Sendable, Hashable {
    public let location: FileLocation
    public let size: Int64
    /// Lowercase hex SHA-256 of the bytes.
    public let sha256: String
    /// Detected from the bytes (`ContentSniffer`).
    public let contentType: String
}

/// Attachment bytes on the local disk (Cloud Storage's role; DESIGN.md §6). Metadata lives in the
/// document store; this type only places, writes, finds and removes bytes.
///
/// Writes are atomic: bytes go to a temporary file in the target directory, are synced, then
/// linked under their final name — a crash or a full disk never leaves a partial file visible.
/// Blocking file calls run on a thread pool, never on the caller's task.
public struct FileStore: Sendable {
    public struct Configuration: Sendable {
        /// Largest file, in bytes (25 MiB).
        public var maxFileSize: Int64
        /// Free space a write never takes: the disk also holds the event log and the database.
        public var reserveBytes: Int64
        /// How long an unfinished resumable upload is kept.
        public var uploadLifetime: Duration

        public init(maxFileSize: Int64 = 25 << 20, reserveBytes: Int64 = 128 << 20, uploadLifetime: Duration = .seconds(24 * 3_600)) {
            self.maxFileSize = maxFileSize
            self.reserveBytes = reserveBytes
            self.uploadLifetime = uploadLifetime
        }
    }

    /// The directory holding every tenant's files (`storage/files`).
    public let root: URL
    public let configuration: Configuration
    let threadPool: NIOThreadPool
    let uploadLocks = UploadLocks()

    public init(root: URL, configuration: Configuration = .init(), threadPool: NIOThreadPool = .singleton) {
        self.root = root.standardizedFileURL
        self.configuration = configuration
        self.threadPool = threadPool
    }

    /// A new file id: `f` and 19 lowercase letters and digits (no `-`, so a file name on disk
    /// splits back into id and name at its first `-`).
    public static func makeFileID() -> String {
        let alphabet = Array("abcdefghijkmnpqrstuvwxyz23456789")
        var generator = SystemRandomNumberGenerator()
        return "f" + String((0..<19).map { _ in alphabet[Int.random(in: 0..<alphabet.count, using: &generator)] })
    }

    /// Ids that may name a directory or file: 1–64 letters, digits, `-`, `_`.
    public static func isIdentifier(_ text: String) -> Bool {
        !text.isEmpty && text.utf8.count <= 64 && text.utf8.allSatisfy { byte in
            (byte >= 0x30 && byte <= 0x39) || (byte >= 0x41 && byte <= 0x5A) || (byte >= 0x61 && byte <= 0x7A) || byte == 0x2D || byte == 0x5F
        }
    }

    /// The location for a new file.
    /// - Throws: `invalid_identifier` for a tenant or owner that is not a plain identifier, or a
    ///   file id that holds a `-`.
    public func location(tenant: String, area: FileArea, ownerId: String, fileId: String, name: String) throws -> FileLocation {
        for (what, id) in [("tenant", tenant), ("owner id", ownerId), ("file id", fileId)] where !Self.isIdentifier(id) {
            throw FileStoreError(.invalidIdentifier, "\(what) '\(id)' must be 1-64 letters, digits, '-' or '_'")
        }
        guard !fileId.contains("-") else { throw FileStoreError(.invalidIdentifier, "a file id has no '-'") }
        return FileLocation(tenant: tenant, area: area, ownerId: ownerId, fileId: fileId, fileName: fileId + "-" + FileName.disk(name))
    }

    func path(_ relative: String) -> String { root.path + "/" + relative }

    // MARK: - Writing

    /// Opens a temporary file in the location's directory, creating the directories.
    /// - Parameter expectedSize: the size the client announced, refused at once when too large
    ///   or when it would eat into the disk's reserve.
    public func beginWrite(_ location: FileLocation, expectedSize: Int64? = nil) async throws -> FileWriter {
        if let expectedSize, expectedSize > configuration.maxFileSize { throw tooLarge }
        let directory = location.directory
        let fd = try await blocking { [self] in
            try checkFreeSpace(needed: expectedSize ?? 0)
            let directoryPath = try makeDirectory(directory)
            return try Self.openTemporary(in: directoryPath)
        }
        return FileWriter(store: self, location: location, directory: path(directory), temporary: fd.path, fd: fd.fd)
    }

    /// Writes `body` to `location` atomically.
    public func write<Body: AsyncSequence>(_ location: FileLocation, expectedSize: Int64? = nil, from body: Body) async throws -> StoredFile where Body.Element == ByteBuffer {
        var writer = try await beginWrite(location, expectedSize: expectedSize)
        do {
            for try await buffer in body { try await writer.append(buffer) }
            return try await writer.commit()
        } catch {
            await writer.abort()
            throw error
        }
    }

    /// The error for a file over the limit.
    public var tooLarge: FileStoreError {
        FileStoreError(.tooLarge, "a file is at most \(configuration.maxFileSize) bytes (\(configuration.maxFileSize >> 20) MiB)")
    }

    /// - Throws: `insufficient_storage` when writing `needed` more bytes would leave less free
    ///   than the reserve.
    func checkFreeSpace(needed: Int64) throws {
        var stats = statvfs()
        try FileManager.default.createDirectory(at: root, withIntermediateDirectories: true)
        guard statvfs(root.path, &stats) == 0 else { throw FileStoreError.errno(errno, "checking free space") }
        let free = Int64(stats.f_bavail) * Int64(stats.f_frsize)
        guard free - needed >= configuration.reserveBytes else {
            throw FileStoreError(
                .insufficientStorage,
                "the file store has \(free >> 20) MiB free and keeps \(configuration.reserveBytes >> 20) MiB in reserve; nothing was kept"
            )
        }
    }

    /// Creates `relative` (tenant/area/owner) under the root; each level must be a real
    /// directory, not a symbolic link planted to lead elsewhere.
    /// - Returns: its absolute path.
    func makeDirectory(_ relative: String) throws -> String {
        try Self.makeDirectory(relative, under: root.path)
    }

    static func makeDirectory(_ relative: String, under base: String) throws -> String {
        do {
            try FileManager.default.createDirectory(atPath: base, withIntermediateDirectories: true)
        } catch {
            throw FileStoreError(.storageFailure, "cannot create the file store directory \(base): \(error.localizedDescription)")
        }
        var current = base
        for component in relative.split(separator: "/") {
            current += "/" + component
            if mkdir(current, 0o750) != 0, errno != EEXIST { throw FileStoreError.errno(errno, "creating a directory") }
            var info = stat()
            guard lstat(current, &info) == 0 else { throw FileStoreError.errno(errno, "checking a directory") }
            guard info.st_mode & S_IFMT == S_IFDIR else {
                throw FileStoreError(.unsafePath, "\(relative) is not a plain directory of the file store")
            }
        }
        return current
    }

    static func openTemporary(in directory: String) throws -> (fd: Int32, path: String) {
        for _ in 0..<8 {
            let path = directory + "/.tmp-" + UUID().uuidString.lowercased()
            let fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0o640)
            if fd >= 0 { return (fd, path) }
            if errno != EEXIST { throw FileStoreError.errno(errno, "creating a file") }
        }
        throw FileStoreError(.storageFailure, "could not create a temporary file")
    }

    /// Runs blocking file calls on the thread pool.
    func blocking<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
        do {
            return try await threadPool.runIfActive(body)
        } catch let error as FileStoreError {
            throw error
        } catch let error as CocoaError {
            throw FileStoreError(.storageFailure, error.localizedDescription)
        }
    }

    // MARK: - Reading and removing

    /// The absolute path of a stored file and its size, after checking it is a regular file the
    /// store made (not a link leading out of the tenant's root).
    /// - Throws: `not_found` when the bytes are missing.
    public func readable(_ location: FileLocation) async throws -> (path: String, size: Int64) {
        let relative = location.relativePath
        return try await blocking { [self] in
            var current = root.path
            let components = relative.split(separator: "/")
            for (index, component) in components.enumerated() {
                current += "/" + component
                var info = stat()
                guard lstat(current, &info) == 0 else { throw FileStoreError.errno(errno, "file \(location.fileId)") }
                let kind = info.st_mode & S_IFMT
                guard kind == (index == components.count - 1 ? S_IFREG : S_IFDIR) else {
                    throw FileStoreError(.unsafePath, "file \(location.fileId) is not a plain file of the file store")
                }
                if index == components.count - 1 { return (current, Int64(info.st_size)) }
            }
            throw FileStoreError(.notFound, "file \(location.fileId)")
        }
    }

    /// Removes a file's bytes; a file already gone is not an error.
    public func remove(_ location: FileLocation) async throws {
        let (file, directory) = (path(location.relativePath), path(location.directory))
        try await blocking {
            if unlink(file) != 0, errno != ENOENT { throw FileStoreError.errno(errno, "removing file \(location.fileId)") }
            Self.syncDirectory(directory)
        }
    }

    /// Makes a rename or unlink in `directory` durable.
    static func syncDirectory(_ directory: String) {
        let fd = open(directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard fd >= 0 else { return }
        _ = fsync(fd)
        close(fd)
    }
}

/// One file being written. Call `commit` to make it visible or `abort` to drop it; a writer left
/// neither way leaves only a hidden temporary file, which `fieldops files gc` removes.
public struct FileWriter: Sendable {
    /// Bytes gathered before one write call: fewer thread-pool hops per upload.
    static let flushBytes = 256 * 1_024

    let store: FileStore
    public let location: FileLocation
    let directory: String
    let temporary: String
    let fd: Int32
    /// Bytes received so far.
    public private(set) var size: Int64 = 0
    private var hasher = SHA256()
    private var prefix: [UInt8] = []
    private var pending: [ByteBuffer] = []
    private var pendingBytes = 0

    init(store: FileStore, location: FileLocation, directory: String, temporary: String, fd: Int32) {
        self.store = store
        self.location = location
        self.directory = directory
        self.temporary = temporary
        self.fd = fd
    }

    /// Adds bytes.
    /// - Throws: `file_too_large` as soon as the file passes the limit (the caller aborts).
    public mutating func append(_ buffer: ByteBuffer) async throws {
        size += Int64(buffer.readableBytes)
        guard size <= store.configuration.maxFileSize else { throw store.tooLarge }
        buffer.withUnsafeReadableBytes { hasher.update(bufferPointer: $0) }
        if prefix.count < ContentSniffer.prefixLength {
            prefix += buffer.getBytes(at: buffer.readerIndex, length: min(buffer.readableBytes, ContentSniffer.prefixLength - prefix.count)) ?? []
        }
        pending.append(buffer)
        pendingBytes += buffer.readableBytes
        if pendingBytes >= Self.flushBytes { try await flush() }
    }

    /// Writes what is gathered.
    mutating func flush() async throws {
        guard !pending.isEmpty else { return }
        let (buffers, fd, store) = (pending, fd, store)
        pending = []
        pendingBytes = 0
        try await store.blocking {
            if store.configuration.reserveBytes > 0 { try store.checkFreeSpace(needed: 0) }
            for buffer in buffers { try Self.writeAll(fd, buffer) }
        }
    }

    static func writeAll(_ fd: Int32, _ buffer: ByteBuffer) throws {
        try buffer.withUnsafeReadableBytes { bytes in
            var offset = 0
            while offset < bytes.count {
                let written = Glibc.write(fd, bytes.baseAddress! + offset, bytes.count - offset)
                if written < 0 {
                    if errno == EINTR { continue }
                    throw FileStoreError.errno(errno, "writing a file")
                }
                offset += written
            }
        }
    }

    /// Syncs the bytes and gives them their final name.
    public mutating func commit() async throws -> StoredFile {
        try await flush()
        let (fd, temporary, directory, final) = (fd, temporary, directory, store.path(location.relativePath))
        // On failure the descriptor stays open for `abort`, which closes it and drops the file.
        try await store.blocking {
            guard fsync(fd) == 0 else { throw FileStoreError.errno(errno, "syncing a file") }
            // link refuses to replace an existing file, unlike rename.
            guard link(temporary, final) == 0 else { throw FileStoreError.errno(errno, "naming a file") }
            close(fd)
            unlink(temporary)
            FileStore.syncDirectory(directory)
        }
        let contentType = ContentSniffer.detect(prefix, complete: size <= Int64(ContentSniffer.prefixLength))
        let digest = hasher.finalize().map { String(format: "%02x", $0) }.joined()
        return StoredFile(location: location, size: size, sha256: digest, contentType: contentType)
    }

    /// Drops the temporary file.
    public func abort() async {
        let (fd, temporary) = (fd, temporary)
        _ = try? await store.blocking {
            close(fd)
            unlink(temporary)
        }
    }
}
