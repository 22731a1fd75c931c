import Redis
import Streams
import Testing

@Suite("StreamResume: what a reader missed, or that it must reload")
final class ResumeTests: Sendable {
    let context: StreamTestContext
    let keys: StreamKeys

    init() throws {
        context = try StreamTestContext()
        keys = try StreamKeys(tenant: "acme")
    }

    func append(_ count: Int) throws -> [String] {
        let connection = try context.connection()
        return try (0..<count).map { n in
            try connection.command("XADD", keys.stream("chat:ops"), "*", "event_type", "message.created", "payload", #"{"n":\#(n)}"#).string ?? ""
        }
    }

    @Test func replaysEverythingAfterTheLastSeenIDInOrder() throws {
        let connection = try context.connection()
        let head = try StreamResume.head(connection, keys: keys, stream: "chat:ops")
        #expect(head.lastGeneratedID == "0-0")
        let ids = try append(5)
        // The epoch made for a stream that did not exist yet stays once entries arrive.
        let (now, outcome) = try StreamResume.resume(connection, keys: keys, stream: "chat:ops", after: ids[1], epoch: head.epoch)
        #expect(now.epoch == head.epoch)
        #expect(now.lastGeneratedID == ids[4])
        guard case .complete(let events) = outcome else { Issue.record("\(outcome)"); return }
        #expect(events.map(\.id) == Array(ids[2...]))
        guard case .complete(let none) = try StreamResume.resume(connection, keys: keys, stream: "chat:ops", after: ids[4], epoch: head.epoch).outcome else { Issue.record("not complete"); return }
        #expect(none.isEmpty)
        guard case .complete(let all) = try StreamResume.resume(connection, keys: keys, stream: "chat:ops", after: "0-0", epoch: head.epoch).outcome else { Issue.record("not complete"); return }
        #expect(all.count == 5)
    }

    @Test func aTrimmedGapIsNotRecoverable() throws {
        let connection = try context.connection()
        let epoch = try StreamResume.head(connection, keys: keys, stream: "chat:ops").epoch
        let ids = try append(10)
        _ = try connection.command("XTRIM", keys.stream("chat:ops"), "MAXLEN", "5")
        // The last seen entry is gone: what came after it may be gone too.
        guard case .incomplete = try StreamResume.resume(connection, keys: keys, stream: "chat:ops", after: ids[2], epoch: epoch).outcome else {
            Issue.record("a trimmed gap was called complete"); return
        }
        guard case .incomplete = try StreamResume.resume(connection, keys: keys, stream: "chat:ops", after: "0-0", epoch: epoch).outcome else {
            Issue.record("a trimmed start was called complete"); return
        }
        // Still there: everything after it is too.
        guard case .complete(let events) = try StreamResume.resume(connection, keys: keys, stream: "chat:ops", after: ids[6], epoch: epoch).outcome else {
            Issue.record("a retained id was called incomplete"); return
        }
        #expect(events.map(\.id) == Array(ids[7...]))
        _ = try connection.command("XDEL", keys.stream("chat:ops"), ids[8])
        guard case .incomplete = try StreamResume.resume(connection, keys: keys, stream: "chat:ops", after: ids[6], epoch: epoch).outcome else {
            Issue.record("a deleted entry went unnoticed"); return
        }
    }

    @Test func aRecreatedStreamHasANewEpoch() async throws {
        let connection = try context.connection()
        let epoch = try StreamResume.head(connection, keys: keys, stream: "chat:ops").epoch
        let ids = try append(3)
        try await context.manager().deleteStream(name: "chat:ops")
        _ = try append(3)
        let (head, outcome) = try StreamResume.resume(connection, keys: keys, stream: "chat:ops", after: ids[2], epoch: epoch)
        #expect(head.epoch != epoch)
        guard case .incomplete(let reason) = outcome else { Issue.record("\(outcome)"); return }
        #expect(reason.contains("epoch"))
        guard case .incomplete = try StreamResume.resume(connection, keys: keys, stream: "chat:ops", after: "99999999999999-0", epoch: head.epoch).outcome else {
            Issue.record("an id from the future was accepted"); return
        }
    }
}
