import Redis

/// A raw stream entry: its id and flat fields, `nil` when the entry was deleted or trimmed
/// while still pending.
public struct StreamRecord: Sendable {
    public let id: String
    public let fields: [(String, String)]?

    public init(id: String, fields: [(String, String)]?) {
        self.id = id
        self.fields = fields
    }
}

/// Orders stream ids `ms-seq` numerically.
public func streamID(_ lhs: String, isLessThan rhs: String) -> Bool {
    let (lm, ls) = streamIDParts(lhs)
    let (rm, rs) = streamIDParts(rhs)
    return lm < rm || (lm == rm && ls < rs)
}

/// The milliseconds and sequence of a stream id, read without allocating (this runs per event).
public func streamIDParts(_ id: String) -> (milliseconds: UInt64, sequence: UInt64) {
    var milliseconds: UInt64 = 0
    var sequence: UInt64 = 0
    var inSequence = false
    for byte in id.utf8 {
        if byte == UInt8(ascii: "-") {
            inSequence = true
        } else if byte >= 0x30 && byte <= 0x39 {
            if inSequence {
                sequence = sequence &* 10 &+ UInt64(byte - 0x30)
            } else {
                milliseconds = milliseconds &* 10 &+ UInt64(byte - 0x30)
            }
        }
    }
    return (milliseconds, sequence)
}

extension RedisReplyView {
    /// Reads an XRANGE-style reply in place, without copying it into `RedisValue`s first.
    public func streamEntries() throws(StreamError) -> [StreamRecord] {
        if isNull { return [] }
        guard isArray else { throw StreamError(.redis, "expected a list of stream entries, got \(value)") }
        var entries: [StreamRecord] = []
        entries.reserveCapacity(count)
        for index in 0..<count {
            let item = self[index]
            guard item.count == 2, let id = item[0].string else {
                throw StreamError(.redis, "malformed stream entry \(item.value)")
            }
            let flat = item[1]
            guard flat.isArray else {
                entries.append(StreamRecord(id: id, fields: nil))
                continue
            }
            var fields: [(String, String)] = []
            fields.reserveCapacity(flat.count / 2)
            var field = 0
            while field + 1 < flat.count {
                fields.append((flat[field].string ?? "", flat[field + 1].string ?? ""))
                field += 2
            }
            entries.append(StreamRecord(id: id, fields: fields))
        }
        return entries
    }

    /// Reads an XREADGROUP/XREAD reply over several streams: each stream key with its entries.
    public func multiStreamEntries() throws(StreamError) -> [(key: String, records: [StreamRecord])] {
        if isNull { return [] }
        if let message = errorMessage { throw StreamError(.redis, message) }
        var result: [(key: String, records: [StreamRecord])] = []
        for index in 0..<count {
            let stream = self[index]
            guard stream.count == 2, let key = stream[0].string else {
                throw StreamError(.redis, "unexpected XREADGROUP reply \(value)")
            }
            result.append((key, try stream[1].streamEntries()))
        }
        return result
    }

    /// Reads an XREADGROUP/XREAD reply for one stream in place.
    func readReplyEntries() throws(StreamError) -> [StreamRecord] {
        if isNull { return [] }
        if let message = errorMessage { throw StreamError(.redis, message) }
        guard count >= 1, self[0].count == 2 else {
            throw StreamError(.redis, "unexpected XREADGROUP reply \(value)")
        }
        return try self[0][1].streamEntries()
    }
}

/// A page of an XRANGE reply read straight into events.
public struct StreamEventPage: Sendable {
    /// The entries that are valid envelopes, in order.
    public var events: [StreamEvent] = []
    /// How many entries the reply held, valid or not, and the last one's id: where the next
    /// page starts.
    public var entries = 0
    public var lastID: String?
}

extension RedisReplyView {
    /// Reads an XRANGE-style reply into events without building each entry's field list first
    /// (a replay reads a million entries this way). Entries that are not valid envelopes are
    /// skipped but counted.
    public func streamEvents(stream: String, tenant: String) throws(StreamError) -> StreamEventPage {
        if let message = errorMessage { throw StreamError(.redis, message) }
        if isNull { return StreamEventPage() }
        guard isArray else { throw StreamError(.redis, "expected a list of stream entries, got \(value)") }
        var page = StreamEventPage()
        page.events.reserveCapacity(count)
        for index in 0..<count {
            let item = self[index]
            guard item.count == 2, let id = item[0].string else {
                throw StreamError(.redis, "malformed stream entry \(item.value)")
            }
            page.entries += 1
            page.lastID = id
            let flat = item[1]
            guard flat.isArray else { continue }
            func event() throws(StreamEvent.Malformed) -> StreamEvent {
                var envelope = StreamEvent.Envelope(tenant: tenant)
                var field = 0
                while field + 1 < flat.count {
                    try envelope.add(flat[field].string ?? "", flat[field + 1].string ?? "")
                    field += 2
                }
                return try envelope.event(id: id, stream: stream)
            }
            if let event = try? event() { page.events.append(event) }
        }
        return page
    }
}

extension RedisConnection {
    /// Runs an XRANGE/XREVRANGE-style command and reads its entries in place.
    public func rangeEntries(_ command: [String]) throws -> [StreamRecord] {
        try send(command) { reply in
            if let message = reply.errorMessage { throw StreamError(.redis, message) }
            return try reply.streamEntries()
        }
    }

    /// Runs an XREAD/XREADGROUP command on one stream and reads its entries in place.
    /// - Throws: `redis_error` with the server's message for an error reply (`NOGROUP …`).
    public func readEntries(_ command: [String]) throws -> [StreamRecord] {
        try send(command) { try $0.readReplyEntries() }
    }
}
