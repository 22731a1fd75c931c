import ArgumentParser
import Foundation
import Replay

/// `fieldops replay`: what happened in a tenant between two instants, from its streams.
struct ReplayCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "replay",
        abstract: "Replay a tenant's streams between two instants as one timeline.",
        discussion: """
            Reads every stream of the tenant (or those the filters need) by id \
            range (stream ids are milliseconds) and merges them in id order. The \
            top of the output says plainly when a stream no longer holds all of \
            the window (entries trimmed or deleted) or began inside it. The same \
            window prints the same bytes every time.

            Times: 2026-11-22T14:00:00Z, 2026-11-22T15:00+01:00, \
            "2026-11-22 14:00" (in --tz, default the local zone), \
            "2026-11-22 14:00 Europe/Berlin", 14:00 (today), "2h ago", now. \
            A leading minus needs the = form: --from=-2h, --from=-90m.

            Examples:
              fieldops replay --tenant acme --from 14:00 --to 14:30
              fieldops replay --tenant acme --from "2h ago" --worker w-7
              fieldops replay --tenant acme --from=-1d --room ops
              fieldops replay --tenant acme --from=-1d --format jsonl \\
                  --event-type task.assigned > assigned.jsonl
              fieldops replay --tenant acme --from=-6h \\
                  --bbox 52.50,13.35,52.54,13.45
              fieldops replay --tenant acme --from 14:00 --to 14:30 \\
                  --export html -o storm.html
              fieldops replay --tenant acme --from 14:00 --to 14:30 \\
                  --into-tenant training --speed 10x
              fieldops replay --tenant acme --at 14:02
              fieldops replay --tenant acme --diff 14:00 14:30
            """
    )

    @OptionGroup var connection: ConnectionOptions
    @Option(help: ArgumentHelp("Start of the window (inclusive). Needed unless --at or --diff is given.", valueName: "time"))
    var from: String?
    @Option(help: ArgumentHelp("End of the window (inclusive). Defaults to now.", valueName: "time"))
    var to = "now"
    @Option(name: .customLong("worker"), help: ArgumentHelp("Only events about this worker (repeatable).", valueName: "id"))
    var workers: [String] = []
    @Option(name: .customLong("room"), help: ArgumentHelp("Only events of this chat room (repeatable).", valueName: "id"))
    var rooms: [String] = []
    @Option(name: .customLong("task"), help: ArgumentHelp("Only events about this task (repeatable).", valueName: "id"))
    var tasks: [String] = []
    @Option(name: .customLong("stream"), help: ArgumentHelp("Only this stream (repeatable): locationUpdates, taskAssignments, chat:ops…", valueName: "name"))
    var streams: [String] = []
    @Option(name: .customLong("event-type"), help: ArgumentHelp("Only this event type (repeatable): task.assigned, location.reported…", valueName: "type"))
    var eventTypes: [String] = []
    @Option(help: ArgumentHelp("Only events with a position inside this box: south,west,north,east.", valueName: "s,w,n,e"))
    var bbox: String?
    @Option(help: ArgumentHelp("text (for people) or jsonl (one JSON object per line).", valueName: "format"))
    var format: TimelineFormat.Style = .text
    @Option(help: ArgumentHelp("Instead of the timeline: geojson (a track per worker, task places), csv (a row per event) or html (one self-contained page: map, slider, timeline).", valueName: "kind"))
    var export: TimelineExport.Kind?
    @Option(name: .shortAndLong, help: ArgumentHelp("Write to this file instead of standard output.", valueName: "file"))
    var output: String?
    @Option(name: .customLong("into-tenant"), help: ArgumentHelp("Instead of printing: publish the window's events into this (sandbox) tenant, with new ids and the original times in their metadata.", valueName: "id"))
    var intoTenant: String?
    @Option(help: ArgumentHelp("With --into-tenant: 1x (as it happened), 10x, 0.5x, or max.", valueName: "speed"))
    var speed = "1x"
    @Option(help: ArgumentHelp("Instead of a timeline: the tenant's state at this instant (workers' last positions, tasks, stock, unread notifications).", valueName: "time"))
    var at: String?
    @Option(parsing: .upToNextOption, help: ArgumentHelp("Instead of a timeline: what changed in the state between two instants.", valueName: "from to"))
    var diff: [String] = []
    @Option(help: ArgumentHelp("Time zone for times typed without one and for the text output: Europe/Berlin, UTC, +01:00. Defaults to $TZ, then the system's.", valueName: "zone"))
    var tz: String?

    func validate() throws {
        guard diff.isEmpty || diff.count == 2 else { throw ValidationError("--diff takes two instants: --diff 14:00 14:30") }
        guard [from != nil, at != nil, !diff.isEmpty].filter({ $0 }).count == 1 else {
            throw ValidationError("give one of --from (a timeline), --at (the state at an instant) or --diff FROM TO (what changed)")
        }
        if let bbox { _ = try Self.box(bbox) }
        if intoTenant != nil {
            _ = try Self.speedFactor(speed)
            guard from != nil else { throw ValidationError("--into-tenant replays a window: give --from (and --to)") }
        }
        if intoTenant != nil, export != nil { throw ValidationError("--into-tenant and --export do not go together") }
        if let tz, ReplayTime.zoneNamed(tz) == nil { throw ValidationError("unknown time zone \"\(tz)\" (use Europe/Berlin, UTC or +01:00)") }
    }

    /// `10x` → 10; `max` → nil (as fast as possible).
    static func speedFactor(_ text: String) throws -> Double? {
        if text == "max" { return nil }
        guard text.hasSuffix("x"), let factor = Double(text.dropLast()), factor > 0, factor <= 10_000 else {
            throw ValidationError("--speed is a factor like 1x, 10x or 0.5x, or max")
        }
        return factor
    }

    static func box(_ text: String) throws -> (minLat: Double, minLon: Double, maxLat: Double, maxLon: Double) {
        let parts = text.split(separator: ",").map { Double($0.trimmingCharacters(in: .whitespaces)) }
        guard parts.count == 4, let south = parts[0], let west = parts[1], let north = parts[2], let east = parts[3],
              (-90...90).contains(south), (-90...90).contains(north), (-180...180).contains(west), (-180...180).contains(east),
              south <= north, west <= east else {
            throw ValidationError("--bbox is south,west,north,east in degrees, e.g. 52.50,13.35,52.54,13.45")
        }
        return (south, west, north, east)
    }

    func run() async throws {
        let zone = tz.flatMap(ReplayTime.zoneNamed) ?? TimeZone.current
        let now = Int64(Date().timeIntervalSince1970 * 1_000)
        func instant(_ text: String) throws -> Int64 {
            do {
                return try ReplayTime.parse(text, now: now, zone: zone)
            } catch {
                throw ValidationError(error.description)
            }
        }
        if let at {
            return try await showState(at: try instant(at), zone: zone)
        }
        if diff.count == 2 {
            return try await showChanges(from: try instant(diff[0]), to: try instant(diff[1]), zone: zone)
        }
        let start = try instant(from ?? "now"), end = try instant(to)
        guard start <= end else {
            throw ValidationError("--from (\(ReplayTime.format(start, zone: zone))) is after --to (\(ReplayTime.format(end, zone: zone)))")
        }
        var filter = ReplayFilter()
        filter.workers = Set(workers)
        filter.rooms = Set(rooms)
        filter.tasks = Set(tasks)
        filter.streams = Set(streams)
        filter.eventTypes = Set(eventTypes)
        filter.box = try bbox.map(Self.box)

        let reader: TimelineReader
        let names: [String]
        let coverage: [StreamCoverage]
        do {
            reader = try TimelineReader(redisURL: connection.resolvedRedisURL, tenant: connection.resolvedTenant, from: start, to: end, filter: filter)
            names = try await reader.streams()
            coverage = try await reader.coverage(of: names)
        } catch {
            throw CommandFailure("cannot read the streams of tenant \(connection.resolvedTenant) at \(connection.resolvedRedisURL): \(error)")
        }
        if let intoTenant {
            return try await republish(reader, streams: names, into: intoTenant, from: start, to: end, coverage: coverage, zone: zone)
        }
        let sink = try Sink(path: self.output)
        defer { sink.close() }
        let output = TimelineFormat(style: format, zone: zone, from: start, to: end)
        var exporter = export.map { _ in TimelineExport(tenant: connection.resolvedTenant, from: start, to: end, zone: zone) }
        switch export {
        case nil: output.header(tenant: connection.resolvedTenant, from: start, to: end, coverage: coverage, filter: filter).forEach(sink.write)
        case .csv: sink.write(TimelineExport.csvHeader)
        case .geojson, .html: break
        }
        if export != nil {
            // Exports carry no header: what is missing goes to standard error, plainly.
            for gap in coverage where gap.missingUntil != nil {
                FileHandle.standardError.write(Data("fieldops replay: INCOMPLETE \(gap.stream): entries up to \(ReplayTime.format(gap.missingUntil!, zone: zone)) were trimmed or deleted, after this window began\n".utf8))
            }
        }
        // Progress only when the output goes to a file and a person watches the terminal.
        let bar = isatty(STDERR_FILENO) == 1 && (self.output != nil || Self.isRegularFile(STDOUT_FILENO)) ? ProgressBar() : nil
        let started = ContinuousClock.now
        var matched = 0
        let read = try await reader.read(names, progress: { time, read in
            let seconds = (ContinuousClock.now - started).secondsValue
            let fraction = Double(time - start) / Double(max(1, end - start))
            let eta = fraction > 0 ? seconds / fraction - seconds : 0
            bar?.update(done: Int(fraction * 1_000), total: 1_000, label: String(format: "%.0f entries/s, about %.0f s left", Double(read) / max(seconds, 0.001), eta), counts: "\(read) entries")
        }) { entry in
            matched += 1
            switch export {
            case nil: sink.write(output.line(entry))
            case .csv: sink.write(TimelineExport.csvLine(entry))
            case .geojson, .html: exporter?.add(entry)
            }
        }
        bar?.finish()
        switch export {
        case nil: output.footer(matched: matched, read: read).forEach(sink.write)
        case .csv: break
        case .geojson: sink.write(exporter!.geojson())
        case .html: sink.write(exporter!.html())
        }
        if let path = self.output, isatty(STDERR_FILENO) == 1 {
            FileHandle.standardError.write(Data("wrote \(matched) events to \(path)\n".utf8))
        }
    }

    /// Standard output (through `say`, so tests see it) or a file.
    final class Sink {
        let handle: FileHandle?

        init(path: String?) throws {
            guard let path else {
                handle = nil
                return
            }
            guard FileManager.default.createFile(atPath: path, contents: nil), let handle = FileHandle(forWritingAtPath: path) else {
                throw CommandFailure("cannot write \(path)")
            }
            self.handle = handle
        }

        func write(_ line: String) {
            guard let handle else { return say(line) }
            handle.write(Data((line + "\n").utf8))
        }

        func close() {
            try? handle?.close()
        }
    }

    /// Plays the window into another tenant.
    func republish(_ reader: TimelineReader, streams: [String], into target: String, from start: Int64, to end: Int64, coverage: [StreamCoverage], zone: TimeZone) async throws {
        let factor = try Self.speedFactor(speed)
        let republisher: Republisher
        do {
            republisher = try Republisher(redisURL: connection.resolvedRedisURL, source: connection.resolvedTenant, target: target, speed: factor)
        } catch let error as Republisher.SameTenant {
            throw ValidationError(error.description)
        } catch {
            throw ValidationError("--into-tenant: \(error)")
        }
        for gap in coverage where gap.missingUntil != nil {
            say("! INCOMPLETE \(gap.stream): entries up to \(ReplayTime.format(gap.missingUntil!, zone: zone)) were trimmed or deleted; they cannot be replayed.")
        }
        let span = Double(end - start) / 1_000
        say("replaying tenant \(connection.resolvedTenant) \(ReplayTime.format(start, zone: zone)) → \(ReplayTime.format(end, zone: zone)) into \(target) "
            + (factor.map { String(format: "at %gx: at most %.0f s", $0, span / $0) } ?? "as fast as possible"))
        let interactive = isatty(STDERR_FILENO) == 1
        let report = try await republisher.run(reader, streams: streams) { report in
            if interactive { FileHandle.standardError.write(Data("\r\u{1B}[K\(report.published) published, \(report.repeated) already there".utf8)) }
        }
        if interactive { FileHandle.standardError.write(Data("\n".utf8)) }
        say("published \(report.published) events into \(target)" + (report.repeated > 0 ? "; \(report.repeated) were already there from an earlier run" : ""))
    }

    /// Folds the tenant's streams up to `instant` and prints the state.
    func showState(at instant: Int64, zone: TimeZone) async throws {
        let fold = try TenantFold(redisURL: connection.resolvedRedisURL, tenant: connection.resolvedTenant)
        try await advance(fold, to: instant)
        let output = TimelineFormat(style: format, zone: zone, from: instant, to: instant)
        output.state(try await fold.snapshot(), tenant: connection.resolvedTenant, coverage: try await historyCoverage(), refused: fold.refused).forEach(say)
    }

    /// Folds to `from`, then on to `to`, and prints what changed.
    func showChanges(from start: Int64, to end: Int64, zone: TimeZone) async throws {
        guard start <= end else {
            throw ValidationError("the first --diff instant (\(ReplayTime.format(start, zone: zone))) is after the second (\(ReplayTime.format(end, zone: zone)))")
        }
        let fold = try TenantFold(redisURL: connection.resolvedRedisURL, tenant: connection.resolvedTenant)
        try await advance(fold, to: start)
        let before = try await fold.snapshot()
        try await advance(fold, to: end)
        let after = try await fold.snapshot()
        let output = TimelineFormat(style: format, zone: zone, from: start, to: end)
        output.changes(after.changes(since: before), tenant: connection.resolvedTenant, from: start, to: end, coverage: try await historyCoverage()).forEach(say)
    }

    private func advance(_ fold: TenantFold, to instant: Int64) async throws {
        let bar = isatty(STDERR_FILENO) == 1 && !Self.isPipe(STDOUT_FILENO) ? ProgressBar() : nil
        let started = ContinuousClock.now, first = max(fold.position, 0)
        do {
            try await fold.advance(to: instant) { time, read in
                let seconds = (ContinuousClock.now - started).secondsValue
                let fraction = Double(time - first) / Double(max(1, instant - first))
                bar?.update(done: Int(fraction * 1_000), total: 1_000, label: String(format: "folded, %.0f entries/s", Double(read) / max(seconds, 0.001)), counts: "\(read) entries")
            }
        } catch {
            throw CommandFailure("cannot fold the streams of tenant \(connection.resolvedTenant) at \(connection.resolvedRedisURL): \(error)")
        }
        bar?.finish()
    }

    /// Coverage of everything from the beginning: a state needs every entry ever written.
    private func historyCoverage() async throws -> [StreamCoverage] {
        let reader = try TimelineReader(redisURL: connection.resolvedRedisURL, tenant: connection.resolvedTenant, from: 0, to: Int64.max / 2, filter: ReplayFilter())
        return try await reader.coverage(of: try await reader.streams())
    }

    static func isPipe(_ descriptor: Int32) -> Bool {
        var status = stat()
        return fstat(descriptor, &status) == 0 && (status.st_mode & S_IFMT) == S_IFIFO
    }

    static func isRegularFile(_ descriptor: Int32) -> Bool {
        var status = stat()
        return fstat(descriptor, &status) == 0 && (status.st_mode & S_IFMT) == S_IFREG
    }
}

extension TimelineFormat.Style: ExpressibleByArgument {}
extension TimelineExport.Kind: ExpressibleByArgument {}
