import DocumentStore
import FieldOpsServer
import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
import Logging
import Projections
import Redis
import ServiceLifecycle
import Testing

/// `fieldops serve` as it runs: embedded Redis, projector, notifier and the HTTP server in one
/// service group, shut down the way SIGTERM shuts it down.
@Suite("Graceful shutdown")
struct ShutdownTests {
    static func send(_ method: String, _ url: String, token: String? = nil, json: String? = nil) async throws -> (Int, String) {
        var request = URLRequest(url: URL(string: url)!)
        request.httpMethod = method
        if let token { request.setValue("Bearer \(token)", forHTTPHeaderField: "Authorization") }
        if let json {
            request.setValue("application/json", forHTTPHeaderField: "Content-Type")
            request.httpBody = Data(json.utf8)
        }
        let (data, response) = try await URLSession.shared.data(for: request)
        return ((response as? HTTPURLResponse)?.statusCode ?? 0, String(decoding: data, as: UTF8.self))
    }

    @Test func inFlightRequestsFinishThenEverythingStopsAndTheDataIsKept() async throws {
        let directory = URL(fileURLWithPath: "/tmp").appendingPathComponent("fo-shutdown-\(UUID().uuidString.prefix(8))")
        defer { try? FileManager.default.removeItem(at: directory) }
        let logger = Logger(label: "test.shutdown")
        // Port 0: the kernel picks a free one, which the server reports once it listens.
        let configuration = ServerConfiguration(port: 0, storage: directory, nodeName: "node-1")
        let supervisor = try RedisSupervisor(directory: configuration.redisDirectory, logger: logger)
        let store = try DocumentStore(path: configuration.databasePath)
        let projector = try Projector(redisURL: supervisor.url, store: store, configuration: .init(consumer: "node-1", block: .milliseconds(200)))
        let authority = try await TokenAuthority(secret: ServerFixture.secret)
        let dependencies = try ServerDependencies(redisURL: supervisor.url, store: store, projector: projector, authority: authority, configuration: configuration)
        let listening = AsyncStream.makeStream(of: Int.self)
        let app = buildApplication(
            dependencies, services: [supervisor, ProjectorService(projector: projector), NotifierService(dependencies: dependencies, logger: logger)], logger: logger,
            onListening: { listening.continuation.yield($0) }
        )
        let group = ServiceGroup(configuration: .init(services: [app], gracefulShutdownSignals: [], logger: logger))
        // If the group ends early, the wait for the port below ends too instead of hanging.
        let running = Task {
            defer { listening.continuation.finish() }
            try await group.run()
        }

        var ports = listening.stream.makeAsyncIterator()
        let port = try #require(await ports.next())
        let base = "http://127.0.0.1:\(port)"
        #expect(try await Self.send("GET", base + "/healthz").0 == 200)
        let token = try await authority.mint(tenant: "acme", subject: "s", role: .service)
        #expect(try await Self.send("POST", base + "/v1/workers?wait=true", token: token, json: #"{"workerId":"w-1","name":"Ana"}"#).0 == 201)
        #expect(try await Self.send("POST", base + "/v1/streams/workers/groups", token: token, json: #"{"group":"audit","start":"$"}"#).0 == 201)

        // An event stream never ends by itself: the shutdown ends it rather than wait for it.
        let stream = EventStreamClient(port: port, path: "/v1/live/presence", token: token)
        #expect(try await stream.waitFor { $0.name == "put" } != nil)
        // So does a realtime socket, which is told the server is going away.
        let socket = RealtimeTestClient(port: port, token: token)
        #expect(try await socket.request(["type": "subscribe", "channel": "tasks"])?["type"] == "subscribed")
        // A request that blocks for 1.5 s is in flight when the shutdown begins: it is answered.
        let inFlight = Task { try await Self.send("POST", base + "/v1/streams/workers/groups/audit/read", token: token, json: #"{"consumer":"a-1","blockMs":1500}"#) }
        try await Task.sleep(for: .milliseconds(300))
        let started = ContinuousClock.now
        await group.triggerGracefulShutdown()
        let (status, body) = try await inFlight.value
        #expect(status == 200, "\(body)")
        try await running.value
        #expect(ContinuousClock.now - started < .seconds(10))
        #expect(try await eventually { stream.ended })
        #expect(try await eventually { socket.ended })
        // A close handshake, not a dropped connection (the WebSocket library closes with 1000).
        #expect(socket.closeCode == .normalClosure || socket.closeCode == .goingAway)
        // Nothing accepts connections any more, the embedded Redis is stopped…
        #expect((try? await Self.send("GET", base + "/healthz")) == nil)
        #expect(!supervisor.server.isRunning)
        // …and what was acknowledged is on disk: the document, and the event in Redis's AOF.
        let reopened = try DocumentStore(path: configuration.databasePath)
        #expect(try await reopened.get(tenant: "acme", collection: "workers", id: "w-1")?.data["name"] == "Ana")
        try supervisor.server.start()
        defer { supervisor.server.destroy() }
        let connection = try RedisConnection(url: supervisor.url)
        // Redis may still be loading its AOF (LOADING) just after the start.
        #expect(try await eventually { (try? connection.command("XLEN", "tenant:{acme}:stream:workers").int) == 1 })
    }
}
