import DocumentStore
import Domain
import Foundation
import Projections
import Redis
import Streams
import Synchronization
import Testing

struct SimulatedCrash: Error {}

/// A private redis-server and a SQLite file per test.
final class ProjectionContext: Sendable {
    let server: RedisServerProcess
    let directory: URL

    init() throws {
        server = try RedisServerProcess()
        directory = URL(fileURLWithPath: NSTemporaryDirectory()).appendingPathComponent("fo-proj-\(UUID().uuidString.prefix(8))")
    }

    deinit {
        server.destroy()
        try? FileManager.default.removeItem(at: directory)
    }

    var url: String { server.url }

    func store(_ name: String = "store") throws -> DocumentStore {
        try DocumentStore(path: directory.appendingPathComponent("\(name).sqlite").path)
    }

    func producer(_ stream: String, tenant: String = "acme") throws -> StreamProducer {
        try StreamProducer(redisURL: url, tenant: tenant, stream: stream)
    }

    func projector(_ store: DocumentStore, consumer: String = "node-1", batchSize: Int = 100, hooks: Projector.Hooks = .init()) throws -> Projector {
        try Projector(
            redisURL: url, store: store,
            configuration: .init(consumer: consumer, batchSize: batchSize, block: .milliseconds(100), discoveryInterval: .milliseconds(100)),
            hooks: hooks
        )
    }

    /// Publishes a realistic mix over several streams and two tenants; returns the last id per stream.
    func publishScenario() async throws -> [String: String] {
        let tasks = try producer(StreamNames.taskAssignments)
        let resources = try producer(StreamNames.resourceUpdates)
        let locations = try producer(StreamNames.locationUpdates)
        let chat = try producer(StreamNames.chat("storm-desk"))
        let other = try producer(StreamNames.taskAssignments, tenant: "globex")
        var last: [String: String] = [:]
        last["resources"] = try await resources.publish(eventType: EventType.resourceCreated, payload: ResourceCreated(resourceId: "sandbags", name: "Sandbags", quantity: 100))
        for n in 0..<20 {
            try await tasks.publish(eventType: EventType.taskCreated, payload: TaskCreated(taskId: "t\(n)", title: "Task \(n)", priority: n % 3), routing: ["taskId": "t\(n)"])
            try await tasks.publish(eventType: EventType.taskAssigned, payload: TaskTransition(taskId: "t\(n)", assigneeId: "w\(n % 4)"))
            last["resources"] = try await resources.publish(eventType: EventType.resourceAdjusted, payload: ResourceAdjusted(resourceId: "sandbags", delta: -3))
            try await locations.publish(eventType: EventType.locationReported, payload: LocationReported(workerId: "w\(n % 4)", lat: 52 + Double(n) / 100, lon: 13))
            try await chat.publish(eventType: EventType.messageCreated, payload: MessageCreated(messageId: "m\(n)", roomId: "storm-desk", senderId: "w\(n % 4)", text: "update \(n)"))
        }
        // Completing an unstarted task and taking more stock than there is are refused.
        try await tasks.publish(eventType: EventType.taskCompleted, payload: TaskTransition(taskId: "t0"))
        last["tasks"] = try await tasks.publish(eventType: EventType.taskAccepted, payload: TaskTransition(taskId: "t1"))
        last["resources"] = try await resources.publish(eventType: EventType.resourceAdjusted, payload: ResourceAdjusted(resourceId: "sandbags", delta: -1_000))
        last["locations"] = try await locations.publish(eventType: EventType.locationReported, payload: LocationReported(workerId: "w9", lat: 10, lon: 10))
        last["chat"] = try await chat.publish(eventType: EventType.messageEdited, payload: MessageEdited(messageId: "m3", text: "edited"))
        last["globex"] = try await other.publish(eventType: EventType.taskCreated, payload: TaskCreated(taskId: "t0", title: "Globex task"))
        return last
    }

    /// Every document of a tenant with its version and times, for comparing whole states.
    func snapshot(_ store: DocumentStore, tenant: String = "acme") async throws -> [String] {
        var lines: [String] = []
        for collection in ProductCollections.all.map(\.name) {
            var cursor: QueryCursor?
            repeat {
                var query = Query(collection).limit(1_000)
                if let cursor { query = query.start(after: cursor) }
                let page = try await store.query(tenant: tenant, query)
                lines += page.documents.map { "\(collection)/\($0.id) v\($0.version) \($0.createdAt) \($0.updatedAt) \($0.data.jsonText)" }
                cursor = page.nextCursor
            } while cursor != nil
        }
        let track = try await store.read { try $0.track(tenant: tenant, workerID: "w1", from: 0, to: .max) }
        return lines + track.map { "track \($0.eventID) \($0.lat)" }
    }
}

@Suite("Projector against a real redis-server and SQLite file")
final class ProjectorTests {
    let context: ProjectionContext

    init() throws {
        context = try ProjectionContext()
    }

    @Test func projectsEveryStreamOfEveryTenantWithReadYourWrites() async throws {
        let store = try context.store()
        let last = try await context.publishScenario()
        let projector = try context.projector(store)
        let running = Task { try await projector.run() }
        #expect(await projector.waitUntilApplied(tenant: "acme", stream: StreamNames.resourceUpdates, id: last["resources"]!, timeout: .seconds(10)))
        #expect(await projector.waitUntilApplied(tenant: "acme", stream: StreamNames.chat("storm-desk"), id: last["chat"]!, timeout: .seconds(10)))
        #expect(await projector.waitUntilApplied(tenant: "globex", stream: StreamNames.taskAssignments, id: last["globex"]!, timeout: .seconds(10)))
        #expect(await projector.waitUntilApplied(tenant: "acme", stream: StreamNames.taskAssignments, id: last["tasks"]!, timeout: .seconds(10)))

        #expect(try await store.get(tenant: "acme", collection: "resources", id: "sandbags")?.data["quantity"] == 40)
        #expect(try await store.count(tenant: "acme", Query("tasks").where("status", .equal, "assigned")) == 19)
        #expect(try await store.get(tenant: "acme", collection: "messages", id: "m3")?.data["text"] == "edited")
        #expect(try await store.get(tenant: "globex", collection: "tasks", id: "t0")?.data["title"] == "Globex task")
        #expect(try await store.get(tenant: "acme", collection: "tasks", id: "t0")?.data["title"] == "Task 0")
        let failures = try await store.read { try $0.ledger(tenant: "acme", failedOnly: true) }
        #expect(Set(failures.compactMap(\.error)) == [
            "tasks/t0 cannot go from assigned via task.completed",
            "adjusting resources/sandbags by -1000 would leave -960 (has 40); stock never goes below zero",
        ])
        #expect(try await store.get(tenant: "acme", collection: "tasks", id: "t1")?.data["status"] == "accepted")

        // Live: a new write is readable once waitUntilApplied says so.
        let id = try await context.producer(StreamNames.taskAssignments).publish(eventType: EventType.taskStarted, payload: TaskTransition(taskId: "t1"))
        #expect(await projector.waitUntilApplied(tenant: "acme", stream: StreamNames.taskAssignments, id: id, timeout: .seconds(10)))
        #expect(try await store.get(tenant: "acme", collection: "tasks", id: "t1")?.data["status"] == "in_progress")
        // A new stream (a new chat room) is found without a restart.
        let room = try await context.producer(StreamNames.chat("flood-ops")).publish(eventType: EventType.messageCreated, payload: MessageCreated(messageId: "f1", roomId: "flood-ops", senderId: "w1", text: "levee holding"))
        #expect(await projector.waitUntilApplied(tenant: "acme", stream: StreamNames.chat("flood-ops"), id: room, timeout: .seconds(10)))
        #expect(await !projector.waitUntilApplied(tenant: "acme", stream: StreamNames.notifications, id: "9999999999999-0", timeout: .milliseconds(200)))
        projector.stop()
        try await running.value
        let redis = try RedisConnection(url: context.url)
        #expect(try redis.command("XPENDING", "tenant:{acme}:stream:taskAssignments", "projector").array?.first?.int == 0)
    }

    /// With the production timings (reads block for 1 s, new streams looked for every 2 s), a
    /// write to a new stream (a new room) is projected as soon as someone waits for it, not when
    /// the blocking read on the known streams ends: about as fast as a write to a stream already
    /// read (it took a second longer before). Compared with that write, so a loaded machine
    /// slows both alike.
    @Test func aWaitForANewStreamEndsTheBlockingRead() async throws {
        let projector = try Projector(redisURL: context.url, store: try context.store(), configuration: .init(consumer: "node-1"))
        let running = Task { try await projector.run() }
        let tasks = try context.producer(StreamNames.taskAssignments)
        let clock = ContinuousClock()
        func projected(_ stream: String, _ publish: () async throws -> String) async throws -> Duration {
            let start = clock.now
            let id = try await publish()
            #expect(await projector.waitUntilApplied(tenant: "acme", stream: stream, id: id, timeout: .seconds(10)))
            return clock.now - start
        }
        _ = try await projected(StreamNames.taskAssignments) { try await tasks.publish(eventType: EventType.taskCreated, payload: TaskCreated(taskId: "t0", title: "Valve")) }
        var known: [Duration] = []
        var new: [Duration] = []
        for n in 1...9 {
            known.append(try await projected(StreamNames.taskAssignments) {
                try await tasks.publish(eventType: EventType.taskCreated, payload: TaskCreated(taskId: "t\(n)", title: "Valve"))
            })
            let room = "room-\(n)"
            new.append(try await projected(StreamNames.chat(room)) {
                try await context.producer(StreamNames.chat(room)).publish(
                    eventType: EventType.messageCreated, payload: MessageCreated(messageId: "m\(n)", roomId: room, senderId: "w1", text: "on site")
                )
            })
        }
        let (knownMedian, newMedian) = (known.sorted()[4], new.sorted()[4])
        #expect(newMedian < knownMedian + .milliseconds(500), "median to project: new stream \(newMedian), known stream \(knownMedian)")
        projector.stop()
        try await running.value
    }

    @Test func aCrashBetweenCommitAndAcknowledgeNeitherLosesNorRepeatsEffects() async throws {
        let store = try context.store()
        let last = try await context.publishScenario()
        let crashes = Mutex(2)
        // The first two batches commit, then the process "dies" before XACK.
        let doomed = try context.projector(store, batchSize: 25, hooks: .init(afterCommit: {
            let crash = crashes.withLock { remaining -> Bool in
                remaining -= 1
                return remaining < 0 ? false : true
            }
            if crash { throw SimulatedCrash() }
        }))
        await #expect(throws: SimulatedCrash.self) { try await doomed.run() }
        doomed.shutdown()
        let redis = try RedisConnection(url: context.url)
        let pendingAfterCrash = try (["taskAssignments", "resourceUpdates", "locationUpdates", "chat:storm-desk"]).map {
            try redis.command("XPENDING", "tenant:{acme}:stream:\($0)", "projector").array?.first?.int ?? 0
        }.reduce(0, +)
        #expect(pendingAfterCrash > 0)

        // Restarted under the same name, it finds the unacknowledged entries already applied.
        let restarted = try context.projector(store, batchSize: 25)
        let running = Task { try await restarted.run() }
        for (stream, key) in [(StreamNames.resourceUpdates, "resources"), (StreamNames.taskAssignments, "tasks"), (StreamNames.locationUpdates, "locations"), (StreamNames.chat("storm-desk"), "chat")] {
            #expect(await restarted.waitUntilApplied(tenant: "acme", stream: stream, id: last[key]!, timeout: .seconds(10)))
        }
        restarted.stop()
        try await running.value
        // Twenty adjustments of -3 from 100, each applied once, and the oversized one refused.
        #expect(try await store.get(tenant: "acme", collection: "resources", id: "sandbags")?.data["quantity"] == 40)
        #expect(try await store.get(tenant: "acme", collection: "resources", id: "sandbags")?.version == 21)
        let ledger = try await store.read { try $0.ledger(tenant: "acme", limit: 1_000) }
        #expect(ledger.count == 106)
        #expect(Set(ledger.map { "\($0.stream) \($0.eventID)" }).count == 106)
        #expect(try redis.command("XPENDING", "tenant:{acme}:stream:resourceUpdates", "projector").array?.first?.int == 0)
    }

    @Test func rebuildEndsInTheSameStateAsLiveProjection() async throws {
        let store = try context.store()
        let last = try await context.publishScenario()
        let projector = try context.projector(store)
        let running = Task { try await projector.run() }
        for (stream, key) in [(StreamNames.resourceUpdates, "resources"), (StreamNames.taskAssignments, "tasks"), (StreamNames.locationUpdates, "locations"), (StreamNames.chat("storm-desk"), "chat")] {
            #expect(await projector.waitUntilApplied(tenant: "acme", stream: stream, id: last[key]!, timeout: .seconds(10)))
        }
        projector.stop()
        try await running.value
        let live = try await context.snapshot(store)
        let liveFailures = try await store.read { try $0.ledger(tenant: "acme", failedOnly: true).map { "\($0.eventID) \($0.error ?? "")" } }
        #expect(live.count == 51)

        let progress = Mutex<[Int]>([])
        let report = try await ProjectionMaintenance.rebuild(redisURL: context.url, store: store, tenant: "acme") { step in
            progress.withLock { $0.append(step.replayed) }
        }
        #expect(report.replayed == 106)
        #expect(report.failed == liveFailures.count)
        #expect(progress.withLock { $0.last } == 106)
        #expect(try await context.snapshot(store) == live)
        #expect(try await store.read { try $0.ledger(tenant: "acme", failedOnly: true).map { "\($0.eventID) \($0.error ?? "")" } } == liveFailures)
        // The other tenant was left alone.
        #expect(try await store.get(tenant: "globex", collection: "tasks", id: "t0") != nil)

        // A fresh store on another node rebuilds to the same state too.
        let other = try context.store("other-node")
        _ = try await ProjectionMaintenance.rebuild(redisURL: context.url, store: other)
        #expect(try await context.snapshot(other) == live)
    }

    @Test func statusShowsCheckpointsHeadsAndLag() async throws {
        let store = try context.store()
        let last = try await context.publishScenario()
        let before = try await ProjectionMaintenance.status(redisURL: context.url, store: store, tenant: "acme")
        let tasks = try #require(before.first { $0.stream == StreamNames.taskAssignments })
        #expect(tasks.checkpoint == nil)
        #expect(tasks.lagEntries == 42)
        #expect(tasks.head == last["tasks"])
        _ = try await ProjectionMaintenance.rebuild(redisURL: context.url, store: store)
        let after = try await ProjectionMaintenance.status(redisURL: context.url, store: store)
        #expect(after.count == 5)
        #expect(after.allSatisfy { $0.lagEntries == 0 && $0.lagSeconds == 0 && $0.checkpoint == $0.head })
    }
}

@Suite("Projector pipeline")
final class ProjectorPipelineTests {
    let context: ProjectionContext

    init() throws {
        context = try ProjectionContext()
    }

    @Test func smallBatchesOverHotDocumentsApplyEveryStepOnce() async throws {
        let store = try context.store()
        let resources = try context.producer(StreamNames.resourceUpdates)
        let locations = try context.producer(StreamNames.locationUpdates)
        try await resources.publish(eventType: EventType.resourceCreated, payload: ResourceCreated(resourceId: "fuel", name: "Fuel", unit: "l", quantity: 1_000))
        var lastResource = ""
        var lastLocation = ""
        for n in 1...200 {
            lastResource = try await resources.publish(eventType: EventType.resourceAdjusted, payload: ResourceAdjusted(resourceId: "fuel", delta: n % 2 == 0 ? -7 : 3))
            lastLocation = try await locations.publish(eventType: EventType.locationReported, payload: LocationReported(workerId: "w\(n % 3)", lat: Double(n) / 10, lon: 1))
        }
        // Batches of 5 per stream: each batch is applied over the previous one while it commits.
        let projector = try context.projector(store, batchSize: 5)
        let running = Task { try await projector.run() }
        #expect(await projector.waitUntilApplied(tenant: "acme", stream: StreamNames.resourceUpdates, id: lastResource, timeout: .seconds(30)))
        #expect(await projector.waitUntilApplied(tenant: "acme", stream: StreamNames.locationUpdates, id: lastLocation, timeout: .seconds(30)))
        projector.stop()
        try await running.value
        let fuel = try #require(try await store.get(tenant: "acme", collection: "resources", id: "fuel"))
        let expected: Double = 1_000 + 300 - 700
        #expect(fuel.data["quantity"] == .number(expected))
        #expect(fuel.version == 201)
        let worker = try #require(try await store.get(tenant: "acme", collection: "workers", id: "w2"))
        #expect(worker.data[path: "location.lat"] == 20)
        #expect(worker.version == 67)
        let live = try await context.snapshot(store)
        _ = try await ProjectionMaintenance.rebuild(redisURL: context.url, store: store)
        #expect(try await context.snapshot(store) == live)
    }
}
