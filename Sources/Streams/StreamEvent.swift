import Foundation
import Synchronization

/// One stream entry in the FieldOps envelope (DESIGN.md §2).
///
/// Fields in order: `event_type`, `payload` (JSON text), `timestamp` (ISO 8601, producer time),
/// `metadata` (JSON object text), `tenant`, `schema_version`, `idempotency_key` when given,
/// then the stream's flat routing fields (`taskId`, `roomId`, `workerId`…).
public struct StreamEvent: Sendable, Hashable {
    /// The entry's stream id, `MILLISECONDS-SEQUENCE`.
    public var id: String
    /// The stream name (without the tenant prefix).
    public var stream: String
    public var eventType: String
    /// JSON text.
    public var payload: String
    public var timestamp: String
    /// JSON object text; `{}` when empty.
    public var metadata: String
    public var tenant: String
    public var schemaVersion: Int
    public var idempotencyKey: String?
    /// Flat routing fields, in entry order.
    public var routing: [(name: String, value: String)]

    /// The envelope's reserved field names; routing fields may not reuse them.
    public static let envelopeFields: Set<String> = [
        "event_type", "payload", "timestamp", "metadata", "tenant", "schema_version", "idempotency_key",
    ]

    public static let currentSchemaVersion = 1

    /// True for the envelope's reserved names; a switch avoids hashing on the publish path.
    static func isEnvelopeField(_ name: String) -> Bool {
        switch name {
        case "event_type", "payload", "timestamp", "metadata", "tenant", "schema_version", "idempotency_key": return true
        default: return false
        }
    }

    public init(
        id: String = "",
        stream: String,
        eventType: String,
        payload: String,
        timestamp: String,
        metadata: String = "{}",
        tenant: String,
        schemaVersion: Int = StreamEvent.currentSchemaVersion,
        idempotencyKey: String? = nil,
        routing: [(name: String, value: String)] = []
    ) {
        self.id = id
        self.stream = stream
        self.eventType = eventType
        self.payload = payload
        self.timestamp = timestamp
        self.metadata = metadata
        self.tenant = tenant
        self.schemaVersion = schemaVersion
        self.idempotencyKey = idempotencyKey
        self.routing = routing
    }

    /// The checks every append makes before it reaches Redis.
    /// - Parameter reservedRouting: further names routing fields may not take.
    static func validate(
        eventType: String, payload: String, routing: [(String, String)], idempotencyKey: String?, reservedRouting: Set<String> = []
    ) throws(StreamError) {
        guard let first = eventType.utf8.first, first > 0x20 && first < 0x7F || eventType.unicodeScalars.contains(where: { !$0.properties.isWhitespace }) else {
            throw StreamError(.invalidEventType, "event type is required and cannot be empty")
        }
        guard eventType.utf8.count <= 256 else {
            throw StreamError(.invalidEventType, "event type is longer than 256 bytes")
        }
        guard payload.utf8.count < StreamProducer.maxPayloadBytes else {
            throw StreamError(.payloadTooLarge, "payload is \(payload.utf8.count) bytes; the limit is under \(StreamProducer.maxPayloadBytes) bytes (1 MB)")
        }
        if let idempotencyKey {
            guard !idempotencyKey.isEmpty, idempotencyKey.utf8.count <= 256 else {
                throw StreamError(.invalidField, "idempotency key must be 1-256 bytes")
            }
        }
        for (name, _) in routing where name.isEmpty || isEnvelopeField(name) || reservedRouting.contains(name) {
            throw StreamError(.invalidField, "routing field '\(name)' is empty or reserved by the envelope")
        }
    }

    /// The routing field's value, if the entry has it.
    public func routingValue(_ name: String) -> String? {
        routing.first { $0.name == name }?.value
    }

    /// Decodes the payload JSON.
    public func decodePayload<T: Decodable>(as type: T.Type, decoder: JSONDecoder = JSONDecoder()) throws -> T {
        try decoder.decode(T.self, from: Data(payload.utf8))
    }

    /// Field/value pairs as written to Redis.
    public var fields: [String] {
        var fields = [
            "event_type", eventType, "payload", payload, "timestamp", timestamp, "metadata", metadata,
            "tenant", tenant, "schema_version", String(schemaVersion),
        ]
        if let idempotencyKey { fields += ["idempotency_key", idempotencyKey] }
        for (name, value) in routing { fields += [name, value] }
        return fields
    }

    public static func == (lhs: StreamEvent, rhs: StreamEvent) -> Bool {
        lhs.id == rhs.id && lhs.stream == rhs.stream && lhs.fields == rhs.fields
    }

    public func hash(into hasher: inout Hasher) {
        hasher.combine(id)
        hasher.combine(stream)
        hasher.combine(fields)
    }
}

extension StreamEvent {
    /// Why an entry is not a valid envelope.
    public struct Malformed: Error, Sendable, CustomStringConvertible {
        public let description: String
    }

    /// Parses an entry's flat field list, as written by any producer (ours or a foreign `XADD`).
    ///
    /// `event_type` and `payload` are required; a missing `timestamp`, `metadata` or
    /// `schema_version` takes its default, so plain `redis-cli XADD` producers interoperate.
    public init(id: String, stream: String, tenant: String, fields: [(String, String)]) throws(Malformed) {
        var envelope = Envelope(tenant: tenant)
        for (name, value) in fields { try envelope.add(name, value) }
        self = try envelope.event(id: id, stream: stream)
    }

    /// An entry's fields as they are read, one pair at a time.
    struct Envelope {
        let tenant: String
        var eventType: String?
        var payload: String?
        var timestamp = ""
        var metadata = "{}"
        var entryTenant: String
        var schemaVersion = StreamEvent.currentSchemaVersion
        var idempotencyKey: String?
        var routing: [(name: String, value: String)] = []

        init(tenant: String) {
            self.tenant = tenant
            self.entryTenant = tenant
        }

        mutating func add(_ name: String, _ value: String) throws(Malformed) {
            switch name {
            case "event_type": eventType = value
            case "payload": payload = value
            case "timestamp": timestamp = value
            case "metadata": metadata = value
            case "tenant": entryTenant = value
            case "schema_version":
                guard let version = Int(value) else { throw Malformed(description: "schema_version '\(value)' is not an integer") }
                schemaVersion = version
            case "idempotency_key": idempotencyKey = value
            default: routing.append((name, value))
            }
        }

        func event(id: String, stream: String) throws(Malformed) -> StreamEvent {
            guard let eventType, !eventType.isEmpty else { throw Malformed(description: "entry has no event_type field") }
            guard let payload else { throw Malformed(description: "entry has no payload field") }
            guard entryTenant == tenant else {
                throw Malformed(description: "entry names tenant '\(entryTenant)' but lives in tenant '\(tenant)'")
            }
            return StreamEvent(
                id: id, stream: stream, eventType: eventType, payload: payload, timestamp: timestamp, metadata: metadata,
                tenant: tenant, schemaVersion: schemaVersion, idempotencyKey: idempotencyKey, routing: routing
            )
        }
    }
}

// MARK: - Encoding helpers

enum JSONText {
    /// Encodes a string dictionary as a JSON object with sorted keys; `{}` when empty.
    static func object(_ dictionary: [String: String]) -> String {
        if dictionary.isEmpty { return "{}" }
        var out = "{"
        for (index, key) in dictionary.keys.sorted().enumerated() {
            if index > 0 { out += "," }
            appendQuoted(key, to: &out)
            out += ":"
            appendQuoted(dictionary[key]!, to: &out)
        }
        return out + "}"
    }

    private static let hexDigits = Array("0123456789abcdef".utf8)

    /// Appends `text` as a JSON string literal. Works on UTF-8 bytes and copies runs that need
    /// no escaping whole: it writes every field of every channel message.
    static func appendQuoted(_ text: String, to out: inout String) {
        var escaped: [UInt8] = []
        escaped.reserveCapacity(text.utf8.count + 18)
        appendQuoted(text, to: &escaped)
        out += String(decoding: escaped, as: UTF8.self)
    }

    /// The same into bytes: a message of many strings is built in one buffer, with no String
    /// and no array made per string (this runs for every field of every appended event).
    static func appendQuoted(_ text: String, to out: inout [UInt8]) {
        var text = text
        text.withUTF8 { bytes in
            out.append(UInt8(ascii: "\""))
            var runStart = 0
            for index in 0..<bytes.count {
                let byte = bytes[index]
                guard byte < 0x20 || byte == UInt8(ascii: "\"") || byte == UInt8(ascii: "\\") else { continue }
                out.append(contentsOf: UnsafeBufferPointer(rebasing: bytes[runStart..<index]))
                out.append(UInt8(ascii: "\\"))
                switch byte {
                case UInt8(ascii: "\""), UInt8(ascii: "\\"): out.append(byte)
                case UInt8(ascii: "\n"): out.append(UInt8(ascii: "n"))
                case UInt8(ascii: "\r"): out.append(UInt8(ascii: "r"))
                case UInt8(ascii: "\t"): out.append(UInt8(ascii: "t"))
                default:
                    out.append(UInt8(ascii: "u")); out.append(UInt8(ascii: "0")); out.append(UInt8(ascii: "0"))
                    out.append(hexDigits[Int(byte >> 4)]); out.append(hexDigits[Int(byte & 0xF)])
                }
                runStart = index + 1
            }
            out.append(contentsOf: UnsafeBufferPointer(rebasing: bytes[runStart..<bytes.count]))
            out.append(UInt8(ascii: "\""))
        }
    }
}

enum Timestamp {
    /// Now as ISO 8601 UTC with milliseconds, e.g. `2026-11-22T14:02:00.123Z`.
    ///
    /// The part up to the second is formatted once per second and cached: a formatter costs
    /// microseconds per call on the publish path.
    static func now() -> String {
        var spec = timespec()
        clock_gettime(CLOCK_REALTIME, &spec)
        let seconds = spec.tv_sec
        let prefix = cachedPrefix.withLock { cache -> String in
            if cache.seconds != seconds {
                let formatted = format(seconds: seconds, milliseconds: 0)
                cache = (seconds, String(formatted.dropLast(5)))
            }
            return cache.prefix
        }
        let milliseconds = Int(spec.tv_nsec / 1_000_000)
        let digits: [UInt8] = [
            UInt8(ascii: "."), UInt8(ascii: "0") + UInt8(milliseconds / 100), UInt8(ascii: "0") + UInt8(milliseconds / 10 % 10),
            UInt8(ascii: "0") + UInt8(milliseconds % 10), UInt8(ascii: "Z"),
        ]
        return prefix + String(decoding: digits, as: UTF8.self)
    }

    /// Seconds and their formatted `YYYY-MM-DDTHH:MM:SS`.
    private static let cachedPrefix = Mutex<(seconds: Int, prefix: String)>((-1, ""))

    static func format(seconds: Int, milliseconds: Int) -> String {
        var time = seconds
        var parts = tm()
        gmtime_r(&time, &parts)
        func pad(_ value: Int32, _ width: Int) -> String {
            let digits = String(value)
            return String(repeating: "0", count: max(0, width - digits.count)) + digits
        }
        return "\(pad(parts.tm_year + 1900, 4))-\(pad(parts.tm_mon + 1, 2))-\(pad(parts.tm_mday, 2))T"
            + "\(pad(parts.tm_hour, 2)):\(pad(parts.tm_min, 2)):\(pad(parts.tm_sec, 2)).\(pad(Int32(milliseconds), 3))Z"
    }

    static func nowMilliseconds() -> Int64 {
        var spec = timespec()
        clock_gettime(CLOCK_REALTIME, &spec)
        return Int64(spec.tv_sec) * 1000 + Int64(spec.tv_nsec / 1_000_000)
    }
}
