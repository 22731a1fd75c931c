import Foundation
import Logging
import Redis
import Synchronization

/// Appends events to one stream of one tenant.
///
/// ```swift
/// let producer = try StreamProducer(redisURL: "unix:///tmp/redis.sock", tenant: "acme", stream: "taskAssignments")
/// let id = try await producer.publish(eventType: "task.created", payload: #"{"taskId":"t1"}"#,
///                                     routing: ["taskId": "t1"], idempotencyKey: "req-42")
/// ```
public final class StreamProducer: Sendable {
    /// How the producer writes.
    public struct Configuration: Sendable {
        /// Keep about this many entries (0: the stream's own `max_length`, if any).
        public var maxLength: Int
        /// Also PUBLISH each entry, with its id, on `tenant:{T}:channel:NAME`.
        public var broadcast: Bool
        /// How long an idempotency key remembers its first id.
        public var idempotencyTTL: Duration
        /// Run the safe trim after this many appends.
        public var trimEvery: Int
        public var pool: RedisConnectionPool.Configuration

        public init(
            maxLength: Int = 0,
            broadcast: Bool = false,
            idempotencyTTL: Duration = .seconds(86_400),
            trimEvery: Int = 1_000,
            pool: RedisConnectionPool.Configuration = .init(maxConnections: 4)
        ) {
            self.maxLength = maxLength
            self.broadcast = broadcast
            self.idempotencyTTL = idempotencyTTL
            self.trimEvery = trimEvery
            self.pool = pool
        }
    }

    /// Largest payload accepted (JSON text), just under 1 MB.
    public static let maxPayloadBytes = 1_000_000

    public let keys: StreamKeys
    public let stream: String
    public let configuration: Configuration
    /// `XADD key * event_type`, encoded once.
    private let xaddPrefix: CommandBuffer.EncodedArguments
    /// `tenant T schema_version N`, encoded once.
    private let tenantFields: CommandBuffer.EncodedArguments
    private let pool: RedisConnectionPool
    private let appendsSinceTrim = Atomic<Int>(0)
    private let logger: Logger

    /// - Throws: `StreamError` for an invalid tenant, stream name or URL.
    public init(
        redisURL: String,
        tenant: String,
        stream: String,
        maxLength: Int = 0,
        configuration: Configuration = Configuration(),
        logger: Logger = Logger(label: "fieldops.streams.producer")
    ) throws(StreamError) {
        try StreamName.validate(stream)
        self.keys = try StreamKeys(tenant: tenant)
        self.stream = stream
        self.xaddPrefix = CommandBuffer.EncodedArguments(["XADD", keys.stream(stream), "*", "event_type"])
        self.tenantFields = CommandBuffer.EncodedArguments(["tenant", keys.tenant, "schema_version", String(StreamEvent.currentSchemaVersion)])
        var configuration = configuration
        if maxLength > 0 { configuration.maxLength = maxLength }
        self.configuration = configuration
        self.pool = try redisCall { try RedisConnectionPool(url: redisURL, configuration: configuration.pool) }
        self.logger = logger
    }

    /// The result of a publish.
    public struct Published: Sendable, Hashable {
        /// The entry's stream id.
        public let id: String
        /// False when an idempotency key had been seen: `id` is the first publish's id.
        public let appended: Bool
    }

    /// Appends an event and returns its stream id.
    /// - Parameters:
    ///   - eventType: required, e.g. `task.assigned`.
    ///   - payload: JSON text, under 1 MB.
    ///   - metadata: free-form string pairs stored as a JSON object.
    ///   - routing: flat fields for consumers that route without parsing JSON (`taskId`…).
    ///   - idempotencyKey: repeating a key returns the first id and appends nothing.
    /// - Throws: `StreamError` for invalid input or when Redis fails.
    @discardableResult
    public func publish(
        eventType: String,
        payload: String,
        metadata: [String: String] = [:],
        routing: KeyValuePairs<String, String> = [:],
        idempotencyKey: String? = nil
    ) async throws(StreamError) -> String {
        try await publishReporting(eventType: eventType, payload: payload, metadata: metadata, routing: Array(routing), idempotencyKey: idempotencyKey).id
    }

    /// Encodes `payload` as JSON and appends it.
    @discardableResult
    public func publish<Payload: Encodable>(
        eventType: String,
        payload: Payload,
        metadata: [String: String] = [:],
        routing: KeyValuePairs<String, String> = [:],
        idempotencyKey: String? = nil
    ) async throws(StreamError) -> String {
        let text: String
        do {
            text = String(decoding: try JSONEncoder().encode(payload), as: UTF8.self)
        } catch {
            throw StreamError(.invalidField, "payload cannot be encoded as JSON: \(error)")
        }
        return try await publish(eventType: eventType, payload: text, metadata: metadata, routing: routing, idempotencyKey: idempotencyKey)
    }

    /// Appends and tells whether the entry is new or an idempotent repeat.
    public func publishReporting(
        eventType: String,
        payload: String,
        metadata: [String: String] = [:],
        routing: [(String, String)] = [],
        idempotencyKey: String? = nil
    ) async throws(StreamError) -> Published {
        let command = try makeCommand(eventType: eventType, payload: payload, metadata: metadata, routing: routing, idempotencyKey: idempotencyKey)
        let trimDue = noteAppends(1)
        do {
            return try await pool.withConnection { [self] connection in
                let published = try command.run(on: connection)
                if trimDue { trim(on: connection) }
                return published
            }
        } catch {
            throw StreamError.wrapping(error)
        }
    }

    /// Appends on the calling thread, blocking until Redis answers.
    ///
    /// For callers that own a thread (benchmarks, bulk loaders); async code uses `publish`.
    @discardableResult
    public func publishBlocking(
        eventType: String,
        payload: String,
        metadata: [String: String] = [:],
        routing: [(String, String)] = [],
        idempotencyKey: String? = nil
    ) throws(StreamError) -> Published {
        let command = try makeCommand(eventType: eventType, payload: payload, metadata: metadata, routing: routing, idempotencyKey: idempotencyKey)
        let trimDue = noteAppends(1)
        return try redisCall {
            try pool.withConnectionBlocking { connection in
                let published = try command.run(on: connection)
                if trimDue { trim(on: connection) }
                return published
            }
        }
    }

    /// Appends many events in one round trip (no idempotency keys); returns their ids in order.
    public func publishBatchBlocking(_ events: [(eventType: String, payload: String, routing: [(String, String)])]) throws(StreamError) -> [String] {
        var buffer = CommandBuffer()
        // One producer time for the batch: its events are produced together.
        let timestamp = Timestamp.now()
        for event in events {
            try StreamEvent.validate(eventType: event.eventType, payload: event.payload, routing: event.routing, idempotencyKey: nil)
            encodeXADD(into: &buffer, eventType: event.eventType, payload: event.payload, metadata: "{}", routing: event.routing, timestamp: timestamp)
        }
        let trimDue = noteAppends(events.count)
        return try redisCall {
            try pool.withConnectionBlocking { connection in
                let ids = try connection.pipeline(buffer) { reply in
                    guard let id = reply.string else {
                        throw StreamError(.redis, "XADD returned \(reply.value)")
                    }
                    return id
                }
                if trimDue { trim(on: connection) }
                return ids
            }
        }
    }

    /// Closes the producer's connections.
    public func close() {
        pool.close()
    }

    // MARK: - Building the write

    /// One append: a plain XADD, or the append script when it must be idempotent or broadcast.
    private enum Command: Sendable {
        case xadd(CommandBuffer)
        case script(keys: [String], arguments: [String])

        func run(on connection: RedisConnection) throws -> Published {
            switch self {
            case .xadd(let buffer):
                let reply = try connection.pipeline(buffer)[0].unwrapped()
                guard let id = reply.string else { throw StreamError(.redis, "XADD returned \(reply)") }
                return Published(id: id, appended: true)
            case .script(let keys, let arguments):
                let reply = try connection.evaluate(Scripts.append, keys: keys, arguments: arguments).unwrapped()
                guard let parts = reply.array, parts.count == 2, let id = parts[0].string else {
                    throw StreamError(.redis, "append script returned \(reply)")
                }
                return Published(id: id, appended: parts[1].int == 1)
            }
        }
    }

    private func makeCommand(
        eventType: String,
        payload: String,
        metadata: [String: String],
        routing: [(String, String)],
        idempotencyKey: String?,
        forceScript: Bool? = nil
    ) throws(StreamError) -> Command {
        try StreamEvent.validate(eventType: eventType, payload: payload, routing: routing, idempotencyKey: idempotencyKey)
        if idempotencyKey == nil && !(forceScript ?? configuration.broadcast) {
            var buffer = CommandBuffer()
            encodeXADD(into: &buffer, eventType: eventType, payload: payload, metadata: JSONText.object(metadata), routing: routing, timestamp: Timestamp.now())
            return .xadd(buffer)
        }
        let event = StreamEvent(
            stream: stream, eventType: eventType, payload: payload, timestamp: Timestamp.now(),
            metadata: JSONText.object(metadata), tenant: keys.tenant, idempotencyKey: idempotencyKey,
            routing: routing.map { (name: $0.0, value: $0.1) }
        )
        var scriptKeys = [keys.stream(stream)]
        if let idempotencyKey { scriptKeys.append(keys.idempotency(idempotencyKey)) }
        let ttl = configuration.idempotencyTTL.milliseconds
        let scriptArguments = [String(ttl), configuration.broadcast ? keys.channel(stream) : "", stream] + event.fields
        return .script(keys: scriptKeys, arguments: scriptArguments)
    }

    /// Encodes `XADD key * <envelope> <routing>` straight into `buffer`, the field order of
    /// `StreamEvent.fields`, without building an argument array.
    private func encodeXADD(
        into buffer: inout CommandBuffer,
        eventType: String,
        payload: String,
        metadata: String,
        routing: [(String, String)],
        timestamp: String
    ) {
        buffer.reserveCapacity(payload.utf8.count + 256)
        buffer.beginCommand(argumentCount: xaddPrefix.count + 1 + 1 + 1 + 1 + 1 + 1 + 1 + tenantFields.count + 2 * routing.count)
        buffer.append(xaddPrefix)
        buffer.appendArgument(eventType)
        buffer.append(Self.payloadField)
        buffer.appendArgument(payload)
        buffer.append(Self.timestampField)
        buffer.appendArgument(timestamp)
        buffer.append(Self.metadataField)
        buffer.appendArgument(metadata)
        buffer.append(tenantFields)
        for (name, value) in routing {
            buffer.appendArgument(name)
            buffer.appendArgument(value)
        }
    }

    private static let payloadField = CommandBuffer.EncodedArguments(["payload"])
    private static let timestampField = CommandBuffer.EncodedArguments(["timestamp"])
    private static let metadataField = CommandBuffer.EncodedArguments(["metadata"])


    /// Counts appends; true when this call crossed `trimEvery` and should trim.
    private func noteAppends(_ count: Int) -> Bool {
        let total = appendsSinceTrim.add(count, ordering: .relaxed).newValue
        guard total >= configuration.trimEvery else { return false }
        appendsSinceTrim.store(0, ordering: .relaxed)
        return true
    }

    /// Runs the safe trim; a failure is logged, never fails the append that triggered it.
    private func trim(on connection: RedisConnection) {
        do {
            let result = try StreamTrimmer.trim(connection, keys: keys, stream: stream, maxLength: configuration.maxLength)
            if let group = result.heldBackBy {
                logger.warning(
                    "trim held back to keep entries a consumer group still needs",
                    metadata: ["stream": "\(stream)", "group": "\(group)", "wanted": "\(result.wantedCut ?? "")", "applied": "\(result.appliedCut ?? "")"]
                )
            }
        } catch {
            logger.warning("trim failed", metadata: ["stream": "\(stream)", "error": "\(error)"])
        }
    }
}
