import ArgumentParser
import FieldOpsServer
import Foundation
import HTTPTypes
import NIOCore
import Logging
import Redis
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// Realtime fan-out: many WebSocket subscribers on one channel, messages published through the
/// API, deliveries per second and publish→receive latency; server memory with idle sockets.
struct FanoutBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "fanout",
        abstract: "WebSocket fan-out: deliveries/s and publish→receive latency with N subscribers; server RSS with idle sockets.",
        discussion: """
            Starts a private redis-server and `fieldops serve` as a separate process (so its memory \
            is measured alone), opens --subscribers WebSockets on one chat room, and posts chat \
            messages through the API at fixed rates. Latency runs from just before the POST to \
            the subscriber's receipt. Then it opens --idle connected sockets and reads the \
            server's RSS. Subscribers, publisher and server share the machine. Build in release \
            mode for real figures:

              swift run -c release fieldops bench fanout
              swift run -c release fieldops bench fanout --subscribers 500 \\
                  --duration 10 --idle 2000

            --server-binary measures another build's server with this build's load generator, \
            so two builds compare side by side:

              fieldops bench fanout --server-binary /tmp/fieldops-old --idle 0
            """
    )

    @Option(help: "WebSocket subscribers on the channel.") var subscribers = 1_000
    @Option(help: "Seconds per phase.") var duration = 5
    @Option(help: "Deliveries per second of the latency phase.") var latencyLoad = 50_000
    @Option(help: "Messages per second of the throughput phases (comma-separated).") var rates = "100,200,400"
    @Option(help: "Idle connected sockets for the memory measurement.") var idle = 10_000
    @Option(help: "Keep-alive connections posting the messages, each one request at a time.") var publishers = 16
    @Option(help: "The fieldops executable whose server is measured (default: this one).") var serverBinary: String?

    func validate() throws {
        guard (1...10_000).contains(subscribers), duration > 0, latencyLoad > 0, idle >= 0, (1...256).contains(publishers) else {
            throw ValidationError("--subscribers 1-10000, --duration and --latency-load positive, --idle not negative, --publishers 1-256")
        }
        if let serverBinary, !FileManager.default.isExecutableFile(atPath: serverBinary) {
            throw ValidationError("--server-binary \(serverBinary) is not an executable file")
        }
        guard !parsedRates.isEmpty else { throw ValidationError("--rates is a comma-separated list of positive numbers") }
    }

    private var parsedRates: [Int] { rates.split(separator: ",").compactMap { Int($0) }.filter { $0 > 0 } }

    func run() async throws {
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = .error
            return handler
        }
        let redis = try BenchRedis(url: nil)
        defer { redis.close() }
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("fieldops-bench-fanout-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }

        let server = try ServerProcess(storage: directory, redisURL: redis.url, executable: serverBinary ?? CommandLine.arguments[0])
        defer { server.stop() }
        let token = try await server.token()
        let publisher = try HTTPLoad.Connection(host: "127.0.0.1", port: server.port)
        defer { publisher.close() }
        let host = "127.0.0.1:\(server.port)"
        let created = try publisher.exchange(HTTPLoad.request("POST", "/v1/rooms", host: host, token: token, json: #"{"roomId":"bench","name":"Fan-out"}"#))
        guard created == 201 else { throw CommandFailure("creating the room answered \(created)") }
        let baseline = server.residentMegabytes()
        say("FieldOps fan-out benchmark: \(ProcessInfo.processInfo.activeProcessorCount) cores, \(subscribers) subscribers on room:bench, \(duration) s per phase, \(publishers) publishers; server RSS \(Self.mb(baseline)) at start\n")

        let receipts = Receipts()
        say("Opening \(subscribers) subscribers…")
        var sockets: [any Channel] = []
        for _ in 0..<subscribers {
            sockets.append(try await FanoutSubscribers.connect(port: server.port, token: token, channel: "room:bench", receipts: receipts).get())
        }
        try await waitFor("all subscriptions acknowledged", timeout: .seconds(120)) { receipts.acknowledged >= subscribers }
        let withSubscribers = server.residentMegabytes()

        var table = Table("PHASE", "PUBLISHED/S", "DELIVERIES/S", "P50", "P99", "MAX", "LOST")
        let latencyRate = max(1, latencyLoad / subscribers)
        for rate in [latencyRate] + parsedRates {
            let result = try await phase(rate: rate, port: server.port, host: host, token: token, receipts: receipts)
            let name = rate == latencyRate ? "≈\(latencyLoad) deliveries/s" : "\(rate) msg/s"
            table.append(
                name, String(format: "%.0f", result.publishRate), String(format: "%.0f", result.deliveryRate),
                APIBench.ms(result.p50), APIBench.ms(result.p99), APIBench.ms(result.max), "\(result.lost)"
            )
        }
        say("")
        say(table.rendered)

        say("\nOpening \(idle) idle sockets…")
        let idleReceipts = Receipts()
        var idleSockets: [any Channel] = []
        for index in 0..<idle {
            idleSockets.append(try await FanoutSubscribers.connect(port: server.port, token: token, channel: nil, receipts: idleReceipts).get())
            if index % 500 == 499 { try await waitFor("idle sockets connected", timeout: .seconds(120)) { idleReceipts.welcomed >= index + 1 - 50 } }
        }
        try await waitFor("idle sockets connected", timeout: .seconds(120)) { idleReceipts.welcomed >= idle }
        try await Task.sleep(for: .seconds(2))
        let withIdle = server.residentMegabytes()
        var memory = Table("SERVER MEMORY", "RSS", "TARGET")
        memory.append("at start", Self.mb(baseline), "")
        memory.append("with \(subscribers) subscribers", Self.mb(withSubscribers), "")
        memory.append("with \(subscribers) subscribers + \(idle) idle sockets", Self.mb(withIdle), "≤ 200 MB at 10 000 idle")
        say("")
        say(memory.rendered)
        say("""

            Targets (2 cores, load generator on the same machine): ≥ 100 000 deliveries/s; p99 ≤ 20 ms at
            50 000 deliveries/s; server RSS ≤ 200 MB with 10 000 idle connected sockets. Latency: from just
            before the POST /v1/rooms/bench/messages to a subscriber's receipt of the event; LOST counts
            deliveries still missing 5 s after the phase.
            """)
        (sockets + idleSockets).forEach { $0.close(promise: nil) }
    }

    struct PhaseResult {
        var publishRate: Double
        var deliveryRate: Double
        var p50: Double
        var p99: Double
        var max: Double
        var lost: Int
    }

    /// Posts `rate` messages per second for the phase's duration, open loop from `publishers`
    /// connections (enough that a slow answer does not lower the rate: each has one request in
    /// flight), then waits for the deliveries.
    private func phase(rate: Int, port: Int, host: String, token: String, receipts: Receipts) async throws -> PhaseResult {
        receipts.reset()
        let clock = ContinuousClock()
        let start = clock.now
        let load = HTTPLoad(host: "127.0.0.1", port: port)
        let seconds = duration
        let published = await load.run(connections: publishers, duration: .seconds(seconds), rate: Double(rate)) { _, _ in
            HTTPLoad.request("POST", "/v1/rooms/bench/messages", host: host, token: token, json: #"{"text":"t=\#(DispatchTime.now().uptimeNanoseconds)"}"#)
        }
        guard published.failed == 0 else { throw CommandFailure("posting messages failed: \(published.firstFailure ?? "?")") }
        let publishing = (clock.now - start).secondsValue
        let expected = published.completed * subscribers
        let deadline = clock.now + .seconds(5)
        while receipts.received < expected, clock.now < deadline { try await Task.sleep(for: .milliseconds(20)) }
        let (count, latencies, last) = receipts.snapshot()
        let span = max(publishing, (last - start).secondsValue)
        return PhaseResult(
            publishRate: Double(published.completed) / published.seconds,
            deliveryRate: Double(count) / span,
            p50: HTTPLoad.Result.percentile(latencies, 0.5), p99: HTTPLoad.Result.percentile(latencies, 0.99), max: latencies.max() ?? 0,
            lost: expected - count
        )
    }

    private func waitFor(_ what: String, timeout: Duration, _ condition: () -> Bool) async throws {
        let deadline = ContinuousClock.now + timeout
        while !condition() {
            guard ContinuousClock.now < deadline else { throw CommandFailure("timed out waiting for \(what)") }
            try await Task.sleep(for: .milliseconds(50))
        }
    }

    static func mb(_ value: Double) -> String { String(format: "%.0f MB", value) }
}

/// What the subscribers saw: acknowledgements and each delivery's latency in milliseconds.
final class Receipts: Sendable {
    private struct State {
        var acknowledged = 0
        var welcomed = 0
        var latencies: [Double] = []
        var last = ContinuousClock.now
    }

    private let state = Mutex(State())

    var acknowledged: Int { state.withLock { $0.acknowledged } }
    var welcomed: Int { state.withLock { $0.welcomed } }
    var received: Int { state.withLock { $0.latencies.count } }


    /// What one read of one subscriber brought: events (their send times), a welcome, an
    /// acknowledged subscription.
    func note(sentAt: [UInt64], welcomed: Bool, acknowledged: Bool) {
        guard !sentAt.isEmpty || welcomed || acknowledged else { return }
        let now = DispatchTime.now().uptimeNanoseconds
        let instant = ContinuousClock.now
        state.withLock { state in
            if welcomed { state.welcomed += 1 }
            if acknowledged { state.acknowledged += 1 }
            guard !sentAt.isEmpty else { return }
            for sent in sentAt { state.latencies.append(Double(now &- sent) / 1_000_000) }
            state.last = instant
        }
    }

    func reset() {
        state.withLock { state in
            state.latencies.removeAll(keepingCapacity: true)
        }
    }

    func snapshot() -> (Int, [Double], ContinuousClock.Instant) {
        state.withLock { ($0.latencies.count, $0.latencies, $0.last) }
    }
}

/// `fieldops serve` in a child process, on a free port, with its own storage.
final class ServerProcess: Sendable {
    let port: Int
    let storage: URL
    private let process: Process

    /// - Parameter executable: the `fieldops` to run.
    init(storage: URL, redisURL: String, executable: String) throws {
        port = try Self.freePort()
        self.storage = storage
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable).standardizedFileURL
        process.arguments = ["serve", "--host", "127.0.0.1", "--port", String(port), "--storage", storage.path, "--redis-url", redisURL, "--rate-limit", "0"]
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        self.process = process
        let deadline = ContinuousClock.now + .seconds(60)
        while true {
            if let connection = try? HTTPLoad.Connection(host: "127.0.0.1", port: port) {
                defer { connection.close() }
                if (try? connection.exchange(HTTPLoad.request("GET", "/healthz", host: "127.0.0.1:\(port)"))) == 200 { break }
            }
            guard process.isRunning, ContinuousClock.now < deadline else { throw CommandFailure("fieldops serve did not start") }
            Thread.sleep(forTimeInterval: 0.1)
        }
    }

    /// A dispatcher token signed with the server's secret (generated into its storage).
    func token() async throws -> String {
        try await TokenAuthority.load(storage: storage).mint(tenant: "bench", subject: "bench", role: .dispatcher)
    }

    /// The server's resident memory, from /proc.
    func residentMegabytes() -> Double {
        guard let status = try? String(contentsOfFile: "/proc/\(process.processIdentifier)/status", encoding: .utf8),
              let line = status.split(separator: "\n").first(where: { $0.hasPrefix("VmRSS:") }),
              let kilobytes = line.split(separator: " ").dropFirst().first.flatMap({ Double($0) }) else { return 0 }
        return kilobytes / 1_024
    }

    func stop() {
        guard process.isRunning else { return }
        process.terminate()
        process.waitUntilExit()
    }

    static func freePort() throws -> Int {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = 0
        inet_pton(AF_INET, "127.0.0.1", &address.sin_addr)
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) == 0 && getsockname(fd, $0, &length) == 0 }
        }
        guard bound else { throw CommandFailure("no free port: \(errno)") }
        return Int(UInt16(bigEndian: address.sin_port))
    }
}
