import AsyncHTTPClient
import DocumentStore
import FieldOpsServer
import FileStore
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import NIOCore
import Projections
import Redis
import Synchronization
import Testing

/// A private redis-server, an in-memory store and a running projector: the whole write and
/// read path of the API, in process.
final class APIFixture: Sendable {
    let server: RedisServerProcess
    /// A temporary data directory (attachments under `files/`), removed afterwards.
    let storage: URL
    let dependencies: ServerDependencies
    let projecting: Task<Void, any Error>

    init(
        rateLimit: RateLimit = .unlimited, keepAlive: Duration = .seconds(15), heartbeat: Duration = .seconds(5),
        idleTimeout: Duration = .seconds(75), files: FileStore.Configuration = .init(reserveBytes: 0)
    ) async throws {
        storage = FileManager.default.temporaryDirectory.appendingPathComponent("fieldops-api-\(UUID().uuidString)")
        server = try RedisServerProcess()
        let store = try DocumentStore(path: ":memory:")
        let projector = try Projector(
            redisURL: server.url, store: store,
            configuration: .init(consumer: "test-node", block: .milliseconds(100), discoveryInterval: .milliseconds(500))
        )
        let authority = try await TokenAuthority(secret: ServerFixture.secret)
        dependencies = try ServerDependencies(
            redisURL: server.url, store: store, projector: projector, authority: authority,
            configuration: ServerConfiguration(
                storage: storage, writeWaitTimeout: .seconds(5), rateLimit: rateLimit, keepAlive: keepAlive, heartbeat: heartbeat, idleTimeout: idleTimeout, files: files
            )
        )
        projecting = Task { try await projector.run() }
    }

    deinit {
        dependencies.projector.stop()
        projecting.cancel()
        dependencies.close()
        server.destroy()
        try? FileManager.default.removeItem(at: storage)
    }

    func token(_ role: Role, sub: String = "u1", tenant: String = "acme") async throws -> String {
        try await dependencies.authority.mint(tenant: tenant, subject: sub, role: role)
    }

    /// Runs `body` with a client of the router.
    func test(_ body: @escaping @Sendable (APIClient) async throws -> Void) async throws {
        let app = Application(router: buildRouter(dependencies))
        try await app.test(.router) { client in
            try await body(APIClient(client: client))
        }
    }

    /// Runs `body` against the server listening on a loopback port, for streams and sockets.
    func testLive(_ body: @escaping @Sendable (APIClient, Int) async throws -> Void) async throws {
        let app = Application(router: buildRouter(dependencies), server: buildServer(dependencies), configuration: .init(address: .hostname("127.0.0.1", port: 0)))
        try await app.test(.live) { client in
            try await body(APIClient(client: client), try #require(client.port))
        }
    }
}

/// Polls `condition` every 20 ms for up to `timeout`; whether it came to hold.
func eventually(timeout: Duration = .seconds(10), _ condition: @Sendable () async throws -> Bool) async throws -> Bool {
    let deadline = ContinuousClock.now + timeout
    while ContinuousClock.now < deadline {
        if try await condition() { return true }
        try await Task.sleep(for: .milliseconds(20))
    }
    return false
}

/// A Server-Sent Events client over a real connection: collects events as they arrive.
final class EventStreamClient: Sendable {
    struct Event: Sendable, Hashable {
        var name: String
        var data: String
        var json: JSONValue? { try? JSONValue(jsonText: data) }
    }

    private final class Inbox: Sendable {
        let state = Mutex<(events: [Event], comments: Int, status: Int?, ended: Bool)>(([], 0, nil, false))
    }

    private let inbox = Inbox()
    private let reading: Task<Void, any Error>

    /// Opens `GET path` with `Accept: text/event-stream` (and the token as a header, unless nil).
    init(port: Int, path: String, token: String?) {
        let inbox = self.inbox
        reading = Task {
            let state = inbox
            var request = HTTPClientRequest(url: "http://127.0.0.1:\(port)\(path)")
            request.headers.add(name: "Accept", value: "text/event-stream")
            if let token { request.headers.add(name: "Authorization", value: "Bearer \(token)") }
            let response = try await HTTPClient.shared.execute(request, timeout: .seconds(120))
            state.state.withLock { $0.status = Int(response.status.code) }
            defer { state.state.withLock { $0.ended = true } }
            var pending = ""
            for try await buffer in response.body {
                pending += String(buffer: buffer)
                while let end = pending.range(of: "\n\n") {
                    let block = String(pending[..<end.lowerBound])
                    pending = String(pending[end.upperBound...])
                    var event = Event(name: "message", data: "")
                    var comment = false
                    for line in block.split(separator: "\n", omittingEmptySubsequences: false) {
                        if line.hasPrefix(":") { comment = true }
                        else if line.hasPrefix("event: ") { event.name = String(line.dropFirst(7)) }
                        else if line.hasPrefix("data: ") { event.data += String(line.dropFirst(6)) }
                    }
                    state.state.withLock { state in
                        if comment { state.comments += 1 } else { state.events.append(event) }
                    }
                }
            }
        }
    }

    deinit {
        reading.cancel()
    }

    var events: [Event] { inbox.state.withLock { $0.events } }
    var comments: Int { inbox.state.withLock { $0.comments } }
    var status: Int? { inbox.state.withLock { $0.status } }
    var ended: Bool { inbox.state.withLock { $0.ended } }

    func close() {
        reading.cancel()
    }

    /// Waits until an event satisfies `match`; the events so far when it does, `nil` on timeout.
    func waitFor(timeout: Duration = .seconds(10), _ match: @escaping @Sendable (Event) -> Bool) async throws -> Event? {
        guard try await eventually(timeout: timeout, { self.events.contains(where: match) }) else { return nil }
        return events.first(where: match)
    }
}

/// A reply: status, headers and the JSON body.
struct APIReply: @unchecked Sendable {
    let status: HTTPResponse.Status
    let headers: HTTPFields
    let json: Any?
    /// The body as sent.
    var data = Data()

    var object: [String: Any] { json as? [String: Any] ?? [:] }
    var errorCode: String? { (object["error"] as? [String: Any])?["code"] as? String }
    var errorMessage: String { (object["error"] as? [String: Any])?["message"] as? String ?? "" }
    subscript(key: String) -> Any? { object[key] }
    func resource(_ name: String) -> [String: Any] { object[name] as? [String: Any] ?? [:] }
    func list(_ name: String) -> [[String: Any]] { object[name] as? [[String: Any]] ?? [] }
}

/// Sends JSON requests with a bearer token.
struct APIClient: Sendable {
    let client: any TestClientProtocol

    func call(
        _ method: HTTPRequest.Method, _ uri: String, token: String?, json: Any? = nil, raw: String? = nil,
        bytes: Data? = nil, headers: HTTPFields = [:]
    ) async throws -> APIReply {
        var fields = headers
        if let token { fields[.authorization] = "Bearer \(token)" }
        var body: ByteBuffer?
        if let json {
            body = ByteBuffer(bytes: try JSONSerialization.data(withJSONObject: json, options: .fragmentsAllowed))
            if fields[.contentType] == nil { fields[.contentType] = "application/json" }
        } else if let raw {
            body = ByteBuffer(string: raw)
        } else if let bytes {
            body = ByteBuffer(bytes: bytes)
        }
        return try await client.execute(uri: uri, method: method, headers: fields, body: body) { response in
            let data = Data(buffer: response.body)
            let parsed = data.isEmpty ? nil : try? JSONSerialization.jsonObject(with: data, options: .fragmentsAllowed)
            return APIReply(status: response.status, headers: response.headers, json: parsed, data: data)
        }
    }
}
