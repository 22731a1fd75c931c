import ArgumentParser
import Foundation
import Redis
import Streams

/// `fieldops streams`: what XINFO, XPENDING and XLEN tell, readable.
struct StreamsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "streams",
        abstract: "Inspect event streams, consumer groups, pending entries and dead letters.",
        discussion: """
            Examples:
              fieldops streams list --tenant acme
              fieldops streams info taskAssignments --tenant acme
              fieldops streams tail chat:room-7 --count 20 --follow
              fieldops streams groups locationUpdates
              fieldops streams consumers locationUpdates projector
              fieldops streams pending taskAssignments notifier --json
              fieldops streams dead-letters
              fieldops streams dead-letters --redrive 1700000000000-0
            """,
        subcommands: [List.self, Info.self, Tail.self, Groups.self, Consumers.self, Pending.self, DeadLetters.self]
    )
}

/// Opens the pool the streams subcommands share, failing fast when Redis is not there.
struct StreamsSession {
    let pool: RedisConnectionPool
    let manager: StreamManager
    let groups: ConsumerGroupManager

    init(_ options: ConnectionOptions) throws {
        pool = try RedisConnectionPool(url: options.resolvedRedisURL, configuration: .init(maxConnections: 2, connectDeadline: .seconds(1)))
        manager = try StreamManager(pool: pool, tenant: options.resolvedTenant)
        groups = try ConsumerGroupManager(pool: pool, tenant: options.resolvedTenant)
    }

    /// Runs `body`; a stream error is printed as its message (`FieldOpsCommand.advising` adds the
    /// advice when Redis could not be reached).
    func run<T>(_ options: ConnectionOptions, _ body: () async throws -> T) async throws -> T {
        defer { pool.close() }
        do {
            return try await body()
        } catch let error as StreamError where error.message.contains(RedisError.Code.connectionFailed.rawValue) {
            throw CommandFailure(error.message)
        } catch let error as StreamError {
            throw CommandFailure(error.message + " (\(error.code))")
        }
    }
}

extension StreamsCommand {
    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List the tenant's streams with their length and groups.")
        @OptionGroup var connection: ConnectionOptions
        @OptionGroup var output: OutputOptions

        func run() async throws {
            let session = try StreamsSession(connection)
            let infos = try await session.run(connection) {
                var infos: [StreamInfo] = []
                for name in try await session.manager.listStreams() {
                    infos.append(try await session.manager.streamInfo(name: name))
                }
                return infos
            }
            if output.json { return try printJSON(infos) }
            var table = Table("STREAM", "LENGTH", "GROUPS", "LAST ID", "RETENTION", "MAX LENGTH")
            for info in infos {
                table.append(
                    info.name, String(info.length), String(info.groups), info.lastID ?? "-",
                    info.retentionMs.map { $0 == 0 ? "keep" : humanDuration(milliseconds: $0) } ?? "-",
                    info.maxLength.map { $0 == 0 ? "none" : String($0) } ?? "-"
                )
            }
            table.write(empty: "No streams in tenant '\(connection.resolvedTenant)'.")
        }
    }

    struct Info: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Show one stream: length, first and last ids, groups and settings.")
        @OptionGroup var connection: ConnectionOptions
        @OptionGroup var output: OutputOptions
        @Argument(help: "Stream name, e.g. taskAssignments or chat:room-7.") var name: String

        func run() async throws {
            let session = try StreamsSession(connection)
            let info = try await session.run(connection) { try await session.manager.streamInfo(name: name) }
            if output.json { return try printJSON(info) }
            var table = Table("FIELD", "VALUE")
            table.append("stream", info.name)
            table.append("length", String(info.length))
            table.append("first id", info.firstID ?? "-")
            table.append("last id", info.lastID ?? "-")
            table.append("last generated id", info.lastGeneratedID)
            table.append("groups", String(info.groups))
            table.append("created at", info.createdAt ?? "- (created by a plain XADD)")
            table.append("retention", info.retentionMs.map { $0 == 0 ? "keep" : humanDuration(milliseconds: $0) } ?? "-")
            table.append("max length", info.maxLength.map { $0 == 0 ? "none" : String($0) } ?? "-")
            table.append("epoch", info.epoch ?? "-")
            say(table.rendered)
        }
    }

    struct Tail: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Print the newest entries; with --follow, keep printing new ones until Ctrl-C.")
        @OptionGroup var connection: ConnectionOptions
        @OptionGroup var output: OutputOptions
        @Argument(help: "Stream name.") var name: String
        @Option(name: .shortAndLong, help: "How many of the newest entries to print first.") var count = 10
        @Flag(name: .shortAndLong, help: "Keep waiting for new entries.") var follow = false

        func validate() throws {
            guard (0...10_000).contains(count) else { throw ValidationError("--count must be between 0 and 10000") }
        }

        func run() async throws {
            let session = try StreamsSession(connection)
            try await session.run(connection) {
                var last = "$"
                if count > 0 {
                    let entries = try await session.manager.lastEntries(name: name, count: count)
                    entries.forEach(printEntry)
                    if let newest = entries.last { last = newest.id }
                }
                if last == "$" {
                    last = (try await session.manager.streamInfo(name: name)).lastGeneratedID
                }
                while follow && !Task.isCancelled {
                    let entries = try await session.manager.entries(name: name, after: last, count: 100, block: .seconds(1))
                    entries.forEach(printEntry)
                    if let newest = entries.last { last = newest.id }
                }
            }
        }

        private func printEntry(_ entry: StreamEntry) {
            if output.json {
                var object: [String: String] = ["id": entry.id]
                var index = 0
                while index + 1 < entry.fields.count {
                    object[entry.fields[index]] = entry.fields[index + 1]
                    index += 2
                }
                let data = (try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes])) ?? Data()
                say(String(decoding: data, as: UTF8.self))
            } else if let event = entry.event {
                let routing = event.routing.map { "\($0.name)=\($0.value)" }.joined(separator: " ")
                say("\(entry.id)  \(event.timestamp)  \(event.eventType)  \(routing.isEmpty ? "" : routing + "  ")\(event.payload)")
            } else {
                say("\(entry.id)  (not an envelope)  \(entry.fields.joined(separator: " "))")
            }
        }
    }

    struct Groups: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List a stream's consumer groups with pending entries and lag.")
        @OptionGroup var connection: ConnectionOptions
        @OptionGroup var output: OutputOptions
        @Argument(help: "Stream name.") var name: String

        func run() async throws {
            let session = try StreamsSession(connection)
            let groups = try await session.run(connection) { try await session.groups.listGroups(stream: name) }
            if output.json { return try printJSON(groups) }
            var table = Table("GROUP", "CONSUMERS", "PENDING", "LAST DELIVERED", "LAG")
            for group in groups {
                table.append(group.name, String(group.consumers), String(group.pending), group.lastDeliveredID, group.lag.map(String.init) ?? "unknown")
            }
            table.write(empty: "Stream '\(name)' has no consumer groups.")
        }
    }

    struct Consumers: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List a group's consumers: state, pending entries, idle time, checkpoint.")
        @OptionGroup var connection: ConnectionOptions
        @OptionGroup var output: OutputOptions
        @Argument(help: "Stream name.") var name: String
        @Argument(help: "Group name.") var group: String
        @Flag(help: "Remove consumers that are disconnected and hold no pending entries.") var reap = false

        func run() async throws {
            let session = try StreamsSession(connection)
            let (consumers, reaped) = try await session.run(connection) {
                let reaped = reap ? try await session.groups.reapConsumers(stream: name, group: group) : []
                return (try await session.groups.consumers(stream: name, group: group), reaped)
            }
            if output.json { return try printJSON(consumers) }
            if !reaped.isEmpty { say("Reaped: \(reaped.joined(separator: ", "))\n") }
            var table = Table("CONSUMER", "STATE", "PENDING", "IDLE", "LAST ACK")
            for consumer in consumers {
                table.append(consumer.name, consumer.state.rawValue, String(consumer.pending), humanDuration(milliseconds: consumer.idleMs), consumer.lastAcknowledgedID ?? "-")
            }
            table.write(empty: "Group '\(group)' has no consumers.")
        }
    }

    struct Pending: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List entries delivered to a group and not yet acknowledged.")
        @OptionGroup var connection: ConnectionOptions
        @OptionGroup var output: OutputOptions
        @Argument(help: "Stream name.") var name: String
        @Argument(help: "Group name.") var group: String
        @Option(help: "Only this consumer's entries.") var consumer: String?
        @Option(name: .shortAndLong, help: "Most entries to list.") var count = 100

        func validate() throws {
            guard (1...10_000).contains(count) else { throw ValidationError("--count must be between 1 and 10000") }
        }

        func run() async throws {
            let session = try StreamsSession(connection)
            let entries = try await session.run(connection) {
                try await session.groups.pending(stream: name, group: group, consumer: consumer, count: count)
            }
            if output.json { return try printJSON(entries) }
            var table = Table("ID", "CONSUMER", "IDLE", "DELIVERIES")
            for entry in entries {
                table.append(entry.id, entry.consumer, humanDuration(milliseconds: entry.idleMs), String(entry.deliveryCount))
            }
            table.write(empty: "Nothing pending in group '\(group)'.")
        }
    }

    struct DeadLetters: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "dead-letters",
            abstract: "List entries that exhausted their retries, or re-drive one to its origin stream."
        )
        @OptionGroup var connection: ConnectionOptions
        @OptionGroup var output: OutputOptions
        @Option(name: .shortAndLong, help: "Most dead letters to list.") var count = 100
        @Option(help: ArgumentHelp("Append this dead letter's entry to its origin stream again and remove it.", valueName: "id"))
        var redrive: String?

        func validate() throws {
            guard (1...10_000).contains(count) else { throw ValidationError("--count must be between 1 and 10000") }
        }

        func run() async throws {
            let session = try StreamsSession(connection)
            if let redrive {
                let newID = try await session.run(connection) { try await session.manager.redriveDeadLetter(id: redrive) }
                if output.json { return try printJSON(["redriven": redrive, "id": newID]) }
                say("Re-drove dead letter \(redrive); its entry is \(newID) now.")
                return
            }
            let letters = try await session.run(connection) { try await session.manager.deadLetters(count: count) }
            if output.json { return try printJSON(letters) }
            var table = Table("ID", "ORIGIN", "ORIGIN ID", "GROUP", "DELIVERIES", "FAILED AT", "ERROR")
            for letter in letters {
                table.append(letter.id, letter.originStream, letter.originID, letter.group, String(letter.deliveryCount), letter.failedAt, letter.error)
            }
            table.write(empty: "No dead letters in tenant '\(connection.resolvedTenant)'.")
        }
    }
}
