import Foundation
import Logging
import Redis
import Synchronization

/// Reads one stream as a named consumer of a group, at least once.
///
/// Lifecycle of an entry: delivered (pending) → handler runs → acknowledged on success. A failed
/// entry stays pending; once it has been idle for `claimMinIdle` it is reclaimed with XAUTOCLAIM
/// by this or another consumer and delivered again. After `maxDeliveries` deliveries it is copied
/// to the tenant's `deadLetters` stream with its origin, group, error and count, and acknowledged,
/// so the stream keeps flowing. Entries that are not valid envelopes go there at once.
///
/// ```swift
/// let consumer = try StreamConsumer(redisURL: url, tenant: "acme", stream: "taskAssignments",
///                                   group: "notifier", consumer: "node-1")
/// try await consumer.subscribe(eventTypes: ["task.assigned"]) { event in
///     try await notify(event)
/// }
/// ```
public final class StreamConsumer: Sendable {
    public struct Configuration: Sendable {
        /// Entries per XREADGROUP (COUNT).
        public var batchSize: Int
        /// How long one read blocks waiting for entries; capped at one second so shutdown and
        /// cancellation are noticed quickly.
        public var block: Duration
        /// Entries pending longer than this are reclaimed from whoever holds them.
        public var claimMinIdle: Duration
        /// How often to look for entries to reclaim.
        public var claimInterval: Duration
        /// Deliveries after which a failing entry is dead-lettered.
        public var maxDeliveries: Int
        /// How long a consumer name stays claimed without renewal; a crashed process's name is
        /// free again after this.
        public var leaseTTL: Duration

        public init(
            batchSize: Int = 100,
            block: Duration = .seconds(1),
            claimMinIdle: Duration = .seconds(30),
            claimInterval: Duration = .seconds(5),
            maxDeliveries: Int = 5,
            leaseTTL: Duration = .seconds(10)
        ) {
            self.batchSize = batchSize
            self.block = block
            self.claimMinIdle = claimMinIdle
            self.claimInterval = claimInterval
            self.maxDeliveries = maxDeliveries
            self.leaseTTL = leaseTTL
        }
    }

    public let keys: StreamKeys
    public let stream: String
    public let group: String
    public let consumer: String
    public let configuration: Configuration
    private let pool: RedisConnectionPool
    private let logger: Logger
    private let token = UUID().uuidString
    private let state = Mutex(State())

    private struct State {
        var running = false
        var stopRequested = false
    }

    /// - Throws: `StreamError` for invalid names or URL. Whether the group exists is checked
    ///   when `subscribe` starts.
    public init(
        redisURL: String,
        tenant: String,
        stream: String,
        group: String,
        consumer: String,
        configuration: Configuration = Configuration(),
        logger: Logger = Logger(label: "fieldops.streams.consumer")
    ) throws(StreamError) {
        try StreamName.validate(stream)
        try StreamName.validateGroup(group)
        try StreamName.validateConsumer(consumer)
        guard configuration.batchSize > 0, configuration.maxDeliveries > 0 else {
            throw StreamError(.invalidField, "batchSize and maxDeliveries must be positive")
        }
        self.keys = try StreamKeys(tenant: tenant)
        self.stream = stream
        self.group = group
        self.consumer = consumer
        self.configuration = configuration
        self.pool = try redisCall { try RedisConnectionPool(url: redisURL, configuration: .init(maxConnections: 2)) }
        var logger = logger
        logger[metadataKey: "stream"] = "\(stream)"
        logger[metadataKey: "group"] = "\(group)"
        logger[metadataKey: "consumer"] = "\(consumer)"
        self.logger = logger
    }

    // MARK: - Subscribing

    /// Delivers entries to `handler` until `close()` is called or the task is cancelled.
    ///
    /// First re-delivers what this consumer held before a restart, then reads new entries in
    /// batches, reclaiming stuck ones every `claimInterval`. On shutdown the batch in hand is
    /// finished and acknowledged before returning.
    /// - Parameters:
    ///   - eventTypes: only these types reach `handler`; others are acknowledged and skipped.
    ///     `nil` delivers every type.
    ///   - handler: throwing leaves the entry pending for a retry.
    /// - Throws: `group_not_found`, `consumer_name_in_use`, or `redis_error` when Redis stays
    ///   unreachable past the pool's connect deadline.
    public func subscribe(
        eventTypes: Set<String>? = nil,
        handler: @escaping @Sendable (StreamEvent) async throws -> Void
    ) async throws(StreamError) {
        try state.withLock { (state: inout State) throws(StreamError) in
            guard !state.running else { throw StreamError(.consumerNameInUse, "consumer '\(consumer)' is already subscribed") }
            state.running = true
        }
        // A `close()` that came before this task got here still counts (it used to be reset
        // here, and the subscription then ran on forever); it is used up when this one ends.
        defer {
            state.withLock { state in
                state.running = false
                state.stopRequested = false
            }
        }

        try await requireGroup()
        try await takeLease()
        do {
            try await consume(filter: Filter(eventTypes: eventTypes, handler: handler))
        } catch {
            await releaseLease()
            throw error
        }
        await releaseLease()
    }

    /// The loop of `subscribe`, between taking and releasing the consumer-name lease.
    private func consume(filter: Filter) async throws(StreamError) {
        var leaseRenewed = ContinuousClock.now

        var recovered = false
        var lastClaim = ContinuousClock.now
        var backoff = Duration.milliseconds(100)
        /// A batch already delivered to this consumer, read ahead while the previous one ran.
        var prefetched: [StreamRecord]?

        while !shouldStop {
            do {
                if !recovered {
                    // Entries this consumer name held before a crash or restart come first.
                    try await drainOwnHistory(filter)
                    recovered = true
                }
                if ContinuousClock.now - leaseRenewed > configuration.leaseTTL / 3 {
                    try await renewLease()
                    leaseRenewed = .now
                }
                // Never while a read-ahead batch is in hand: its entries sit idle in the pending
                // list, and reclaiming would deliver them a second time.
                if prefetched == nil && ContinuousClock.now - lastClaim >= configuration.claimInterval {
                    try await reclaim(filter)
                    lastClaim = .now
                }
                let batch: [StreamRecord]
                if let next = prefetched {
                    batch = next
                    prefetched = nil
                } else {
                    batch = try await read(id: ">")
                }
                if batch.count == configuration.batchSize {
                    prefetched = try await processReadingAhead(batch, filter: filter)
                } else if !batch.isEmpty {
                    try await process(batch, deliveries: [:], filter: filter)
                }
                backoff = .milliseconds(100)
            } catch where error.isRedisFailure {
                // Redis is restarting or unreachable: entries stay pending and nothing is lost,
                // so wait and go on rather than ending the subscription.
                logger.warning("redis error; retrying", metadata: ["error": "\(error.message)", "retry_in": "\(backoff)"])
                try? await Task.sleep(for: backoff)
                backoff = min(backoff * 2, .seconds(5))
            }
        }
        // The read-ahead batch is in hand too: finish it rather than leave it pending.
        if let prefetched, !prefetched.isEmpty {
            try await process(prefetched, deliveries: [:], filter: filter)
        }
    }

    /// Asks a running `subscribe` to return after the batch in hand; one that has been started
    /// but not yet begun returns as soon as it begins.
    public func close() {
        state.withLock { $0.stopRequested = true }
    }

    /// Closes the consumer's connections; call after `subscribe` returned.
    public func shutdown() {
        close()
        pool.close()
    }

    private var shouldStop: Bool {
        Task.isCancelled || state.withLock { $0.stopRequested }
    }

    // MARK: - Manual acknowledgement and inspection

    /// Acknowledges one entry (for handlers that acknowledge later themselves).
    public func acknowledge(messageID: String) async throws(StreamError) {
        try StreamName.validateID(messageID)
        try await acknowledge([messageID])
    }

    /// Entries delivered to this consumer and not yet acknowledged.
    public func pending(count: Int = 100) async throws(StreamError) -> [PendingEntry] {
        let reply = try await run { [keys, stream, group, consumer] connection in
            try connection.command("XPENDING", keys.stream(stream), group, "-", "+", String(max(1, count)), consumer)
        }
        return PendingEntry.list(reply)
    }

    /// The last id this consumer acknowledged.
    public func checkpoint() async throws(StreamError) -> String? {
        try await run { [keys, stream, group, consumer] connection in
            try connection.command("HGET", keys.checkpoints(stream), group + "/" + consumer).string
        }
    }

    // MARK: - Reading

    private struct Filter: Sendable {
        let eventTypes: Set<String>?
        let handler: @Sendable (StreamEvent) async throws -> Void
    }

    private func read(id: String, block blocking: Bool = true) async throws(StreamError) -> [StreamRecord] {
        let block = min(configuration.block, .seconds(1))
        let milliseconds = max(1, block.milliseconds)
        let command = [
            "XREADGROUP", "GROUP", group, consumer, "COUNT", String(configuration.batchSize),
        ] + (id == ">" && blocking ? ["BLOCK", String(milliseconds)] : []) + ["STREAMS", keys.stream(stream), id]
        let groupMissing = groupNotFound()
        return try await run { connection in
            try connection.send(command) { reply in
                if let message = reply.errorMessage {
                    throw message.hasPrefix("NOGROUP") ? groupMissing : StreamError(.redis, message)
                }
                return try reply.readReplyEntries()
            }
        }
    }

    /// Handles a full batch while the next one is fetched, so Redis and the handlers work at
    /// the same time; returns the next batch.
    private func processReadingAhead(_ batch: [StreamRecord], filter: Filter) async throws(StreamError) -> [StreamRecord] {
        do {
            async let next = read(id: ">", block: false)
            try await process(batch, deliveries: [:], filter: filter)
            return try await next
        } catch {
            throw StreamError.wrapping(error)
        }
    }

    private func drainOwnHistory(_ filter: Filter) async throws(StreamError) {
        var after = "0"
        while !shouldStop {
            let batch = try await read(id: after)
            guard let last = batch.last else { return }
            let counts = try await deliveryCounts(from: batch[0].id, to: last.id)
            try await process(batch, deliveries: counts, filter: filter)
            after = last.id
        }
    }

    /// Dead-letters entries idle too long that reached the delivery limit, then claims the rest.
    private func reclaim(_ filter: Filter) async throws(StreamError) {
        let idle = String(max(1, configuration.claimMinIdle.milliseconds))
        let stuck = try await run { [keys, stream, group, batchSize = configuration.batchSize] connection in
            PendingEntry.list(try connection.command("XPENDING", keys.stream(stream), group, "IDLE", idle, "-", "+", String(batchSize)))
        }
        var counts: [String: Int] = [:]
        for entry in stuck {
            if entry.deliveryCount >= configuration.maxDeliveries {
                let reason = "not acknowledged after \(entry.deliveryCount) deliveries (last held by consumer '\(entry.consumer)')"
                try await deadLetter(id: entry.id, error: reason, deliveries: entry.deliveryCount)
            } else {
                counts[entry.id] = entry.deliveryCount + 1
            }
        }
        var cursor = "0-0"
        repeat {
            // Reply: next cursor, claimed entries, ids whose entries were deleted (dropped from the PEL).
            let (next, claimed) = try await run { [keys, stream, group, consumer, batchSize = configuration.batchSize, cursor] connection in
                try connection.send(["XAUTOCLAIM", keys.stream(stream), group, consumer, idle, cursor, "COUNT", String(batchSize)]) { reply in
                    if let message = reply.errorMessage { throw StreamError(.redis, message) }
                    guard reply.count >= 2, let next = reply[0].string else {
                        throw StreamError(.redis, "XAUTOCLAIM returned \(reply.value)")
                    }
                    return (next, try reply[1].streamEntries())
                }
            }
            if !claimed.isEmpty {
                logger.info("reclaimed idle entries", metadata: ["count": "\(claimed.count)"])
                var claimedCounts = counts
                let unknown = claimed.filter { claimedCounts[$0.id] == nil }
                if let first = unknown.first, let last = unknown.last {
                    claimedCounts.merge(try await deliveryCounts(from: first.id, to: last.id)) { $1 }
                }
                try await process(claimed, deliveries: claimedCounts, filter: filter)
            }
            cursor = next
        } while cursor != "0-0" && !shouldStop
    }

    private func deliveryCounts(from first: String, to last: String) async throws(StreamError) -> [String: Int] {
        let reply = try await run { [keys, stream, group, consumer, batchSize = configuration.batchSize] connection in
            try connection.command("XPENDING", keys.stream(stream), group, first, last, String(batchSize), consumer)
        }
        var counts: [String: Int] = [:]
        for entry in PendingEntry.list(reply) { counts[entry.id] = entry.deliveryCount }
        return counts
    }

    // MARK: - Processing

    /// Runs the handler on every entry of the batch, then acknowledges the successes at once.
    /// - Parameter deliveries: known delivery counts; entries not in it are first deliveries.
    private func process(_ batch: [StreamRecord], deliveries: [String: Int], filter: Filter) async throws(StreamError) {
        var done: [String] = []
        done.reserveCapacity(batch.count)
        for entry in batch {
            // Trimmed or deleted while pending: nothing left to handle.
            guard let fields = entry.fields else {
                done.append(entry.id)
                continue
            }
            let event: StreamEvent
            do {
                event = try StreamEvent(id: entry.id, stream: stream, tenant: keys.tenant, fields: fields)
            } catch {
                logger.warning("dead-lettering malformed entry", metadata: ["id": "\(entry.id)", "reason": "\(error)"])
                try await deadLetter(id: entry.id, error: "malformed entry: \(error)", deliveries: deliveries[entry.id] ?? 1)
                continue
            }
            if let types = filter.eventTypes, !types.contains(event.eventType) {
                done.append(entry.id)
                continue
            }
            do {
                try await filter.handler(event)
                done.append(entry.id)
            } catch {
                let count = deliveries[entry.id] ?? 1
                if count >= configuration.maxDeliveries {
                    logger.error("dead-lettering entry after \(count) deliveries", metadata: ["id": "\(entry.id)", "error": "\(error)"])
                    try await deadLetter(id: entry.id, error: "\(error)", deliveries: count)
                } else {
                    logger.warning("handler failed; entry stays pending for retry", metadata: ["id": "\(entry.id)", "delivery": "\(count)", "error": "\(error)"])
                }
            }
        }
        try await acknowledge(done)
    }

    private func acknowledge(_ ids: [String]) async throws(StreamError) {
        guard let last = ids.last else { return }
        let replies = try await run { [keys, stream, group, consumer] connection in
            try connection.pipeline([
                ["XACK", keys.stream(stream), group] + ids,
                ["HSET", keys.checkpoints(stream), group + "/" + consumer, last],
            ])
        }
        for reply in replies {
            if case .error(let message) = reply {
                if message.hasPrefix("NOGROUP") { throw groupNotFound() }
                throw StreamError(.redis, message)
            }
        }
    }

    private func deadLetter(id: String, error: String, deliveries: Int) async throws(StreamError) {
        let arguments = [group, id, String(error.prefix(4096)), String(deliveries), consumer, stream, Timestamp.now()]
        try await run { [keys, stream] connection in
            try connection.evaluate(Scripts.deadLetter, keys: [keys.stream(stream), keys.deadLetters], arguments: arguments).unwrapped()
        }
    }

    // MARK: - Group and consumer-name checks

    private func requireGroup() async throws(StreamError) {
        let reply = try await run { [keys, stream] connection in try connection.send(["XINFO", "GROUPS", keys.stream(stream)]) }
        let names = (reply.array ?? []).compactMap { $0.pairs?["name"]?.string }
        guard names.contains(group) else { throw groupNotFound() }
    }

    private func groupNotFound() -> StreamError {
        StreamError(.groupNotFound, "group '\(group)' does not exist on stream '\(stream)'; create it before consumers join")
    }

    private var leaseKey: String { keys.consumerLease(stream: stream, group: group, consumer: consumer) }
    private var leaseMilliseconds: String { String(max(1, configuration.leaseTTL.milliseconds)) }

    /// Claims the consumer name, waiting out the lease of a crashed previous holder.
    private func takeLease() async throws(StreamError) {
        let deadline = ContinuousClock.now + configuration.leaseTTL + .milliseconds(500)
        while true {
            let held = try await run { [leaseKey, token, leaseMilliseconds] connection in
                try connection.evaluate(Scripts.lease, keys: [leaseKey], arguments: [token, leaseMilliseconds]).unwrapped().int == 1
            }
            if held { return }
            guard ContinuousClock.now < deadline, !shouldStop else {
                throw StreamError(.consumerNameInUse, "consumer name '\(consumer)' is in use by another live consumer of group '\(group)' on stream '\(stream)'")
            }
            try? await Task.sleep(for: .milliseconds(100))
        }
    }

    private func renewLease() async throws(StreamError) {
        let held = try await run { [leaseKey, token, leaseMilliseconds] connection in
            try connection.evaluate(Scripts.lease, keys: [leaseKey], arguments: [token, leaseMilliseconds]).unwrapped().int == 1
        }
        guard held else {
            throw StreamError(.consumerNameInUse, "consumer name '\(consumer)' was taken over by another consumer while this one stalled")
        }
    }

    /// Gives the consumer name back (best effort: the lease expires by itself). Never blocks a
    /// concurrency thread, even while Redis is unreachable.
    private func releaseLease() async {
        _ = try? await run { [leaseKey, token] connection in
            try connection.evaluate(Scripts.lease, keys: [leaseKey], arguments: [token, "0"])
        }
    }

    @discardableResult
    private func run<T: Sendable>(_ body: @escaping @Sendable (RedisConnection) throws -> T) async throws(StreamError) -> T {
        do {
            return try await pool.withConnection(body)
        } catch {
            throw StreamError.wrapping(error)
        }
    }
}
