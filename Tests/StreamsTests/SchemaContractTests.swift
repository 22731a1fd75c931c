import Foundation
import Redis
import Streams
import Testing

/// The JSON Schemas under `schemas/` are a public contract: entries the library writes must match them.
@Suite("Published schemas match what the library writes")
final class SchemaContractTests {
    let context: StreamTestContext

    init() throws {
        context = try StreamTestContext()
    }

    static func schema(_ name: String) throws -> [String: Any] {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let data = try Data(contentsOf: root.appendingPathComponent("schemas").appendingPathComponent(name))
        return try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
    }

    /// Checks each field against the schema's `pattern`, `minLength` and `maxLength`.
    func expectConforms(_ fields: [(String, String)], to schema: [String: Any], sourceLocation: SourceLocation = #_sourceLocation) {
        let properties = schema["properties"] as? [String: [String: Any]] ?? [:]
        let names = Set(fields.map(\.0))
        for required in schema["required"] as? [String] ?? [] {
            #expect(names.contains(required), "missing required field \(required)", sourceLocation: sourceLocation)
        }
        if schema["additionalProperties"] as? Bool == false {
            #expect(names.isSubset(of: Set(properties.keys)), "fields outside the schema: \(names.subtracting(properties.keys))", sourceLocation: sourceLocation)
        }
        for (name, value) in fields {
            guard let rules = properties[name] else { continue }
            if let pattern = rules["pattern"] as? String {
                #expect(value.range(of: pattern, options: .regularExpression) != nil, "\(name)='\(value)' does not match \(pattern)", sourceLocation: sourceLocation)
            }
            if let minimum = rules["minLength"] as? Int { #expect(value.count >= minimum, sourceLocation: sourceLocation) }
            if let maximum = rules["maxLength"] as? Int { #expect(value.count <= maximum, sourceLocation: sourceLocation) }
            if rules["contentMediaType"] as? String == "application/json" {
                #expect((try? JSONSerialization.jsonObject(with: Data(value.utf8), options: .fragmentsAllowed)) != nil, "\(name) is not JSON", sourceLocation: sourceLocation)
            }
        }
    }

    func rawFields(_ key: String) throws -> [(String, String)] {
        let reply = try context.connection().command("XRANGE", key, "-", "+", "COUNT", "1")
        let flat = reply.array?.first?.array?[1].array?.map { $0.string ?? "" } ?? []
        return stride(from: 0, to: flat.count - 1, by: 2).map { (flat[$0], flat[$0 + 1]) }
    }

    @Test func producedEntriesMatchTheStreamEntrySchema() async throws {
        let schema = try Self.schema("stream-entry.schema.json")
        let producer = try context.producer("taskAssignments")
        try await producer.publish(
            eventType: "task.assigned", payload: #"{"taskId":"t-17"}"#, metadata: ["source": "dispatch"],
            routing: ["requestId": "req-1", "taskId": "t-17", "assigneeId": "w-42"], idempotencyKey: "req-1"
        )
        let fields = try rawFields("tenant:{acme}:stream:taskAssignments")
        expectConforms(fields, to: schema)
        let written = schema["x-fieldops-written-fields"] as? [String]
        #expect(Array(fields.map(\.0).prefix(6)) == written)
        let properties = (schema["properties"] as? [String: Any]).map { Set($0.keys) }
        #expect(properties == StreamEvent.envelopeFields)
    }

    @Test func theSchemaExampleIsReadAsAnEnvelope() async throws {
        let schema = try Self.schema("stream-entry.schema.json")
        let example = try #require((schema["examples"] as? [[String: String]])?.first)
        try await context.manager().createStream(name: "taskAssignments")
        let ordered = ["event_type", "payload", "timestamp", "metadata", "tenant", "schema_version", "idempotency_key", "requestId", "taskId", "assigneeId"]
        try context.connection().send(["XADD", "tenant:{acme}:stream:taskAssignments", "*"] + ordered.flatMap { [$0, example[$0]!] }).unwrapped()
        let event = try #require(try await context.manager().entries(name: "taskAssignments").first?.event)
        #expect(event.eventType == example["event_type"])
        #expect(event.idempotencyKey == example["idempotency_key"])
        #expect(event.routing.map(\.name) == ["requestId", "taskId", "assigneeId"])
    }

    @Test func deadLettersMatchTheDeadLetterSchema() async throws {
        let schema = try Self.schema("dead-letter.schema.json")
        try await context.prepare("notifications", group: "notifier")
        try context.connection().command("XADD", "tenant:{acme}:stream:notifications", "*", "payload", "{}")
        let consumer = try context.consumer("notifications", group: "notifier", name: "node-1")
        let task = Task { try await consumer.subscribe { _ in } }
        try await eventually { try await self.context.manager().deadLetters().count == 1 }
        consumer.close()
        try await task.value
        expectConforms(try rawFields("tenant:{acme}:stream:deadLetters"), to: schema)
    }

    @Test func channelMessagesMatchTheChannelMessageSchema() async throws {
        let schema = try Self.schema("channel-message.schema.json")
        let subscriber = RedisSubscriber(configuration: context.server.configuration)
        defer { subscriber.close() }
        await subscriber.subscribe(["tenant:{acme}:channel:chat:room-7"])
        let producer = try context.producer("chat:room-7", configuration: .init(broadcast: true))
        try await producer.publish(eventType: "message.created", payload: #"{"text":"on my way"}"#, routing: ["roomId": "room-7"])
        var events = subscriber.events.makeAsyncIterator()
        guard case .message(_, let payload) = await events.next() else {
            Issue.record("no message")
            return
        }
        let message = try #require(try JSONSerialization.jsonObject(with: Data(payload)) as? [String: String])
        expectConforms(message.map { ($0.key, $0.value) }, to: schema)
        expectConforms(message.filter { $0.key != "id" && $0.key != "stream" }.map { ($0.key, $0.value) }, to: try Self.schema("stream-entry.schema.json"))
    }
}

/// The README's library example, run as written against a private Redis.
@Suite("README example")
struct ReadmeExampleTests {
    @Test func theReadmeExampleRuns() async throws {
        let context = try StreamTestContext()
        let url = context.url
        let printed = Seen()

        // --- README example (keep in step with README.md) ---
        let manager = try StreamManager(redisURL: url, tenant: "acme")
        try await manager.ensureStream(name: "taskAssignments", retentionMs: 86_400_000, maxLength: 100_000)
        let groups = try ConsumerGroupManager(redisURL: url, tenant: "acme")
        try await groups.ensureGroup(stream: "taskAssignments", group: "notifier")

        let producer = try StreamProducer(redisURL: url, tenant: "acme", stream: "taskAssignments")
        let id = try await producer.publish(
            eventType: "task.assigned",
            payload: #"{"taskId":"t-17","assigneeId":"w-42"}"#,
            routing: ["requestId": "req-8812", "taskId": "t-17", "assigneeId": "w-42"],
            idempotencyKey: "req-8812"
        )

        let consumer = try StreamConsumer(redisURL: url, tenant: "acme", stream: "taskAssignments", group: "notifier", consumer: "node-1")
        try await consumer.subscribe(eventTypes: ["task.assigned"]) { event in
            print("\(event.id) \(event.eventType) for \(event.routingValue("assigneeId") ?? "?")")
            printed.add(event)
            consumer.close()  // stop after the first one, for the example
        }
        // --- end of README example ---

        #expect(printed.all.map(\.id) == [id])
        #expect(try await groups.checkpoint(stream: "taskAssignments", group: "notifier", consumer: "node-1") == id)
    }
}
