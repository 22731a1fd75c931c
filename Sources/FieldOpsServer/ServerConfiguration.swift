import FileStore
import Foundation

/// How `fieldops serve` runs.
public struct ServerConfiguration: Sendable {
    /// Address to listen on.
    public var host: String
    public var port: Int
    /// Data directory: `redis/`, `fieldops.sqlite`, `files/`.
    public var storage: URL
    /// An existing Redis; `nil` starts and supervises one under `storage/redis/`.
    public var redisURL: String?
    /// Consumer name of this node's projector.
    public var nodeName: String
    /// `/readyz` reports not ready when the projection lags more than this.
    public var maxProjectionLag: Duration
    /// Longest a `?wait=true` write waits for its projection before answering 202.
    public var writeWaitTimeout: Duration
    /// Requests per second per tenant on this node (429 beyond).
    public var rateLimit: RateLimit
    /// How often an idle event stream or realtime socket hears from the server (keep-alives,
    /// access and token-expiry checks).
    public var keepAlive: Duration
    /// How often a realtime socket is pinged; one that misses a pong is dropped, and its
    /// `onDisconnect` writes run.
    public var heartbeat: Duration
    /// An HTTP connection idle this long between requests, or that has not sent its first
    /// request head within it, is closed; a response still being sent (an event stream) never
    /// counts as idle.
    public var idleTimeout: Duration
    /// Attachment limits: file size, disk reserve, resumable upload lifetime.
    public var files: FileStore.Configuration

    public init(
        host: String = "127.0.0.1",
        port: Int = 8080,
        storage: URL = URL(fileURLWithPath: FileManager.default.currentDirectoryPath).appendingPathComponent("storage"),
        redisURL: String? = nil,
        nodeName: String = ProcessInfo.processInfo.hostName,
        maxProjectionLag: Duration = .seconds(30),
        writeWaitTimeout: Duration = .seconds(5),
        rateLimit: RateLimit = RateLimit(requestsPerSecond: 5_000, burst: 10_000),
        keepAlive: Duration = .seconds(15),
        heartbeat: Duration = .seconds(5),
        idleTimeout: Duration = .seconds(75),
        files: FileStore.Configuration = .init()
    ) {
        self.host = host
        self.port = port
        self.storage = storage
        self.redisURL = redisURL
        self.nodeName = nodeName
        self.maxProjectionLag = maxProjectionLag
        self.writeWaitTimeout = writeWaitTimeout
        self.rateLimit = rateLimit
        self.keepAlive = keepAlive
        self.heartbeat = heartbeat
        self.idleTimeout = idleTimeout
        self.files = files
    }

    public var databasePath: String { storage.appendingPathComponent("fieldops.sqlite").path }
    public var redisDirectory: URL { storage.appendingPathComponent("redis") }
    public var filesDirectory: URL { storage.appendingPathComponent("files") }
}
