import FileStore
import Foundation
import Logging
import Projections
import Redis
import ServiceLifecycle

/// Keeps the embedded `redis-server` running: restarts it if it dies, stops it on shutdown.
public final class RedisSupervisor: Service, Sendable {
    public let server: RedisServerProcess
    private let logger: Logger

    /// Starts redis-server in `directory` (AOF on, unix socket) and waits until it answers.
    public init(directory: URL, logger: Logger) throws {
        self.server = try RedisServerProcess(directory: directory)
        self.logger = logger
        reportLeftover()
    }

    private func reportLeftover() {
        guard let pid = server.stoppedLeftover else { return }
        logger.warning("shut down a redis-server left running on this storage by an earlier fieldops that did not stop cleanly; its data was flushed and reloaded", metadata: ["pid": "\(pid)", "directory": "\(server.directory.path)"])
    }

    public var url: String { server.url }

    public func run() async throws {
        await withGracefulShutdownHandler {
            while !Task.isCancelled && !Task.isShuttingDownGracefully {
                try? await Task.sleep(for: .seconds(1))
                if server.hasExited() {
                    logger.error("embedded redis-server died; restarting it", metadata: ["directory": "\(server.directory.path)"])
                    do {
                        try server.start()
                        reportLeftover()
                        logger.notice("embedded redis-server is back")
                    } catch {
                        logger.error("cannot restart redis-server; retrying", metadata: ["error": "\(error)"])
                    }
                }
            }
        } onGracefulShutdown: {
            // Stopped after the other services (the ServiceGroup shuts down in reverse order).
        }
        server.stop()
        logger.info("embedded redis-server stopped")
    }
}

/// Runs the projector until shutdown; it finishes the batch in hand first.
public struct ProjectorService: Service {
    public let projector: Projector

    public init(projector: Projector) {
        self.projector = projector
    }

    public func run() async throws {
        try await withGracefulShutdownHandler {
            try await projector.run()
        } onGracefulShutdown: {
            projector.stop()
        }
        projector.shutdown()
    }
}

/// Removes resumable uploads past their expiry, at start and then every `interval`.
public struct UploadSweeper: Service {
    public let files: FileStore
    public let interval: Duration
    let logger: Logger

    public init(files: FileStore, interval: Duration = .seconds(600), logger: Logger) {
        self.files = files
        self.interval = interval
        self.logger = logger
    }

    public func run() async throws {
        try await cancelWhenGracefulShutdown {
            while !Task.isCancelled {
                do {
                    let removed = try await files.removeExpiredUploads()
                    if removed > 0 { logger.info("removed expired uploads", metadata: ["count": "\(removed)"]) }
                } catch {
                    logger.warning("could not sweep expired uploads", metadata: ["error": "\(error)"])
                }
                // Shutdown cancels the sleep; that is the normal way out, not an error.
                try? await Task.sleep(for: interval)
            }
        }
    }
}
