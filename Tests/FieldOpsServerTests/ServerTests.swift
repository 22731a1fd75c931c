import DocumentStore
import FieldOpsServer
import Foundation
import Hummingbird
import HummingbirdTesting
import Projections
import Redis
import Testing

@Suite("HTTP server: health, readiness, errors")
final class ServerTests: Sendable {
    let server: RedisServerProcess
    let dependencies: ServerDependencies

    init() throws {
        server = try RedisServerProcess()
        let store = try DocumentStore(path: ":memory:")
        let projector = try Projector(redisURL: server.url, store: store, configuration: .init(consumer: "test-node"))
        dependencies = try ServerDependencies(redisURL: server.url, store: store, projector: projector, configuration: ServerConfiguration())
    }

    deinit {
        server.destroy()
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
                #expect(error["message"]?.isEmpty == false)
            }
        }
    }
}
