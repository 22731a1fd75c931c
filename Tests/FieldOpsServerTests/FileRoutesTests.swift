import Crypto
import FieldOpsServer
import FileStore
import Foundation
import HTTPTypes
import Redis
import Testing

@Suite("Files: upload, download, ranges, access and references over HTTP")
final class FileRoutesTests: Sendable {
    let fixture: APIFixture

    init() async throws {
        fixture = try await APIFixture(files: .init(maxFileSize: 1 << 20, reserveBytes: 0))
    }

    static let png = Data([0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A] + (0..<200).map { UInt8($0) })

    static func sha256(_ data: Data) -> String { SHA256.hash(data: data).map { String(format: "%02x", $0) }.joined() }

    /// Every file under the fixture's storage, relative to `files/`.
    func filesOnDisk() -> [String] {
        let root = fixture.storage.appendingPathComponent("files").path
        return (FileManager.default.enumerator(atPath: root)?.compactMap { $0 as? String } ?? []).filter { path in
            var isDirectory: ObjCBool = false
            return FileManager.default.fileExists(atPath: root + "/" + path, isDirectory: &isDirectory) && !isDirectory.boolValue
        }.sorted()
    }

    func room(_ api: APIClient, _ token: String, _ id: String = "ops", members: [String] = ["w-1"]) async throws {
        let reply = try await api.call(.post, "/v1/rooms", token: token, json: ["roomId": id, "name": id, "members": members])
        #expect(reply.status == .created, "\(reply.object)")
    }

    @Test func aRawUploadIsStoredSniffedAndServedWithItsHeaders() async throws {
        let dispatcher = try await fixture.token(.dispatcher, sub: "d-1")
        try await fixture.test { api in
            try await self.room(api, dispatcher)
            // Labelled as text, but the bytes are a PNG: the bytes win.
            let uploaded = try await api.call(.put, "/v1/files/rooms/ops?name=../../Site%20photo.png", token: dispatcher, bytes: Self.png, headers: [.contentType: "text/plain"])
            #expect(uploaded.status == .created, "\(uploaded.object)")
            let file = uploaded.resource("file")
            let fileID = try #require(file["fileId"] as? String)
            #expect(file["name"] as? String == "Site photo.png")
            #expect(file["contentType"] as? String == "image/png")
            #expect(file["size"] as? Int == Self.png.count)
            #expect(file["sha256"] as? String == Self.sha256(Self.png))
            #expect(file["area"] as? String == "rooms")
            #expect(file["ownerId"] as? String == "ops")
            #expect(file["uploadedBy"] as? String == "d-1")
            #expect(self.filesOnDisk() == ["acme/rooms/ops/\(fileID)-Site_photo.png"])

            let download = try await api.call(.get, "/v1/files/\(fileID)", token: dispatcher)
            #expect(download.status == .ok)
            #expect(download.data == Self.png)
            #expect(download.headers[.contentType] == "image/png")
            #expect(download.headers[.contentLength] == String(Self.png.count))
            #expect(download.headers[.eTag] == "\"\(Self.sha256(Self.png))\"")
            #expect(download.headers[HTTPField.Name("X-Content-Type-Options")!] == "nosniff")
            #expect(download.headers[.contentDisposition]?.hasPrefix("inline; filename=\"Site photo.png\"") == true)
            #expect(download.headers[.acceptRanges] == "bytes")

            let head = try await api.call(.head, "/v1/files/\(fileID)", token: dispatcher)
            #expect(head.status == .ok)
            #expect(head.headers[.contentLength] == String(Self.png.count))
            #expect(head.data.isEmpty)

            let meta = try await api.call(.get, "/v1/files/\(fileID)/meta", token: dispatcher)
            #expect(meta.resource("file")["sha256"] as? String == Self.sha256(Self.png))
            let listed = try await api.call(.get, "/v1/files?area=rooms&ownerId=ops", token: dispatcher)
            #expect(listed.list("files").map { $0["fileId"] as? String } == [fileID])

            // The room's stream tells the story.
            let redis = try RedisConnection(url: self.fixture.server.url)
            let entries = try redis.command("XRANGE", "tenant:{acme}:stream:chat:ops", "-", "+").array ?? []
            let types = entries.compactMap { entry -> String? in
                let fields = entry.array?[1].array?.compactMap(\.string) ?? []
                return fields.firstIndex(of: "event_type").map { fields[$0 + 1] }
            }
            #expect(types == ["room.created", "file.uploaded"])
        }
    }

    @Test func anUnknownTypeIsStoredAsADownloadOnly() async throws {
        let dispatcher = try await fixture.token(.dispatcher, sub: "d-1")
        try await fixture.test { api in
            let html = Data("<html><body>hi</body></html>".utf8)
            let executable = Data([0x4D, 0x5A, 0x90, 0x00, 0x03, 0x00])
            let text = try await api.call(.put, "/v1/files/incidents/storm-7?name=page.html", token: dispatcher, bytes: html)
            #expect(text.resource("file")["contentType"] as? String == "text/plain; charset=utf-8")
            let binary = try await api.call(.put, "/v1/files/incidents/storm-7?name=setup.exe", token: dispatcher, bytes: executable)
            #expect(binary.resource("file")["contentType"] as? String == "application/octet-stream")
            let download = try await api.call(.get, "/v1/files/\(binary.resource("file")["fileId"] as? String ?? "")", token: dispatcher)
            #expect(download.headers[.contentType] == "application/octet-stream")
            #expect(download.headers[.contentDisposition]?.hasPrefix("attachment;") == true)
        }
    }

    @Test func aMultipartFormUploadTakesTheFilePart() async throws {
        let dispatcher = try await fixture.token(.dispatcher, sub: "d-1")
        try await fixture.test { api in
            #expect(try await api.call(.post, "/v1/tasks", token: dispatcher, json: ["taskId": "T-1", "title": "Valve"]).status == .created)
            let boundary = "----fieldops\(UUID().uuidString)"
            var body = Data("--\(boundary)\r\nContent-Disposition: form-data; name=\"note\"\r\n\r\nbefore repair\r\n".utf8)
            body += Data("--\(boundary)\r\nContent-Disposition: form-data; name=\"file\"; filename=\"..\\\\valve.png\"\r\nContent-Type: image/png\r\n\r\n".utf8)
            body += Self.png
            body += Data("\r\n--\(boundary)--\r\n".utf8)
            let reply = try await api.call(.post, "/v1/files/tasks/T-1", token: dispatcher, bytes: body, headers: [.contentType: "multipart/form-data; boundary=\(boundary)"])
            #expect(reply.status == .created, "\(reply.object)")
            #expect(reply.resource("file")["name"] as? String == "valve.png")
            #expect(reply.resource("file")["sha256"] as? String == Self.sha256(Self.png))
            #expect(reply.resource("file")["size"] as? Int == Self.png.count)

            let empty = Data("--\(boundary)\r\nContent-Disposition: form-data; name=\"note\"\r\n\r\nno file\r\n--\(boundary)--\r\n".utf8)
            let missing = try await api.call(.post, "/v1/files/tasks/T-1", token: dispatcher, bytes: empty, headers: [.contentType: "multipart/form-data; boundary=\(boundary)"])
            #expect(missing.errorCode == "missing_file")
            let plain = try await api.call(.post, "/v1/files/tasks/T-1", token: dispatcher, bytes: Self.png, headers: [.contentType: "image/png"])
            #expect(plain.status == .unsupportedMediaType)
            #expect(self.filesOnDisk().count == 1)
        }
    }

    @Test func rangesAndValidatorsBehaveAsHTTPSays() async throws {
        let dispatcher = try await fixture.token(.dispatcher, sub: "d-1")
        try await fixture.test { api in
            let content = Data("0123456789abcdefghij".utf8)
            let uploaded = try await api.call(.put, "/v1/files/incidents/i-1?name=log.txt", token: dispatcher, bytes: content)
            let fileID = try #require(uploaded.resource("file")["fileId"] as? String)
            let etag = "\"\(Self.sha256(content))\""
            func get(_ headers: HTTPFields) async throws -> APIReply { try await api.call(.get, "/v1/files/\(fileID)", token: dispatcher, headers: headers) }

            let first = try await get([.range: "bytes=0-4"])
            #expect(first.status == .partialContent)
            #expect(first.data == Data("01234".utf8))
            #expect(first.headers[.contentRange] == "bytes 0-4/20")
            #expect(first.headers[.contentLength] == "5")
            let open = try await get([.range: "bytes=15-"])
            #expect(open.data == Data("fghij".utf8))
            #expect(open.headers[.contentRange] == "bytes 15-19/20")
            let suffix = try await get([.range: "bytes=-3"])
            #expect(suffix.data == Data("hij".utf8))
            let beyond = try await get([.range: "bytes=10-999"])
            #expect(beyond.headers[.contentRange] == "bytes 10-19/20")
            let unsatisfiable = try await get([.range: "bytes=20-25"])
            #expect(unsatisfiable.status == .rangeNotSatisfiable)
            #expect(unsatisfiable.headers[.contentRange] == "bytes */20")
            #expect(unsatisfiable.errorCode == "range_not_satisfiable")
            // Malformed or several ranges: the whole file.
            #expect(try await get([.range: "bytes=5-2"]).status == .ok)
            #expect(try await get([.range: "bytes=0-1,4-5"]).data == content)
            #expect(try await get([.ifNoneMatch: etag]).status == .notModified)
            #expect(try await get([.ifNoneMatch: "\"other\""]).status == .ok)
            // If-Range with a stale validator: the whole, current file.
            let stale = try await get([.range: "bytes=0-4", .ifRange: "\"stale\""])
            #expect(stale.status == .ok)
            #expect(stale.data == content)
            #expect(try await get([.range: "bytes=0-4", .ifRange: etag]).status == .partialContent)
        }
    }

    @Test func traversalNamesNeverLeaveTheTenantRoot() async throws {
        let dispatcher = try await fixture.token(.dispatcher, sub: "d-1")
        try await fixture.test { api in
            for owner in ["..", "..%2F..%2Fetc", "%2e%2e%2f%2e%2e", "a%5Cb", "a%00b", "%2Fetc"] {
                let reply = try await api.call(.put, "/v1/files/incidents/\(owner)?name=x.txt", token: dispatcher, raw: "x")
                #expect([400, 404].contains(reply.status.code), "\(owner): \(reply.status)")
            }
            #expect(try await api.call(.put, "/v1/files/secrets/i-1?name=x.txt", token: dispatcher, raw: "x").errorCode == "invalid_area")
            for name in ["../../../../etc/passwd", "%2e%2e%2f%2e%2e%2fpasswd", "/etc/passwd", "..\\..\\win.ini", "a%00b.txt", ".."] {
                let reply = try await api.call(.put, "/v1/files/incidents/i-1?name=\(name)", token: dispatcher, raw: "x")
                #expect(reply.status == .created, "\(name): \(reply.object)")
            }
            let paths = self.filesOnDisk()
            #expect(paths.count == 6)
            #expect(paths.allSatisfy { $0.hasPrefix("acme/incidents/i-1/f") && !$0.dropFirst("acme/incidents/i-1/".count).contains("/") }, "\(paths)")
            #expect(try await api.call(.get, "/v1/files/..%2F..%2Fetc%2Fpasswd", token: dispatcher).status == .notFound)
        }
    }

    @Test func oversizedUploadsAreRefusedAndLeaveNothing() async throws {
        let dispatcher = try await fixture.token(.dispatcher, sub: "d-1")
        try await fixture.test { api in
            let big = Data(repeating: 0x41, count: (1 << 20) + 1)
            let raw = try await api.call(.put, "/v1/files/incidents/i-1?name=big.txt", token: dispatcher, bytes: big)
            #expect(raw.status == .contentTooLarge)
            #expect(raw.errorCode == "file_too_large")
            // Announced or not, the limit holds while the bytes stream in.
            let chunked = try await api.call(.put, "/v1/files/incidents/i-1?name=big.txt", token: dispatcher, bytes: big, headers: [.transferEncoding: "chunked"])
            #expect(chunked.status == .contentTooLarge)
            let boundary = "b0undary"
            var form = Data("--\(boundary)\r\nContent-Disposition: form-data; name=\"file\"; filename=\"big.txt\"\r\n\r\n".utf8)
            form += big + Data("\r\n--\(boundary)--\r\n".utf8)
            let multipart = try await api.call(.post, "/v1/files/incidents/i-1", token: dispatcher, bytes: form, headers: [.contentType: "multipart/form-data; boundary=\(boundary)"])
            #expect(multipart.status == .contentTooLarge)
            #expect(self.filesOnDisk() == [])
            #expect(try await api.call(.get, "/v1/files?area=incidents", token: dispatcher).list("files").isEmpty)
        }
    }

    @Test func aFullDiskIsA507AndLeavesNothing() async throws {
        let full = try await APIFixture(files: .init(reserveBytes: Int64.max / 4))
        let dispatcher = try await full.token(.dispatcher, sub: "d-1")
        try await full.test { api in
            let reply = try await api.call(.put, "/v1/files/incidents/i-1?name=x.txt", token: dispatcher, raw: "hello")
            #expect(reply.status.code == 507)
            #expect(reply.errorCode == "insufficient_storage")
            let root = full.storage.appendingPathComponent("files/acme/incidents/i-1").path
            #expect(((try? FileManager.default.contentsOfDirectory(atPath: root)) ?? []) == [])
        }
    }

    @Test func filesStayInTheirTenantAndTheirOwnersReach() async throws {
        let dispatcher = try await fixture.token(.dispatcher, sub: "d-1")
        let member = try await fixture.token(.worker, sub: "w-1")
        let outsider = try await fixture.token(.worker, sub: "w-9")
        let globex = try await fixture.token(.dispatcher, sub: "d-1", tenant: "globex")
        try await fixture.test { api in
            try await self.room(api, dispatcher)
            let uploaded = try await api.call(.put, "/v1/files/rooms/ops?name=plan.png", token: member, bytes: Self.png)
            #expect(uploaded.status == .created, "\(uploaded.object)")
            let fileID = try #require(uploaded.resource("file")["fileId"] as? String)
            #expect(try await api.call(.get, "/v1/files/\(fileID)", token: member).status == .ok)
            #expect(try await api.call(.get, "/v1/files/\(fileID)", token: dispatcher).status == .ok)
            for (token, who) in [(outsider, "another worker"), (globex, "another tenant")] {
                #expect(try await api.call(.get, "/v1/files/\(fileID)", token: token).status == .notFound, "\(who)")
                #expect(try await api.call(.get, "/v1/files/\(fileID)/meta", token: token).status == .notFound, "\(who)")
                #expect(try await api.call(.delete, "/v1/files/\(fileID)", token: token).status == .notFound, "\(who)")
            }
            #expect(try await api.call(.get, "/v1/files?area=rooms&ownerId=ops", token: globex).list("files").isEmpty)
            #expect(try await api.call(.get, "/v1/files?area=rooms&ownerId=ops", token: outsider).status == .forbidden)
            #expect(try await api.call(.put, "/v1/files/rooms/ops?name=x", token: outsider, raw: "x").status == .notFound)
            #expect(try await api.call(.put, "/v1/files/rooms/ops?name=x", token: globex, raw: "x").status == .notFound)
            #expect(try await api.call(.put, "/v1/files/incidents/i-1?name=x", token: member, raw: "x").status == .forbidden)
            #expect(try await api.call(.put, "/v1/files/workers/w-2?name=x", token: member, raw: "x").status == .forbidden)
            #expect(try await api.call(.put, "/v1/files/tasks/T-404?name=x", token: dispatcher, raw: "x").status == .notFound)
            #expect(self.filesOnDisk().count == 1)
        }
    }

    @Test func messagesAndTasksAttachOnlyTheirOwnFiles() async throws {
        let dispatcher = try await fixture.token(.dispatcher, sub: "d-1")
        let worker = try await fixture.token(.worker, sub: "w-1")
        let globex = try await fixture.token(.dispatcher, sub: "d-1", tenant: "globex")
        try await fixture.test { api in
            try await self.room(api, dispatcher)
            try await self.room(api, dispatcher, "leads", members: [])
            #expect(try await api.call(.post, "/v1/workers", token: dispatcher, json: ["workerId": "w-1", "name": "Ana"]).status == .created)
            #expect(try await api.call(.post, "/v1/tasks", token: dispatcher, json: ["taskId": "T-1", "title": "Valve", "assigneeId": "w-1"]).status == .created)
            func upload(_ path: String, _ token: String) async throws -> String {
                let reply = try await api.call(.put, path, token: token, bytes: Self.png)
                #expect(reply.status == .created, "\(reply.object)")
                return reply.resource("file")["fileId"] as? String ?? ""
            }
            let opsFile = try await upload("/v1/files/rooms/ops?name=a.png", worker)
            let leadsFile = try await upload("/v1/files/rooms/leads?name=b.png", dispatcher)
            let taskPhoto = try await upload("/v1/files/tasks/T-1?name=done.png", worker)
            try await self.room(api, globex)
            let foreign = try await upload("/v1/files/rooms/ops?name=c.png", globex)

            for (attachment, why) in [(leadsFile, "another room's"), (foreign, "another tenant's"), ("fnosuchfile", "missing"), (taskPhoto, "a task's")] {
                let refused = try await api.call(.post, "/v1/rooms/ops/messages", token: worker, json: ["text": "see", "attachments": [attachment]])
                #expect(refused.errorCode == "invalid_attachment", "\(why): \(refused.object)")
            }
            let posted = try await api.call(.post, "/v1/rooms/ops/messages?wait=true", token: worker, json: ["text": "see", "attachments": [opsFile]])
            #expect(posted.status == .created, "\(posted.object)")
            let messageID = try #require(posted.resource("message")["messageId"] as? String)
            #expect(posted.resource("message")["attachments"] as? [String] == [opsFile])

            #expect(try await api.call(.post, "/v1/tasks/T-1/accept", token: worker).status == .ok)
            #expect(try await api.call(.post, "/v1/tasks/T-1/start", token: worker).status == .ok)
            let wrong = try await api.call(.post, "/v1/tasks/T-1/complete", token: worker, json: ["attachments": [opsFile]])
            #expect(wrong.errorCode == "invalid_attachment")
            let completed = try await api.call(.post, "/v1/tasks/T-1/complete?wait=true", token: worker, json: ["note": "fixed", "attachments": [taskPhoto]])
            #expect(completed.status == .ok, "\(completed.object)")
            #expect(completed.resource("task")["attachments"] as? [String] == [taskPhoto])

            // Each file knows what refers to it.
            let opsMeta = try await api.call(.get, "/v1/files/\(opsFile)/meta", token: dispatcher).resource("file")
            #expect((opsMeta["references"] as? [[String: Any]])?.first?["id"] as? String == messageID)
            let photoMeta = try await api.call(.get, "/v1/files/\(taskPhoto)/meta", token: dispatcher).resource("file")
            #expect((photoMeta["references"] as? [[String: Any]])?.first?["kind"] as? String == "task")
        }
    }

    @Test func deletingRemovesBytesAndMetadataAndTellsTheStream() async throws {
        let dispatcher = try await fixture.token(.dispatcher, sub: "d-1")
        let worker = try await fixture.token(.worker, sub: "w-1")
        let other = try await fixture.token(.worker, sub: "w-2")
        try await fixture.test { api in
            try await self.room(api, dispatcher, members: ["w-1", "w-2"])
            let uploaded = try await api.call(.put, "/v1/files/rooms/ops?name=a.png", token: worker, bytes: Self.png)
            let fileID = try #require(uploaded.resource("file")["fileId"] as? String)
            #expect(try await api.call(.delete, "/v1/files/\(fileID)", token: other).status == .forbidden)
            let deleted = try await api.call(.delete, "/v1/files/\(fileID)?wait=true", token: worker)
            #expect(deleted.status == .ok, "\(deleted.object)")
            #expect(self.filesOnDisk() == [])
            #expect(try await api.call(.get, "/v1/files/\(fileID)", token: dispatcher).status == .notFound)
            #expect(try await api.call(.get, "/v1/files?area=rooms&ownerId=ops", token: dispatcher).list("files").isEmpty)
            #expect(try await api.call(.delete, "/v1/files/\(fileID)", token: worker).status == .notFound)
            let refused = try await api.call(.post, "/v1/rooms/ops/messages", token: worker, json: ["text": "see", "attachments": [fileID]])
            #expect(refused.errorCode == "invalid_attachment")
            let redis = try RedisConnection(url: self.fixture.server.url)
            let last = try redis.command("XREVRANGE", "tenant:{acme}:stream:chat:ops", "+", "-", "COUNT", "1").array?.first?.array?[1].array?.compactMap(\.string) ?? []
            #expect(last.firstIndex(of: "event_type").map { last[$0 + 1] } == "file.deleted")
        }
    }

    @Test func aRetriedUploadWithTheSameKeyIsStoredOnce() async throws {
        let dispatcher = try await fixture.token(.dispatcher, sub: "d-1")
        try await fixture.test { api in
            let key: HTTPFields = [HTTPField.Name("Idempotency-Key")!: "upload-1"]
            let first = try await api.call(.put, "/v1/files/incidents/i-1?name=a.png", token: dispatcher, bytes: Self.png, headers: key)
            let again = try await api.call(.put, "/v1/files/incidents/i-1?name=a.png", token: dispatcher, bytes: Self.png, headers: key)
            #expect(first.status == .created)
            #expect(again.status == .ok)
            #expect(again.resource("file")["fileId"] as? String == first.resource("file")["fileId"] as? String)
            #expect(self.filesOnDisk().count == 1)
            // Retried after the file was deleted: told so, not answered with `"file": null`.
            let fileID = try #require(first.resource("file")["fileId"] as? String)
            #expect(try await api.call(.delete, "/v1/files/\(fileID)?wait=true", token: dispatcher).status == .ok)
            let late = try await api.call(.put, "/v1/files/incidents/i-1?name=a.png", token: dispatcher, bytes: Self.png, headers: key)
            #expect(late.status == .gone, "\(late.object)")
            #expect(late.errorCode == "resource_gone")
            #expect(self.filesOnDisk().isEmpty)
        }
    }
}
