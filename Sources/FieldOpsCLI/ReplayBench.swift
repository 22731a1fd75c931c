import ArgumentParser
import Domain
import Foundation
import Redis
import Replay
import Streams

/// Replay throughput beside raw XRANGE reads of the same entries on the same Redis.
struct ReplayBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "replay",
        abstract: "Read, merge and fold a window of N entries, beside raw XRANGE … COUNT 1000 reads.",
        discussion: """
            Writes N entries of a simulated hour (fixes of --workers workers, task lifecycles, chat, \
            stock) into the streams of tenant bench, then measures on the same Redis: raw XRANGE \
            pages over every stream (the reference), the merged timeline (`fieldops replay`'s \
            reader), and the fold into an in-memory store (`fieldops replay --at`), with the \
            process's resident memory before and after each. Build in release mode:

              swift build -c release
              .build/release/fieldops bench replay --entries 1000000
            """
    )

    @Option(name: .customLong("redis-url"), help: ArgumentHelp("Use this Redis instead of a private one. Keys of tenant bench are replaced.", valueName: "url"))
    var redisURL: String?
    @Option(help: "Entries in the window.") var entries = 1_000_000
    @Option(help: "Simulated workers.") var workers = 500

    func validate() throws {
        guard (1_000...20_000_000).contains(entries), (1...100_000).contains(workers) else { throw ValidationError("--entries is 1000-20000000, --workers 1-100000") }
    }

    func run() async throws {
        let target = try BenchRedis(url: redisURL)
        defer { target.close() }
        let redis = try RedisConnection(url: target.url)
        let keys = try StreamKeys(tenant: "bench")
        let streams = [StreamNames.locationUpdates, StreamNames.taskAssignments, "chat:ops", StreamNames.resourceUpdates]
        _ = try redis.send(["DEL"] + streams.map(keys.stream))
        let start = Int64(Date().timeIntervalSince1970 * 1_000) - 3_600_000
        let step = max(1, 3_600_000 / Int64(entries))
        say("FieldOps replay benchmark: \(entries) entries over \(streams.count) streams, \(workers) workers")
        let seedStarted = ContinuousClock.now
        try seed(redis, keys: keys, start: start, step: step)
        let end = start + step * Int64(entries)
        say(String(format: "written in %.1f s\n", (ContinuousClock.now - seedStarted).secondsValue))

        // The machine's speed drifts between runs, so the three measurements are taken in
        // turn, round after round, and each ratio is one round's: fold and reference side by side.
        var table = Table("ROUND", "RAW XRANGE (REFERENCE)", "TIMELINE", "FOLD (--at)", "FOLD % OF RAW", "APPLYING ALONE")
        var measured: [Round] = []
        for number in 1...rounds {
            let round = try await measure(target.url, redis: redis, keys: keys, streams: streams, start: start, end: end)
            measured.append(round)
            table.rows.append(round.cells("\(number)"))
        }
        if measured.count > 1 { table.rows.append(Round.median(of: measured).cells("median")) }
        say(table.rendered)
        // The first round's fold is the process's first: later ones start from its peak.
        let first = measured[0]
        say(String(format: "\nresident memory, first round's fold: %.0f MB before, %.0f MB at half the window, %.0f MB at its end", first.memory.0, first.memory.1, first.memory.2))
        say("state: \(first.state)")
    }

    @Option(help: "Rounds of the three measurements, taken in turn.") var rounds = 3

    /// One round: entries/s of each measurement over the whole window.
    struct Round {
        var raw: Double
        var timeline: Double
        var fold: Double
        var applying: Double
        /// The fold's rate as a share of the raw rate.
        var share: Double
        var memory = (0.0, 0.0, 0.0)
        var state = ""

        func cells(_ label: String) -> [String] {
            func rate(_ value: Double) -> String { "\(Int(value))/s" }
            func ofRaw(_ value: Double) -> String { "\(Int(value))/s (\(Int((value / raw * 100).rounded()))%)" }
            return [label, rate(raw), ofRaw(timeline), rate(fold), "\(Int((self.share * 100).rounded()))%", rate(applying)]
        }

        static func median(of rounds: [Round]) -> Round {
            func median(_ values: [Double]) -> Double { values.sorted()[values.count / 2] }
            // Each column's median; the share is the median of the rounds' shares.
            return Round(
                raw: median(rounds.map(\.raw)), timeline: median(rounds.map(\.timeline)),
                fold: median(rounds.map(\.fold)), applying: median(rounds.map(\.applying)), share: median(rounds.map(\.share))
            )
        }
    }

    func measure(_ url: String, redis: RedisConnection, keys: StreamKeys, streams: [String], start: Int64, end: Int64) async throws -> Round {
        // Reference: raw pages, nothing parsed.
        var raw = 0
        let rawStarted = ContinuousClock.now
        for stream in streams {
            var cursor = "\(start)-0"
            while true {
                let page = try redis.command("XRANGE", keys.stream(stream), cursor, "\(end)-0", "COUNT", "1000").array ?? []
                raw += page.count
                guard page.count == 1_000, let last = page.last?.array?.first?.string else { break }
                cursor = "(" + last
            }
        }
        let rawRate = Double(raw) / (ContinuousClock.now - rawStarted).secondsValue

        let reader = try TimelineReader(redisURL: url, tenant: "bench", from: start, to: end, filter: ReplayFilter())
        let names = try await reader.streams()
        var merged = 0
        var started = ContinuousClock.now
        try await reader.read(names) { _ in merged += 1 }
        let timelineRate = Double(merged) / (ContinuousClock.now - started).secondsValue

        let fold = try TenantFold(redisURL: url, tenant: "bench")
        let before = Self.residentMegabytes()
        started = ContinuousClock.now
        try await fold.advance(to: start + (end - start) / 2)
        let half = Self.residentMegabytes()
        try await fold.advance(to: end)
        let seconds = (ContinuousClock.now - started).secondsValue
        guard raw == merged, merged == fold.folded else {
            throw ValidationError("the measurements read different windows: \(raw) raw, \(merged) merged, \(fold.folded) folded")
        }
        let foldRate = Double(fold.folded) / seconds
        var round = Round(
            raw: rawRate, timeline: timelineRate, fold: foldRate, applying: Double(fold.folded) / fold.applying.secondsValue, share: foldRate / rawRate
        )
        round.memory = (before, half, Self.residentMegabytes())
        round.state = try await fold.snapshot().rows.map { "\($0.value.count) \($0.key.rawValue)" }.sorted().joined(separator: ", ")
        return round
    }

    /// Pipelined XADDs with explicit ids, a simulated hour of traffic.
    func seed(_ redis: RedisConnection, keys: StreamKeys, start: Int64, step: Int64) throws {
        var buffer = CommandBuffer()
        var task = 0
        for index in 0..<entries {
            let time = start + Int64(index) * step
            let timestamp = ISOTime.string(milliseconds: time)
            let event: StreamEvent
            switch index % 100 {
            case 0..<5:
                // A task's life in five steps.
                let id = "T-\(task / 5)"
                let worker = "w-\((task / 5) % workers)"
                let (type, payload) = switch task % 5 {
                case 0: (EventType.taskCreated, #"{"taskId":"\#(id)","title":"Check hydrant","priority":3,"location":{"lat":52.52,"lon":13.40}}"#)
                case 1: (EventType.taskAssigned, #"{"taskId":"\#(id)","assigneeId":"\#(worker)","by":"d-1"}"#)
                case 2: (EventType.taskAccepted, #"{"taskId":"\#(id)","by":"\#(worker)"}"#)
                case 3: (EventType.taskStarted, #"{"taskId":"\#(id)","by":"\#(worker)"}"#)
                default: (EventType.taskCompleted, #"{"taskId":"\#(id)","by":"\#(worker)"}"#)
                }
                task += 1
                event = StreamEvent(stream: StreamNames.taskAssignments, eventType: type, payload: payload, timestamp: timestamp, tenant: "bench", routing: [("taskId", id)])
            case 5..<8:
                event = StreamEvent(stream: "chat:ops", eventType: EventType.messageCreated, payload: #"{"messageId":"m-\#(index)","roomId":"ops","senderId":"d-1","text":"Status check"}"#, timestamp: timestamp, tenant: "bench", routing: [("roomId", "ops")])
            case 8:
                // One stock item, created first, then used a bag at a time.
                let created = index == 8
                event = StreamEvent(
                    stream: StreamNames.resourceUpdates, eventType: created ? EventType.resourceCreated : EventType.resourceAdjusted,
                    payload: created ? #"{"resourceId":"R-1","name":"Sandbags","quantity":1000000,"unit":"bags"}"# : #"{"resourceId":"R-1","delta":-1,"reason":"used"}"#,
                    timestamp: timestamp, tenant: "bench", routing: [("resourceId", "R-1")]
                )
            default:
                // Fixes go round the workers in turn.
                let worker = (index / 100 * 91 + index % 100 - 9) % workers
                let lat = 52.45 + Double((index * 7) % 1_000) / 10_000, lon = 13.30 + Double((index * 13) % 1_000) / 5_000
                event = StreamEvent(
                    stream: StreamNames.locationUpdates, eventType: EventType.locationReported,
                    payload: #"{"workerId":"w-\#(worker)","lat":\#(lat),"lon":\#(lon),"battery":\#(100 - index % 90),"speed":1.4}"#,
                    timestamp: timestamp, tenant: "bench", routing: [("workerId", "w-\(worker)")]
                )
            }
            buffer.append(["XADD", keys.stream(event.stream), "\(time)-0"] + event.fields)
            if buffer.count == 1_000 {
                _ = try redis.pipeline(buffer)
                buffer = CommandBuffer()
            }
        }
        if buffer.count > 0 { _ = try redis.pipeline(buffer) }
    }

    static func residentMegabytes() -> Double {
        guard let status = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8),
              let line = status.split(separator: "\n").first(where: { $0.hasPrefix("VmRSS:") }),
              let kilobytes = line.split(separator: " ").dropFirst().first.flatMap({ Double($0) }) else { return 0 }
        return kilobytes / 1_024
    }
}
