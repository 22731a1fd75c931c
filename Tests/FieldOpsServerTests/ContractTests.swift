import FieldOpsServer
import Foundation
import HTTPTypes
import HummingbirdTesting
import Redis
import Synchronization
import Testing

/// Drives every documented route against real Redis and SQLite, then has
/// `scripts/check-contract.py` validate each response against `schemas/openapi.yaml` and each
/// stream entry written against `schemas/events/*.schema.json` (JSON Schema 2020-12, with the
/// `jsonschema` Python package that `scripts/setup.sh` installs).
@Suite("Responses and stream entries match the published contract")
final class ContractTests: Sendable {
    let fixture: APIFixture
    let samples = Mutex<[String]>([])

    init() async throws {
        fixture = try await APIFixture()
    }

    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    /// Calls `template` with its `{name}` parts filled from `values`, and records the reply.
    @discardableResult
    func hit(
        _ api: APIClient, _ method: HTTPRequest.Method, _ template: String, _ values: [String: String] = [:], query: String = "",
        token: String?, json: Any? = nil, raw: String? = nil, bytes: Data? = nil, headers: HTTPFields = [:], expect: HTTPResponse.Status? = nil,
        sourceLocation: SourceLocation = #_sourceLocation
    ) async throws -> APIReply {
        var path = template
        for (name, value) in values { path = path.replacingOccurrences(of: "{\(name)}", with: value) }
        let reply = try await api.call(method, path + query, token: token, json: json, raw: raw, bytes: bytes, headers: headers)
        if let expect { #expect(reply.status == expect, "\(method) \(path): \(reply.object)", sourceLocation: sourceLocation) }
        let sample: [String: Any] = ["method": method.rawValue, "path": template, "status": reply.status.code, "body": reply.json ?? NSNull(), "empty": reply.json == nil]
        let line = String(decoding: try JSONSerialization.data(withJSONObject: sample, options: [.fragmentsAllowed]), as: UTF8.self)
        samples.withLock { $0.append(line) }
        return reply
    }

    @Test func everyRouteAndEveryEventMatchesTheSchemas() async throws {
        let d = try await fixture.token(.dispatcher, sub: "d-1")
        let w = try await fixture.token(.worker, sub: "w-1")
        let s = try await fixture.token(.service, sub: "billing")
        try await fixture.test { api in
            // Operations
            try await self.hit(api, .get, "/healthz", token: nil, expect: .ok)
            try await self.hit(api, .get, "/readyz", token: nil, expect: .ok)
            try await api.client.execute(uri: "/metrics", method: .get) { #expect($0.status == .ok) }
            self.samples.withLock { $0.append(#"{"method":"GET","path":"/metrics","status":200,"body":null,"empty":true}"#) }
            try await self.hit(api, .get, "/v1/me", token: d, expect: .ok)

            // Workers and devices
            for id in ["w-1", "w-2"] {
                try await self.hit(api, .post, "/v1/workers", token: d, json: ["workerId": id, "name": "Worker \(id)", "team": "north", "skills": ["valves"]], expect: .created)
            }
            let worker = ["workerId": "w-1"]
            try await self.hit(api, .patch, "/v1/workers/{workerId}", worker, query: "?wait=true", token: d, json: ["phone": "+49 30 1234"], expect: .ok)
            try await self.hit(api, .get, "/v1/workers", query: "?team=north", token: d, expect: .ok)
            try await self.hit(api, .get, "/v1/workers/{workerId}", worker, token: w, expect: .ok)
            try await self.hit(api, .post, "/v1/workers/{workerId}/deactivate", ["workerId": "w-2"], token: d, expect: .ok)
            try await self.hit(api, .post, "/v1/workers/{workerId}/reactivate", ["workerId": "w-2"], token: d, expect: .ok)
            try await self.hit(api, .delete, "/v1/workers/{workerId}", ["workerId": "w-2"], token: d, expect: .ok)
            try await self.hit(api, .post, "/v1/workers/{workerId}/devices", worker, token: d, json: ["deviceId": "860001", "protocol": "osmand"], expect: .created)
            try await self.hit(api, .post, "/v1/workers/{workerId}/devices", worker, token: d, json: ["deviceId": "spare", "protocol": "osmand"], expect: .created)
            try await self.hit(api, .post, "/v1/workers/{workerId}/devices", worker, token: d, json: [
                "deviceId": "w1-phone", "protocol": "owntracks", "user": "w1", "device": "phone", "secret": "s3cret-phone",
            ], expect: .created)
            try await self.hit(api, .delete, "/v1/devices/{deviceId}", ["deviceId": "spare"], token: d, expect: .ok)
            try await self.hit(api, .get, "/v1/workers/{workerId}/devices", worker, token: d, expect: .ok)

            // Locations and ingestion
            let now = Int(Date().timeIntervalSince1970)
            try await self.hit(api, .post, "/v1/workers/{workerId}/locations", worker, token: w, json: ["lat": 52.5, "lon": 13.4, "recordedAt": now - 30], expect: .created)
            try await self.hit(api, .post, "/v1/workers/{workerId}/locations", worker, query: "?wait=true", token: w, json: ["locations": [
                ["lat": 52.51, "lon": 13.41, "accuracy": 4, "speed": 1.2, "heading": 80, "altitude": 30, "battery": 70, "recordedAt": now - 20],
            ]], expect: .created)
            try await self.hit(api, .get, "/v1/workers/{workerId}/location", worker, token: d, expect: .ok)
            try await self.hit(api, .get, "/v1/workers/{workerId}/track", worker, token: d, expect: .ok)
            try await self.hit(api, .get, "/v1/locations", query: "?bbox=13,52,14,53", token: d, expect: .ok)
            try await self.hit(api, .get, "/v1/ingest/osmand", query: "?id=860001&lat=52.52&lon=13.42&timestamp=\(now - 10)&speed=3&batt=66", token: nil, expect: .ok)
            try await self.hit(api, .post, "/v1/ingest/osmand", query: "?id=860001&lat=52.53&lon=13.43", token: nil, expect: .ok)
            try await self.hit(api, .post, "/v1/ingest/owntracks", token: nil, json: ["_type": "location", "lat": 52.54, "lon": 13.44, "tst": now, "vel": 10, "topic": "owntracks/w1/phone"], headers: [
                .authorization: "Basic " + Data("w1:s3cret-phone".utf8).base64EncodedString(),
            ], expect: .ok)

            // Tasks
            let task = ["taskId": "T-1"]
            try await self.hit(api, .post, "/v1/tasks", token: d, json: ["taskId": "T-1", "title": "Replace valve", "priority": "high", "location": ["lat": 52.5, "lon": 13.4], "dueAt": "2026-12-01T12:00:00Z"], expect: .created)
            try await self.hit(api, .post, "/v1/tasks/{taskId}/assign", task, token: d, json: ["assigneeId": "w-1", "note": "closest"], expect: .ok)
            try await self.hit(api, .post, "/v1/tasks/{taskId}/accept", task, token: w, expect: .ok)
            try await self.hit(api, .post, "/v1/tasks/{taskId}/start", task, token: w, expect: .ok)
            try await self.hit(api, .post, "/v1/tasks/{taskId}/complete", task, query: "?wait=true", token: w, json: ["note": "done"], expect: .ok)
            try await self.hit(api, .post, "/v1/tasks", token: d, json: ["taskId": "T-2", "title": "Duplicate"], expect: .created)
            try await self.hit(api, .post, "/v1/tasks/{taskId}/cancel", ["taskId": "T-2"], query: "?wait=true", token: d, json: ["note": "duplicate"], expect: .ok)
            try await self.hit(api, .post, "/v1/tasks/{taskId}/cancel", ["taskId": "T-2"], token: d, expect: .conflict)
            try await self.hit(api, .get, "/v1/tasks", query: "?status=completed,cancelled", token: d, expect: .ok)
            try await self.hit(api, .get, "/v1/tasks/{taskId}", task, token: w, expect: .ok)

            // Resources
            let resource = ["resourceId": "R-1"]
            try await self.hit(api, .post, "/v1/resources", token: d, json: ["resourceId": "R-1", "name": "Sandbags", "category": "flood", "unit": "bag", "quantity": 40, "site": "Depot"], expect: .created)
            try await self.hit(api, .post, "/v1/resources/{resourceId}/adjust", resource, token: w, json: ["delta": -5, "reason": "used on T-1"], expect: .ok)
            try await self.hit(api, .post, "/v1/resources/{resourceId}/adjust", resource, token: w, json: ["delta": -500], expect: .conflict)
            try await self.hit(api, .post, "/v1/resources/{resourceId}/reserve", resource, token: d, json: ["taskId": "T-1", "quantity": 10], expect: .ok)
            try await self.hit(api, .post, "/v1/resources/{resourceId}/release", resource, query: "?wait=true", token: d, json: ["taskId": "T-1"], expect: .ok)
            try await self.hit(api, .get, "/v1/resources", query: "?category=flood", token: w, expect: .ok)
            try await self.hit(api, .get, "/v1/resources/{resourceId}", resource, token: w, expect: .ok)

            // Chat
            let room = ["roomId": "ops"]
            try await self.hit(api, .post, "/v1/rooms", token: d, json: ["roomId": "ops", "name": "Operations", "members": ["w-1"]], expect: .created)
            try await self.hit(api, .post, "/v1/rooms/{roomId}/members", room, token: d, json: ["userId": "w-2"], expect: .created)
            try await self.hit(api, .delete, "/v1/rooms/{roomId}/members/{userId}", ["roomId": "ops", "userId": "w-2"], token: d, expect: .ok)
            // Files: raw and form uploads, resumable, download, metadata, listing, delete.
            let png = Data([0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A, 0, 0, 0, 13])
            let photo = try await self.hit(api, .put, "/v1/files/{area}/{ownerId}", ["area": "rooms", "ownerId": "ops"], query: "?name=site.png", token: w, bytes: png, expect: .created)
            let photoID = photo.resource("file")["fileId"] as? String ?? ""
            let boundary = "contract-boundary"
            let form = Data("--\(boundary)\r\nContent-Disposition: form-data; name=\"file\"; filename=\"plan.pdf\"\r\n\r\n%PDF-1.4\n\r\n--\(boundary)--\r\n".utf8)
            let plan = try await self.hit(
                api, .post, "/v1/files/{area}/{ownerId}", ["area": "incidents", "ownerId": "storm-1"], query: "?wait=true", token: d, bytes: form,
                headers: [.contentType: "multipart/form-data; boundary=\(boundary)"], expect: .created
            )
            let file = ["fileId": photoID]
            try await self.hit(api, .get, "/v1/files/{fileId}", file, token: w, expect: .ok)
            try await self.hit(api, .get, "/v1/files/{fileId}", file, token: w, headers: [.range: "bytes=0-3"], expect: .partialContent)
            try await self.hit(api, .get, "/v1/files/{fileId}", file, token: w, headers: [.range: "bytes=99-"], expect: .rangeNotSatisfiable)
            try await self.hit(api, .get, "/v1/files/{fileId}/meta", file, token: w, expect: .ok)
            try await self.hit(api, .get, "/v1/files", query: "?area=rooms&ownerId=ops", token: w, expect: .ok)
            try await self.hit(api, .put, "/v1/files/{area}/{ownerId}", ["area": "incidents", "ownerId": "storm-1"], token: w, raw: "x", expect: .forbidden)
            let upload = try await self.hit(api, .post, "/v1/uploads", token: d, json: ["area": "incidents", "ownerId": "storm-1", "name": "notes.txt", "size": 11], expect: .created)
            let uploadID = ["uploadId": upload.resource("upload")["uploadId"] as? String ?? ""]
            let offset = HTTPField.Name("Upload-Offset")!
            try await self.hit(api, .patch, "/v1/uploads/{uploadId}", uploadID, token: d, raw: "storm ", headers: [offset: "0"], expect: .ok)
            try await self.hit(api, .patch, "/v1/uploads/{uploadId}", uploadID, token: d, raw: "front", headers: [offset: "0"], expect: .conflict)
            try await self.hit(api, .get, "/v1/uploads/{uploadId}", uploadID, token: d, expect: .ok)
            try await self.hit(api, .patch, "/v1/uploads/{uploadId}", uploadID, token: d, raw: "front", headers: [offset: "6"], expect: .ok)
            try await self.hit(api, .post, "/v1/uploads/{uploadId}/complete", uploadID, token: d, expect: .created)
            let dropped = try await self.hit(api, .post, "/v1/uploads", token: d, json: ["area": "incidents", "ownerId": "storm-1", "size": 5], expect: .created)
            try await self.hit(api, .delete, "/v1/uploads/{uploadId}", ["uploadId": dropped.resource("upload")["uploadId"] as? String ?? ""], token: d, expect: .ok)
            try await self.hit(api, .delete, "/v1/files/{fileId}", ["fileId": plan.resource("file")["fileId"] as? String ?? ""], token: d, expect: .ok)

            let posted = try await self.hit(api, .post, "/v1/rooms/{roomId}/messages", room, token: w, json: ["text": "On site", "attachments": [photoID]], expect: .created)
            let message = ["roomId": "ops", "messageId": posted.resource("message")["messageId"] as? String ?? ""]
            try await self.hit(api, .patch, "/v1/rooms/{roomId}/messages/{messageId}", message, query: "?wait=true", token: w, json: ["text": "On site now"], expect: .ok)
            try await self.hit(api, .get, "/v1/rooms/{roomId}/messages", room, token: w, expect: .ok)
            try await self.hit(api, .post, "/v1/rooms/{roomId}/messages", room, query: "?delivery=realtime", token: w, json: ["text": "typing…"], expect: .accepted)
            try await self.hit(api, .post, "/v1/workers/{workerId}/locations", worker, query: "?delivery=realtime", token: w, json: ["lat": 52.5, "lon": 13.4], expect: .accepted)
            try await self.hit(api, .delete, "/v1/rooms/{roomId}/messages/{messageId}", message, token: d, expect: .ok)
            try await self.hit(api, .get, "/v1/rooms", token: w, expect: .ok)
            try await self.hit(api, .get, "/v1/rooms/{roomId}", room, token: w, expect: .ok)

            // Notifications
            let personal = try await self.hit(api, .post, "/v1/notifications", token: d, json: ["userId": "w-1", "title": "Call in", "body": "Please call the office"], expect: .created)
            try await self.hit(api, .post, "/v1/notifications", token: d, json: ["role": "worker", "title": "Storm at 14:00"], expect: .created)
            try await self.hit(api, .post, "/v1/notifications", query: "?wait=true", token: d, json: ["roomId": "ops", "title": "Bridge closed", "subject": "road:B2"], expect: .created)
            try await self.hit(api, .get, "/v1/notifications", token: w, expect: .ok)
            try await self.hit(api, .post, "/v1/notifications/{notificationId}/read", ["notificationId": personal.resource("notification")["notificationId"] as? String ?? ""], token: w, expect: .ok)

            // Documents and streams
            let collection = ["collection": "tasks"]
            try await self.hit(api, .get, "/v1/collections/{collection}/documents", collection, query: "?where=priority%20%3E%3D%203&count=true", token: d, expect: .ok)
            try await self.hit(api, .get, "/v1/collections/{collection}/documents/{id}", ["collection": "tasks", "id": "T-1"], token: d, expect: .ok)
            let stream = ["stream": "taskAssignments"]
            try await self.hit(api, .get, "/v1/streams", token: s, expect: .ok)
            try await self.hit(api, .get, "/v1/streams/{stream}/entries", stream, query: "?count=2", token: s, expect: .ok)
            try await self.hit(api, .post, "/v1/streams/{stream}/groups", stream, token: s, json: ["group": "billing", "start": "0"], expect: .created)
            let group = ["stream": "taskAssignments", "group": "billing"]
            let read = try await self.hit(api, .post, "/v1/streams/{stream}/groups/{group}/read", group, token: s, json: ["consumer": "b-1", "count": 5], expect: .ok)
            let ids = read.list("entries").compactMap { $0["id"] as? String }
            try await self.hit(api, .post, "/v1/streams/{stream}/groups/{group}/ack", group, token: s, json: ["ids": ids], expect: .ok)

            // Webhooks (delivery itself is in WebhookTests).
            let hook = try await self.hit(api, .post, "/v1/webhooks", token: s, json: ["url": "http://127.0.0.1:9/hook", "eventTypes": ["task.assigned"]], expect: .created)
            try await self.hit(api, .get, "/v1/webhooks", token: s, expect: .ok)
            try await self.hit(api, .delete, "/v1/webhooks/{webhookId}", ["webhookId": hook.resource("webhook")["webhookId"] as? String ?? ""], token: s, expect: .noContent)

            // The live key tree
            let live = ["path": "presence/w-1"]
            try await self.hit(api, .put, "/v1/live/{path}", live, token: w, json: ["online": true, "since": [".sv": "timestamp"]], expect: .ok)
            try await self.hit(api, .patch, "/v1/live/{path}", ["path": "presence"], token: d, json: ["w-1/online": false], expect: .ok)
            try await self.hit(api, .post, "/v1/live/{path}", ["path": "log"], token: d, json: ["text": "gate opened"], expect: .ok)
            try await self.hit(api, .get, "/v1/live/{path}", ["path": "presence"], token: w, expect: .ok)
            try await self.hit(api, .delete, "/v1/live/{path}", live, token: w, expect: .ok)
            try await self.hit(api, .put, "/v1/live/{path}", ["path": "tasks/T-1/status"], token: d, json: "done", expect: .forbidden)
            try await self.hit(api, .put, "/v1/live/{path}", ["path": "a/$b"], token: d, json: 1, expect: .badRequest)

            // Errors have one shape.
            try await self.hit(api, .post, "/v1/tasks", token: d, json: ["title": 5], expect: .badRequest)
            try await self.hit(api, .post, "/v1/tasks", token: nil, json: ["title": "x"], expect: .unauthorized)
            try await self.hit(api, .post, "/v1/tasks", token: w, json: ["title": "x"], expect: .forbidden)
            try await self.hit(api, .get, "/v1/tasks/{taskId}", ["taskId": "nope"], token: d, expect: .notFound)
            try await self.hit(api, .post, "/v1/tasks", token: d, raw: "title=x", headers: [.contentType: "text/plain"], expect: .unsupportedMediaType)
            try await self.hit(api, .post, "/v1/tasks", token: d, json: ["title": String(repeating: "x", count: 1_100_000)], expect: .contentTooLarge)
            try await self.hit(api, .post, "/v1/tasks", token: d, json: ["title": "x", "assigneeId": "ghost"], expect: .unprocessableContent)
        }

        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("fieldops-contract-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let responses = directory.appendingPathComponent("responses.jsonl")
        let entries = directory.appendingPathComponent("entries.jsonl")
        try (samples.withLock { $0 }.joined(separator: "\n") + "\n").write(to: responses, atomically: true, encoding: .utf8)
        try (try streamEntries().joined(separator: "\n") + "\n").write(to: entries, atomically: true, encoding: .utf8)

        let (status, text) = try Self.runScript("check-contract.py", responses.path, entries.path)
        #expect(status == 0, "\(text)")
    }

    /// Runs `scripts/NAME` with python3; its exit status and everything it printed.
    static func runScript(_ name: String, _ arguments: String...) throws -> (Int32, String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["python3", root.appendingPathComponent("scripts/" + name).path] + arguments
        let output = Pipe()
        process.standardOutput = output
        process.standardError = output
        try process.run()
        let text = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        return (process.terminationStatus, text)
    }

    /// Every entry of the tenant's streams, as the checker reads them.
    func streamEntries() throws -> [String] {
        let connection = try RedisConnection(url: fixture.server.url)
        let keys = try connection.command("KEYS", "tenant:{acme}:stream:*").array?.compactMap(\.string) ?? []
        var lines: [String] = []
        for key in keys.sorted() where !key.hasSuffix(":deadLetters") {
            let stream = String(key.dropFirst("tenant:{acme}:stream:".count))
            for entry in try connection.command("XRANGE", key, "-", "+").array ?? [] {
                let flat = entry.array?[1].array?.compactMap(\.string) ?? []
                let fields = stride(from: 0, to: flat.count - 1, by: 2).map { [flat[$0], flat[$0 + 1]] }
                let line: [String: Any] = ["stream": stream, "fields": fields]
                lines.append(String(decoding: try JSONSerialization.data(withJSONObject: line), as: UTF8.self))
            }
        }
        return lines
    }
}
