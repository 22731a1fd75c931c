import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// One `fieldops serve` per data directory. Two servers on one directory would run two
/// redis-servers appending to one AOF, and one's shutdown would delete the other's socket; the
/// second is refused at start instead. The lock is an `flock` on `storage/fieldops.lock`, held
/// until the process exits (the kernel releases it even after a crash).
public enum StorageLock {
    public struct Held: Error, CustomStringConvertible {
        public let description: String
    }

    /// Takes the lock for the rest of the process's life.
    /// - Throws: `Held` naming the process that holds it.
    public static func acquire(_ storage: URL) throws {
        try FileManager.default.createDirectory(at: storage, withIntermediateDirectories: true)
        let path = storage.appendingPathComponent("fieldops.lock").path
        let fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw Held(description: "cannot open \(path): \(String(cString: strerror(errno)))") }
        guard flock(fd, LOCK_EX | LOCK_NB) == 0 else {
            let holder = (try? String(contentsOfFile: path, encoding: .utf8))?.trimmingCharacters(in: .whitespacesAndNewlines) ?? ""
            close(fd)
            throw Held(description: "\(storage.path) is in use by another fieldops serve\(holder.isEmpty ? "" : " (pid \(holder))"); stop it first, or give this one its own --storage")
        }
        let pid = "\(getpid())\n"
        _ = ftruncate(fd, 0)
        _ = pid.withCString { write(fd, $0, strlen($0)) }
        // The descriptor stays open on purpose: closing it would release the lock.
    }
}
