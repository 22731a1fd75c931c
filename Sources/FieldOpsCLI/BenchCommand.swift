import ArgumentParser
import Foundation
import Redis
import Streams
import Synchronization

/// `fieldops bench`: benchmarks that print figures beside a reference measured in the same run.
struct BenchCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench",
        abstract: "Run benchmarks and print figures beside their references.",
        subcommands: [StreamsBench.self, ProjectionsBench.self, APIBench.self, FanoutBench.self, ReplayBench.self]
    )
}

/// Stream library throughput beside `redis-benchmark` on the same server.
struct StreamsBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "streams",
        abstract: "XADD one at a time and pipelined, and consume+ack, beside redis-benchmark.",
        discussion: """
            Without --redis-url a private redis-server (unix socket, AOF on, as `fieldops serve` runs it) \
            is started in a temporary directory and removed afterwards. Build in release mode for real \
            figures:

              swift run -c release fieldops bench streams
              swift run -c release fieldops bench streams --rounds 5 --count 50000
            """
    )

    @Option(name: .customLong("redis-url"), help: ArgumentHelp("Benchmark against this Redis instead of a private one. Keys under tenant:{bench}: are deleted.", valueName: "url"))
    var redisURL: String?
    @Option(help: "Entries per round for one-at-a-time XADD.") var count = 20_000
    @Option(help: "Entries per round for pipelined XADD.") var pipelinedCount = 200_000
    @Option(help: "Commands per pipeline.") var pipeline = 64
    @Option(help: "Entries to consume and acknowledge per round.") var consumeCount = 200_000
    @Option(help: "Entries per XREADGROUP when consuming.") var batch = 1_000
    @Option(help: "Rounds per measurement; the median is reported.") var rounds = 3

    func validate() throws {
        guard count > 0, pipelinedCount > 0, consumeCount > 0, rounds > 0 else { throw ValidationError("counts and rounds must be positive") }
        guard (1...10_000).contains(pipeline), (1...10_000).contains(batch) else { throw ValidationError("--pipeline and --batch must be 1-10000") }
    }

    func run() async throws {
        let target = try BenchRedis(url: redisURL)
        defer { target.close() }
        let url = target.url
        let redis = try RedisConfiguration(url: url)
        let admin = try RedisConnection(configuration: redis)
        let version = (try admin.command("INFO", "server").string ?? "")
            .split(whereSeparator: \.isNewline).first { $0.hasPrefix("redis_version:") }?.dropFirst("redis_version:".count) ?? "?"
        say("FieldOps stream benchmark: Redis \(version) at \(redis), median of \(rounds) round(s)\n")

        let keys = try StreamKeys(tenant: "bench")
        let streamKey = keys.stream("bench")
        let referenceKey = keys.stream("reference")
        let producer = try StreamProducer(redisURL: url, tenant: "bench", stream: "bench", configuration: .init(trimEvery: .max, pool: .init(maxConnections: 1)))
        defer { producer.close() }
        let payload = #"{"taskId":"t-000123","assigneeId":"w-042","status":"assigned"}"#
        let routing = [("requestId", "r-000123"), ("taskId", "t-000123"), ("assigneeId", "w-042")]
        // The reference sends the very command the library sends, with a fixed timestamp.
        let sample = StreamEvent(stream: "bench", eventType: "task.assigned", payload: payload, timestamp: "2026-11-22T14:02:00.000Z", tenant: "bench", routing: routing.map { (name: $0.0, value: $0.1) })
        let referenceCommand = ["XADD", referenceKey, "*"] + sample.fields
        let benchmark = RedisBenchmark(configuration: redis)

        /// Name, library median, reference median, median of per-round ratios, target.
        var rows: [(String, Double, Double?, Double?, String)] = []
        /// Machine speed drifts between rounds; a ratio within one round compares like with like.
        func pairedRatio(_ library: [Double], _ reference: [Double]) -> Double? {
            guard reference.count == library.count, !reference.isEmpty else { return nil }
            return median(zip(library, reference).map { $0 / $1 })
        }
        var roundFigures: [String] = []
        func note(_ name: String, _ library: [Double], _ reference: [Double]) {
            let ours = library.map { String(Int($0)) }.joined(separator: " ")
            let theirs = reference.isEmpty ? "" : "; redis-benchmark " + reference.map { String(Int($0)) }.joined(separator: " ")
            roundFigures.append("  \(name): library \(ours)\(theirs)")
        }

        // One at a time.
        var library: [Double] = []
        var reference: [Double] = []
        for _ in 0..<rounds {
            try admin.command("DEL", streamKey, referenceKey)
            let start = ContinuousClock.now
            for _ in 0..<count {
                try producer.publishBlocking(eventType: "task.assigned", payload: payload, routing: routing)
            }
            library.append(Double(count) / (ContinuousClock.now - start).secondsValue)
            if let rate = try benchmark?.run(referenceCommand, requests: count, pipeline: 1) { reference.append(rate) }
        }
        rows.append(("XADD one at a time (-c 1 -P 1)", median(library), reference.isEmpty ? nil : median(reference), pairedRatio(library, reference), "≥ 90%"))
        note("one at a time", library, reference)

        // Pipelined.
        library = []
        reference = []
        let events = (0..<pipeline).map { _ in (eventType: "task.assigned", payload: payload, routing: routing) }
        for _ in 0..<rounds {
            try admin.command("DEL", streamKey, referenceKey)
            let batches = pipelinedCount / pipeline
            let start = ContinuousClock.now
            for _ in 0..<batches {
                _ = try producer.publishBatchBlocking(events)
            }
            library.append(Double(batches * pipeline) / (ContinuousClock.now - start).secondsValue)
            if let rate = try benchmark?.run(referenceCommand, requests: pipelinedCount, pipeline: pipeline) { reference.append(rate) }
        }
        rows.append(("XADD pipelined (-c 1 -P \(pipeline))", median(library), reference.isEmpty ? nil : median(reference), pairedRatio(library, reference), "≥ 80%"))
        note("pipelined", library, reference)

        // Produce → consume → acknowledge.
        library = []
        for _ in 0..<rounds {
            try admin.command("DEL", streamKey, referenceKey)
            for _ in 0..<(consumeCount / pipeline) { _ = try producer.publishBatchBlocking(events) }
            let total = (consumeCount / pipeline) * pipeline
            try admin.command("XGROUP", "CREATE", streamKey, "bench", "0")
            library.append(try await consume(url: url, total: total))
            let pending = try admin.command("XPENDING", streamKey, "bench").array?.first?.int ?? -1
            guard pending == 0 else { throw ValidationError("consume+ack left \(pending) entries pending") }
        }
        rows.append(("consume + ack (batch \(batch))", median(library), nil, nil, "≥ 100000/s"))
        note("consume + ack", library, [])
        try admin.command("DEL", streamKey, referenceKey, keys.checkpoints("bench"))

        var table = Table("MEASUREMENT", "LIBRARY", "REDIS-BENCHMARK", "RATIO", "TARGET")
        for (name, ours, theirs, ratio, target) in rows {
            table.append(
                name, "\(Int(ours))/s", theirs.map { "\(Int($0))/s" } ?? "-",
                ratio.map { String(format: "%.0f%%", $0 * 100) } ?? "-", target
            )
        }
        say(table.rendered)
        say("\nLIBRARY and REDIS-BENCHMARK are medians over rounds; RATIO is the median of per-round ratios.")
        say("\nEach round, entries per second:")
        roundFigures.forEach { say($0) }
        if benchmark == nil { say("\nredis-benchmark not found on PATH: install redis-tools for the reference column.") }
    }

    /// Consumes `total` entries with a `StreamConsumer`; returns entries per second.
    private func consume(url: String, total: Int) async throws -> Double {
        let consumer = try StreamConsumer(
            redisURL: url, tenant: "bench", stream: "bench", group: "bench", consumer: "bench-1",
            configuration: .init(batchSize: batch, block: .milliseconds(100), claimInterval: .seconds(3600))
        )
        defer { consumer.shutdown() }
        let handled = Atomic<Int>(0)
        let start = ContinuousClock.now
        try await consumer.subscribe { _ in
            if handled.add(1, ordering: .relaxed).newValue == total { consumer.close() }
        }
        return Double(total) / (ContinuousClock.now - start).secondsValue
    }

    private func median(_ values: [Double]) -> Double {
        let sorted = values.sorted()
        return sorted[sorted.count / 2]
    }
}

/// The Redis a benchmark runs against: the given one, or a private redis-server removed afterwards.
struct BenchRedis {
    let url: String
    private let privateServer: RedisServerProcess?

    init(url: String?) throws {
        if let url {
            self.url = url
            privateServer = nil
        } else {
            // AOF on as `fieldops serve` runs it, but no automatic AOF rewrite: its fork would land
            // at random in one measurement or the other.
            let server = try RedisServerProcess(extraArguments: ["--auto-aof-rewrite-percentage", "0"])
            self.url = server.url
            privateServer = server
        }
    }

    func close() {
        privateServer?.destroy()
    }
}

/// Runs `redis-benchmark` against the same server with a custom command.
struct RedisBenchmark {
    let executable: String
    let target: [String]

    init?(configuration: RedisConfiguration) {
        guard let executable = RedisServerProcess.findExecutable("redis-benchmark") else { return nil }
        self.executable = executable
        var target: [String]
        switch configuration.endpoint {
        case .tcp(let host, let port): target = ["-h", host, "-p", String(port)]
        case .unix(let path): target = ["-s", path]
        }
        if let user = configuration.username { target += ["--user", user] }
        if let password = configuration.password { target += ["-a", password] }
        if configuration.database != 0 { target += ["--dbnum", String(configuration.database)] }
        self.target = target
    }

    /// Requests per second for `command` with `clients` connections.
    func run(_ command: [String], requests: Int, pipeline: Int, clients: Int = 1) throws -> Double {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = target + ["-c", String(clients), "-P", String(pipeline), "-n", String(requests), "-q"] + command
        let output = Pipe()
        process.standardOutput = output
        process.standardError = FileHandle.nullDevice
        try process.run()
        let data = output.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        let text = String(decoding: data, as: UTF8.self)
        // The last line reads "XADD …: 45045.04 requests per second, p50=…".
        guard let match = text.range(of: #"([0-9.]+) requests per second"#, options: .regularExpression) else {
            throw ValidationError("could not read redis-benchmark output: \(text.suffix(300))")
        }
        return Double(text[match].split(separator: " ").first ?? "") ?? 0
    }
}

