import DocumentStore
import FieldOpsServer
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import NIOCore
import Projections
import Redis
import Testing

/// A private redis-server, an in-memory store and a running projector: the whole write and
/// read path of the API, in process.
final class APIFixture: Sendable {
    let server: RedisServerProcess
    let dependencies: ServerDependencies
    let projecting: Task<Void, any Error>

    init(rateLimit: RateLimit = .unlimited) async throws {
        server = try RedisServerProcess()
        let store = try DocumentStore(path: ":memory:")
        let projector = try Projector(
            redisURL: server.url, store: store,
            configuration: .init(consumer: "test-node", block: .milliseconds(100), discoveryInterval: .milliseconds(500))
        )
        let authority = try await TokenAuthority(secret: ServerFixture.secret)
        dependencies = try ServerDependencies(
            redisURL: server.url, store: store, projector: projector, authority: authority,
            configuration: ServerConfiguration(writeWaitTimeout: .seconds(5), rateLimit: rateLimit)
        )
        projecting = Task { try await projector.run() }
    }

    deinit {
        dependencies.projector.stop()
        projecting.cancel()
        server.destroy()
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
}

/// A reply: status, headers and the JSON body.
struct APIReply: @unchecked Sendable {
    let status: HTTPResponse.Status
    let headers: HTTPFields
    let json: Any?

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
        headers: HTTPFields = [:]
    ) async throws -> APIReply {
        var fields = headers
        if let token { fields[.authorization] = "Bearer \(token)" }
        var body: ByteBuffer?
        if let json {
            body = ByteBuffer(bytes: try JSONSerialization.data(withJSONObject: json))
            if fields[.contentType] == nil { fields[.contentType] = "application/json" }
        } else if let raw {
            body = ByteBuffer(string: raw)
        }
        return try await client.execute(uri: uri, method: method, headers: fields, body: body) { response in
            let data = Data(buffer: response.body)
            let parsed = data.isEmpty ? nil : try? JSONSerialization.jsonObject(with: data)
            return APIReply(status: response.status, headers: response.headers, json: parsed)
        }
    }
}
