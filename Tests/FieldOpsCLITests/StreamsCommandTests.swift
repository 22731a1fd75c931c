import ArgumentParser
import DocumentStore
import FieldOpsServer
import Projections
@testable import FieldOpsCLI
import Foundation
import Redis
import Streams
import Synchronization
import Testing

/// Runs `fieldops` commands in-process against a private redis-server and collects their output.
final class CLIContext: Sendable {
    let server: RedisServerProcess

    init() throws {
        server = try RedisServerProcess()
    }

    deinit {
        server.destroy()
    }

    /// Runs `fieldops <arguments>` and returns what it printed.
    func run(_ arguments: [String]) async throws -> String {
        let lines = Mutex<[String]>([])
        var command = try FieldOpsCommand.parseAsRoot(arguments)
        try await Console.$write.withValue({ line in lines.withLock { $0.append(line) } }) {
            if var asyncCommand = command as? AsyncParsableCommand {
                try await asyncCommand.run()
            } else {
                try command.run()
            }
        }
        return lines.withLock { $0.joined(separator: "\n") }
    }

    func streams(_ arguments: String...) async throws -> String {
        try await run(["streams"] + arguments + ["--redis-url", server.url, "--tenant", "acme"])
    }

    /// Two streams, a group with one consumer holding one entry, and one dead letter.
    func seed() async throws -> (ids: [String], deadLetter: String) {
        let manager = try StreamManager(redisURL: server.url, tenant: "acme")
        try await manager.createStream(name: "taskAssignments", maxLength: 1_000)
        try await manager.createStream(name: "chat:room-7", retentionMs: 0)
        let producer = try StreamProducer(redisURL: server.url, tenant: "acme", stream: "taskAssignments")
        var ids: [String] = []
        for n in 0..<3 {
            ids.append(try await producer.publish(eventType: "task.assigned", payload: #"{"n":\#(n)}"#, routing: ["taskId": "t\(n)"]))
        }
        try await ConsumerGroupManager(redisURL: server.url, tenant: "acme").createGroup(stream: "taskAssignments", group: "notifier")
        let redis = try RedisConnection(url: server.url)
        try redis.command("XREADGROUP", "GROUP", "notifier", "node-1", "COUNT", "1", "STREAMS", "tenant:{acme}:stream:taskAssignments", ">")
        try redis.command("XADD", "tenant:{acme}:stream:deadLetters", "*", "origin_stream", "taskAssignments", "origin_id", ids[0],
                          "group", "notifier", "consumer", "node-1", "error", "webhook returned 500", "delivery_count", "5",
                          "failed_at", "2026-11-22T14:02:00.000Z", "fields", #"["event_type","task.assigned","payload","{}"]"#)
        let letter = try await manager.deadLetters().first?.id ?? ""
        return (ids, letter)
    }
}

@Suite("fieldops streams against a real redis-server")
final class StreamsCommandTests {
    let context: CLIContext

    init() throws {
        context = try CLIContext()
    }

    @Test func listAndInfoShowStreamsAndSettings() async throws {
        let (ids, _) = try await context.seed()
        let list = try await context.streams("list")
        let lines = list.split(separator: "\n").map(String.init)
        #expect(lines.first?.hasPrefix("STREAM") == true)
        #expect(lines.contains { $0.hasPrefix("taskAssignments") && $0.contains(" 3 ") && $0.contains(ids[2]) && $0.contains("24h0m") && $0.hasSuffix("1000") })
        #expect(lines.contains { $0.hasPrefix("chat:room-7") && $0.contains("keep") })
        let info = try await context.streams("info", "taskAssignments")
        #expect(info.contains("length             3"))
        #expect(info.contains("first id           \(ids[0])"))
        #expect(info.contains("max length         1000"))
        #expect(info.contains("retention          24h0m"))
        let json = try await context.streams("info", "taskAssignments", "--json")
        let decoded = try JSONDecoder().decode(StreamInfo.self, from: Data(json.utf8))
        #expect(decoded.length == 3 && decoded.lastID == ids[2])
    }

    @Test func tailPrintsNewestEntriesReadably() async throws {
        let (ids, _) = try await context.seed()
        let tail = try await context.streams("tail", "taskAssignments", "--count", "2")
        let lines = tail.split(separator: "\n")
        #expect(lines.count == 2)
        #expect(lines[0].hasPrefix(ids[1]))
        #expect(lines[1].contains("task.assigned") && lines[1].contains("taskId=t2") && lines[1].contains(#"{"n":2}"#))
        let json = try await context.streams("tail", "taskAssignments", "--count", "1", "--json")
        let object = try JSONSerialization.jsonObject(with: Data(json.utf8)) as? [String: String]
        #expect(object?["id"] == ids[2])
        #expect(object?["tenant"] == "acme")
    }

    @Test func tailFollowPrintsEntriesAsTheyArrive() async throws {
        _ = try await context.seed()
        let producer = try StreamProducer(redisURL: context.server.url, tenant: "acme", stream: "taskAssignments")
        let lines = Mutex<[String]>([])
        let url = context.server.url
        let follower = Task {
            let command = try FieldOpsCommand.parseAsRoot(["streams", "tail", "taskAssignments", "--count", "0", "--follow", "--redis-url", url, "--tenant", "acme"])
            try await Console.$write.withValue({ line in lines.withLock { $0.append(line) } }) {
                var asyncCommand = command as! AsyncParsableCommand
                try await asyncCommand.run()
            }
        }
        try await Task.sleep(for: .milliseconds(300))
        let id = try await producer.publish(eventType: "task.completed", payload: "{}", routing: ["taskId": "t9"])
        let deadline = ContinuousClock.now + .seconds(5)
        while lines.withLock({ $0.isEmpty }) && ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(20))
        }
        follower.cancel()
        _ = await follower.result
        let seen = lines.withLock { $0 }
        #expect(seen.count == 1)
        #expect(seen.first?.hasPrefix(id) == true && seen.first?.contains("task.completed") == true)
    }

    @Test func groupsConsumersAndPendingShowWhoHoldsWhat() async throws {
        let (ids, _) = try await context.seed()
        let groups = try await context.streams("groups", "taskAssignments")
        #expect(groups.contains("notifier"))
        #expect(groups.split(separator: "\n").last?.split(separator: " ", omittingEmptySubsequences: true).map(String.init) == ["notifier", "1", "1", ids[0], "2"])
        let consumers = try await context.streams("consumers", "taskAssignments", "notifier")
        #expect(consumers.contains("node-1") && consumers.contains("active"))
        let pending = try await context.streams("pending", "taskAssignments", "notifier")
        let row = pending.split(separator: "\n").last?.split(separator: " ", omittingEmptySubsequences: true).map(String.init)
        #expect(row?.first == ids[0])
        #expect(row?[1] == "node-1")
        #expect(row?.last == "1")
        let json = try await context.streams("pending", "taskAssignments", "notifier", "--json")
        #expect(try JSONDecoder().decode([PendingEntry].self, from: Data(json.utf8)).map(\.id) == [ids[0]])
    }

    @Test func deadLettersListAndRedrive() async throws {
        let (_, letter) = try await context.seed()
        let listed = try await context.streams("dead-letters")
        #expect(listed.contains(letter) && listed.contains("webhook returned 500") && listed.contains("taskAssignments"))
        let redriven = try await context.streams("dead-letters", "--redrive", letter)
        #expect(redriven.hasPrefix("Re-drove dead letter \(letter)"))
        #expect(try await context.streams("dead-letters") == "No dead letters in tenant 'acme'.")
        let tail = try await context.streams("tail", "taskAssignments", "--count", "1")
        #expect(tail.contains("task.assigned") && tail.contains("{}"))
    }

    @Test func explainsMistakesClearly() async throws {
        await #expect {
            _ = try await self.context.streams("info", "nothing-here")
        } throws: { error in
            "\(error)".contains("stream 'nothing-here' does not exist in tenant 'acme'") && "\(error)".contains("stream_not_found")
        }
        await #expect {
            _ = try await self.context.streams("info", "bad name")
        } throws: { error in
            "\(error)".contains("invalid_stream_name")
        }
        // Every command that reads Redis says where to look when it cannot reach it.
        let nowhere = ["--redis-url", "unix:///tmp/fieldops-nowhere.sock", "--tenant", "acme"]
        for command in [["streams", "list"], ["replay", "--from=-1h"]] {
            await #expect {
                _ = try await self.context.run(command + nowhere)
            } throws: { error in
                let shown = "\(FieldOpsCommand.advising(error))"
                return shown.contains("cannot connect to unix:///tmp/fieldops-nowhere.sock") && shown.contains("Is `fieldops serve` running here?")
            }
        }
        #expect(throws: (any Error).self) {
            _ = try FieldOpsCommand.parseAsRoot(["streams", "pending", "s", "g", "--count", "0"])
        }
        #expect(throws: (any Error).self) {
            _ = try FieldOpsCommand.parseAsRoot(["streams", "list", "--redis-url", "http://example.com"])
        }
    }

    @Test func benchPrintsFiguresBesideRedisBenchmark() async throws {
        let output = try await context.run([
            "bench", "streams", "--redis-url", context.server.url, "--count", "50", "--pipelined-count", "256",
            "--consume-count", "256", "--batch", "100", "--rounds", "1",
        ])
        let rows = output.split(separator: "\n")
        let oneAtATime = try #require(rows.first { $0.hasPrefix("XADD one at a time") })
        #expect(oneAtATime.split(separator: " ", omittingEmptySubsequences: true).filter { $0.hasSuffix("/s") }.count == 2)
        #expect(rows.contains { $0.hasPrefix("XADD pipelined (-c 1 -P 64)") })
        #expect(rows.contains { $0.hasPrefix("consume + ack (batch 100)") })
        // The benchmark cleans up after itself.
        let redis = try RedisConnection(url: context.server.url)
        #expect(try redis.command("EXISTS", "tenant:{bench}:stream:bench", "tenant:{bench}:stream:reference").int == 0)
    }
}

@Suite("fieldops projections against a real redis-server and SQLite file")
final class ProjectionsCommandTests {
    let context: CLIContext
    let storage: String

    init() throws {
        context = try CLIContext()
        storage = NSTemporaryDirectory() + "fo-cli-\(UUID().uuidString.prefix(8))"
    }

    deinit {
        try? FileManager.default.removeItem(atPath: storage)
    }

    func projections(_ arguments: String...) async throws -> String {
        try await context.run(["projections"] + arguments + ["--redis-url", context.server.url, "--tenant", "acme", "--storage", storage])
    }

    @Test func rebuildThenStatusShowsNoLag() async throws {
        let producer = try StreamProducer(redisURL: context.server.url, tenant: "acme", stream: "taskAssignments")
        for n in 0..<5 {
            try await producer.publish(eventType: "task.created", payload: #"{"taskId":"t\#(n)","title":"Task \#(n)"}"#)
        }
        try await producer.publish(eventType: "task.started", payload: #"{"taskId":"t0"}"#)
        await #expect {
            _ = try await self.projections("status")
        } throws: { error in
            "\(error)".contains("no document store at \(self.storage)/fieldops.sqlite")
        }
        #expect(!FileManager.default.fileExists(atPath: storage), "status leaves no empty store behind")
        // A server that has not projected anything yet.
        try FileManager.default.createDirectory(atPath: storage, withIntermediateDirectories: true)
        _ = try DocumentStore(path: storage + "/fieldops.sqlite")
        let before = try await projections("status")
        #expect(before.contains("acme") && before.contains("taskAssignments") && before.contains("  6  "))
        let rebuilt = try await projections("rebuild")
        #expect(rebuilt.hasPrefix("Rebuilt acme: 1 streams, 6 events replayed"))
        #expect(rebuilt.contains("5 applied, 1 failed"))
        let json = try await projections("status", "--json")
        let statuses = try JSONDecoder().decode([ProjectionStatus].self, from: Data(json.utf8))
        #expect(statuses.map(\.lagEntries) == [0])
        let store = try DocumentStore(path: storage + "/fieldops.sqlite")
        #expect(try await store.count(tenant: "acme", Query("tasks")) == 5)
    }
}

@Suite("fieldops token")
struct TokenCommandTests {
    @Test func mintsATokenTheServerAccepts() async throws {
        let storage = NSTemporaryDirectory() + "fo-token-\(UUID().uuidString.prefix(8))"
        defer { try? FileManager.default.removeItem(atPath: storage) }
        /// The printed lines and warnings of one `token create` on the storage.
        func create(sub: String) async throws -> (lines: [String], warnings: [String]) {
            let lines = Mutex<[String]>([]), warnings = Mutex<[String]>([])
            let command = try FieldOpsCommand.parseAsRoot(["token", "create", "--tenant", "acme", "--sub", sub, "--role", "worker", "--storage", storage])
            try await Console.$write.withValue({ line in lines.withLock { $0.append(line) } }) {
                try await Console.$warn.withValue({ line in warnings.withLock { $0.append(line) } }) {
                    var asyncCommand = try #require(command as? AsyncParsableCommand)
                    try await asyncCommand.run()
                }
            }
            return (lines.withLock { $0 }, warnings.withLock { $0 })
        }
        let first = try await create(sub: "w-42")
        let token = try #require(first.lines.first)
        #expect(token.split(separator: ".").count == 3)
        // A new secret is said to be new, on standard error, so a token minted in the wrong
        // directory is not a mystery 401; the next token uses it without a word.
        #expect(first.warnings == ["made a new signing secret at \(storage)/jwt-secret: only a fieldops serve with --storage \(storage) accepts this token"])
        #expect(try await create(sub: "w-43").warnings.isEmpty)
        // The secret was created once and is reused: the same authority verifies the token.
        let authority = try await TokenAuthority.load(storage: URL(fileURLWithPath: storage))
        let identity = try await authority.verify(token)
        #expect(identity == Identity(tenant: "acme", subject: "w-42", role: .worker))
        let secretFile = storage + "/jwt-secret"
        let permissions = try FileManager.default.attributesOfItem(atPath: secretFile)[.posixPermissions] as? Int
        #expect(permissions == 0o600)
        #expect(throws: (any Error).self) {
            _ = try FieldOpsCommand.parseAsRoot(["token", "create", "--tenant", "acme", "--sub", "x", "--role", "root"])
        }

        // A damaged secret is refused, never replaced: a new one would void every token.
        try Data("not a secret\n".utf8).write(to: URL(fileURLWithPath: secretFile))
        await #expect {
            _ = try await create(sub: "w-44")
        } throws: { error in
            "\(error)".contains("\(secretFile) must hold a base64 secret of at least 32 bytes")
        }
        #expect(try String(contentsOfFile: secretFile, encoding: .utf8) == "not a secret\n")
    }
}
