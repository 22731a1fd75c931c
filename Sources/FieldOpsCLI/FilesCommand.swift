import ArgumentParser
import DocumentStore
import FieldOpsServer
import FileStore
import Foundation
import Streams

/// `fieldops files`: maintenance of the attachment store.
struct FilesCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "files",
        abstract: "Maintain the attachment store under STORAGE/files.",
        discussion: """
            Examples:
              fieldops files gc                      # report only
              fieldops files gc --apply              # act on what the report lists
              fieldops files gc --min-age 10m --json --storage /var/lib/fieldops
            """,
        subcommands: [GarbageCollect.self]
    )

    struct GarbageCollect: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "gc",
            abstract: "Find bytes without metadata, metadata without bytes, leftovers of unfinished writes and expired uploads.",
            discussion: """
                Every tenant is checked. Without --apply nothing changes. With it, stray bytes and \
                leftovers are removed, expired uploads dropped, and each file whose bytes are gone \
                gets a file.deleted event (by: gc) in its owner's stream, which the running server \
                projects. Anything younger than --min-age is left alone: it may be a write in flight.
                """
        )

        @OptionGroup var connection: ConnectionOptions
        @OptionGroup var storage: StorageOptions
        @OptionGroup var output: OutputOptions
        @Flag(help: "Act on the findings; without it, only report them.") var apply = false
        @Option(name: .customLong("min-age"), help: ArgumentHelp("Leave alone what is younger than this: 90s, 10m, 1h, 2d.", valueName: "age"))
        var minimumAge = "1h"

        func validate() throws {
            guard durationSeconds(minimumAge) != nil else { throw ValidationError("--min-age takes a number with s, m, h or d, e.g. 10m") }
        }

        func run() async throws {
            let database = URL(fileURLWithPath: storage.databasePath)
            let files = FileStore(root: database.deletingLastPathComponent().appendingPathComponent("files"))
            let store = try DocumentStore(path: database.path)
            let writer = try EventWriter(redisURL: connection.resolvedRedisURL)
            let collector = FileGarbageCollector(files: files, store: store, writer: writer, minimumAge: .seconds(durationSeconds(minimumAge) ?? 3_600))
            let report = try await collector.run(apply: apply)
            if output.json { return try printJSON(report) }
            var table = Table("KIND", "TENANT", "FILE", "PATH", "BYTES", "ACTION")
            for finding in report.findings {
                table.append(finding.kind.rawValue, finding.tenant ?? "-", finding.fileId ?? "-", finding.path, String(finding.bytes), finding.action)
            }
            table.write(empty: "Nothing to collect.")
            var summary = "\(report.healthy) files fine, \(report.findings.count) findings"
            if report.tooYoung > 0 { summary += ", \(report.tooYoung) younger than \(minimumAge) left alone" }
            say(summary + (apply || report.findings.isEmpty ? "." : "; run again with --apply to act on them."))
        }
    }
}
