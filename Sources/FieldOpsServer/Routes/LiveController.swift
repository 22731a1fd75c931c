import DocumentStore
import Foundation
import Hummingbird
import LiveTree
import Streams

/// The live key tree over HTTP, in the Realtime Database REST form:
///
/// ```
/// GET    /v1/live/presence            the subtree as JSON (null when empty)
/// PUT    /v1/live/presence/w-7        {"online": true, "since": {".sv": "timestamp"}}
/// PATCH  /v1/live/crews               {"c1/status": "busy", "c2/status": "idle"}
/// POST   /v1/live/log                 {"text": "gate opened"}   → {"name": "<push id>"}
/// DELETE /v1/live/presence/w-7
/// ```
///
/// A trailing `.json` is accepted, so Firebase clients' URLs work. `GET` with
/// `Accept: text/event-stream` streams changes (`LiveEventStream`).
struct LiveController {
    let tree: LiveTree
    let access: LiveAccess
    let events: LiveEventStream

    func addRoutes(to group: RouterGroup<FieldOpsRequestContext>) {
        for route in ["live", "live/**"] {
            group.get(RouterPath(route), use: get)
            group.put(RouterPath(route), use: put)
            group.patch(RouterPath(route), use: patch)
            group.post(RouterPath(route), use: push)
            group.delete(RouterPath(route), use: delete)
        }
    }

    @Sendable func get(_ request: Request, context: FieldOpsRequestContext) async throws -> Response {
        let caller = try context.requireIdentity()
        let path = try Self.path(of: request)
        try await access.requireRead(caller, path)
        if request.headers[.accept]?.contains("text/event-stream") == true {
            return try await events.response(for: caller, path: path, context: context)
        }
        return Response.json(try await liveCall { try await tree.get(tenant: caller.tenant, path: path) })
    }

    @Sendable func put(_ request: Request, context: FieldOpsRequestContext) async throws -> Response {
        let caller = try context.requireIdentity()
        let path = try Self.path(of: request)
        try await access.requireWrite(caller, path)
        let value = try await Self.body(of: request)
        return Response.json(try await liveCall { try await tree.set(tenant: caller.tenant, path: path, value: value) })
    }

    @Sendable func patch(_ request: Request, context: FieldOpsRequestContext) async throws -> Response {
        let caller = try context.requireIdentity()
        let path = try Self.path(of: request)
        guard case .object(let values) = try await Self.body(of: request) else {
            throw APIError(.badRequest, code: "invalid_body", message: "a PATCH body is an object of relative paths to values")
        }
        for key in values.keys {
            try await access.requireWrite(caller, try liveCall { try path.appending(try LivePath(key)) })
        }
        return Response.json(try await liveCall { try await tree.update(tenant: caller.tenant, path: path, values: values) })
    }

    @Sendable func push(_ request: Request, context: FieldOpsRequestContext) async throws -> Response {
        let caller = try context.requireIdentity()
        let path = try Self.path(of: request)
        try await access.requireWrite(caller, path)
        let value = try await Self.body(of: request)
        let (key, _) = try await liveCall { try await tree.push(tenant: caller.tenant, path: path, value: value) }
        return Response.json(["name": .string(key)])
    }

    @Sendable func delete(_ request: Request, context: FieldOpsRequestContext) async throws -> Response {
        let caller = try context.requireIdentity()
        let path = try Self.path(of: request)
        try await access.requireWrite(caller, path)
        try await liveCall { try await tree.delete(tenant: caller.tenant, path: path) }
        return Response.json(.null)
    }

    /// The live path after `/v1/live`, percent-decoded, without a trailing `.json`.
    static func path(of request: Request) throws -> LivePath {
        var text = request.uri.path
        if let range = text.range(of: "/v1/live") { text = String(text[range.upperBound...]) }
        if text.hasSuffix(".json") { text.removeLast(5) }
        let segments = text.split(separator: "/", omittingEmptySubsequences: true).map { String($0).removingPercentEncoding ?? String($0) }
        return try liveCall { try LivePath(segments: segments) }
    }

    static func body(of request: Request) async throws -> JSONValue {
        let buffer = try await request.collectJSON(limit: LiveTree.maxValueBytes + 1_024)
        do {
            return try JSONValue(jsonText: String(buffer: buffer))
        } catch {
            throw APIError(.badRequest, code: "invalid_body", message: "the body is \(error.message)")
        }
    }
}

/// Runs a live-tree call, mapping its errors to the API's (`invalid_path` 400, `value_too_large`
/// 413, an unreachable Redis 503).
func liveCall<T>(_ body: () async throws -> T) async throws -> T {
    do {
        return try await body()
    } catch let error as StreamError where [.invalidPath, .invalidValue].contains(error.code) {
        throw APIError(.badRequest, code: error.code.rawValue, message: error.message)
    } catch let error as StreamError where error.code == .valueTooLarge {
        throw APIError(.contentTooLarge, code: error.code.rawValue, message: error.message)
    } catch {
        throw DomainWrites.apiError(error)
    }
}

func liveCall<T>(_ body: () throws -> T) throws -> T {
    do {
        return try body()
    } catch let error as StreamError where [.invalidPath, .invalidValue].contains(error.code) {
        throw APIError(.badRequest, code: error.code.rawValue, message: error.message)
    }
}

/// Who may read and write which live paths.
///
/// The roots the domain services keep (`workers`, `tasks`, `resources`, `rooms`) are read-only
/// here: they change through the domain routes, with their events. Dispatchers, services and
/// admins read everything of their tenant and write everything else. A worker reads
/// `/presence`, the inventory, its own worker and user subtrees, its tasks and its rooms, and
/// writes only `/presence/{self}` and `/users/{self}`.
struct LiveAccess: Sendable {
    let tree: LiveTree

    static let domainRoots: Set<String> = ["workers", "tasks", "resources", "rooms", "files"]

    func requireRead(_ caller: Identity, _ path: LivePath) async throws {
        guard try await mayRead(caller, path) else {
            throw APIError.forbidden("a \(caller.role.rawValue) token may not read \(path)")
        }
    }

    func mayRead(_ caller: Identity, _ path: LivePath) async throws -> Bool {
        if caller.seesWholeTenant { return true }
        let segments = path.segments
        guard let root = segments.first else { return false }
        switch root {
        case "presence", "resources":
            return true
        case "users", "workers":
            return segments.count >= 2 && segments[1] == caller.subject
        case "tasks":
            guard segments.count >= 2 else { return false }
            let assignee = try await liveCall { try await tree.get(tenant: caller.tenant, path: try LivePath(segments: ["tasks", segments[1], "assignee"])) }
            return assignee.stringValue == caller.subject
        case "rooms":
            guard segments.count >= 2 else { return false }
            let member = try await liveCall { try await tree.get(tenant: caller.tenant, path: try LivePath(segments: ["rooms", segments[1], "members", caller.subject])) }
            return member != .null
        default:
            return false
        }
    }

    func requireWrite(_ caller: Identity, _ path: LivePath) async throws {
        guard let root = path.segments.first else {
            throw APIError(.forbidden, code: "read_only_path", message: "the root of the live tree cannot be written as a whole; write below it")
        }
        if Self.domainRoots.contains(root) {
            throw APIError(.forbidden, code: "read_only_path", message: "/\(root) is kept by the domain services; change it through /v1/\(root)")
        }
        if caller.seesWholeTenant { return }
        guard ["presence", "users"].contains(root), path.segments.count >= 2, path.segments[1] == caller.subject else {
            throw APIError.forbidden("a worker token may write only /presence/\(caller.subject) and /users/\(caller.subject)")
        }
    }
}
