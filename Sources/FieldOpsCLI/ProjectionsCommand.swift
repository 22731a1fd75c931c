import ArgumentParser
import DocumentStore
import Foundation
import Projections

/// Where the document store lives.
struct StorageOptions: ParsableArguments {
    @Option(help: ArgumentHelp("Data directory; the document store is DIR/fieldops.sqlite. Defaults to $FIELDOPS_STORAGE, then ./storage.", valueName: "dir"))
    var storage: String?

    var databasePath: String {
        let directory = storage ?? ProcessInfo.processInfo.environment["FIELDOPS_STORAGE"] ?? (FileManager.default.currentDirectoryPath + "/storage")
        return URL(fileURLWithPath: directory).appendingPathComponent("fieldops.sqlite").path
    }

    /// `databasePath` when a store is there: inspecting must not leave an empty one behind in
    /// the wrong directory.
    func existingDatabasePath() throws -> String {
        let path = databasePath
        guard FileManager.default.fileExists(atPath: path) else {
            throw CommandFailure("no document store at \(path); give the server's data directory with --storage or FIELDOPS_STORAGE")
        }
        return path
    }
}

/// `fieldops projections`: the SQLite read model built from the streams.
struct ProjectionsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "projections",
        abstract: "Inspect and rebuild the document store projected from the streams.",
        discussion: """
            Examples:
              fieldops projections status
              fieldops projections status --tenant acme --json
              fieldops projections rebuild --tenant acme
              fieldops projections rebuild --storage /var/lib/fieldops
            """,
        subcommands: [Status.self, Rebuild.self]
    )

    struct Status: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Per stream: checkpoint, stream head, lag in entries and seconds.")
        @OptionGroup var connection: ConnectionOptions
        @OptionGroup var storage: StorageOptions
        @OptionGroup var output: OutputOptions
        @Option(help: "Projector consumer group.") var group = "projector"
        @Flag(help: "Every tenant, not only --tenant.") var allTenants = false

        func run() async throws {
            let store = try DocumentStore(path: storage.existingDatabasePath())
            let statuses = try await ProjectionMaintenance.status(
                redisURL: connection.resolvedRedisURL, store: store, group: group, tenant: allTenants ? nil : connection.resolvedTenant
            )
            if output.json { return try printJSON(statuses) }
            var table = Table("TENANT", "STREAM", "CHECKPOINT", "HEAD", "LAG", "LAG SECONDS")
            for status in statuses {
                table.append(
                    status.tenant, status.stream, status.checkpoint ?? "-", status.head,
                    status.lagEntries.map(String.init) ?? ">\(ProjectionMaintenance.lagCountLimit)", String(format: "%.1f", status.lagSeconds)
                )
            }
            table.write(empty: "No streams to project.")
        }
    }

    struct Rebuild: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Drop a tenant's documents (or every tenant's) and replay the streams into them.",
            discussion: "Stop the server first: events it projects during the replay would be applied out of order. Entries already trimmed from a stream cannot be replayed."
        )
        @OptionGroup var connection: ConnectionOptions
        @OptionGroup var storage: StorageOptions
        @Option(help: "Projector consumer group whose ledger and checkpoints to rebuild.") var group = "projector"
        @Flag(help: "Rebuild every tenant, not only --tenant.") var allTenants = false

        func run() async throws {
            let store = try DocumentStore(path: storage.databasePath)
            let tenant = allTenants ? nil : connection.resolvedTenant
            let bar = ProgressBar()
            let started = ContinuousClock.now
            let report = try await ProjectionMaintenance.rebuild(
                redisURL: connection.resolvedRedisURL, store: store, group: group, tenant: tenant
            ) { step in
                bar.update(done: step.replayed, total: step.total, label: "\(step.tenant)/\(step.stream)")
            }
            bar.finish()
            let seconds = (ContinuousClock.now - started).secondsValue
            say("Rebuilt \(report.tenants.isEmpty ? "nothing" : report.tenants.joined(separator: ", ")): \(report.streams) streams, \(report.replayed) events replayed in \(String(format: "%.1f", seconds)) s; \(report.applied) applied, \(report.failed) failed (see the ledger).")
        }
    }
}

/// A one-line progress bar on standard error, redrawn in place on a terminal and printed every
/// few seconds otherwise (logs, CI).
final class ProgressBar: @unchecked Sendable {
    private let lock = NSLock()
    private let interactive = isatty(STDERR_FILENO) == 1
    private var lastDraw = ContinuousClock.now - .seconds(10)

    /// - Parameter counts: shown instead of "done/total" when given.
    func update(done: Int, total: Int, label: String, counts: String? = nil) {
        lock.lock()
        defer { lock.unlock() }
        let now = ContinuousClock.now
        guard now - lastDraw >= (interactive ? .milliseconds(100) : .seconds(5)) || done == total else { return }
        lastDraw = now
        let fraction = total == 0 ? 1 : Double(done) / Double(total)
        let width = 30
        let filled = Int(fraction * Double(width))
        let line = "[" + String(repeating: "#", count: filled) + String(repeating: "-", count: width - filled) + "] "
            + String(format: "%3.0f%%", fraction * 100) + " \(counts ?? "\(done)/\(total)") \(label)"
        FileHandle.standardError.write(Data(((interactive ? "\r\u{1B}[K" : "") + line + (interactive ? "" : "\n")).utf8))
    }

    func finish() {
        if interactive { FileHandle.standardError.write(Data("\n".utf8)) }
    }
}
