import DocumentStore
import FieldOpsServer
import Foundation
import Hummingbird
import HummingbirdTesting
import Projections
import Redis
import Testing

/// A private redis-server and the dependencies the routes need.
final class ServerFixture: Sendable {
    static let secret: [UInt8] = Array("a-test-secret-that-is-long-enough-32+".utf8)
    let server: RedisServerProcess
    let dependencies: ServerDependencies

    init() async throws {
        server = try RedisServerProcess()
        let store = try DocumentStore(path: ":memory:")
        let projector = try Projector(redisURL: server.url, store: store, configuration: .init(consumer: "test-node"))
        let authority = try await TokenAuthority(secret: Self.secret)
        dependencies = try ServerDependencies(redisURL: server.url, store: store, projector: projector, authority: authority, configuration: ServerConfiguration())
    }

    deinit {
        server.destroy()
    }
}

@Suite("HTTP server: health, readiness, errors")
final class ServerTests: Sendable {
    let fixture: ServerFixture
    var server: RedisServerProcess { fixture.server }
    var dependencies: ServerDependencies { fixture.dependencies }

    init() async throws {
        fixture = try await ServerFixture()
    }

    static func json(_ buffer: ByteBuffer) throws -> [String: Any] {
        try #require(try JSONSerialization.jsonObject(with: Data(buffer: buffer)) as? [String: Any])
    }

    @Test func healthzAnswersWithoutTouchingAnything() async throws {
        let app = Application(router: buildRouter(dependencies))
        try await app.test(.router) { client in
            try await client.execute(uri: "/healthz", method: .get) { response in
                #expect(response.status == .ok)
                let body = try Self.json(response.body)
                #expect(body["status"] as? String == "ok")
            }
        }
    }

    @Test func readyzReportsRedisSQLiteAndProjectionLag() async throws {
        let app = Application(router: buildRouter(dependencies))
        try await app.test(.router) { client in
            try await client.execute(uri: "/readyz", method: .get) { response in
                #expect(response.status == .ok)
                let body = try Self.json(response.body)
                #expect(body["ready"] as? Bool == true)
                #expect(body["redis"] as? String == "ok")
                #expect(body["sqlite"] as? String == "ok")
            }
            // Redis gone: not ready, and the body says why.
            self.server.stop()
            try await client.execute(uri: "/readyz", method: .get) { response in
                #expect(response.status == .serviceUnavailable)
                let body = try Self.json(response.body)
                #expect(body["ready"] as? Bool == false)
                #expect((body["redis"] as? String)?.hasPrefix("unreachable") == true)
            }
            try self.server.start()
            try await client.execute(uri: "/readyz", method: .get) { response in
                #expect(response.status == .ok)
            }
        }
    }

    @Test func unknownRoutesAnswerWithAJSONError() async throws {
        let app = Application(router: buildRouter(dependencies))
        try await app.test(.router) { client in
            try await client.execute(uri: "/v1/nothing-here", method: .get) { response in
                #expect(response.status == .notFound)
                #expect(response.headers[.contentType]?.hasPrefix("application/json") == true)
                let error = try #require(try Self.json(response.body)["error"] as? [String: String])
                #expect(error["code"] == "not_found")
                #expect(error["message"]?.contains("GET /v1/nothing-here") == true)
            }
            // A routed path asked with another method: 405 with the methods it takes.
            for (method, uri, allow) in [
                (HTTPRequest.Method.trace, "/healthz", "GET, HEAD"),
                (.delete, "/v1/tasks", "GET, HEAD, POST"),
                (.put, "/v1/tasks/t-1/assign", "POST"),
                (.trace, "/v1/live/a/b/c", "DELETE, GET, HEAD, PATCH, POST, PUT"),
                // The meta route, not /v1/files/{area}/{ownerId}, is what the router picks.
                (.put, "/v1/files/f-1/meta", "GET, HEAD"),
            ] {
                try await client.execute(uri: uri, method: method) { response in
                    #expect(response.status == .methodNotAllowed, "\(method) \(uri)")
                    #expect(response.headers[.allow] == allow, "\(method) \(uri)")
                    let error = try #require(try Self.json(response.body)["error"] as? [String: Any])
                    #expect(error["code"] as? String == "method_not_allowed")
                }
            }
            // One segment too many is a wrong path, not a wrong method.
            try await client.execute(uri: "/v1/tasks/t-1/assign/now", method: .post) { response in
                #expect(response.status == .notFound)
            }
        }
    }
}

@Suite("Embedded redis-server supervision")
struct RedisSupervisorTests {
    @Test func aCrashedRedisIsRestartedWithItsData() async throws {
        let directory = URL(fileURLWithPath: "/tmp").appendingPathComponent("fo-sup-\(UUID().uuidString.prefix(8))")
        defer { try? FileManager.default.removeItem(at: directory) }
        let supervisor = try RedisSupervisor(directory: directory, logger: .init(label: "test"))
        let running = Task { try await supervisor.run() }
        let before = try RedisConnection(url: supervisor.url)
        try before.command("SET", "kept", "yes")
        // appendfsync everysec: wait for the write to reach the AOF before the crash.
        try await Task.sleep(for: .milliseconds(1_200))
        let pid = try #require(supervisor.server.processID)
        kill(pid, SIGKILL)
        var value: String?
        let deadline = ContinuousClock.now + .seconds(10)
        while value == nil, ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(100))
            value = try? RedisConnection(url: supervisor.url).send(["GET", "kept"]).string
        }
        #expect(value == "yes")
        #expect(supervisor.server.processID != pid)
        running.cancel()
        try await running.value
        #expect(!supervisor.server.isRunning)
    }
}
