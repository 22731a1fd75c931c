/// Names of one tenant's Redis keys (DESIGN.md §2).
///
/// Every key carries the hash tag `{tenant}`, so a tenant's keys live in one cluster slot and
/// every script touches one slot.
public struct StreamKeys: Sendable, Hashable {
    public let tenant: String

    /// - Throws: `invalid_tenant` unless the id is 1–64 letters, digits, `-` or `_`.
    public init(tenant: String) throws(StreamError) {
        guard Self.isIdentifier(tenant, maxLength: 64) else {
            throw StreamError(.invalidTenant, "tenant '\(tenant)' must be 1-64 letters, digits, '-' or '_'")
        }
        self.tenant = tenant
    }

    var prefix: String { "tenant:{\(tenant)}:" }

    /// `tenant:{T}:stream:NAME`
    public func stream(_ name: String) -> String { prefix + "stream:" + name }
    /// `tenant:{T}:meta:NAME`: created_at, retention_ms, max_length, epoch.
    public func meta(_ name: String) -> String { prefix + "meta:" + name }
    /// `tenant:{T}:channel:NAME`: live fan-out of the stream's entries.
    public func channel(_ name: String) -> String { prefix + "channel:" + name }
    /// `tenant:{T}:idem:KEY`: the stream id first returned for an idempotency key.
    public func idempotency(_ key: String) -> String { prefix + "idem:" + key }
    /// `tenant:{T}:checkpoint:NAME`: last acknowledged id per `group/consumer`.
    public func checkpoints(_ name: String) -> String { prefix + "checkpoint:" + name }
    /// `tenant:{T}:consumer:NAME:GROUP:CONSUMER`: lease proving a consumer name is in use.
    public func consumerLease(stream: String, group: String, consumer: String) -> String {
        prefix + "consumer:" + stream + ":" + group + ":" + consumer
    }
    /// `tenant:{T}:live`: the live key tree, JSON text per path.
    public var live: String { prefix + "live" }
    /// `tenant:{T}:live:paths`: the live paths in lexicographic order, for subtree reads.
    public var livePaths: String { prefix + "live:paths" }
    /// `tenant:{T}:channel:live:changes`: every change of the live tree (not a stream name:
    /// those hold no `:` but in `chat:ROOM`).
    public var liveChanges: String { prefix + "channel:live:changes" }
    /// The stream of entries that exhausted their retries.
    public var deadLetters: String { stream(StreamName.deadLetters) }
    /// SCAN pattern matching every stream key of the tenant.
    var streamPattern: String { prefix + "stream:*" }

    /// Splits `tenant:{T}:stream:NAME` into tenant and stream name; `nil` for other keys.
    public static func parse(streamKey key: String) -> (tenant: String, stream: String)? {
        guard key.hasPrefix("tenant:{"), let close = key.range(of: "}:stream:") else { return nil }
        let tenant = String(key[key.index(key.startIndex, offsetBy: 8)..<close.lowerBound])
        let stream = String(key[close.upperBound...])
        guard isIdentifier(tenant, maxLength: 64), (try? StreamName.validate(stream)) != nil else { return nil }
        return (tenant, stream)
    }

    /// SCAN pattern matching every stream key of every tenant.
    public static let allStreamsPattern = "tenant:{*}:stream:*"

    /// 1-`maxLength` letters, digits, `-` or `_`: the grammar of tenants, stream names and the
    /// API's ids, safe in keys, paths and live paths alike.
    public static func isIdentifier(_ text: String, maxLength: Int) -> Bool {
        !text.isEmpty && text.utf8.count <= maxLength && text.utf8.allSatisfy { byte in
            (byte >= 0x30 && byte <= 0x39) || (byte >= 0x41 && byte <= 0x5A) || (byte >= 0x61 && byte <= 0x7A) || byte == 0x2D || byte == 0x5F
        }
    }
}

/// Validation of stream, group and consumer names.
public enum StreamName {
    /// The stream of dead letters, one per tenant.
    public static let deadLetters = "deadLetters"

    /// Accepts `name` (1–128 letters, digits, `-`, `_`) or the room form `chat:ROOM`.
    public static func validate(_ name: String) throws(StreamError) {
        let body = name.hasPrefix("chat:") ? String(name.dropFirst(5)) : name
        guard StreamKeys.isIdentifier(body, maxLength: 128) else {
            throw StreamError(
                .invalidStreamName,
                "stream name '\(name)' must be 1-128 letters, digits, '-' or '_' (or chat:ROOM for a chat room)"
            )
        }
    }

    /// Group names follow the stream-name rules, without the room form.
    public static func validateGroup(_ name: String) throws(StreamError) {
        guard StreamKeys.isIdentifier(name, maxLength: 128) else {
            throw StreamError(.invalidGroupName, "group name '\(name)' must be 1-128 letters, digits, '-' or '_'")
        }
    }

    /// Consumer names are required; `.` is allowed too, for host names (`node-1.example`).
    public static func validateConsumer(_ name: String) throws(StreamError) {
        let withoutDots = name.replacingOccurrences(of: ".", with: "_")
        guard !name.isEmpty, StreamKeys.isIdentifier(withoutDots, maxLength: 128) else {
            throw StreamError(
                .invalidConsumerName,
                "consumer name '\(name)' is required: 1-128 letters, digits, '-', '_' or '.'"
            )
        }
    }

    /// Accepts `ms-seq` ids, `ms`, and the specials `-`, `+`, `$`, `0`.
    public static func validateID(_ id: String) throws(StreamError) {
        if ["-", "+", "$", "0", ">"].contains(id) { return }
        let parts = id.split(separator: "-", omittingEmptySubsequences: false)
        guard (1...2).contains(parts.count), parts.allSatisfy({ !$0.isEmpty && $0.utf8.allSatisfy { $0 >= 0x30 && $0 <= 0x39 } }) else {
            throw StreamError(.invalidMessageID, "'\(id)' is not a stream id (expected MILLISECONDS-SEQUENCE, e.g. 1700000000000-0)")
        }
    }
}
