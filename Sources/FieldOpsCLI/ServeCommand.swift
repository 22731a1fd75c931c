import ArgumentParser
import DocumentStore
import FieldOpsServer
import Foundation
import Logging
import NIOCore
import Projections
import ServiceLifecycle

/// `fieldops serve`: the server mobile-client backends call.
struct ServeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve",
        abstract: "Run the FieldOps server.",
        discussion: """
            With no Redis URL, starts and supervises its own redis-server (unix socket, AOF on) under \
            STORAGE/redis/; SQLite lives at STORAGE/fieldops.sqlite. SIGTERM or Ctrl-C shuts down \
            gracefully: in-flight requests and the projector's batch finish, then Redis stops. \
            Work still running \(Int(Self.shutdownGrace.components.seconds)) s after the signal is cancelled, and a \
            connection a client never lets go cannot hold the process past 15 s.

            Examples:
              fieldops serve
              fieldops serve --host 0.0.0.0 --port 8080 --storage /var/lib/fieldops
              FIELDOPS_REDIS_URL=redis://redis.internal:6379/0 fieldops serve
              FIELDOPS_LOG_LEVEL=debug fieldops serve   # default info; or trace, warning
            """
    )

    @Option(help: ArgumentHelp("Address to listen on. Defaults to $FIELDOPS_HOST, then 127.0.0.1.", valueName: "host"))
    var host: String?
    @Option(help: ArgumentHelp("Port to listen on. Defaults to $FIELDOPS_PORT, then 8080.", valueName: "port"))
    var port: Int?
    @OptionGroup var storage: StorageOptions
    @Option(name: .customLong("redis-url"), help: ArgumentHelp("Use this Redis instead of starting one. Defaults to $FIELDOPS_REDIS_URL.", valueName: "url"))
    var redisURL: String?
    @Option(help: ArgumentHelp("This node's name: its projector's consumer name. Defaults to the host name.", valueName: "name"))
    var node: String?
    @Option(name: .customLong("log-format"), help: ArgumentHelp("text, or json for one JSON object per line. Defaults to $FIELDOPS_LOG_FORMAT, then text.", valueName: "format"))
    var logFormat: String?
    @Option(name: .customLong("rate-limit"), help: ArgumentHelp("Requests per second per tenant on this node, 0 for none (429 beyond). Defaults to $FIELDOPS_RATE_LIMIT, then 5000.", valueName: "n"))
    var rateLimit: Double?
    @Option(name: .customLong("max-file-mb"), help: ArgumentHelp("Largest attachment in MiB. Defaults to $FIELDOPS_MAX_FILE_MB, then 25.", valueName: "MiB"))
    var maxFileMB: Int?
    @Option(name: .customLong("disk-reserve-mb"), help: ArgumentHelp("Free disk space uploads never take, in MiB, kept for the event log and the database. Defaults to $FIELDOPS_DISK_RESERVE_MB, then 128.", valueName: "MiB"))
    var diskReserveMB: Int?

    /// How long a graceful shutdown may wait for connections before they are cancelled.
    static let shutdownGrace: Duration = .seconds(10)

    func validate() throws {
        if let port = resolvedPort, !(1...65535).contains(port) { throw ValidationError("--port must be 1-65535") }
        if let rateLimit = resolvedRateLimit, !(rateLimit >= 0) { throw ValidationError("--rate-limit must be 0 or more") }
        guard ["text", "json"].contains(resolvedLogFormat) else { throw ValidationError("--log-format must be text or json") }
        if let size = resolved(maxFileMB, "FIELDOPS_MAX_FILE_MB"), !(1...4_096).contains(size) { throw ValidationError("--max-file-mb must be 1-4096") }
        if let reserve = resolved(diskReserveMB, "FIELDOPS_DISK_RESERVE_MB"), reserve < 0 { throw ValidationError("--disk-reserve-mb must be 0 or more") }
    }

    var resolvedLogFormat: String {
        logFormat ?? ProcessInfo.processInfo.environment["FIELDOPS_LOG_FORMAT"] ?? "text"
    }

    var resolvedRateLimit: Double? {
        rateLimit ?? ProcessInfo.processInfo.environment["FIELDOPS_RATE_LIMIT"].flatMap(Double.init)
    }

    func resolved(_ option: Int?, _ variable: String) -> Int? {
        option ?? ProcessInfo.processInfo.environment[variable].flatMap { Int($0) }
    }

    var resolvedPort: Int? {
        port ?? ProcessInfo.processInfo.environment["FIELDOPS_PORT"].flatMap(Int.init)
    }

    func run() async throws {
        if resolvedLogFormat == "json" {
            LoggingSystem.bootstrap { JSONLogHandler(label: $0) }
        } else {
            LoggingSystem.bootstrap { StreamLogHandler.standardError(label: $0) }
        }
        let environment = ProcessInfo.processInfo.environment
        var logger = Logger(label: "fieldops")
        logger.logLevel = environment["FIELDOPS_LOG_LEVEL"].flatMap { Logger.Level(rawValue: $0.lowercased()) } ?? .info
        var configuration = ServerConfiguration()
        configuration.host = host ?? environment["FIELDOPS_HOST"] ?? "127.0.0.1"
        configuration.port = resolvedPort ?? 8080
        configuration.storage = URL(fileURLWithPath: storage.databasePath).deletingLastPathComponent()
        configuration.redisURL = redisURL ?? environment["FIELDOPS_REDIS_URL"].flatMap { $0.isEmpty ? nil : $0 }
        if let node { configuration.nodeName = node }
        if let rate = resolvedRateLimit { configuration.rateLimit = rate == 0 ? .unlimited : RateLimit(requestsPerSecond: rate) }
        if let size = resolved(maxFileMB, "FIELDOPS_MAX_FILE_MB") { configuration.files.maxFileSize = Int64(size) << 20 }
        if let reserve = resolved(diskReserveMB, "FIELDOPS_DISK_RESERVE_MB") { configuration.files.reserveBytes = Int64(reserve) << 20 }

        do {
            try StorageLock.acquire(configuration.storage)
        } catch let error as StorageLock.Held {
            throw CommandFailure(error.description)
        }
        let store = try DocumentStore(path: configuration.databasePath)
        let authority: TokenAuthority
        do {
            authority = try await TokenAuthority.load(storage: configuration.storage)
        } catch let error as TokenAuthority.SecretFileError {
            throw CommandFailure(error.description)
        }
        var services: [any Service] = []
        let url: String
        var supervisor: RedisSupervisor?
        // A start-up that fails after Redis started must not leave it running; once the services
        // run, the supervisor stops it itself and this is a no-op.
        defer { supervisor?.server.stop() }
        if let redisURL = configuration.redisURL {
            url = redisURL
        } else {
            let embedded = try RedisSupervisor(directory: configuration.redisDirectory, logger: logger)
            supervisor = embedded
            url = embedded.url
            services.append(embedded)
            logger.info("embedded redis-server running", metadata: ["socket": "\(embedded.server.socketPath)"])
        }
        let projector = try Projector(redisURL: url, store: store, configuration: .init(consumer: configuration.nodeName), logger: logger)
        services.append(ProjectorService(projector: projector))
        let dependencies = try ServerDependencies(redisURL: url, store: store, projector: projector, authority: authority, configuration: configuration)
        services.append(NotifierService(dependencies: dependencies, logger: logger))
        services.append(UploadSweeper(files: dependencies.files, logger: logger))
        do {
            let cleared = try await dependencies.clearPresenceLeftBehind()
            if cleared > 0 { logger.notice("cleared presence left by this node's last run", metadata: ["connections": "\(cleared)"]) }
        } catch {
            logger.warning("could not clear presence left by this node's last run", metadata: ["error": "\(error)"])
        }
        let app = buildApplication(dependencies, services: services, logger: logger) { [configuration, logger] port in
            let base = "http://\(configuration.host):\(port)"
            logger.notice("FieldOps listening on \(base)")
            logger.notice("get a token: TOKEN=$(fieldops token create --tenant demo --sub me --role dispatcher --storage \(configuration.storage.path)); curl -H \"Authorization: Bearer $TOKEN\" \(base)/v1/me")
        }
        // The watchdog comes last, so it is the first told of the shutdown.
        let watchdog = ShutdownWatchdog(limit: Self.shutdownGrace + .seconds(5), logger: logger)
        var group = ServiceGroupConfiguration(services: [app, watchdog], gracefulShutdownSignals: [.sigterm, .sigint], logger: logger)
        group.maximumGracefulShutdownDuration = Self.shutdownGrace
        do {
            try await ServiceGroup(configuration: group).run()
        } catch let error as IOError {
            throw Self.cannotListen(error, host: configuration.host, port: configuration.port) ?? error
        } catch let error as SocketAddressError.UnknownHost {
            throw CommandFailure("cannot listen on \(error.host):\(error.port): the host name does not resolve (\(error.errorDescription)); give an address or a known name with --host")
        }
        dependencies.close()
    }

    /// The plain reason a bind failed, or nil when `error` is not one (NIO names the call that
    /// failed only in the description).
    static func cannotListen(_ error: IOError, host: String, port: Int) -> CommandFailure? {
        guard "\(error)".hasPrefix("bind(") else { return nil }
        let address = "cannot listen on \(host):\(port)"
        switch error.errnoCode {
        case EADDRINUSE:
            return CommandFailure("\(address): the port is in use (by another fieldops serve or another program); choose another with --port or FIELDOPS_PORT")
        case EACCES:
            return CommandFailure("\(address): permission denied (ports below 1024 need privileges); choose a higher one with --port")
        case EADDRNOTAVAIL:
            return CommandFailure("\(address): \(host) is not an address of this machine; use 127.0.0.1, 0.0.0.0 for every interface, or one of its own with --host")
        default:
            return nil
        }
    }
}

/// Ends the process if a graceful shutdown overruns `limit`: by then every service was asked to
/// stop and then cancelled, Redis has stopped and SQLite commits are on disk, and what is left
/// is a connection the HTTP server waits on for good: one that has not sent its first request
/// yet (HTTP clients open spares) has no quiesce handler in the WebSocket-upgradable pipeline
/// of hummingbird-websocket 2.8, so nothing closes it until the client does.
struct ShutdownWatchdog: Service {
    let limit: Duration
    let logger: Logger

    func run() async throws {
        try? await gracefulShutdown()
        guard !Task.isCancelled else { return }
        let (limit, logger) = (limit, logger)
        let thread = Thread {
            Thread.sleep(forTimeInterval: Double(limit.components.seconds))
            logger.warning("shutdown still waiting on open connections; exiting", metadata: ["after": "\(limit)"])
            exit(0)
        }
        thread.name = "fieldops.shutdown-watchdog"
        thread.start()
    }
}
