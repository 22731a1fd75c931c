import Foundation
import Logging
import Redis
import Synchronization

/// The write path of the domain services (DESIGN.md §1): for any tenant and stream, one script
/// checks the idempotency key and the conditions on the live tree, appends the events, writes
/// the live paths and publishes the entries — all or nothing, through one shared pool.
///
/// ```swift
/// let writer = try EventWriter(redisURL: url)
/// let outcome = try await writer.append(EventWriter.Append(
///     tenant: "acme", stream: "taskAssignments",
///     events: [.init(eventType: "task.accepted", payload: #"{"taskId":"t1"}"#, routing: [("taskId", "t1")])],
///     conditions: [.init(path: "/tasks/t1/status", .oneOf([#""assigned""#]))],
///     liveWrites: [.set(path: "/tasks/t1/status", json: #""accepted""#)],
///     idempotencyKey: "req-42"))
/// ```
public final class EventWriter: Sendable {
    /// A check on one live path, made before anything is written.
    public struct Condition: Sendable, Hashable {
        public enum Kind: Sendable, Hashable {
            /// The path holds a value.
            case exists
            /// The path holds nothing (a create that must not overwrite).
            case absent
            /// The path holds exactly this JSON text.
            case equals(String)
            /// The path holds one of these JSON texts.
            case oneOf([String])
            /// The path holds a number that stays at or above zero when `delta` is added.
            case staysNonNegative(delta: Double)
        }

        public let path: String
        public let kind: Kind

        public init(path: String, _ kind: Kind) {
            self.path = path
            self.kind = kind
        }
    }

    /// A change to the live tree made with the append.
    public enum LiveWrite: Sendable, Hashable {
        /// Sets the path to a JSON value.
        case set(path: String, json: String)
        /// Adds `delta` to the number at the path (missing counts as zero).
        case increment(path: String, by: Double)
        /// Sets the path unless it holds an object whose `recordedAt` is later than `recordedAt`:
        /// a phone flushing old fixes never hides the newest one.
        case setIfNewer(path: String, json: String, recordedAt: Int64)
        /// Removes the path.
        case delete(path: String)

        public var path: String {
            switch self {
            case .set(let path, _), .increment(let path, _), .setIfNewer(let path, _, _), .delete(let path): path
            }
        }
    }

    /// One event to append: the envelope fields the caller chooses.
    public struct Draft: Sendable {
        public var eventType: String
        public var payload: String
        public var metadata: [String: String]
        public var routing: [(String, String)]

        public init(eventType: String, payload: String, metadata: [String: String] = [:], routing: [(String, String)] = []) {
            self.eventType = eventType
            self.payload = payload
            self.metadata = metadata
            self.routing = routing
        }
    }

    /// Where a write's events go (the hybrid pattern).
    public enum Delivery: String, Sendable, Hashable, CaseIterable {
        /// Appended to the stream and published live (the default).
        case both
        /// Appended only: readers see the events when they read or resume, not live.
        case persist
        /// Published live only, with no id: never stored, never replayed, not recoverable.
        case realtime
    }

    /// Everything one write does.
    public struct Append: Sendable {
        public var tenant: String
        public var stream: String
        public var events: [Draft]
        public var conditions: [Condition]
        public var liveWrites: [LiveWrite]
        public var idempotencyKey: String?
        public var delivery: Delivery

        public init(
            tenant: String, stream: String, events: [Draft], conditions: [Condition] = [], liveWrites: [LiveWrite] = [], idempotencyKey: String? = nil,
            delivery: Delivery = .both
        ) {
            self.tenant = tenant
            self.stream = stream
            self.events = events
            self.conditions = conditions
            self.liveWrites = liveWrites
            self.idempotencyKey = idempotencyKey
            self.delivery = delivery
        }
    }

    /// What a write did.
    public enum Outcome: Sendable, Hashable {
        /// The events were appended with these ids, in order (none for a realtime-only write).
        case appended([String])
        /// The idempotency key was seen before: its write appended the entries `first...last`
        /// of this stream (read them with `entries(tenant:stream:from:to:)`), nothing new.
        case repeated(first: String, last: String)
        /// `conditions[index]` did not hold; the path's JSON value, `nil` when it holds none.
        /// Nothing was written.
        case refused(index: Int, current: String?)
    }

    public struct Configuration: Sendable {
        /// How long an idempotency key remembers its first write.
        public var idempotencyTTL: Duration
        /// PUBLISH each entry on `tenant:{T}:channel:STREAM`.
        public var broadcast: Bool
        /// Run the safe trim of a stream after this many appends to it.
        public var trimEvery: Int
        public var pool: RedisConnectionPool.Configuration

        public init(
            idempotencyTTL: Duration = .seconds(86_400),
            broadcast: Bool = true,
            trimEvery: Int = 1_000,
            pool: RedisConnectionPool.Configuration = .init(maxConnections: 8, connectDeadline: .seconds(2))
        ) {
            self.idempotencyTTL = idempotencyTTL
            self.broadcast = broadcast
            self.trimEvery = trimEvery
            self.pool = pool
        }
    }

    /// Most events one write may append.
    public static let maxEvents = 1_000

    public let configuration: Configuration
    private let pool: RedisConnectionPool
    /// Appends from concurrent requests share round trips.
    private let pipeliner: RedisPipeliner
    private let appendsSinceTrim = Mutex<[String: Int]>([:])
    private let logger: Logger

    public init(redisURL: String, configuration: Configuration = Configuration(), logger: Logger = Logger(label: "fieldops.streams.writer")) throws(StreamError) {
        self.configuration = configuration
        self.pool = try redisCall { try RedisConnectionPool(url: redisURL, configuration: configuration.pool) }
        self.pipeliner = RedisPipeliner(pool: pool)
        self.logger = logger
    }

    /// Runs one write.
    /// - Throws: `StreamError` for invalid input, or `.redis`/`.unavailable` when Redis fails.
    public func append(_ append: Append) async throws(StreamError) -> Outcome {
        let (keys, arguments) = try encode(append)
        let outcome: Outcome
        do {
            outcome = try Self.outcome(try await pipeliner.evaluate(Scripts.appendEvents, keys: keys, arguments: arguments).unwrapped())
        } catch {
            throw StreamError.wrapping(error)
        }
        if case .appended(let ids) = outcome, noteAppends(keys[0], ids.count) {
            let (tenant, stream) = (append.tenant, append.stream)
            _ = try? await pool.withConnection { [self] connection in trim(on: connection, tenant: tenant, stream: stream) }
        }
        return outcome
    }

    /// The entries `first...last` of a stream (e.g. those a repeated write appended).
    public func entries(tenant: String, stream: String, from first: String, to last: String) async throws(StreamError) -> [StreamEvent] {
        let key = try StreamKeys(tenant: tenant).stream(stream)
        let records: [StreamRecord]
        do {
            records = try await pool.withConnection { try $0.rangeEntries(["XRANGE", key, first, last]) }
        } catch {
            throw StreamError.wrapping(error)
        }
        return records.compactMap { record in record.fields.flatMap { try? StreamEvent(id: record.id, stream: stream, tenant: tenant, fields: $0) } }
    }

    /// The live value at `path`, as JSON text.
    public func liveValue(tenant: String, path: String) async throws(StreamError) -> String? {
        let key = try StreamKeys(tenant: tenant).live
        do {
            return try await pool.withConnection { try $0.command("HGET", key, path).unwrapped().string }
        } catch {
            throw StreamError.wrapping(error)
        }
    }

    /// Runs `body` on a pooled connection, for reads beside the writes (stream heads, live values).
    public func withConnection<T: Sendable>(_ body: @escaping @Sendable (RedisConnection) throws -> T) async throws(StreamError) -> T {
        do {
            return try await pool.withConnection(body)
        } catch {
            throw StreamError.wrapping(error)
        }
    }

    public func close() {
        pool.close()
    }

    // MARK: - Encoding

    private func encode(_ append: Append) throws(StreamError) -> (keys: [String], arguments: [String]) {
        let keys = try StreamKeys(tenant: append.tenant)
        try StreamName.validate(append.stream)
        guard !append.events.isEmpty, append.events.count <= Self.maxEvents else {
            throw StreamError(.invalidField, "a write appends 1-\(Self.maxEvents) events; this one has \(append.events.count)")
        }
        var scriptKeys = [keys.stream(append.stream), keys.live, keys.livePaths]
        if let key = append.idempotencyKey { scriptKeys.append(keys.idempotency(key)) }

        var arguments = [
            String(configuration.idempotencyTTL.milliseconds),
            configuration.broadcast && append.delivery != .persist ? keys.channel(append.stream) : "",
            append.stream,
            keys.liveChanges,
            append.delivery == .realtime ? "realtime" : "stored",
            String(append.conditions.count),
        ]
        for condition in append.conditions {
            switch condition.kind {
            case .exists: arguments += ["exists", condition.path, ""]
            case .absent: arguments += ["absent", condition.path, ""]
            case .equals(let json): arguments += ["equals", condition.path, json]
            case .oneOf(let values): arguments += ["oneof", condition.path, values.joined(separator: "\n")]
            case .staysNonNegative(let delta): arguments += ["nonneg", condition.path, Self.number(delta)]
            }
        }
        arguments.append(String(append.liveWrites.count))
        for write in append.liveWrites {
            switch write {
            case .set(let path, let json): arguments += ["set", path, json, ""]
            case .increment(let path, let delta): arguments += ["incr", path, Self.number(delta), ""]
            case .setIfNewer(let path, let json, let recordedAt): arguments += ["newer", path, json, String(recordedAt)]
            case .delete(let path): arguments += ["del", path, "", ""]
            }
            // The path as a JSON string, for the published change.
            var quoted = ""
            JSONText.appendQuoted(write.path, to: &quoted)
            arguments.append(quoted)
        }
        arguments.append(String(append.events.count))
        let timestamp = Timestamp.now()
        for draft in append.events {
            // `id` and `stream` are members of the channel message too.
            try StreamEvent.validate(
                eventType: draft.eventType, payload: draft.payload, routing: draft.routing, idempotencyKey: append.idempotencyKey,
                reservedRouting: ["id", "stream"]
            )
            let event = StreamEvent(
                stream: append.stream, eventType: draft.eventType, payload: draft.payload, timestamp: timestamp,
                metadata: JSONText.object(draft.metadata), tenant: append.tenant, idempotencyKey: append.idempotencyKey,
                routing: draft.routing.map { (name: $0.0, value: $0.1) }
            )
            let fields = event.fields
            arguments.append(String(fields.count))
            arguments += fields
            arguments.append(Self.channelMessageTail(stream: append.stream, fields: fields))
        }
        return (scriptKeys, arguments)
    }

    /// The channel message (`schemas/channel-message.schema.json`) after `{"id":"ID",`: the
    /// stream name and the entry's fields, which the script completes with the id.
    static func channelMessageTail(stream: String, fields: [String]) -> String {
        var out: [UInt8] = []
        out.reserveCapacity(fields.reduce(stream.utf8.count + 16) { $0 + $1.utf8.count + 4 })
        out.append(contentsOf: #""stream":"#.utf8)
        JSONText.appendQuoted(stream, to: &out)
        for index in stride(from: 0, to: fields.count - 1, by: 2) {
            out.append(UInt8(ascii: ","))
            JSONText.appendQuoted(fields[index], to: &out)
            out.append(UInt8(ascii: ":"))
            JSONText.appendQuoted(fields[index + 1], to: &out)
        }
        out.append(UInt8(ascii: "}"))
        return String(decoding: out, as: UTF8.self)
    }

    /// A number as Lua's `tonumber` and JSON both read it.
    public static func number(_ value: Double) -> String {
        value.rounded() == value && abs(value) < 1e15 ? String(Int64(value)) : String(value)
    }

    private static func outcome(_ reply: RedisValue) throws(StreamError) -> Outcome {
        guard let parts = reply.array, let tag = parts.first?.string else {
            throw StreamError(.redis, "append script returned \(reply)")
        }
        switch tag {
        case "ok":
            return .appended(parts.dropFirst().compactMap(\.string))
        case "repeat":
            guard parts.count == 3, let first = parts[1].string, let last = parts[2].string else { break }
            return .repeated(first: first, last: last)
        case "refused":
            guard parts.count == 3, let index = parts[1].int else { break }
            let current = parts[2].string
            return .refused(index: index - 1, current: current?.isEmpty == false ? current : nil)
        default:
            break
        }
        throw StreamError(.redis, "append script returned \(reply)")
    }

    // MARK: - Trimming

    private func noteAppends(_ streamKey: String, _ count: Int) -> Bool {
        appendsSinceTrim.withLock { counts in
            let total = counts[streamKey, default: 0] + count
            guard total >= configuration.trimEvery else {
                counts[streamKey] = total
                return false
            }
            counts[streamKey] = 0
            return true
        }
    }

    private func trim(on connection: RedisConnection, tenant: String, stream: String) {
        do {
            let result = try StreamTrimmer.trim(connection, keys: try StreamKeys(tenant: tenant), stream: stream, maxLength: 0)
            if let group = result.heldBackBy {
                logger.warning("trim held back to keep entries a consumer group still needs", metadata: ["tenant": "\(tenant)", "stream": "\(stream)", "group": "\(group)"])
            }
        } catch {
            logger.warning("trim failed", metadata: ["tenant": "\(tenant)", "stream": "\(stream)", "error": "\(error)"])
        }
    }
}
