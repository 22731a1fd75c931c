import Foundation
import Redis
import Streams
import Testing

@Suite("EventWriter: conditional, idempotent appends with live writes")
final class EventWriterTests: Sendable {
    let context: StreamTestContext
    let writer: EventWriter

    init() throws {
        context = try StreamTestContext()
        writer = try EventWriter(redisURL: context.url)
    }

    deinit {
        writer.close()
    }

    func draft(_ type: String, _ payload: String = "{}") -> EventWriter.Draft {
        .init(eventType: type, payload: payload, routing: [("taskId", "t1")])
    }

    func live(_ path: String) async throws -> String? {
        try await writer.liveValue(tenant: "acme", path: path)
    }

    func streamLength(_ stream: String) throws -> Int {
        try context.connection().command("XLEN", "tenant:{acme}:stream:\(stream)").int ?? -1
    }

    @Test func appendsEventsAndWritesLivePathsTogether() async throws {
        let outcome = try await writer.append(.init(
            tenant: "acme", stream: "taskAssignments",
            events: [draft("task.created"), draft("task.assigned")],
            conditions: [.init(path: "/tasks/t1/status", .absent)],
            liveWrites: [.set(path: "/tasks/t1/status", json: #""assigned""#)]
        ))
        guard case .appended(let ids) = outcome else { Issue.record("expected appended, got \(outcome)"); return }
        #expect(ids.count == 2)
        #expect(streamIDLess(ids[0], ids[1]))
        #expect(try await live("/tasks/t1/status") == #""assigned""#)
        let indexed = try context.connection().command("ZRANGE", "tenant:{acme}:live:paths", "0", "-1").array?.compactMap(\.string)
        #expect(indexed == ["/tasks/t1/status"])
        let events = try await writer.entries(tenant: "acme", stream: "taskAssignments", from: ids[0], to: ids[1])
        #expect(events.map(\.eventType) == ["task.created", "task.assigned"])
        #expect(events[0].routingValue("taskId") == "t1")
    }

    @Test func aFailedConditionWritesNothingAndReportsTheCurrentValue() async throws {
        _ = try await writer.append(.init(tenant: "acme", stream: "taskAssignments", events: [draft("task.created")], liveWrites: [.set(path: "/tasks/t1/status", json: #""open""#)]))
        let refused = try await writer.append(.init(
            tenant: "acme", stream: "taskAssignments", events: [draft("task.started")],
            conditions: [.init(path: "/tasks/t1/status", .exists), .init(path: "/tasks/t1/status", .oneOf([#""accepted""#, #""assigned""#]))],
            liveWrites: [.set(path: "/tasks/t1/status", json: #""in_progress""#)]
        ))
        #expect(refused == .refused(index: 1, current: #""open""#))
        #expect(try await live("/tasks/t1/status") == #""open""#)
        #expect(try streamLength("taskAssignments") == 1)

        let missing = try await writer.append(.init(tenant: "acme", stream: "taskAssignments", events: [draft("task.started")], conditions: [.init(path: "/tasks/nope/status", .exists)]))
        #expect(missing == .refused(index: 0, current: nil))
    }

    @Test func stockNeverGoesBelowZeroEvenUnderConcurrentTakes() async throws {
        let path = "/resources/r1/quantity"
        _ = try await writer.append(.init(tenant: "acme", stream: "resourceUpdates", events: [draft("resource.created")], liveWrites: [.set(path: path, json: "10")]))
        // 25 concurrent takes of 1 from a stock of 10: exactly 10 succeed.
        let outcomes = try await withThrowingTaskGroup(of: EventWriter.Outcome.self) { group in
            for _ in 0..<25 {
                group.addTask {
                    try await self.writer.append(.init(
                        tenant: "acme", stream: "resourceUpdates", events: [self.draft("resource.adjusted")],
                        conditions: [.init(path: path, .staysNonNegative(delta: -1))],
                        liveWrites: [.increment(path: path, by: -1)]
                    ))
                }
            }
            return try await group.reduce(into: []) { $0.append($1) }
        }
        let appended = outcomes.filter { if case .appended = $0 { return true } else { return false } }
        #expect(appended.count == 10)
        #expect(outcomes.contains(.refused(index: 0, current: "0")))
        #expect(try await live(path) == "0")
        #expect(try streamLength("resourceUpdates") == 11)
    }

    @Test func aRepeatedIdempotencyKeyReturnsTheFirstWritesEntries() async throws {
        let first = try await writer.append(.init(tenant: "acme", stream: "locationUpdates", events: [draft("a"), draft("b"), draft("c")], idempotencyKey: "batch-1"))
        guard case .appended(let ids) = first else { Issue.record("\(first)"); return }
        // The retry carries a condition that would now fail: the first result still wins.
        let again = try await writer.append(.init(tenant: "acme", stream: "locationUpdates", events: [draft("x")], conditions: [.init(path: "/nothing", .exists)], idempotencyKey: "batch-1"))
        #expect(again == .repeated(first: ids[0], last: ids[2]))
        #expect(try streamLength("locationUpdates") == 3)
        let replayed = try await writer.entries(tenant: "acme", stream: "locationUpdates", from: ids[0], to: ids[2])
        #expect(replayed.map(\.eventType) == ["a", "b", "c"])
        #expect(replayed.allSatisfy { $0.idempotencyKey == "batch-1" })
        // Keys belong to one tenant.
        let otherTenant = try await writer.append(.init(tenant: "other", stream: "locationUpdates", events: [draft("a")], idempotencyKey: "batch-1"))
        guard case .appended = otherTenant else { Issue.record("\(otherTenant)"); return }
    }

    @Test func anOlderFixNeverHidesTheNewestPosition() async throws {
        let path = "/workers/w1/location"
        func report(_ recordedAt: Int64) async throws {
            _ = try await writer.append(.init(tenant: "acme", stream: "locationUpdates", events: [draft("location.reported")], liveWrites: [
                .setIfNewer(path: path, json: #"{"lat":1,"lon":2,"recordedAt":\#(recordedAt)}"#, recordedAt: recordedAt),
            ]))
        }
        try await report(2_000)
        try await report(1_000)
        #expect(try await live(path) == #"{"lat":1,"lon":2,"recordedAt":2000}"#)
        try await report(3_000)
        #expect(try await live(path) == #"{"lat":1,"lon":2,"recordedAt":3000}"#)
    }

    @Test func publishesTheLiveChangesItMade() async throws {
        let subscriber = RedisSubscriber(configuration: context.server.configuration)
        defer { subscriber.close() }
        await subscriber.subscribe([try StreamKeys(tenant: "acme").liveChanges])
        var messages = subscriber.events.makeAsyncIterator()
        _ = try await writer.append(.init(tenant: "acme", stream: "resourceUpdates", events: [draft("resource.created")], liveWrites: [
            .set(path: "/resources/r1/quantity", json: "10"), .increment(path: "/resources/r1/quantity", by: -2.5), .delete(path: "/resources/r1/old"),
        ]))
        // An older fix changes nothing, so it publishes nothing: after 5 comes 6, not 4.
        for recordedAt in [5, 4, 6] {
            _ = try await writer.append(.init(tenant: "acme", stream: "locationUpdates", events: [draft("location.reported")], liveWrites: [
                .setIfNewer(path: "/workers/w1/location", json: #"{"recordedAt":\#(recordedAt)}"#, recordedAt: Int64(recordedAt)),
            ]))
        }
        func changes() async throws -> [[String: Any]] {
            guard case .message(_, let payload) = await messages.next() else { throw CancellationError() }
            let body = try #require(try JSONSerialization.jsonObject(with: Data(payload)) as? [String: Any])
            return try #require(body["changes"] as? [[String: Any]])
        }
        let first = try await changes()
        #expect(first.map { $0["path"] as? String } == ["/resources/r1/quantity", "/resources/r1/quantity", "/resources/r1/old"])
        #expect(first.map { $0["op"] as? String } == ["put", "put", "put"])
        #expect((first[0]["data"] as? NSNumber)?.doubleValue == 10)
        #expect((first[1]["data"] as? NSNumber)?.doubleValue == 7.5)
        #expect(first[2]["data"] is NSNull)
        let second = try await changes()
        #expect((second[0]["data"] as? [String: Any])?["recordedAt"] as? Int == 5)
        let third = try await changes()
        #expect((third[0]["data"] as? [String: Any])?["recordedAt"] as? Int == 6)
    }

    @Test func publishesEachEntryWithItsID() async throws {
        let subscriber = RedisSubscriber(configuration: context.server.configuration)
        defer { subscriber.close() }
        await subscriber.subscribe(["tenant:{acme}:channel:taskAssignments"])
        var messages = subscriber.events.makeAsyncIterator()
        let outcome = try await writer.append(.init(tenant: "acme", stream: "taskAssignments", events: [draft("task.created", #"{"taskId":"t1"}"#)]))
        guard case .appended(let ids) = outcome else { Issue.record("\(outcome)"); return }
        guard case .message(_, let payload) = await messages.next() else { Issue.record("no message"); return }
        let body = try #require(try JSONSerialization.jsonObject(with: Data(payload)) as? [String: String])
        #expect(body["id"] == ids[0])
        #expect(body["event_type"] == "task.created")
        #expect(body["taskId"] == "t1")
    }

    @Test func refusesInvalidWritesBeforeTouchingRedis() async throws {
        await expectStreamError(.invalidTenant) { _ = try await self.writer.append(.init(tenant: "no spaces", stream: "s", events: [self.draft("a")])) }
        await expectStreamError(.invalidField) { _ = try await self.writer.append(.init(tenant: "acme", stream: "s", events: [])) }
        await expectStreamError(.invalidField) {
            _ = try await self.writer.append(.init(tenant: "acme", stream: "s", events: [.init(eventType: "a", payload: "{}", routing: [("tenant", "evil")])]))
        }
    }

    func streamIDLess(_ a: String, _ b: String) -> Bool { streamID(a, isLessThan: b) }
}
