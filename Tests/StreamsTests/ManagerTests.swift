import Foundation
import Redis
import Streams
import Testing

@Suite("StreamManager and ConsumerGroupManager against a real redis-server")
final class ManagerTests {
    let context: StreamTestContext

    init() throws {
        context = try StreamTestContext()
    }

    @Test func createsInspectsListsAndDeletesStreams() async throws {
        let manager = try context.manager()
        let created = try await manager.createStream(name: "resourceUpdates", maxLength: 5_000)
        #expect(created.length == 0)
        #expect(created.retentionMs == 86_400_000)
        #expect(created.maxLength == 5_000)
        #expect(created.createdAt != nil && created.epoch != nil)
        await expectStreamError(.streamExists) { try await manager.createStream(name: "resourceUpdates") }
        let ensured = try await manager.ensureStream(name: "resourceUpdates")
        #expect(ensured.epoch == created.epoch)

        let producer = try context.producer("resourceUpdates")
        let first = try await producer.publish(eventType: "resource.adjusted", payload: "{}")
        let last = try await producer.publish(eventType: "resource.adjusted", payload: "{}")
        try await context.groups().createGroup(stream: "resourceUpdates", group: "projector")
        let info = try await manager.streamInfo(name: "resourceUpdates")
        #expect(info.length == 2 && info.firstID == first && info.lastID == last && info.groups == 1)

        try await manager.createStream(name: "chat:room1", retentionMs: 0)
        #expect(try await manager.listStreams() == ["chat:room1", "resourceUpdates"])

        try await manager.deleteStream(name: "resourceUpdates")
        await expectStreamError(.streamNotFound) { _ = try await manager.streamInfo(name: "resourceUpdates") }
        await expectStreamError(.streamNotFound) { try await manager.deleteStream(name: "resourceUpdates") }
        let recreated = try await manager.createStream(name: "resourceUpdates")
        #expect(recreated.epoch != created.epoch)
    }

    @Test func tenantsDoNotSeeEachOthersStreams() async throws {
        try await context.manager().createStream(name: "notifications")
        let other = try StreamManager(redisURL: context.url, tenant: "globex")
        #expect(try await other.listStreams().isEmpty)
        await expectStreamError(.streamNotFound) { _ = try await other.streamInfo(name: "notifications") }
    }

    @Test func managesGroups() async throws {
        let groups = try context.groups()
        await expectStreamError(.streamNotFound) { try await groups.createGroup(stream: "taskAssignments", group: "notifier") }
        try await context.manager().createStream(name: "taskAssignments")
        let producer = try context.producer("taskAssignments")
        for n in 0..<3 { try await producer.publish(eventType: "task.created", payload: #"{"n":\#(n)}"#) }
        try await groups.createGroup(stream: "taskAssignments", group: "notifier")
        try await groups.createGroup(stream: "taskAssignments", group: "live", startID: "$")
        await expectStreamError(.groupExists) { try await groups.createGroup(stream: "taskAssignments", group: "notifier") }
        await expectStreamError(.invalidGroupName) { try await groups.createGroup(stream: "taskAssignments", group: "bad group") }
        await expectStreamError(.invalidMessageID) { try await groups.createGroup(stream: "taskAssignments", group: "g", startID: "yesterday") }

        let listed = try await groups.listGroups(stream: "taskAssignments")
        #expect(listed.map(\.name) == ["live", "notifier"])
        #expect(listed.first { $0.name == "notifier" }?.lag == 3)
        #expect(listed.first { $0.name == "live" }?.lag == 0)

        try await groups.deleteGroup(stream: "taskAssignments", group: "live")
        await expectStreamError(.groupNotFound) { try await groups.deleteGroup(stream: "taskAssignments", group: "live") }
        await expectStreamError(.groupNotFound) { _ = try await groups.groupInfo(stream: "taskAssignments", group: "live") }
    }

    @Test func consumerStatesFollowIdleTimeAndDisconnectedEmptyConsumersAreReaped() async throws {
        try await context.prepare("notifications", group: "notifier")
        let producer = try context.producer("notifications")
        try await producer.publish(eventType: "notification.created", payload: "{}")
        try await producer.publish(eventType: "notification.created", payload: "{}")
        let redis = try context.connection()
        // "holder" keeps one entry pending; "done" read and acknowledged its entry.
        let held = try redis.command("XREADGROUP", "GROUP", "notifier", "holder", "COUNT", "1", "STREAMS", "tenant:{acme}:stream:notifications", ">")
        _ = held
        let read = try redis.command("XREADGROUP", "GROUP", "notifier", "done", "COUNT", "1", "STREAMS", "tenant:{acme}:stream:notifications", ">")
        let id = try #require(read.array?.first?.array?[1].array?.first?.array?.first?.string)
        try redis.command("XACK", "tenant:{acme}:stream:notifications", "notifier", id)

        let groups = try ConsumerGroupManager(
            redisURL: context.url, tenant: context.tenant,
            thresholds: .init(idleAfter: .milliseconds(500), disconnectedAfter: .milliseconds(1_500))
        )
        let fresh = try await groups.consumers(stream: "notifications", group: "notifier")
        #expect(fresh.map(\.state) == [.active, .active])
        try await Task.sleep(for: .milliseconds(700))
        #expect(try await groups.consumers(stream: "notifications", group: "notifier").map(\.state) == [.idle, .idle])
        try await Task.sleep(for: .milliseconds(1_000))
        let late = try await groups.consumers(stream: "notifications", group: "notifier")
        #expect(late.map(\.state) == [.disconnected, .disconnected])
        #expect(try await groups.reapConsumers(stream: "notifications", group: "notifier") == ["done"])
        let (group, remaining) = try await groups.groupInfo(stream: "notifications", group: "notifier")
        #expect(remaining.map(\.name) == ["holder"])
        #expect(group.pending == 1)
        let pending = try await groups.pending(stream: "notifications", group: "notifier")
        #expect(pending.map(\.consumer) == ["holder"])
        #expect(pending.first?.deliveryCount == 1)
    }

    @Test func trimmingNeverDropsEntriesAGroupStillNeeds() async throws {
        let manager = try context.manager()
        try await manager.createStream(name: "locationUpdates", retentionMs: 0, maxLength: 10)
        try await context.groups().createGroup(stream: "locationUpdates", group: "projector")
        let producer = try context.producer("locationUpdates")
        let ids = try producer.publishBatchBlocking((0..<100).map { ("location.reported", #"{"n":\#($0)}"#, []) })

        let held = try await manager.trim(name: "locationUpdates")
        #expect(held.removed == 0)
        #expect(held.heldBackBy == "projector")
        #expect(try await manager.streamInfo(name: "locationUpdates").length == 100)

        // The group receives 50 and acknowledges 40: 10 stay pending.
        let redis = try context.connection()
        try redis.command("XREADGROUP", "GROUP", "projector", "c1", "COUNT", "50", "STREAMS", "tenant:{acme}:stream:locationUpdates", ">")
        try redis.send(["XACK", "tenant:{acme}:stream:locationUpdates", "projector"] + ids[0..<40])
        let partial = try await manager.trim(name: "locationUpdates")
        #expect(partial.removed == 40)
        #expect(partial.appliedCut == ids[40])
        #expect(try await manager.entries(name: "locationUpdates", count: 1).first?.id == ids[40])

        try redis.send(["XACK", "tenant:{acme}:stream:locationUpdates", "projector"] + ids[40..<50])
        try redis.command("XREADGROUP", "GROUP", "projector", "c1", "COUNT", "100", "STREAMS", "tenant:{acme}:stream:locationUpdates", ">")
        try redis.send(["XACK", "tenant:{acme}:stream:locationUpdates", "projector"] + ids[50...])
        let full = try await manager.trim(name: "locationUpdates")
        #expect(full.heldBackBy == nil)
        #expect(try await manager.streamInfo(name: "locationUpdates").length == 10)
        #expect(try await manager.entries(name: "locationUpdates", count: 1).first?.id == ids[90])
    }

    @Test func producerTrimsByMaxLengthAsItWrites() async throws {
        let manager = try context.manager()
        try await manager.createStream(name: "locationUpdates", retentionMs: 0)
        let producer = try context.producer("locationUpdates", configuration: .init(maxLength: 50, trimEvery: 100))
        for n in 0..<250 { try producer.publishBlocking(eventType: "location.reported", payload: #"{"n":\#(n)}"#) }
        // Trimmed at 100 and 200 appends, down to 50 each time: 50 kept + 50 since.
        #expect(try await manager.streamInfo(name: "locationUpdates").length == 100)
    }

    @Test func retentionTrimsOldEntriesOnceDelivered() async throws {
        let manager = try context.manager()
        try await manager.createStream(name: "notifications", retentionMs: 1_500)
        let producer = try context.producer("notifications")
        for _ in 0..<5 { try await producer.publish(eventType: "notification.created", payload: "{}") }
        try await Task.sleep(for: .milliseconds(1_700))
        let fresh = try await producer.publish(eventType: "notification.created", payload: "{}")
        let result = try await manager.trim(name: "notifications")
        #expect(result.removed == 5)
        #expect(try await manager.entries(name: "notifications").map(\.id) == [fresh])
    }
}
