import DocumentStore
import Foundation
import Logging
import Redis
import Streams
import Synchronization

/// Projects every stream of every tenant into the document store, as one consumer of a group.
///
/// Delivery is at least once (XREADGROUP, XACK after the SQLite commit); the effect is exactly
/// once, because each event's documents, its ledger row and the stream's checkpoint commit
/// together and a redelivered event is found in the ledger and skipped. A crash between commit
/// and XACK only causes a redelivery.
///
/// Each node keeps its own SQLite read model, so each node needs every event: give every node its
/// own group (`projector` on a single node, `projector-NODE` on several) and a stable consumer name.
public final class Projector: Sendable {
    public struct Configuration: Sendable {
        /// Consumer group name; one group per SQLite store.
        public var group: String
        /// Stable consumer name: after a restart it recovers what it held.
        public var consumer: String
        /// Most entries per XREADGROUP (across streams) and per SQLite transaction.
        public var batchSize: Int
        /// How long a read waits for new entries; at most a second, so shutdown is quick.
        public var block: Duration
        /// How often to look for new streams (a new chat room, a new tenant).
        public var discoveryInterval: Duration

        public init(
            group: String = "projector",
            consumer: String = ProcessInfo.processInfo.hostName,
            batchSize: Int = 1_000,
            block: Duration = .seconds(1),
            discoveryInterval: Duration = .seconds(2)
        ) {
            self.group = group
            self.consumer = consumer
            self.batchSize = batchSize
            self.block = block
            self.discoveryInterval = discoveryInterval
        }
    }

    /// Test hooks; `nil` in production.
    public struct Hooks: Sendable {
        /// Runs after a batch committed and before it is acknowledged; throwing ends `run` there,
        /// as a crash would.
        public var afterCommit: (@Sendable () throws -> Void)?

        public init(afterCommit: (@Sendable () throws -> Void)? = nil) {
            self.afterCommit = afterCommit
        }
    }

    public let configuration: Configuration
    public let store: DocumentStore
    private let pool: RedisConnectionPool
    private let hooks: Hooks
    private let logger: Logger
    private let state = Mutex(State())

    private struct State {
        var streams: Set<StreamPosition> = []
        var applied: [StreamPosition: String] = [:]
        var waiters: [UUID: (position: StreamPosition, id: String, continuation: CheckedContinuation<Bool, Never>)] = [:]
        var stopRequested = false
        /// A waiter asked about a stream not yet known: look for new streams now.
        var discoveryRequested = false
        /// The connection (its `CLIENT ID`) of a blocking read under way, which a request for
        /// discovery ends early: the read may block for up to `block` on the known streams.
        var blockedReader: Int?
    }

    public init(
        redisURL: String,
        store: DocumentStore,
        configuration: Configuration = Configuration(),
        hooks: Hooks = Hooks(),
        logger: Logger = Logger(label: "fieldops.projector")
    ) throws {
        try StreamName.validateGroup(configuration.group)
        try StreamName.validateConsumer(configuration.consumer)
        self.configuration = configuration
        self.store = store
        self.pool = try RedisConnectionPool(url: redisURL, configuration: .init(maxConnections: 2))
        self.hooks = hooks
        self.logger = logger
    }

    // MARK: - Running

    /// Projects until `stop()` or cancellation; finishes the batch in hand first.
    public func run() async throws {
        state.withLock { $0.stopRequested = false }
        let known = try await store.read { [group = configuration.group] in try $0.checkpoints(group: group) }
        state.withLock { state in
            for checkpoint in known { state.applied[StreamPosition(tenant: checkpoint.tenant, stream: checkpoint.stream)] = checkpoint.lastID }
        }
        var recovered = false
        var lastDiscovery = ContinuousClock.now - configuration.discoveryInterval
        var backoff = Duration.milliseconds(100)
        /// A batch read and applied in memory, not yet committed.
        var pending: Prepared?
        while !shouldStop {
            do {
                let asked = state.withLock { state in
                    defer { state.discoveryRequested = false }
                    return state.discoveryRequested
                }
                if asked || ContinuousClock.now - lastDiscovery >= configuration.discoveryInterval {
                    try await discover()
                    lastDiscovery = .now
                }
                if !recovered {
                    // What this consumer held before a crash comes first.
                    while !shouldStop, try await step(after: "0") > 0 {}
                    recovered = true
                }
                if streams.isEmpty {
                    lastDiscovery = ContinuousClock.now - configuration.discoveryInterval / 2
                }
                let (count, next) = try await pipelineStep(committing: pending)
                pending = next
                if count == 0, streams.isEmpty {
                    // Nothing to block on: wait in slices, so a write to the first stream is
                    // looked for as soon as a waiter asks.
                    let until = ContinuousClock.now + min(configuration.block, .seconds(1))
                    while ContinuousClock.now < until, !shouldStop, !state.withLock({ $0.discoveryRequested }) {
                        try await Task.sleep(for: .milliseconds(20))
                    }
                }
                backoff = .milliseconds(100)
            } catch let error as StreamError where error.isRedisFailure {
                // Entries delivered but not acknowledged are read again from this consumer's history.
                recovered = false
                pending = nil
                logger.warning("redis error; retrying", metadata: ["error": "\(error.message)", "retry_in": "\(backoff)"])
                try? await Task.sleep(for: backoff)
                backoff = min(backoff * 2, .seconds(5))
            } catch let error as RedisError {
                recovered = false
                pending = nil
                logger.warning("redis error; retrying", metadata: ["error": "\(error)", "retry_in": "\(backoff)"])
                try? await Task.sleep(for: backoff)
                backoff = min(backoff * 2, .seconds(5))
            } catch is CancellationError {
                break
            }
        }
        // The batch in hand is finished rather than left pending.
        if let pending {
            _ = try await commit(pending)
        }
    }

    /// Asks `run` to return after the batch in hand.
    public func stop() {
        state.withLock { $0.stopRequested = true }
    }

    /// Closes the Redis connections; call after `run` returned.
    public func shutdown() {
        stop()
        pool.close()
    }

    private var shouldStop: Bool { Task.isCancelled || state.withLock { $0.stopRequested } }
    private var streams: [StreamPosition] { state.withLock { Array($0.streams) }.sorted { ($0.tenant, $0.stream) < ($1.tenant, $1.stream) } }

    /// Finds the streams of every tenant and makes sure the group exists on each.
    func discover() async throws {
        let found = Set(try await ProjectionMaintenance.streams(pool, tenant: nil))
        let new = found.subtracting(state.withLock { $0.streams })
        guard !new.isEmpty else { return }
        try await pool.withConnection { [group = configuration.group] connection in
            for position in new {
                let key = try StreamKeys(tenant: position.tenant).stream(position.stream)
                // From the start: a new node's projector reads the whole retained history.
                let reply = try connection.send(["XGROUP", "CREATE", key, group, "0"])
                if case .error(let message) = reply, !message.hasPrefix("BUSYGROUP") { throw StreamError(.redis, message) }
            }
        }
        state.withLock { $0.streams.formUnion(new) }
        logger.info("projecting new streams", metadata: ["count": "\(new.count)"])
    }

    /// Reads one batch across all streams, applies it, acknowledges it; returns its size.
    /// Reads one batch, applies and commits it, acknowledges it; returns its size.
    private func step(after id: String) async throws -> Int {
        let positions = streams
        guard !positions.isEmpty else { return 0 }
        let slices = try await read(positions, after: id)
        guard slices.contains(where: { !$0.records.isEmpty }) else { return 0 }
        let plan = try await store.read { [group = configuration.group] in
            try ProjectionBatch.prepare(slices, group: group, reading: $0, after: nil)
        }
        return try await commit(Prepared(slices: slices, plan: plan))
    }

    /// A batch applied in memory, not yet committed.
    private struct Prepared: Sendable {
        let slices: [StreamSlice]
        let plan: BatchPlan
    }

    /// Commits `current` while the next batch is read and applied in memory, so the SQLite
    /// writer and the appliers (Swift, JSON) work on both cores at once. The next batch sees
    /// `current`'s changes through an overlay, whether or not its read snapshot includes them.
    /// - Returns: entries read, and the next batch to commit.
    private func pipelineStep(committing current: Prepared?) async throws -> (count: Int, next: Prepared?) {
        async let committed: Int = commitIfAny(current)
        let positions = streams
        var next: Prepared?
        var count = 0
        if !positions.isEmpty, !shouldStop {
            let slices = try await read(positions, after: ">")
            count = slices.reduce(0) { $0 + $1.records.count }
            if count > 0 {
                let plan = try await store.read { [group = configuration.group, previous = current?.plan] in
                    try ProjectionBatch.prepare(slices, group: group, reading: $0, after: previous)
                }
                next = Prepared(slices: slices, plan: plan)
            }
        }
        _ = try await committed
        return (count, next)
    }

    private func commitIfAny(_ prepared: Prepared?) async throws -> Int {
        guard let prepared else { return 0 }
        return try await commit(prepared)
    }

    /// Writes a prepared batch in one transaction, then acknowledges its entries.
    private func commit(_ prepared: Prepared) async throws -> Int {
        try await store.write { [group = configuration.group, plan = prepared.plan] transaction in
            try ProjectionBatch.commit(plan, group: group, in: transaction)
        }
        let report = prepared.plan.report
        for failure in report.failures {
            logger.warning("event failed", metadata: ["tenant": "\(failure.tenant)", "stream": "\(failure.stream)", "id": "\(failure.id)", "reason": "\(failure.reason)"])
        }
        try hooks.afterCommit?()
        try await acknowledge(prepared.slices)
        applied(report.checkpoints)
        return prepared.slices.reduce(0) { $0 + $1.records.count }
    }

    private func read(_ positions: [StreamPosition], after id: String) async throws -> [StreamSlice] {
        var keys: [String] = []
        keys.reserveCapacity(positions.count)
        for position in positions { keys.append(try StreamKeys(tenant: position.tenant).stream(position.stream)) }
        let blockMilliseconds = String(max(1, min(configuration.block, .seconds(1)).milliseconds))
        let head = ["XREADGROUP", "GROUP", configuration.group, configuration.consumer, "COUNT", String(configuration.batchSize)]
        let tail = ["STREAMS"] + keys + Array(repeating: id, count: keys.count)
        let streams = try await pool.withConnection { [self] connection in
            var block = id == ">"
            // A blocking read says which connection it is on, so a request for discovery can end
            // it; when one is asked for already (its wake-up may have come first), it does not block.
            let reader = block ? try? connection.clientID() : nil
            if let reader {
                block = state.withLock { state in
                    guard !state.discoveryRequested else { return false }
                    state.blockedReader = reader
                    return true
                }
            }
            defer { if block, reader != nil { state.withLock { $0.blockedReader = nil } } }
            return try connection.send(head + (block ? ["BLOCK", blockMilliseconds] : []) + tail) { reply -> [(key: String, records: [StreamRecord])]? in
                // A stream was deleted (or its group destroyed) since discovery.
                if let message = reply.errorMessage, message.hasPrefix("NOGROUP") { return nil }
                return try reply.multiStreamEntries()
            }
        }
        guard let streams else {
            state.withLock { $0.streams = [] }
            logger.info("a stream or its group disappeared; rediscovering")
            return []
        }
        if streams.isEmpty, id == ">" { return [] }
        return streams.compactMap { stream in
            guard let (tenant, name) = StreamKeys.parse(streamKey: stream.key) else { return nil }
            return StreamSlice(tenant: tenant, stream: name, records: stream.records)
        }
    }

    private func acknowledge(_ slices: [StreamSlice]) async throws {
        var buffer = CommandBuffer()
        for slice in slices where !slice.records.isEmpty {
            buffer.append(["XACK", try StreamKeys(tenant: slice.tenant).stream(slice.stream), configuration.group] + slice.records.map(\.id))
        }
        _ = try await pool.withConnection { [buffer] in try $0.pipeline(buffer) }
    }

    // MARK: - Read-your-writes

    /// The last id applied for the stream, as far as this projector knows.
    public func appliedID(tenant: String, stream: String) -> String? {
        state.withLock { $0.applied[StreamPosition(tenant: tenant, stream: stream)] }
    }

    /// Waits until the entry `id` of the tenant's stream has been applied to the documents.
    /// - Returns: false when `timeout` passed first.
    public func waitUntilApplied(tenant: String, stream: String, id: String, timeout: Duration) async -> Bool {
        let position = StreamPosition(tenant: tenant, stream: stream)
        let key = UUID()
        return await withTaskGroup(of: Bool.self) { group in
            group.addTask {
                await withCheckedContinuation { continuation in
                    let satisfied = self.state.withLock { state -> Bool in
                        if let applied = state.applied[position], !streamID(applied, isLessThan: id) { return true }
                        state.waiters[key] = (position, id, continuation)
                        return false
                    }
                    if satisfied {
                        continuation.resume(returning: true)
                    } else {
                        // A write to a new stream (a new room, a new tenant) need not wait for the next discovery round.
                        self.requestDiscovery(of: position)
                    }
                }
            }
            group.addTask {
                try? await Task.sleep(for: timeout)
                return false
            }
            let first = await group.next() ?? false
            // Whichever lost: release a still-registered waiter, stop the timer.
            let waiter = state.withLock { $0.waiters.removeValue(forKey: key) }
            waiter?.continuation.resume(returning: false)
            group.cancelAll()
            return first
        }
    }

    /// Tells the projector of an append on this node: a stream it does not read yet is looked
    /// for at once instead of at the next discovery round (up to `discoveryInterval` later).
    public func noteAppend(tenant: String, stream: String) {
        requestDiscovery(of: StreamPosition(tenant: tenant, stream: stream))
    }

    /// Asks the loop to look for new streams unless `position` is read already, ending a
    /// blocking read under way with `CLIENT UNBLOCK` (as if it timed out).
    private func requestDiscovery(of position: StreamPosition) {
        let reader = state.withLock { state -> Int? in
            // Whoever asked first wakes the reader; a burst of writes to a new room sends one wake-up.
            guard !state.streams.contains(position), !state.discoveryRequested else { return nil }
            state.discoveryRequested = true
            return state.blockedReader
        }
        guard let reader else { return }
        Task { [self] in
            // The read may not have reached Redis yet (then nothing is blocked): try again until
            // it is unblocked or has ended by itself.
            while state.withLock({ $0.blockedReader == reader && $0.discoveryRequested }) {
                let unblocked = try? await pool.withConnection { try $0.command("CLIENT", "UNBLOCK", String(reader)).int }
                if unblocked == 1 { return }
                try? await Task.sleep(for: .milliseconds(5))
            }
        }
    }

    private func applied(_ checkpoints: [StreamPosition: String]) {
        let ready = state.withLock { state -> [CheckedContinuation<Bool, Never>] in
            for (position, id) in checkpoints {
                if let current = state.applied[position], !streamID(current, isLessThan: id) { continue }
                state.applied[position] = id
            }
            let done = state.waiters.filter { _, waiter in
                state.applied[waiter.position].map { !streamID($0, isLessThan: waiter.id) } ?? false
            }
            for key in done.keys { state.waiters.removeValue(forKey: key) }
            return done.values.map(\.continuation)
        }
        ready.forEach { $0.resume(returning: true) }
    }
}
