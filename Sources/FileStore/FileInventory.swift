import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// What is on disk, for `fieldops files gc`: every stored file, and the leftovers of writes that
/// never finished (temporary files of a crashed or aborted write).
public struct FileInventory: Sendable {
    public struct Entry: Sendable, Hashable {
        public let location: FileLocation
        public let size: Int64
        public let modified: Date
    }

    public struct Leftover: Sendable, Hashable {
        /// Path below the store's root.
        public let relativePath: String
        public let size: Int64
        public let modified: Date
    }

    public var files: [Entry] = []
    /// Temporary files and anything else the store did not name (symbolic links included).
    public var leftovers: [Leftover] = []
}

extension FileStore {
    /// Walks `{root}/{tenant}/{area}/{owner}/`; the resumable uploads' directory is not included.
    public func inventory() async throws -> FileInventory {
        let base = root.path
        return try await blocking {
            var inventory = FileInventory()
            func entries(_ path: String) -> [String] { ((try? FileManager.default.contentsOfDirectory(atPath: path)) ?? []).sorted() }
            func info(_ path: String) -> stat? {
                var info = stat()
                return lstat(path, &info) == 0 ? info : nil
            }
            func leftover(_ relative: String, _ info: stat) {
                inventory.leftovers.append(.init(relativePath: relative, size: Int64(info.st_size), modified: Date(timeIntervalSince1970: TimeInterval(info.st_mtim.tv_sec))))
            }
            for tenant in entries(base) where !tenant.hasPrefix(".") {
                for areaName in entries("\(base)/\(tenant)") {
                    for owner in entries("\(base)/\(tenant)/\(areaName)") {
                        let directory = "\(tenant)/\(areaName)/\(owner)"
                        guard let directoryInfo = info("\(base)/\(directory)"), directoryInfo.st_mode & S_IFMT == S_IFDIR else { continue }
                        for name in entries("\(base)/\(directory)") {
                            guard let file = info("\(base)/\(directory)/\(name)") else { continue }
                            let fileID = name.split(separator: "-", maxSplits: 1).first.map(String.init) ?? ""
                            guard file.st_mode & S_IFMT == S_IFREG, let area = FileArea(rawValue: areaName), Self.isIdentifier(tenant), Self.isIdentifier(owner),
                                  name.hasPrefix("f"), Self.isIdentifier(fileID), name.count > fileID.count + 1 else {
                                leftover("\(directory)/\(name)", file)
                                continue
                            }
                            let location = FileLocation(tenant: tenant, area: area, ownerId: owner, fileId: fileID, fileName: name)
                            inventory.files.append(.init(location: location, size: Int64(file.st_size), modified: Date(timeIntervalSince1970: TimeInterval(file.st_mtim.tv_sec))))
                        }
                    }
                }
            }
            return inventory
        }
    }

    /// Removes a leftover the inventory found.
    public func removeLeftover(_ leftover: FileInventory.Leftover) async throws {
        let path = self.path(leftover.relativePath)
        try await blocking {
            if unlink(path) != 0, errno != ENOENT { throw FileStoreError.errno(errno, "removing \(leftover.relativePath)") }
        }
    }
}
