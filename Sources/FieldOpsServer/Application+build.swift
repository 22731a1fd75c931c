import DocumentStore
import FileStore
import Foundation
import Hummingbird
import HummingbirdCore
import LiveTree
import Logging
import Projections
import Redis
import ServiceLifecycle
import Streams

/// What the routes need: the stores and the projector.
public struct ServerDependencies: Sendable {
    public let redisURL: String
    public let store: DocumentStore
    public let projector: Projector
    public let redis: RedisConnectionPool
    public let configuration: ServerConfiguration
    public let authority: TokenAuthority
    /// The write path of every domain route.
    public let writer: EventWriter
    public let metrics: ServerMetrics
    /// The live key tree (`/v1/live`).
    public let tree: LiveTree
    /// Attachment bytes under `storage/files`.
    public let files: FileStore
    /// The node's pub/sub subscription, shared by every event stream and realtime socket.
    let hub: RealtimeHub
    let rateLimiter: TenantRateLimiter

    public init(redisURL: String, store: DocumentStore, projector: Projector, authority: TokenAuthority, configuration: ServerConfiguration) throws {
        self.redisURL = redisURL
        self.store = store
        self.projector = projector
        self.authority = authority
        self.redis = try RedisConnectionPool(url: redisURL, configuration: .init(maxConnections: 8, connectDeadline: .seconds(2)))
        self.writer = try EventWriter(redisURL: redisURL, configuration: .init(pool: .init(maxConnections: 16, connectDeadline: .seconds(2))))
        self.configuration = configuration
        self.metrics = ServerMetrics()
        self.rateLimiter = TenantRateLimiter(limit: configuration.rateLimit)
        self.tree = try LiveTree(redisURL: redisURL)
        self.files = FileStore(root: configuration.filesDirectory, configuration: configuration.files)
        self.hub = try RealtimeHub(redisURL: redisURL, tickInterval: configuration.heartbeat)
    }

    /// Removes the `/presence` connections this node (by its name) left behind when it last
    /// stopped without closing them; call at start, before serving.
    /// - Returns: how many were removed.
    public func clearPresenceLeftBehind() async throws -> Int {
        try await PresenceSweeper.clearConnections(of: configuration.nodeName, tree: tree, writer: writer)
    }

    /// Closes the connections of the live tree and the hub.
    public func close() {
        hub.close()
        tree.close()
    }

    var writes: DomainWrites {
        DomainWrites(writer: writer, store: store, projector: projector, waitTimeout: configuration.writeWaitTimeout)
    }
}

/// The router of the JSON API.
public func buildRouter(_ dependencies: ServerDependencies) -> Router<FieldOpsRequestContext> {
    let router = Router(context: FieldOpsRequestContext.self)
    router.add(middleware: MetricsMiddleware(metrics: dependencies.metrics))
    router.add(middleware: JSONErrorMiddleware())
    let routes = RouteTable()
    router.add(middleware: UnroutedRequestMiddleware(routes: routes))
    router.get("healthz") { _, _ -> Health in
        Health(status: "ok")
    }
    router.get("readyz") { _, _ -> Response in
        let report = await Readiness.check(dependencies)
        return try jsonResponse(report, status: report.ready ? .ok : .serviceUnavailable)
    }
    let writes = dependencies.writes
    let devices = DeviceRegistry(writer: dependencies.writer)
    // Tracking apps send no token: their registered device is the credential.
    IngestController(locations: LocationController(writes: writes), devices: devices, rateLimiter: dependencies.rateLimiter).addRoutes(to: router.group("v1/ingest"))
    router.get("metrics") { _, _ -> Response in
        var buffer = ByteBuffer()
        buffer.writeBytes(await dependencies.metrics.render(dependencies.redis, hub: dependencies.hub))
        return Response(status: .ok, headers: [.contentType: "text/plain; version=0.0.4; charset=utf-8"], body: .init(byteBuffer: buffer))
    }
    let api = router.group("v1")
        .add(middleware: BearerAuthentication(authority: dependencies.authority))
        .add(middleware: RateLimitMiddleware(limiter: dependencies.rateLimiter))
        .add(middleware: WaitParameterMiddleware())
    // Who the token says the caller is: the tenant every other route is scoped to.
    api.get("me") { _, context -> Response in
        try jsonResponse(try context.requireIdentity())
    }
    WorkerController(writes: writes, devices: devices).addRoutes(to: api)
    LocationController(writes: writes).addRoutes(to: api)
    TaskController(writes: writes).addRoutes(to: api)
    ResourceController(writes: writes).addRoutes(to: api)
    ChatController(writes: writes).addRoutes(to: api)
    NotificationController(writes: writes).addRoutes(to: api)
    CollectionController(writes: writes).addRoutes(to: api)
    StreamController(writes: writes).addRoutes(to: api)
    WebhookController(registry: WebhookRegistry(writer: dependencies.writer)).addRoutes(to: api)
    RealtimeEndpoint.addRoutes(to: api)
    let access = LiveAccess(tree: dependencies.tree)
    let fileRecords = FileRecords(files: dependencies.files, writes: writes, access: access, logger: Logger(label: "fieldops.files"))
    FileController(records: fileRecords).addRoutes(to: api)
    UploadController(records: fileRecords).addRoutes(to: api)
    LiveController(
        tree: dependencies.tree, access: access,
        events: LiveEventStream(tree: dependencies.tree, access: access, hub: dependencies.hub, keepAlive: dependencies.configuration.keepAlive)
    ).addRoutes(to: api)
    routes.load(router.routes)
    return router
}

/// HTTP/1.1 with the upgrade to `/v1/realtime`, whose sockets live in the connection's
/// pipeline; the server pings them every heartbeat.
public func buildServer(_ dependencies: ServerDependencies) -> HTTPServerBuilder {
    let endpoint = RealtimeEndpoint(
        authority: dependencies.authority,
        services: .init(
            writer: dependencies.writer, tree: dependencies.tree, access: LiveAccess(tree: dependencies.tree), hub: dependencies.hub,
            nodeName: dependencies.configuration.nodeName, logger: Logger(label: "fieldops.realtime")
        ),
        heartbeat: dependencies.configuration.heartbeat,
        queueLimit: HubListener.defaultQueueLimit
    )
    let idleTimeout = dependencies.configuration.idleTimeout
    return HTTPServerBuilder { responder in RealtimeServerChannel(responder: responder, idleTimeout: idleTimeout, endpoint: endpoint) }
}

/// The whole server: routes plus the services it supervises.
/// - Parameter onListening: called with the bound port once the server listens (port 0 in the
///   configuration picks a free one).
public func buildApplication(
    _ dependencies: ServerDependencies,
    services: [any Service],
    logger: Logger,
    onListening: @escaping @Sendable (Int) async -> Void = { _ in }
) -> some ApplicationProtocol {
    let router = buildRouter(dependencies)
    return Application(
        router: router,
        server: buildServer(dependencies),
        configuration: .init(address: .hostname(dependencies.configuration.host, port: dependencies.configuration.port), serverName: "FieldOps"),
        services: services,
        onServerRunning: { channel in await onListening(channel.localAddress?.port ?? dependencies.configuration.port) },
        logger: logger
    )
}

struct Health: ResponseEncodable {
    let status: String
}

/// What `/readyz` reports.
struct Readiness: Codable, Sendable {
    var ready: Bool
    var redis: String
    var sqlite: String
    /// Seconds the slowest stream's projection is behind its head.
    var projectionLagSeconds: Double?

    static func check(_ dependencies: ServerDependencies) async -> Readiness {
        var report = Readiness(ready: true, redis: "ok", sqlite: "ok", projectionLagSeconds: nil)
        do {
            _ = try await dependencies.redis.withConnection { try $0.command("PING") }
        } catch {
            report.ready = false
            report.redis = "unreachable: \(error)"
        }
        do {
            _ = try await dependencies.store.read { try $0.pragma("user_version") }
        } catch {
            report.ready = false
            report.sqlite = "unreadable: \(error)"
        }
        if report.redis == "ok",
           let statuses = try? await ProjectionMaintenance.status(redisURL: dependencies.redisURL, store: dependencies.store, group: dependencies.projector.configuration.group) {
            let lag = statuses.map(\.lagSeconds).max() ?? 0
            report.projectionLagSeconds = lag
            if lag > Double(dependencies.configuration.maxProjectionLag.components.seconds) { report.ready = false }
        }
        return report
    }
}
