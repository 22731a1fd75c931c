import FieldOpsServer
import FileStore
import Foundation
import Redis
import Streams
import Testing

@Suite("fieldops files gc")
final class FileGarbageCollectorTests: Sendable {
    let fixture: APIFixture

    init() async throws {
        fixture = try await APIFixture()
    }

    /// Sets a file's modification time `seconds` into the past.
    func age(_ path: String, by seconds: TimeInterval) throws {
        try FileManager.default.setAttributes([.modificationDate: Date().addingTimeInterval(-seconds)], ofItemAtPath: path)
    }

    @Test func itReportsFirstThenRemovesStrayBytesAndRetiresFilesWhoseBytesAreGone() async throws {
        let dispatcher = try await fixture.token(.dispatcher, sub: "d-1")
        let root = fixture.storage.appendingPathComponent("files")
        try await fixture.test { api in
            let kept = try await api.call(.put, "/v1/files/incidents/i-1?name=kept.txt&wait=true", token: dispatcher, raw: "kept")
            let lost = try await api.call(.put, "/v1/files/incidents/i-1?name=lost.txt&wait=true", token: dispatcher, raw: "lost")
            let keptPath = try #require(kept.resource("file")["path"] as? String)
            let lostID = try #require(lost.resource("file")["fileId"] as? String)
            // Bytes gone behind the server's back.
            try FileManager.default.removeItem(at: root.appendingPathComponent(try #require(lost.resource("file")["path"] as? String)))
            // Bytes nobody recorded (a crash between writing and appending), old and young.
            let stray = root.appendingPathComponent("acme/incidents/i-1/fstrayfilestrayfile1-x.txt").path
            let young = root.appendingPathComponent("acme/incidents/i-1/fyoungfileyoungfile1-y.txt").path
            let temporary = root.appendingPathComponent("acme/incidents/i-1/.tmp-crashed").path
            for path in [stray, young, temporary] { #expect(FileManager.default.createFile(atPath: path, contents: Data("x".utf8))) }
            try self.age(stray, by: 7_200)
            try self.age(temporary, by: 7_200)

            let writer = try EventWriter(redisURL: self.fixture.server.url)
            let collector = FileGarbageCollector(files: self.fixture.dependencies.files, store: self.fixture.dependencies.store, writer: writer)
            let report = try await collector.run(apply: false)
            #expect(Set(report.findings.map(\.kind)) == [.metadataWithoutBytes, .bytesWithoutMetadata, .leftover])
            #expect(report.findings.allSatisfy { $0.action == "reported" })
            #expect(report.healthy == 1)
            #expect(report.tooYoung == 1)
            #expect(FileManager.default.fileExists(atPath: stray))
            #expect(try await api.call(.get, "/v1/files/\(lostID)/meta", token: dispatcher).status == .ok)

            let applied = try await collector.run(apply: true)
            #expect(applied.findings.count == 3)
            #expect(applied.findings.first { $0.kind == .metadataWithoutBytes }?.action == "recorded file.deleted")
            #expect(!FileManager.default.fileExists(atPath: stray))
            #expect(!FileManager.default.fileExists(atPath: temporary))
            #expect(FileManager.default.fileExists(atPath: young))
            #expect(FileManager.default.fileExists(atPath: root.appendingPathComponent(keptPath).path))
            #expect(try await eventually { try await api.call(.get, "/v1/files/\(lostID)/meta", token: dispatcher).status == .notFound })
            let redis = try RedisConnection(url: self.fixture.server.url)
            let last = try redis.command("XREVRANGE", "tenant:{acme}:stream:incidents", "+", "-", "COUNT", "1").array?.first?.array?[1].array?.compactMap(\.string) ?? []
            let payload = last.firstIndex(of: "payload").map { last[$0 + 1] } ?? ""
            #expect(payload.contains("\"by\":\"gc\""))

            // Done: a second pass finds only the young stray, still too young.
            let again = try await collector.run(apply: true)
            #expect(again.findings.isEmpty)
            #expect(again.healthy == 1)
        }
    }
}
