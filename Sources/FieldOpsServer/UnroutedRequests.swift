import Hummingbird
import Synchronization

/// The router's routes by path, to tell a wrong method from a wrong path: Hummingbird's router
/// answers both with a bare 404.
final class RouteTable: Sendable {
    private let routes = Mutex<[(path: [RouterPath.Element], methods: Set<HTTPRequest.Method>)]>([])

    /// Takes the router's routes; call once every route is added.
    func load(_ descriptions: [Router<FieldOpsRequestContext>.RouteDescription]) {
        var byPath: [String: (path: [RouterPath.Element], methods: Set<HTTPRequest.Method>)] = [:]
        for route in descriptions {
            byPath[route.path.description, default: (route.path.components, [])].methods.insert(route.method)
            // The router answers HEAD for every GET it has.
            if route.method == .get { byPath[route.path.description]?.methods.insert(.head) }
        }
        routes.withLock { $0 = Array(byPath.values) }
    }

    /// The methods routed for `path`, sorted; empty when no route has this path.
    ///
    /// Like the router, which picks the path first and the method after, only the most specific
    /// matching routes count: a literal segment before a capture before a wildcard, from the
    /// left (`/v1/files/f-1/meta` is the meta route's, not `/v1/files/{area}/{ownerId}`'s).
    func methods(for path: String) -> [String] {
        let segments = path.split(separator: "/")[...]
        let matching = routes.withLock { routes in
            routes.filter { Self.matches($0.path[...], segments) }.map { (rank: $0.path.map(Self.rank), methods: $0.methods) }
        }
        guard let best = matching.map(\.rank).min(by: { $0.lexicographicallyPrecedes($1) }) else { return [] }
        return Set(matching.filter { $0.rank == best }.flatMap(\.methods).map(\.rawValue)).sorted()
    }

    /// The router's order of preference for a segment (its trie's priorities), lowest first.
    private static func rank(_ element: RouterPath.Element) -> Int {
        let text = element.description
        switch text {
        case "**": return 5
        case "*": return 4
        case _ where text.hasPrefix("{") && text.hasSuffix("}") && text.dropFirst().dropLast().allSatisfy({ $0 != "{" && $0 != "}" }): return 3
        case _ where text.contains("*"): return 2
        case _ where text.contains("{"): return 1
        default: return 0
        }
    }

    private static func matches(_ pattern: ArraySlice<RouterPath.Element>, _ segments: ArraySlice<Substring>) -> Bool {
        guard let element = pattern.first else { return segments.isEmpty }
        // `**` (the only recursive wildcard the API uses) takes every remaining segment, at least one.
        if element.description == "**" { return !segments.isEmpty }
        guard let segment = segments.first, element ~= segment else { return false }
        return matches(pattern.dropFirst(), segments.dropFirst())
    }
}

/// Answers a request no route takes: 405 with `Allow` when its path is routed for other methods,
/// else a 404 naming what was asked for.
struct UnroutedRequestMiddleware: RouterMiddleware {
    typealias Context = FieldOpsRequestContext
    let routes: RouteTable

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        do {
            return try await next(request, context)
        } catch let error as HTTPError where error.status == .notFound && context.endpointPath == "NotFound" {
            // "NotFound" is the endpoint Hummingbird's router records when no route matched.
            let allowed = routes.methods(for: request.uri.path)
            guard !allowed.isEmpty else {
                throw APIError(.notFound, code: "not_found", message: "no route for \(request.method.rawValue) \(request.uri.path); the routes are in schemas/openapi.yaml")
            }
            throw APIError(
                .methodNotAllowed, code: "method_not_allowed",
                message: "\(request.uri.path) takes \(allowed.joined(separator: ", ")), not \(request.method.rawValue)",
                details: ["allowed": .array(allowed.map { .string($0) })],
                headers: [.allow: allowed.joined(separator: ", ")]
            )
        }
    }
}
