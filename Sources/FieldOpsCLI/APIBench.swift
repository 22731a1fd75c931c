import ArgumentParser
import DocumentStore
import FieldOpsServer
import Foundation
import Logging
import Projections
import Redis
import ServiceLifecycle
#if canImport(Glibc)
import Glibc
#endif

/// The HTTP API under load, beside the machine's HTTP ceiling and Redis's own XADD rate.
struct APIBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "api",
        abstract: "Load the JSON API: /healthz ceiling, single and batched location writes, p99 at half load, redis-benchmark XADD.",
        discussion: """
            Starts a private redis-server (unix socket, AOF on), a document store in a temporary \
            directory, the projector and the HTTP server on a free loopback port, exactly as \
            `fieldops serve` wires them, then drives it with a built-in keep-alive load generator \
            on the same machine. Build in release mode for real figures:

              swift run -c release fieldops bench api
              swift run -c release fieldops bench api --duration 10 --connections 32
            """
    )

    @Option(help: "Seconds per phase.") var duration = 5
    @Option(help: "Concurrent keep-alive connections.") var connections = 16
    @Option(help: "Positions per batched request.") var batch = 1_000
    @Option(help: "Workers the positions are spread over.") var workers = 64
    @Option(help: "Phases to run, comma-separated (to profile one): healthz, single, half, batched, redis.")
    var phases = "healthz,single,half,batched,redis"

    private static let allPhases: Set<String> = ["healthz", "single", "half", "batched", "redis"]

    func validate() throws {
        guard duration > 0, (1...512).contains(connections), (1...1_000).contains(batch), workers > 0 else {
            throw ValidationError("--duration and --workers must be positive, --connections 1-512, --batch 1-1000")
        }
        let unknown = selectedPhases.subtracting(Self.allPhases)
        guard unknown.isEmpty, !selectedPhases.isEmpty else {
            throw ValidationError("--phases takes some of \(Self.allPhases.sorted().joined(separator: ", ")); unknown: \(unknown.sorted().joined(separator: ", "))")
        }
        if selectedPhases.contains("half"), !selectedPhases.contains("single") {
            throw ValidationError("the half phase runs at half the rate the single phase measured: add single to --phases")
        }
    }

    private var selectedPhases: Set<String> {
        Set(phases.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) })
    }

    func run() async throws {
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = .warning
            return handler
        }
        let redis = try BenchRedis(url: nil)
        defer { redis.close() }
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("fieldops-bench-api-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }

        var configuration = ServerConfiguration(host: "127.0.0.1", port: 0, storage: directory, redisURL: redis.url)
        configuration.rateLimit = .unlimited
        let store = try DocumentStore(path: configuration.databasePath)
        let projector = try Projector(redisURL: redis.url, store: store, configuration: .init(consumer: "bench"))
        let authority = try await TokenAuthority(secret: Array((0..<32).map { _ in UInt8.random(in: 0...255) }))
        let dependencies = try ServerDependencies(redisURL: redis.url, store: store, projector: projector, authority: authority, configuration: configuration)
        var logger = Logger(label: "fieldops.bench")
        logger.logLevel = .warning
        // Port 0: the kernel picks a free one, which the server reports once it listens.
        let listening = AsyncStream.makeStream(of: Int.self)
        let app = buildApplication(dependencies, services: [ProjectorService(projector: projector)], logger: logger, onListening: { listening.continuation.yield($0) })
        // Stopped the way SIGTERM stops `fieldops serve` (cancelling it instead makes
        // Hummingbird log errors on the way out).
        let group = ServiceGroup(configuration: .init(services: [app], gracefulShutdownSignals: [], logger: logger))
        let serving = Task {
            defer { listening.continuation.finish() }
            try await group.run()
        }
        defer { serving.cancel() }
        var ports = listening.stream.makeAsyncIterator()
        guard let port = await ports.next() else { throw ValidationError("the server did not start: \(String(describing: await serving.result))") }

        let token = try await authority.mint(tenant: "bench", subject: "bench", role: .service)
        let load = HTTPLoad(host: "127.0.0.1", port: port)
        let host = "127.0.0.1:\(port)"
        try await waitUntilServing(load, host: host)
        say("FieldOps API benchmark: \(ProcessInfo.processInfo.activeProcessorCount) cores, \(connections) connections, \(duration) s per phase; server, Redis and load generator share the machine\n")

        // Workers must exist before their positions are accepted.
        let workerIDs = (0..<workers).map { "w-\($0)" }
        try await HTTPLoad.offThePool {
            let setup = try HTTPLoad.Connection(host: "127.0.0.1", port: port)
            defer { setup.close() }
            for id in workerIDs {
                let status = try setup.exchange(HTTPLoad.request("POST", "/v1/workers", host: host, token: token, json: #"{"workerId":"\#(id)","name":"Bench \#(id)"}"#))
                guard status == 201 else { throw ValidationError("registering worker \(id) answered HTTP \(status)") }
            }
        }
        let phase = Duration.seconds(duration)

        let run = selectedPhases
        var figures: [String] = []
        var ceiling: HTTPLoad.Result?
        if run.contains("healthz") {
            let healthz = HTTPLoad.request("GET", "/healthz", host: host)
            let result = await load.run(connections: connections, duration: phase) { _, _ in healthz }
            report("GET /healthz", result)
            figures.append("  /healthz ceiling:               \(Int(result.rate)) req/s")
            ceiling = result
        }

        let single = workerIDs.map { HTTPLoad.request("POST", "/v1/workers/\($0)/locations", host: host, token: token, json: #"{"lat":52.52,"lon":13.405,"accuracy":5,"speed":1.4}"#) }
        if run.contains("single") {
            let singles = await load.run(connections: connections, duration: phase) { connection, n in single[(connection * 7 + n) % single.count] }
            report("POST one location", singles)
            let share = ceiling.map { " = \(Self.percent(singles.rate / $0.rate)) of /healthz (target >= 60%)" } ?? ""
            figures.append("  single-location writes:         \(Int(singles.rate)) req/s\(share), p50 \(Self.ms(singles.percentile(0.5))), p99 \(Self.ms(singles.percentile(0.99)))")
            let caughtUp = try await waitForProjection(redis.url)
            say("  (projection caught up in \(String(format: "%.1f", caughtUp)) s)")

            if run.contains("half") {
                let halfRate = singles.rate / 2
                let steady = await load.run(connections: connections, duration: phase, rate: halfRate) { connection, n in single[(connection * 11 + n) % single.count] }
                report("POST one location at \(Int(halfRate))/s", steady)
                _ = try await waitForProjection(redis.url)
                figures.append("  single write at 50% load:       p50 \(Self.ms(steady.percentile(0.5))), p99 \(Self.ms(steady.percentile(0.99))) at \(Int(steady.rate)) req/s (target p99 <= 5 ms)")
                figures.append("    counted from when each request was due; the generator itself sent late by p50 \(Self.ms(HTTPLoad.Result.percentile(steady.sendDelays, 0.5))), p99 \(Self.ms(HTTPLoad.Result.percentile(steady.sendDelays, 0.99)))")
                figures.append("    counted from when each request left: p50 \(Self.ms(HTTPLoad.Result.percentile(steady.responseTimes, 0.5))), p99 \(Self.ms(HTTPLoad.Result.percentile(steady.responseTimes, 0.99)))")
            }
        }

        if run.contains("batched") {
            let positions = (0..<batch).map { #"{"lat":\#(52 + Double($0) / 10_000),"lon":13.4,"accuracy":5}"# }.joined(separator: ",")
            let batches = workerIDs.map { HTTPLoad.request("POST", "/v1/workers/\($0)/locations", host: host, token: token, json: #"{"locations":[\#(positions)]}"#) }
            let batched = await load.run(connections: min(connections, 4), duration: phase) { connection, n in batches[(connection * 7 + n) % batches.count] }
            report("POST \(batch) locations", batched)
            let drained = try await waitForProjection(redis.url)
            say("  (projection caught up in \(String(format: "%.1f", drained)) s: \(Int(Double(batched.completed * batch) / (batched.seconds + drained))) locations/s from request to SQLite)")
            figures.append("  batched ingest:                 \(Int(batched.rate * Double(batch))) locations/s in \(Int(batched.rate)) requests/s (target >= 100000)")
        }

        if run.contains("redis") {
            if let benchmark = RedisBenchmark(configuration: try RedisConfiguration(url: redis.url)) {
                let xadd = try benchmark.run(
                    ["XADD", "tenant:{bench}:stream:reference", "*", "event_type", "location.reported", "payload", #"{"workerId":"w-1","lat":52.52,"lon":13.405}"#, "workerId", "w-1", "lat", "52.52", "lon", "13.405"],
                    requests: 200_000, pipeline: 1, clients: connections
                )
                figures.append("  redis-benchmark XADD (same Redis, \(connections) clients): \(Int(xadd)) commands/s")
            } else {
                figures.append("  redis-benchmark not found on PATH: install redis-tools for the reference")
            }
        }

        say("")
        say("Figures (measured in this run):")
        figures.forEach { say($0) }
        await group.triggerGracefulShutdown()
        _ = try? await serving.value
    }

    private func report(_ name: String, _ result: HTTPLoad.Result) {
        var line = "  \(name): \(result.completed) ok in \(String(format: "%.1f", result.seconds)) s = \(Int(result.rate))/s, p50 \(Self.ms(result.percentile(0.5))), p99 \(Self.ms(result.percentile(0.99)))"
        if result.failed > 0 { line += ", \(result.failed) failed (first: \(result.firstFailure ?? "?"))" }
        say(line)
    }

    /// Waits until the projector has applied and acknowledged every location; returns the seconds it took.
    private func waitForProjection(_ url: String) async throws -> Double {
        let connection = try RedisConnection(url: url)
        defer { connection.close() }
        let start = ContinuousClock.now
        while ContinuousClock.now - start < .seconds(300) {
            let groups = try connection.command("XINFO", "GROUPS", "tenant:{bench}:stream:locationUpdates").array ?? []
            let settled = groups.allSatisfy { $0.pairs?["lag"]?.int == 0 && $0.pairs?["pending"]?.int == 0 }
            if settled && !groups.isEmpty { return (ContinuousClock.now - start).secondsValue }
            try await Task.sleep(for: .milliseconds(50))
        }
        throw ValidationError("the projection did not catch up within 300 s")
    }

    private func waitUntilServing(_ load: HTTPLoad, host: String) async throws {
        let deadline = ContinuousClock.now + .seconds(30)
        while ContinuousClock.now < deadline {
            let port = load.port
            let answered = try await HTTPLoad.offThePool {
                guard let connection = try? HTTPLoad.Connection(host: "127.0.0.1", port: port) else { return false }
                defer { connection.close() }
                return (try? connection.exchange(HTTPLoad.request("GET", "/healthz", host: host))) == 200
            }
            if answered { return }
            try await Task.sleep(for: .milliseconds(100))
        }
        throw ValidationError("the server did not start listening within 30 s")
    }

    static func ms(_ value: Double) -> String { String(format: "%.2f ms", value) }
    static func percent(_ value: Double) -> String { String(format: "%.0f%%", value * 100) }
}
