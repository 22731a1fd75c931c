import Foundation
import Redis
import Streams
import Testing

@Suite("StreamProducer against a real redis-server")
final class ProducerTests {
    let context: StreamTestContext

    init() throws {
        context = try StreamTestContext()
    }

    @Test func writesTheEnvelopeThenRoutingFieldsInOrder() async throws {
        let producer = try context.producer("taskAssignments")
        let id = try await producer.publish(
            eventType: "task.assigned",
            payload: #"{"taskId":"t1","assigneeId":"w7"}"#,
            metadata: ["source": "dispatch", "note": "line \"1\"\n"],
            routing: ["requestId": "r1", "taskId": "t1", "assigneeId": "w7"]
        )
        let reply = try context.connection().command("XRANGE", "tenant:{acme}:stream:taskAssignments", "-", "+")
        let entry = try #require(reply.array?.first?.array)
        #expect(entry[0].string == id)
        let fields = try #require(entry[1].array).map { $0.string ?? "" }
        #expect(fields.count == 18)
        #expect(Array(fields[0..<4]) == ["event_type", "task.assigned", "payload", #"{"taskId":"t1","assigneeId":"w7"}"#])
        #expect(fields[4] == "timestamp")
        #expect(fields[5].range(of: #"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$"#, options: .regularExpression) != nil)
        #expect(Array(fields[6...]) == [
            "metadata", #"{"note":"line \"1\"\n","source":"dispatch"}"#, "tenant", "acme", "schema_version", "1",
            "requestId", "r1", "taskId", "t1", "assigneeId", "w7",
        ])
        let metadata = try JSONSerialization.jsonObject(with: Data(fields[7].utf8)) as? [String: String]
        #expect(metadata == ["source": "dispatch", "note": "line \"1\"\n"])
    }

    @Test func aRangeReadsStraightIntoEventsSkippingEntriesThatAreNotEnvelopes() async throws {
        let producer = try context.producer("taskAssignments")
        let first = try await producer.publish(eventType: "task.created", payload: #"{"taskId":"t1"}"#, routing: ["taskId": "t1"])
        let key = "tenant:{acme}:stream:taskAssignments"
        let connection = try context.connection()
        // A foreign producer's plain XADD (defaults apply), one with no event type, one of another tenant.
        try connection.command("XADD", key, "*", "event_type", "note", "payload", "{}")
        try connection.command("XADD", key, "*", "payload", "{}")
        let last = try connection.command("XADD", key, "*", "event_type", "x", "payload", "{}", "tenant", "other").string
        let page = try connection.send(["XRANGE", key, "-", "+"]) { try $0.streamEvents(stream: "taskAssignments", tenant: "acme") }
        #expect(page.entries == 4 && page.lastID == last)
        #expect(page.events.map(\.eventType) == ["task.created", "note"])
        #expect(page.events[0].id == first && page.events[0].routingValue("taskId") == "t1" && page.events[0].schemaVersion == 1)
        #expect(page.events[1].timestamp == "" && page.events[1].metadata == "{}" && page.events[1].stream == "taskAssignments")
        let records = try connection.rangeEntries(["XRANGE", key, "-", "+"])
        #expect(page.events == records.compactMap { try? StreamEvent(id: $0.id, stream: "taskAssignments", tenant: "acme", fields: $0.fields ?? []) })
    }

    @Test func encodesTypedPayloads() async throws {
        struct Location: Codable, Equatable { let workerId: String; let lat: Double; let lon: Double }
        let producer = try context.producer("locationUpdates")
        try await producer.publish(eventType: "location.reported", payload: Location(workerId: "w1", lat: 52.5, lon: 13.4), routing: ["workerId": "w1"])
        let entries = try await context.manager().entries(name: "locationUpdates")
        let event = try #require(entries.first?.event)
        #expect(try event.decodePayload(as: Location.self) == Location(workerId: "w1", lat: 52.5, lon: 13.4))
        #expect(event.routingValue("workerId") == "w1")
    }

    @Test func rejectsInvalidInputWithClearErrors() async throws {
        await expectStreamError(.invalidStreamName) { _ = try self.context.producer("bad name!") }
        await expectStreamError(.invalidStreamName) { _ = try self.context.producer("") }
        await expectStreamError(.invalidStreamName) { _ = try self.context.producer("chat:") }
        await expectStreamError(.invalidTenant) { _ = try StreamProducer(redisURL: self.context.url, tenant: "a}b", stream: "x") }
        _ = try context.producer("chat:room-7_b")
        let producer = try context.producer("notifications")
        let empty = await expectStreamError(.invalidEventType) { try await producer.publish(eventType: "", payload: "{}") }
        #expect(empty?.message == "event type is required and cannot be empty")
        await expectStreamError(.invalidEventType) { try await producer.publish(eventType: "   ", payload: "{}") }
        let big = "\"" + String(repeating: "x", count: 1_000_000) + "\""
        let tooLarge = await expectStreamError(.payloadTooLarge) { try await producer.publish(eventType: "note", payload: big) }
        #expect(tooLarge?.message.contains("1000002 bytes") == true)
        await expectStreamError(.invalidField) {
            try await producer.publish(eventType: "note", payload: "{}", routing: ["payload": "sneaky"])
        }
        let length = try context.connection().command("XLEN", "tenant:{acme}:stream:notifications").int
        #expect(length == 0)
    }

    @Test func repeatedIdempotencyKeyAppendsOnce() async throws {
        let producer = try context.producer("taskAssignments")
        let first = try await producer.publishReporting(eventType: "task.created", payload: "{}", idempotencyKey: "req-1")
        let again = try await producer.publishReporting(eventType: "task.created", payload: #"{"changed":true}"#, idempotencyKey: "req-1")
        #expect(first.appended && !again.appended)
        #expect(first.id == again.id)
        let other = try await producer.publish(eventType: "task.created", payload: "{}", idempotencyKey: "req-2")
        #expect(other != first.id)
        let redis = try context.connection()
        #expect(try redis.command("XLEN", "tenant:{acme}:stream:taskAssignments").int == 2)
        let ttl = try redis.command("PTTL", "tenant:{acme}:idem:req-1").int ?? 0
        #expect(ttl > 86_000_000)
    }

    @Test func concurrentDuplicatesAppendOnce() async throws {
        let producer = try context.producer("taskAssignments", configuration: .init(pool: .init(maxConnections: 8)))
        let ids = try await withThrowingTaskGroup(of: String.self) { group in
            for attempt in 0..<64 {
                group.addTask {
                    try await producer.publish(eventType: "task.created", payload: #"{"attempt":\#(attempt)}"#, idempotencyKey: "flaky-retry")
                }
            }
            return try await group.reduce(into: Set<String>()) { $0.insert($1) }
        }
        #expect(ids.count == 1)
        #expect(try context.connection().command("XLEN", "tenant:{acme}:stream:taskAssignments").int == 1)
    }

    @Test func hybridPublishBroadcastsTheEntryWithItsStreamID() async throws {
        let subscriber = RedisSubscriber(configuration: context.server.configuration)
        defer { subscriber.close() }
        await subscriber.subscribe(["tenant:{acme}:channel:chat:room1"])
        let producer = try context.producer("chat:room1", configuration: .init(broadcast: true))
        let id = try await producer.publish(eventType: "message.created", payload: #"{"text":"hi"}"#, routing: ["roomId": "room1", "senderId": "u1", "messageId": "m1"])
        var events = subscriber.events.makeAsyncIterator()
        guard case .message(let channel, let payload) = await events.next() else {
            Issue.record("no broadcast received")
            return
        }
        #expect(channel == "tenant:{acme}:channel:chat:room1")
        let message = try #require(try JSONSerialization.jsonObject(with: Data(payload)) as? [String: String])
        #expect(message["id"] == id)
        #expect(message["stream"] == "chat:room1")
        #expect(message["event_type"] == "message.created")
        #expect(message["roomId"] == "room1")
        #expect(message["payload"] == #"{"text":"hi"}"#)
    }

    @Test func pipelinedBatchReturnsIDsInOrder() throws {
        let producer = try context.producer("locationUpdates")
        let ids = try producer.publishBatchBlocking((0..<100).map { ("location.reported", #"{"n":\#($0)}"#, [("workerId", "w\($0)")]) })
        #expect(ids.count == 100)
        #expect(Set(ids).count == 100)
        let redis = try context.connection()
        let last = try #require(redis.command("XREVRANGE", "tenant:{acme}:stream:locationUpdates", "+", "-", "COUNT", "1").array?.first?.array)
        #expect(last[0].string == ids.last)
    }
}
