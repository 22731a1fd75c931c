import Redis

/// What a trim did.
public struct TrimResult: Sendable, Hashable, Codable {
    /// Entries removed.
    public let removed: Int
    /// Entries older than this id were due for removal (by length or age).
    public let wantedCut: String?
    /// Entries older than this id were removed; lower than `wantedCut` when held back.
    public let appliedCut: String?
    /// The group whose undelivered or pending entries held the trim back.
    public let heldBackBy: String?
}

/// Length and age trimming that never removes an entry a consumer group still needs.
///
/// `XADD … MAXLEN ~` would drop entries no group has read yet; instead, one script computes
/// the cut from `max_length` and `retention_ms`, lowers it to the oldest entry any group has
/// pending or not yet been delivered, and trims with `XTRIM MINID`.
enum StreamTrimmer {
    /// Most entries inspected per call; a long backlog shrinks over successive trims.
    static let maxScan = 100_000

    static func trim(_ connection: RedisConnection, keys: StreamKeys, stream: String, maxLength: Int) throws -> TrimResult {
        let reply = try connection.evaluate(
            Scripts.trim,
            keys: [keys.stream(stream), keys.meta(stream)],
            arguments: [String(maxLength), String(maxScan)]
        ).unwrapped()
        guard let parts = reply.array, parts.count == 4 else {
            throw StreamError(.redis, "trim script returned \(reply)")
        }
        func optional(_ value: RedisValue) -> String? {
            guard let text = value.string, !text.isEmpty else { return nil }
            return text
        }
        return TrimResult(
            removed: parts[0].int ?? 0,
            wantedCut: optional(parts[1]),
            appliedCut: optional(parts[2]),
            heldBackBy: optional(parts[3])
        )
    }
}
