import Redis

/// Where a reader that saw a stream up to some id stands now: what it missed, or that the gap
/// can no longer be filled completely (DESIGN.md §7).
///
/// A reader remembers the last id it saw and the stream's epoch. The epoch changes when the
/// stream is deleted and created again, or when Redis lost its data: ids then no longer
/// continue, and a reader must reload. Trimming removes the oldest entries: if the reader's last
/// entry is still there, everything after it is too; if it was trimmed, entries it never saw may
/// have gone with it.
public enum StreamResume {
    /// The stream's epoch and head, creating the epoch if the stream has none yet (streams
    /// written with plain XADD get theirs on first use).
    public struct Head: Sendable, Hashable {
        public let epoch: String
        /// The last id the stream generated (`0-0` when it never had an entry).
        public let lastGeneratedID: String
    }

    public enum Outcome: Sendable {
        /// Every entry after the reader's id, in order (possibly none).
        case complete([StreamEvent])
        /// The gap cannot be filled completely; nothing is returned, the reader reloads.
        case incomplete(reason: String)
    }

    /// Most entries one resume replays; a reader further behind reloads.
    public static let maxReplay = 100_000

    /// The head of `stream`, its epoch created if missing.
    public static func head(_ connection: RedisConnection, keys: StreamKeys, stream: String) throws -> Head {
        let (head, _, _) = try inspect(connection, keys: keys, stream: stream)
        return head
    }

    /// What a reader who saw `stream` up to `lastID` in `epoch` missed.
    public static func resume(
        _ connection: RedisConnection, keys: StreamKeys, stream: String, after lastID: String, epoch: String
    ) throws -> (head: Head, outcome: Outcome) {
        try StreamName.validateID(lastID)
        let (head, maxDeleted, nothingRemoved) = try inspect(connection, keys: keys, stream: stream)
        func incomplete(_ reason: String) -> (Head, Outcome) { (head, .incomplete(reason: reason)) }
        guard epoch == head.epoch else { return incomplete("the stream's epoch changed (it was recreated or its data lost)") }
        if lastID == head.lastGeneratedID { return (head, .complete([])) }
        if streamID(head.lastGeneratedID, isLessThan: lastID) { return incomplete("the stream never reached \(lastID)") }
        if streamID(lastID, isLessThan: maxDeleted) { return incomplete("entries after \(lastID) were deleted") }
        let key = keys.stream(stream)
        if !nothingRemoved {
            let seen = try connection.rangeEntries(["XRANGE", key, lastID, lastID])
            guard !seen.isEmpty else { return incomplete("entries after \(lastID) were trimmed") }
        }
        var events: [StreamEvent] = []
        var cursor = lastID
        while true {
            let page = try connection.rangeEntries(["XRANGE", key, "(" + cursor, "+", "COUNT", "1000"])
            for record in page {
                guard let fields = record.fields,
                      let event = try? StreamEvent(id: record.id, stream: stream, tenant: keys.tenant, fields: fields) else { continue }
                events.append(event)
            }
            guard let last = page.last else { break }
            cursor = last.id
            if events.count > maxReplay { return incomplete("more than \(maxReplay) entries were missed") }
        }
        return (head, .complete(events))
    }

    /// Epoch (created if missing), last generated id, max deleted id, and whether no entry was
    /// ever removed.
    private static func inspect(_ connection: RedisConnection, keys: StreamKeys, stream: String) throws -> (Head, String, Bool) {
        try StreamName.validate(stream)
        let reply = try connection.evaluate(script, keys: [keys.stream(stream), keys.meta(stream)], arguments: [StreamManager.newEpoch()]).unwrapped()
        guard let parts = reply.array, parts.count == 4, let epoch = parts[0].string, let last = parts[1].string, let deleted = parts[2].string else {
            throw StreamError(.redis, "stream head script returned \(reply)")
        }
        return (Head(epoch: epoch, lastGeneratedID: last), deleted, parts[3].int == 1)
    }

    /// KEYS[1] stream, KEYS[2] meta. ARGV[1] epoch to set when none exists.
    /// Returns `{epoch, last-generated-id, max-deleted-entry-id, 1 if nothing was ever removed}`.
    static let script = RedisScript(#"""
    local epoch = redis.call('HGET', KEYS[2], 'epoch')
    if not epoch then
      epoch = ARGV[1]
      redis.call('HSET', KEYS[2], 'epoch', epoch)
    end
    if redis.call('EXISTS', KEYS[1]) == 0 then return {epoch, '0-0', '0-0', 1} end
    local info = redis.call('XINFO', 'STREAM', KEYS[1])
    local last, deleted, added, length = '0-0', '0-0', 0, 0
    for i = 1, #info, 2 do
      local name = info[i]
      if name == 'last-generated-id' then last = info[i + 1]
      elseif name == 'max-deleted-entry-id' then deleted = info[i + 1]
      elseif name == 'entries-added' then added = info[i + 1]
      elseif name == 'length' then length = info[i + 1] end
    end
    return {epoch, last, deleted, added == length and 1 or 0}
    """#)
}
