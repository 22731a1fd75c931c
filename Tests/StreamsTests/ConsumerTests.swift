import Foundation
import Redis
import Streams
import Synchronization
import Testing

struct HandlerFailure: Error, CustomStringConvertible {
    let description: String
}

@Suite("StreamConsumer against a real redis-server")
final class ConsumerTests {
    let context: StreamTestContext

    init() throws {
        context = try StreamTestContext()
    }

    /// Starts `subscribe` in a task; returns the task.
    func start(
        _ consumer: StreamConsumer,
        eventTypes: Set<String>? = nil,
        handler: @escaping @Sendable (StreamEvent) async throws -> Void
    ) -> Task<Void, any Error> {
        Task { try await consumer.subscribe(eventTypes: eventTypes, handler: handler) }
    }

    @Test func deliversInOrderAcknowledgesAndRecordsTheCheckpoint() async throws {
        try await context.prepare("taskAssignments", group: "notifier")
        let producer = try context.producer("taskAssignments")
        var ids: [String] = []
        for n in 0..<20 { ids.append(try await producer.publish(eventType: "task.created", payload: #"{"n":\#(n)}"#, routing: ["taskId": "t\(n)"])) }

        let consumer = try context.consumer("taskAssignments", group: "notifier", name: "node-1")
        let seen = Seen()
        let task = start(consumer) { seen.add($0) }
        try await eventually { seen.count == 20 }
        #expect(seen.all.map(\.id) == ids)
        #expect(seen.all.first?.routingValue("taskId") == "t0")
        #expect(seen.all.first?.tenant == "acme")
        try await eventually { try await consumer.pending().isEmpty }
        #expect(try await consumer.checkpoint() == ids.last)
        let info = try await context.groups().groupInfo(stream: "taskAssignments", group: "notifier")
        #expect(info.consumers.first?.lastAcknowledgedID == ids.last)
        #expect(info.group.lag == 0)
        consumer.close()
        try await task.value
    }

    @Test func filtersByEventTypeAndAcknowledgesTheRest() async throws {
        try await context.prepare("taskAssignments", group: "notifier")
        let producer = try context.producer("taskAssignments")
        for type in ["task.created", "task.assigned", "task.completed", "task.assigned"] {
            try await producer.publish(eventType: type, payload: "{}")
        }
        let consumer = try context.consumer("taskAssignments", group: "notifier", name: "node-1")
        let seen = Seen()
        let task = start(consumer, eventTypes: ["task.assigned"]) { seen.add($0) }
        try await eventually { seen.count == 2 }
        try await eventually { try await context.groups().listGroups(stream: "taskAssignments").first?.pending == 0 }
        #expect(seen.all.map(\.eventType) == ["task.assigned", "task.assigned"])
        consumer.close()
        try await task.value
    }

    @Test func refusesMissingGroupAndDuplicateConsumerName() async throws {
        try await context.manager().createStream(name: "notifications")
        let orphan = try context.consumer("notifications", group: "nobody", name: "c1")
        let missing = await expectStreamError(.groupNotFound) { try await orphan.subscribe { _ in } }
        #expect(missing?.message.contains("create it before consumers join") == true)
        await expectStreamError(.invalidConsumerName) { _ = try self.context.consumer("notifications", group: "g", name: "") }

        try await context.groups().createGroup(stream: "notifications", group: "notifier")
        let first = try context.consumer("notifications", group: "notifier", name: "twin")
        let running = start(first) { _ in }
        try await eventually { try await context.groups().consumers(stream: "notifications", group: "notifier").count == 1 }
        let second = try context.consumer("notifications", group: "notifier", name: "twin")
        await expectStreamError(.consumerNameInUse) { try await second.subscribe { _ in } }
        // A different name joins fine.
        let other = try context.consumer("notifications", group: "notifier", name: "other")
        let otherTask = start(other) { _ in }
        try await eventually { try await context.groups().consumers(stream: "notifications", group: "notifier").count == 2 }
        first.close()
        other.close()
        try await running.value
        try await otherTask.value
        // Once the first let go of the name, it can be used again.
        let third = try context.consumer("notifications", group: "notifier", name: "twin")
        let thirdTask = start(third) { _ in }
        try await Task.sleep(for: .milliseconds(300))
        third.close()
        try await thirdTask.value
    }

    @Test func aCloseThatComesBeforeTheSubscriptionBeginsIsNotLost() async throws {
        try await context.prepare("notifications", group: "notifier")
        let consumer = try context.consumer("notifications", group: "notifier", name: "early")
        // As on a loaded machine: the close arrives before the task runs `subscribe`.
        consumer.close()
        let started = ContinuousClock.now
        let early = start(consumer) { _ in }
        // Were the close lost, cancelling is what would end it, after 10 s.
        let watchdog = Task {
            try? await Task.sleep(for: .seconds(10))
            early.cancel()
        }
        try await early.value
        watchdog.cancel()
        #expect(ContinuousClock.now - started < .seconds(8), "subscribe ran on after close()")
        // The close is used up: the same consumer subscribes again until the next close.
        let again = start(consumer) { _ in }
        try await eventually { try await context.groups().consumers(stream: "notifications", group: "notifier").count == 1 }
        consumer.close()
        try await again.value
    }

    @Test func entriesOfAConsumerKilledMidBatchAreReclaimedByAnother() async throws {
        try await context.prepare("taskAssignments", group: "notifier")
        let producer = try context.producer("taskAssignments")
        for n in 0..<10 { try await producer.publish(eventType: "task.created", payload: #"{"n":\#(n)}"#) }

        // The first consumer takes the batch, handles three entries, then dies before acknowledging.
        let doomed = try context.consumer("taskAssignments", group: "notifier", name: "doomed")
        let started = Seen()
        let doomedTask = start(doomed) { event in
            started.add(event)
            if started.count > 3 { try await Task.sleep(for: .seconds(60)) }
        }
        try await eventually { started.count == 4 }
        doomedTask.cancel()
        _ = await doomedTask.result
        let stuck = try await context.groups().pending(stream: "taskAssignments", group: "notifier", consumer: "doomed")
        #expect(stuck.count == 7)

        let rescuer = try context.consumer("taskAssignments", group: "notifier", name: "rescuer")
        let rescued = Seen()
        let rescuerTask = start(rescuer) { rescued.add($0) }
        try await eventually { rescued.count == 7 }
        #expect(rescued.payloads == (3..<10).map { #"{"n":\#($0)}"# })
        try await eventually { try await context.groups().listGroups(stream: "taskAssignments").first?.pending == 0 }
        rescuer.close()
        try await rescuerTask.value
    }

    @Test func restartedConsumerGetsItsOwnPendingEntriesFirst() async throws {
        try await context.prepare("notifications", group: "notifier")
        let producer = try context.producer("notifications")
        for n in 0..<5 { try await producer.publish(eventType: "notification.created", payload: #"{"n":\#(n)}"#) }
        let redis = try context.connection()
        // Delivered to "node-1" by a previous run that crashed before acknowledging.
        try redis.command("XREADGROUP", "GROUP", "notifier", "node-1", "COUNT", "5", "STREAMS", "tenant:{acme}:stream:notifications", ">")
        var slow = StreamConsumer.Configuration.fast
        slow.claimMinIdle = .seconds(60)
        let consumer = try context.consumer("notifications", group: "notifier", name: "node-1", configuration: slow)
        let seen = Seen()
        let task = start(consumer) { seen.add($0) }
        // Well before claimMinIdle: recovered from its own history, not by reclaiming.
        try await eventually(timeout: .seconds(3)) { seen.count == 5 }
        try await eventually { try await consumer.pending().isEmpty }
        consumer.close()
        try await task.value
    }

    @Test func poisonEntryIsDeadLetteredAfterMaxDeliveriesAndTheStreamKeepsFlowing() async throws {
        try await context.prepare("taskAssignments", group: "notifier")
        let producer = try context.producer("taskAssignments")
        try await producer.publish(eventType: "task.created", payload: #"{"n":0}"#)
        let poison = try await producer.publish(eventType: "task.created", payload: #"{"poison":true}"#, routing: ["taskId": "bad"])
        try await producer.publish(eventType: "task.created", payload: #"{"n":2}"#)

        let consumer = try context.consumer("taskAssignments", group: "notifier", name: "node-1")
        let attempts = Mutex(0)
        let seen = Seen()
        let task = start(consumer) { event in
            if event.payload.contains("poison") {
                attempts.withLock { $0 += 1 }
                throw HandlerFailure(description: "cannot parse assignee")
            }
            seen.add(event)
        }
        try await eventually { seen.count == 2 }
        try await producer.publish(eventType: "task.created", payload: #"{"n":3}"#)
        try await eventually { seen.count == 3 }

        let manager = try context.manager()
        try await eventually { try await !manager.deadLetters().isEmpty }
        let letters = try await manager.deadLetters()
        #expect(letters.count == 1)
        let letter = try #require(letters.first)
        #expect(letter.originStream == "taskAssignments")
        #expect(letter.originID == poison)
        #expect(letter.group == "notifier")
        #expect(letter.error == "cannot parse assignee")
        #expect(letter.deliveryCount == 3)
        #expect(letter.fields.contains("taskId") && letter.fields.contains(#"{"poison":true}"#))
        #expect(attempts.withLock { $0 } == 3)
        try await eventually { try await consumer.pending().isEmpty }
        consumer.close()
        try await task.value
    }

    @Test func foreignEntriesMissingFieldsAreDeadLetteredWithAReason() async throws {
        try await context.prepare("resourceUpdates", group: "projector")
        let redis = try context.connection()
        let key = "tenant:{acme}:stream:resourceUpdates"
        let noType = try #require(try redis.command("XADD", key, "*", "payload", "{}").string)
        let noPayload = try #require(try redis.command("XADD", key, "*", "event_type", "resource.adjusted").string)
        let badVersion = try #require(try redis.command("XADD", key, "*", "event_type", "x", "payload", "{}", "schema_version", "two").string)
        // A minimal foreign entry that has what the envelope requires is accepted.
        try redis.command("XADD", key, "*", "event_type", "resource.adjusted", "payload", #"{"qty":3}"#, "resourceId", "r1")

        let consumer = try context.consumer("resourceUpdates", group: "projector", name: "node-1")
        let seen = Seen()
        let task = start(consumer) { seen.add($0) }
        try await eventually { seen.count == 1 }
        #expect(seen.all.first?.routingValue("resourceId") == "r1")
        #expect(seen.all.first?.metadata == "{}")
        let manager = try context.manager()
        try await eventually { try await manager.deadLetters().count == 3 }
        let letters = try await manager.deadLetters()
        #expect(letters.map(\.originID) == [noType, noPayload, badVersion])
        #expect(letters[0].error.contains("no event_type"))
        #expect(letters[1].error.contains("no payload"))
        #expect(letters[2].error.contains("schema_version"))
        try await eventually { try await consumer.pending().isEmpty }
        consumer.close()
        try await task.value
    }

    @Test func deadLettersCanBeRedrivenToTheirOrigin() async throws {
        try await context.prepare("notifications", group: "notifier")
        let producer = try context.producer("notifications")
        try await producer.publish(eventType: "notification.created", payload: #"{"to":"w1"}"#, routing: ["userId": "w1"])
        let healthy = Mutex(false)
        let seen = Seen()
        let consumer = try context.consumer("notifications", group: "notifier", name: "node-1")
        let task = start(consumer) { event in
            guard healthy.withLock({ $0 }) else { throw HandlerFailure(description: "webhook down") }
            seen.add(event)
        }
        let manager = try context.manager()
        try await eventually { try await manager.deadLetters().count == 1 }
        let letter = try #require(try await manager.deadLetters().first)
        healthy.withLock { $0 = true }
        let newID = try await manager.redriveDeadLetter(id: letter.id)
        try await eventually { seen.count == 1 }
        #expect(seen.all.first?.id == newID)
        #expect(seen.all.first?.payload == #"{"to":"w1"}"#)
        #expect(seen.all.first?.routingValue("userId") == "w1")
        #expect(try await manager.deadLetters().isEmpty)
        await expectStreamError(.deadLetterNotFound) { try await manager.redriveDeadLetter(id: letter.id) }
        consumer.close()
        try await task.value
    }

    @Test func closeFinishesAndAcknowledgesTheBatchInHand() async throws {
        try await context.prepare("locationUpdates", group: "projector")
        let producer = try context.producer("locationUpdates")
        _ = try producer.publishBatchBlocking((0..<10).map { ("location.reported", #"{"n":\#($0)}"#, []) })
        let consumer = try context.consumer("locationUpdates", group: "projector", name: "node-1")
        let seen = Seen()
        let task = start(consumer) { event in
            try await Task.sleep(for: .milliseconds(30))
            seen.add(event)
        }
        try await eventually { seen.count >= 2 }
        consumer.close()
        try await task.value
        #expect(seen.count == 10)
        #expect(try await context.groups().listGroups(stream: "locationUpdates").first?.pending == 0)
    }

    /// Each read blocks at most 1 s, so a cancelled consumer stops long before a 30 s block would
    /// end; the bound leaves room for a loaded machine (CI runs the suites in parallel).
    @Test func cancellationIsNoticedLongBeforeTheBlockEnds() async throws {
        try await context.prepare("notifications", group: "notifier")
        var configuration = StreamConsumer.Configuration.fast
        configuration.block = .seconds(30)
        let consumer = try context.consumer("notifications", group: "notifier", name: "node-1", configuration: configuration)
        let task = start(consumer) { _ in }
        try await Task.sleep(for: .milliseconds(300))
        let cancelled = ContinuousClock.now
        task.cancel()
        _ = await task.result
        #expect(ContinuousClock.now - cancelled < .seconds(5))
    }

    @Test func keepsConsumingAcrossARedisRestart() async throws {
        try await context.prepare("chat:ops", group: "projector")
        let producer = try context.producer("chat:ops")
        try await producer.publish(eventType: "message.created", payload: #"{"text":"before"}"#)
        let consumer = try context.consumer("chat:ops", group: "projector", name: "node-1")
        let seen = Seen()
        let task = start(consumer) { seen.add($0) }
        try await eventually { seen.count == 1 }
        try context.server.restart()
        try await producer.publish(eventType: "message.created", payload: #"{"text":"after"}"#)
        try await eventually { seen.count == 2 }
        #expect(seen.payloads == [#"{"text":"before"}"#, #"{"text":"after"}"#])
        consumer.close()
        try await task.value
    }
}

@Suite("StreamConsumer read-ahead")
final class ConsumerReadAheadTests {
    let context: StreamTestContext

    init() throws {
        context = try StreamTestContext()
    }

    @Test func fullBatchesAreReadAheadWithoutLosingOrderOrEntries() async throws {
        try await context.prepare("locationUpdates", group: "projector")
        let producer = try context.producer("locationUpdates")
        let ids = try producer.publishBatchBlocking((0..<103).map { ("location.reported", #"{"n":\#($0)}"#, []) })
        var configuration = StreamConsumer.Configuration.fast
        configuration.batchSize = 10
        let consumer = try context.consumer("locationUpdates", group: "projector", name: "node-1", configuration: configuration)
        let seen = Seen()
        let task = Task { try await consumer.subscribe { seen.add($0) } }
        try await eventually { seen.count == 103 }
        #expect(seen.all.map(\.id) == ids)
        consumer.close()
        try await task.value
        #expect(try await context.groups().listGroups(stream: "locationUpdates").first?.pending == 0)
    }

    @Test func closeAlsoFinishesTheBatchReadAhead() async throws {
        try await context.prepare("locationUpdates", group: "projector")
        let producer = try context.producer("locationUpdates")
        _ = try producer.publishBatchBlocking((0..<40).map { ("location.reported", #"{"n":\#($0)}"#, []) })
        var configuration = StreamConsumer.Configuration.fast
        configuration.batchSize = 10
        let consumer = try context.consumer("locationUpdates", group: "projector", name: "node-1", configuration: configuration)
        let seen = Seen()
        let task = Task {
            try await consumer.subscribe { event in
                seen.add(event)
                if seen.count == 5 { consumer.close() }
            }
        }
        try await task.value
        // The batch in hand (10) and the one read ahead meanwhile (10) were both finished.
        #expect(seen.count == 20)
        let groups = try await context.groups().listGroups(stream: "locationUpdates")
        #expect(groups.first?.pending == 0)
        #expect(groups.first?.lag == 20)
    }
}
