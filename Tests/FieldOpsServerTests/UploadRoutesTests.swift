import Crypto
import FieldOpsServer
import Foundation
import HTTPTypes
import Testing
#if canImport(Glibc)
import Glibc
#endif

@Suite("Resumable uploads over HTTP")
final class UploadRoutesTests: Sendable {
    let fixture: APIFixture

    init() async throws {
        fixture = try await APIFixture(files: .init(maxFileSize: 4 << 20, reserveBytes: 0))
    }

    static let offset = HTTPField.Name("Upload-Offset")!

    static func content(_ size: Int) -> Data {
        Data([0xFF, 0xD8, 0xFF, 0xE0] + (4..<size).map { UInt8(truncatingIfNeeded: $0 &* 31) })
    }

    @Test func anUploadGoesOnFromWhereADroppedConnectionLeftIt() async throws {
        let worker = try await fixture.token(.worker, sub: "w-1")
        let dispatcher = try await fixture.token(.dispatcher, sub: "d-1")
        let content = Self.content(3 << 20)
        try await fixture.testLive { api, port in
            #expect(try await api.call(.post, "/v1/workers", token: dispatcher, json: ["workerId": "w-1", "name": "Ana"]).status == .created)
            #expect(try await api.call(.post, "/v1/tasks", token: dispatcher, json: ["taskId": "T-1", "title": "Valve", "assigneeId": "w-1"]).status == .created)
            let created = try await api.call(.post, "/v1/uploads", token: worker, json: ["area": "tasks", "ownerId": "T-1", "name": "site.jpg", "size": content.count])
            #expect(created.status == .created, "\(created.object)")
            let uploadID = try #require(created.resource("upload")["uploadId"] as? String)
            #expect(created.headers[.location] == "/v1/uploads/\(uploadID)")
            #expect(created.headers[Self.offset] == "0")

            // The phone loses its signal 1 MiB into a 2 MiB chunk.
            let sent = 1 << 20
            try await RawHTTP.sendAndDrop(port: port, head: [
                "PATCH /v1/uploads/\(uploadID) HTTP/1.1", "Host: 127.0.0.1", "Authorization: Bearer \(worker)",
                "Upload-Offset: 0", "Content-Type: application/offset+octet-stream", "Content-Length: \(2 << 20)",
            ], body: content.prefix(sent))
            // The server keeps what arrived once it notices the connection is gone.
            var standing = -1
            for _ in 0..<250 where standing != sent {
                standing = Int(try await api.call(.head, "/v1/uploads/\(uploadID)", token: worker).headers[Self.offset] ?? "") ?? -1
                try await Task.sleep(for: .milliseconds(20))
            }
            #expect(standing == sent, "offset \(standing) after a dropped chunk of \(sent) bytes")

            let stale = try await api.call(.patch, "/v1/uploads/\(uploadID)", token: worker, bytes: content.prefix(10), headers: [Self.offset: "0"])
            #expect(stale.status == .conflict)
            #expect(stale.errorCode == "offset_mismatch")
            #expect(stale.headers[Self.offset] == String(standing))
            let early = try await api.call(.post, "/v1/uploads/\(uploadID)/complete", token: worker)
            #expect(early.errorCode == "upload_incomplete")
            #expect(try await api.call(.patch, "/v1/uploads/\(uploadID)", token: dispatcher, bytes: Data("x".utf8), headers: [Self.offset: String(standing)]).status == .notFound)

            let rest = try await api.call(.patch, "/v1/uploads/\(uploadID)", token: worker, bytes: content.suffix(from: standing), headers: [Self.offset: String(standing)])
            #expect(rest.status == .ok, "\(rest.object)")
            #expect(rest.headers[Self.offset] == String(content.count))
            let finished = try await api.call(.post, "/v1/uploads/\(uploadID)/complete", token: worker)
            #expect(finished.status == .created, "\(finished.object)")
            let file = finished.resource("file")
            #expect(file["sha256"] as? String == SHA256.hash(data: content).map { String(format: "%02x", $0) }.joined())
            #expect(file["contentType"] as? String == "image/jpeg")
            #expect(file["name"] as? String == "site.jpg")
            let download = try await api.call(.get, "/v1/files/\(file["fileId"] as? String ?? "")", token: worker)
            #expect(download.data == content)
            #expect(try await api.call(.get, "/v1/uploads/\(uploadID)", token: worker).status == .notFound)
        }
    }

    @Test func uploadsAreCheckedAtTheStartAndCanBeCancelled() async throws {
        let dispatcher = try await fixture.token(.dispatcher, sub: "d-1")
        let globex = try await fixture.token(.dispatcher, sub: "d-1", tenant: "globex")
        try await fixture.test { api in
            let tooBig = try await api.call(.post, "/v1/uploads", token: dispatcher, json: ["area": "incidents", "ownerId": "i-1", "size": 5 << 20])
            #expect(tooBig.status == .contentTooLarge)
            #expect(try await api.call(.post, "/v1/uploads", token: dispatcher, json: ["area": "rooms", "ownerId": "nope", "size": 10]).status == .notFound)
            #expect(try await api.call(.post, "/v1/uploads", token: dispatcher, json: ["area": "attic", "ownerId": "x", "size": 10]).errorCode == "invalid_area")
            let created = try await api.call(.post, "/v1/uploads", token: dispatcher, json: ["area": "incidents", "ownerId": "i-1", "name": "notes.txt", "size": 5])
            let uploadID = try #require(created.resource("upload")["uploadId"] as? String)
            #expect(try await api.call(.get, "/v1/uploads/\(uploadID)", token: globex).status == .notFound)
            #expect(try await api.call(.patch, "/v1/uploads/\(uploadID)", token: dispatcher, raw: "hello").errorCode == "missing_offset")
            let long = try await api.call(.patch, "/v1/uploads/\(uploadID)", token: dispatcher, raw: "hello world", headers: [Self.offset: "0"])
            #expect(long.status == .contentTooLarge)
            #expect(try await api.call(.delete, "/v1/uploads/\(uploadID)", token: dispatcher).status == .ok)
            #expect(try await api.call(.get, "/v1/uploads/\(uploadID)", token: dispatcher).status == .notFound)
            let leftovers = FileManager.default.enumerator(atPath: self.fixture.storage.appendingPathComponent("files").path)?.allObjects as? [String] ?? []
            #expect(!leftovers.contains { $0.hasSuffix(".part") || $0.hasSuffix(".json") })
        }
    }
}

/// An HTTP request over a bare socket that stops partway and hangs up, on a thread of its own
/// (blocking calls must not hold a cooperative thread the in-process server needs).
enum RawHTTP {
    static func sendAndDrop(port: Int, head: [String], body: Data) async throws {
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
            Thread {
                continuation.resume(with: Result {
                    let fd = try loopbackSocket(port: port)
                    defer { close(fd) }
                    let bytes = Array((head.joined(separator: "\r\n") + "\r\n\r\n").utf8) + Array(body)
                    var offset = 0
                    while offset < bytes.count {
                        let written = bytes[offset...].withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
                        guard written > 0 else { throw POSIXError(.EIO) }
                        offset += written
                    }
                    // Give the server a moment to read what was sent, as a real network would.
                    usleep(200_000)
                })
            }.start()
        }
    }
}
