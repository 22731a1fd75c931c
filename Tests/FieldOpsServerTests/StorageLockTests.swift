import FieldOpsServer
import Foundation
import Testing

@Suite("One server per data directory")
struct StorageLockTests {
    @Test func aSecondServerOnTheSameStorageIsRefusedWithTheHoldersPid() throws {
        let storage = FileManager.default.temporaryDirectory.appendingPathComponent("fieldops-lock-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: storage) }
        try StorageLock.acquire(storage)
        let error = #expect(throws: StorageLock.Held.self) { try StorageLock.acquire(storage) }
        #expect(error?.description.contains("pid \(getpid())") == true)
        // Another directory is free.
        let other = storage.appendingPathComponent("other")
        try StorageLock.acquire(other)
    }
}
