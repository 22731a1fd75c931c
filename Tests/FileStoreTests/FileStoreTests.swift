import FileStore
import Foundation
import NIOCore
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// A file store in a fresh temporary directory, removed afterwards.
final class TemporaryStore: Sendable {
    let directory: URL
    let store: FileStore

    init(configuration: FileStore.Configuration = .init(reserveBytes: 0), root: URL? = nil) throws {
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("fieldops-files-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        store = FileStore(root: root ?? directory.appendingPathComponent("files"), configuration: configuration)
    }

    deinit {
        try? FileManager.default.removeItem(at: directory)
    }

    /// Every path below the store's root, relative, hidden files included.
    func allPaths() -> [String] {
        let root = store.root.path
        guard let walker = FileManager.default.enumerator(atPath: root) else { return [] }
        return walker.compactMap { $0 as? String }.filter { path in
            var isDirectory: ObjCBool = false
            return FileManager.default.fileExists(atPath: root + "/" + path, isDirectory: &isDirectory) && !isDirectory.boolValue
        }.sorted()
    }
}

/// `count` buffers of `size` bytes, each filled with its index.
func chunks(_ count: Int, of size: Int) -> AsyncStream<ByteBuffer> {
    AsyncStream { continuation in
        for index in 0..<count { continuation.yield(ByteBuffer(bytes: [UInt8](repeating: UInt8(index % 251), count: size))) }
        continuation.finish()
    }
}

func bytes(_ text: String) -> AsyncStream<ByteBuffer> {
    AsyncStream { continuation in
        continuation.yield(ByteBuffer(string: text))
        continuation.finish()
    }
}

@Suite("File store: names, paths and atomic writes on a real disk")
struct FileStoreTests {
    @Test(arguments: [
        ("../../etc/passwd", "passwd", "passwd"),
        ("..\\..\\boot.ini", "boot.ini", "boot.ini"),
        ("/etc/shadow", "shadow", "shadow"),
        ("..", "file", "file"),
        ("...", "file", "file"),
        ("", "file", "file"),
        ("a\u{0}b.txt", "ab.txt", "ab.txt"),
        ("evil\u{202E}gpj.exe", "evilgpj.exe", "evilgpj.exe"),
        ("Prüfbericht Ventil 3.pdf", "Prüfbericht Ventil 3.pdf", "Pr_fbericht_Ventil_3.pdf"),
        (".hidden", ".hidden", "hidden"),
        ("%2e%2e%2fsecret", "%2e%2e%2fsecret", "2e_2e_2fsecret"),
        ("photo\n.jpg", "photo.jpg", "photo.jpg"),
    ])
    func namesAreMadeHarmless(given: String, display: String, disk: String) {
        #expect(FileName.display(given) == display)
        #expect(FileName.disk(given) == disk)
    }

    @Test func longNamesAreCutKeepingTheExtension() {
        let long = String(repeating: "ä", count: 300) + ".pdf"
        #expect(FileName.display(long).utf8.count <= FileName.maxDisplayBytes)
        let disk = FileName.disk(String(repeating: "a", count: 200) + ".pdf")
        #expect(disk.utf8.count == FileName.maxDiskBytes)
        #expect(disk.hasSuffix(".pdf"))
    }

    static let samples: [([UInt8], String)] = [
        ([0xFF, 0xD8, 0xFF, 0xE0, 0, 0x10] as [UInt8], "image/jpeg"),
        ([0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A, 0, 0], "image/png"),
        (Array("GIF89a..".utf8), "image/gif"),
        (Array("RIFF\u{0}\u{0}\u{0}\u{0}WEBPVP8 ".utf8), "image/webp"),
        (Array("RIFF\u{0}\u{0}\u{0}\u{0}WAVEfmt ".utf8), "audio/wav"),
        (Array("%PDF-1.7\n".utf8), "application/pdf"),
        ([0, 0, 0, 0x18] + Array("ftypheic".utf8), "image/heic"),
        ([0, 0, 0, 0x18] + Array("ftypM4A ".utf8), "audio/mp4"),
        (Array("ID3\u{3}".utf8), "audio/mpeg"),
        (Array("OggS\u{0}".utf8), "audio/ogg"),
        (Array("Storm front at 14:00, crews hold.\n".utf8), "text/plain; charset=utf-8"),
        (Array("<html><script>alert(1)</script>".utf8), "text/plain; charset=utf-8"),
        ([0x4D, 0x5A, 0x90, 0x00, 0x03], "application/octet-stream"),
        ([0x50, 0x4B, 0x03, 0x04, 0x14, 0x00], "application/octet-stream"),
        (Array("text with a NUL \u{0} inside".utf8), "application/octet-stream"),
        ([0x61, 0xC3], "application/octet-stream"),
    ]

    @Test(arguments: samples)
    func contentTypeComesFromTheBytes(prefix: [UInt8], type: String) {
        #expect(ContentSniffer.detect(prefix, complete: true) == type)
    }

    @Test func aTextPrefixCutInsideACharacterIsStillText() {
        let text = Array(String(repeating: "é", count: 3_000).utf8)
        #expect(ContentSniffer.detect(Array(text.prefix(4_095)), complete: false) == "text/plain; charset=utf-8")
    }

    @Test func aWriteLandsWhole() async throws {
        let temporary = try TemporaryStore()
        let location = try temporary.store.location(tenant: "acme", area: .rooms, ownerId: "ops", fileId: FileStore.makeFileID(), name: "../../notes.txt")
        #expect(location.relativePath.hasPrefix("acme/rooms/ops/f"))
        #expect(location.relativePath.hasSuffix("-notes.txt"))
        let stored = try await temporary.store.write(location, from: bytes("hello"))
        #expect(stored.size == 5)
        #expect(stored.sha256 == "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824")
        #expect(stored.contentType == "text/plain; charset=utf-8")
        let (path, size) = try await temporary.store.readable(location)
        #expect(size == 5)
        #expect(try String(contentsOfFile: path, encoding: .utf8) == "hello")
        #expect(temporary.allPaths() == [location.relativePath])
    }

    @Test func identifiersThatCouldLeaveTheTenantRootAreRefused() throws {
        let store = try TemporaryStore().store
        for (tenant, owner) in [("..", "ops"), ("acme", ".."), ("acme", "a/b"), ("acme/../globex", "ops"), ("acme", ""), ("acme", "ops\u{0}")] {
            #expect(throws: FileStoreError.self) { try store.location(tenant: tenant, area: .rooms, ownerId: owner, fileId: "fabc", name: "x") }
        }
        #expect(throws: FileStoreError.self) { try store.location(tenant: "acme", area: .rooms, ownerId: "ops", fileId: "f-abc", name: "x") }
    }

    @Test func anOversizedWriteIsCutOffAndLeavesNothing() async throws {
        let temporary = try TemporaryStore(configuration: .init(maxFileSize: 1 << 20, reserveBytes: 0))
        let location = try temporary.store.location(tenant: "acme", area: .tasks, ownerId: "T-1", fileId: FileStore.makeFileID(), name: "big.bin")
        // An endless body: the writer must stop reading it soon after the limit.
        let endless = Generated(chunk: 64 * 1_024)
        await #expect(throws: FileStoreError.self) { try await temporary.store.write(location, from: endless) }
        #expect(temporary.allPaths() == [])
        #expect(endless.pulled.count <= 17)
        await #expect(throws: FileStoreError.self) { try await temporary.store.beginWrite(location, expectedSize: 2 << 20) }
    }

    @Test func aSymbolicLinkPlantedInTheTreeIsNeitherFollowedNorServed() async throws {
        let temporary = try TemporaryStore()
        let store = temporary.store
        let outside = temporary.directory.appendingPathComponent("outside")
        try FileManager.default.createDirectory(at: outside, withIntermediateDirectories: true)
        try FileManager.default.createDirectory(at: store.root.appendingPathComponent("acme/rooms"), withIntermediateDirectories: true)
        try FileManager.default.createSymbolicLink(at: store.root.appendingPathComponent("acme/rooms/ops"), withDestinationURL: outside)
        let location = try store.location(tenant: "acme", area: .rooms, ownerId: "ops", fileId: FileStore.makeFileID(), name: "x.txt")
        await #expect(throws: FileStoreError.self) { try await store.write(location, from: bytes("escaped?")) }
        #expect(try FileManager.default.contentsOfDirectory(atPath: outside.path) == [])

        // A stored file swapped for a link to a secret is not served.
        let real = try store.location(tenant: "acme", area: .tasks, ownerId: "T-1", fileId: FileStore.makeFileID(), name: "photo.jpg")
        _ = try await store.write(real, from: bytes("photo"))
        let secret = outside.appendingPathComponent("secret")
        try "secret".write(to: secret, atomically: true, encoding: .utf8)
        let stored = store.root.appendingPathComponent(real.relativePath)
        try FileManager.default.removeItem(at: stored)
        try FileManager.default.createSymbolicLink(at: stored, withDestinationURL: secret)
        await #expect(throws: FileStoreError.self) { try await store.readable(real) }
    }

    @Test func aWriteBelowTheReserveIsRefusedBeforeAnyByte() async throws {
        let temporary = try TemporaryStore(configuration: .init(reserveBytes: Int64.max / 2))
        let location = try temporary.store.location(tenant: "acme", area: .rooms, ownerId: "ops", fileId: FileStore.makeFileID(), name: "x")
        let error = await #expect(throws: FileStoreError.self) { try await temporary.store.write(location, from: bytes("x")) }
        #expect(error?.code == .insufficientStorage)
        #expect(temporary.allPaths() == [])
    }

    /// A real full disk: a 1 MiB tmpfs where this machine allows mounting one (root in CI).
    @Test func aFullDiskLeavesNoPartialFileAndSaysSo() async throws {
        let temporary = try TemporaryStore()
        let mountPoint = temporary.directory.appendingPathComponent("small")
        try FileManager.default.createDirectory(at: mountPoint, withIntermediateDirectories: true)
        guard run("/bin/mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", mountPoint.path) == 0 else {
            // No tmpfs here: the reserve test above covers the refusal; nothing more to check.
            print("no tmpfs could be mounted: the full-disk write was not tried on this machine")
            return
        }
        defer { _ = run("/bin/umount", mountPoint.path) }
        let store = FileStore(root: mountPoint.appendingPathComponent("files"), configuration: .init(reserveBytes: 0))
        let location = try store.location(tenant: "acme", area: .rooms, ownerId: "ops", fileId: FileStore.makeFileID(), name: "big.bin")
        let error = await #expect(throws: FileStoreError.self) { try await store.write(location, from: chunks(32, of: 64 * 1_024)) }
        #expect(error?.code == .insufficientStorage)
        let left = try FileManager.default.contentsOfDirectory(atPath: store.root.appendingPathComponent("acme/rooms/ops").path)
        #expect(left == [])
        // The space is back: a small file fits again.
        let small = try store.location(tenant: "acme", area: .rooms, ownerId: "ops", fileId: FileStore.makeFileID(), name: "small.txt")
        #expect(try await store.write(small, from: bytes("fits")).size == 4)
    }

    @Test func theInventoryTellsFilesFromLeftovers() async throws {
        let temporary = try TemporaryStore()
        let store = temporary.store
        let location = try store.location(tenant: "acme", area: .workers, ownerId: "w-1", fileId: FileStore.makeFileID(), name: "licence.pdf")
        _ = try await store.write(location, from: bytes("%PDF-1.4"))
        let abandoned = try await store.beginWrite(try store.location(tenant: "acme", area: .workers, ownerId: "w-1", fileId: FileStore.makeFileID(), name: "x"))
        _ = abandoned
        let inventory = try await store.inventory()
        #expect(inventory.files.map(\.location) == [location])
        #expect(inventory.leftovers.count == 1)
        #expect(inventory.leftovers.first?.relativePath.contains("/.tmp-") == true)
        try await store.removeLeftover(try #require(inventory.leftovers.first))
        #expect(try await store.inventory().leftovers.isEmpty)
    }
}

/// An endless body of `chunk`-byte buffers that counts how many were read; with `failAfter`,
/// it breaks off (as a dropped connection does) after that many.
struct Generated: AsyncSequence, Sendable {
    let chunk: Int
    var failAfter: Int? = nil
    let pulled = ManagedCounter()

    struct Dropped: Error {}

    struct AsyncIterator: AsyncIteratorProtocol {
        let source: Generated
        mutating func next() async throws -> ByteBuffer? {
            if let limit = source.failAfter, source.pulled.count >= limit { throw Dropped() }
            source.pulled.add()
            return ByteBuffer(bytes: [UInt8](repeating: UInt8(source.pulled.count % 251), count: source.chunk))
        }
    }

    func makeAsyncIterator() -> AsyncIterator { AsyncIterator(source: self) }
}

final class ManagedCounter: Sendable {
    private let value = Mutex(0)
    func add() { value.withLock { $0 += 1 } }
    var count: Int { value.withLock { $0 } }
}

import Synchronization

/// Runs a program; its exit status (-1 when it cannot start).
func run(_ executable: String, _ arguments: String...) -> Int32 {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: executable)
    process.arguments = arguments
    process.standardOutput = FileHandle.nullDevice
    process.standardError = FileHandle.nullDevice
    guard (try? process.run()) != nil else { return -1 }
    process.waitUntilExit()
    return process.terminationStatus
}
