import DocumentStore
import Foundation
import Redis
import Streams
import Synchronization

/// The live key tree of every tenant (DESIGN.md §5): Firebase Realtime Database's role, kept
/// flat in Redis so every node sees the same state.
///
/// Values live per path in the hash `tenant:{T}:live`, paths in the sorted set
/// `tenant:{T}:live:paths` (all scores 0, so it orders them lexicographically and a subtree is
/// one range). A write stores one entry per leaf (`LiveValue`), removes what it replaces, and
/// publishes its changes on `tenant:{T}:channel:live:changes`, all in one script.
///
/// ```swift
/// let tree = try LiveTree(redisURL: url)
/// try await tree.set(tenant: "acme", path: LivePath("/presence/w-7"), value: ["online": true, "since": [".sv": "timestamp"]])
/// let presence = try await tree.get(tenant: "acme", path: LivePath("/presence"))
/// ```
public final class LiveTree: Sendable {
    /// Most bytes of one written value, as JSON.
    public static let maxValueBytes = 1 << 20
    /// Most stored values one read assembles.
    public static let maxReadLeaves = 50_000

    private let pool: RedisConnectionPool
    private let pushIDs = PushIDGenerator()

    public init(redisURL: String, pool configuration: RedisConnectionPool.Configuration = .init(maxConnections: 4, connectDeadline: .seconds(2))) throws(StreamError) {
        do {
            self.pool = try RedisConnectionPool(url: redisURL, configuration: configuration)
        } catch {
            throw StreamError.wrapping(error)
        }
    }

    public func close() {
        pool.close()
    }

    /// The channel a tenant's live changes are published on.
    public static func changesChannel(tenant: String) throws(StreamError) -> String {
        try StreamKeys(tenant: tenant).liveChanges
    }

    // MARK: - Reading

    /// The value at `path`: a leaf, the subtree below it assembled into objects, or `.null`.
    /// - Throws: `value_too_large` when the subtree holds more than `maxReadLeaves` values.
    public func get(tenant: String, path: LivePath) async throws(StreamError) -> JSONValue {
        let keys = try StreamKeys(tenant: tenant)
        let arguments = [path.description, String(Self.maxReadLeaves)] + path.ancestors.map(\.description)
        let reply = try await run { connection in
            try connection.evaluate(Self.readScript, keys: [keys.live, keys.livePaths], arguments: arguments).unwrapped()
        }
        guard let parts = reply.array, let tag = parts.first?.string else { throw StreamError(.redis, "live read returned \(reply)") }
        switch tag {
        case "value":
            return try LiveValue.assemble([(path, parts[1].string ?? "null")], below: path)
        case "tree":
            let paths = parts[1].array ?? []
            let values = parts[2].array ?? []
            var stored: [(path: LivePath, json: String)] = []
            stored.reserveCapacity(paths.count)
            for (name, value) in zip(paths, values) {
                guard let name = name.string, let json = value.string, let stored1 = try? LivePath(name) else { continue }
                stored.append((stored1, json))
            }
            return try LiveValue.assemble(stored, below: path)
        case "ancestor":
            guard let name = parts[1].string, let ancestor = try? LivePath(name), let json = parts[2].string,
                  let relative = path.relative(to: ancestor) else { return .null }
            return LiveValue.value(try LiveValue.assemble([(ancestor, json)], below: ancestor), at: relative)
        case "too-large":
            throw StreamError(.valueTooLarge, "the subtree at \(path) holds more than \(Self.maxReadLeaves) values; read a deeper path")
        default:
            return .null
        }
    }

    // MARK: - Writing

    /// Replaces the subtree at `path` with `value` (`.null` deletes it).
    /// - Returns: the value as stored, server values resolved.
    @discardableResult
    public func set(tenant: String, path: LivePath, value: JSONValue) async throws(StreamError) -> JSONValue {
        try await write(tenant: tenant, puts: [(path, value)], change: (.put, path, value))
    }

    /// Sets several paths below `path` at once (Firebase's multi-path update): each key of
    /// `values` is a path relative to `path`; no key may lie below another.
    /// - Returns: `values` as stored, server values resolved.
    @discardableResult
    public func update(tenant: String, path: LivePath, values: JSONObject) async throws(StreamError) -> JSONValue {
        var puts: [(LivePath, JSONValue)] = []
        for (key, value) in values {
            puts.append((try path.appending(try LivePath(key)), value))
        }
        guard !puts.isEmpty else { throw StreamError(.invalidValue, "an update needs at least one path to set") }
        let sorted = puts.map(\.0).sorted { $0.segments.lexicographicallyPrecedes($1.segments) }
        for (earlier, later) in zip(sorted, sorted.dropFirst()) where later.isWithin(earlier) {
            throw StreamError(.invalidPath, "update paths overlap: \(earlier) contains \(later)")
        }
        return try await write(tenant: tenant, puts: puts, change: (.patch, path, .object(values)))
    }

    /// Removes the subtree at `path`.
    public func delete(tenant: String, path: LivePath) async throws(StreamError) {
        _ = try await write(tenant: tenant, puts: [(path, .null)], change: (.put, path, .null))
    }

    /// Stores `value` under a new child of `path` whose key sorts after every key pushed
    /// before it (Firebase push ids: 8 characters of time, 12 of randomness).
    /// - Returns: the new key and the value as stored.
    public func push(tenant: String, path: LivePath, value: JSONValue) async throws(StreamError) -> (key: String, value: JSONValue) {
        let key = pushIDs.next()
        let child = try path.appending(key)
        let stored = try await write(tenant: tenant, puts: [(child, value)], change: (.put, child, value))
        return (key, stored)
    }

    /// One atomic write: every put, then one published message describing `change`.
    private func write(tenant: String, puts: [(LivePath, JSONValue)], change: (LiveChange.Operation, LivePath, JSONValue)) async throws(StreamError) -> JSONValue {
        let keys = try StreamKeys(tenant: tenant)
        var markers = 0
        let dataText = Self.template(change.2, markers: &markers)
        guard dataText.utf8.count <= Self.maxValueBytes else {
            throw StreamError(.valueTooLarge, "a live value is at most \(Self.maxValueBytes) bytes of JSON; this one has \(dataText.utf8.count)")
        }
        var arguments = [keys.liveChanges, LiveChange.messageText([(change.0, change.1, dataText)]), String(puts.count)]
        for (path, value) in puts {
            let ancestors = path.ancestors
            arguments.append(path.description)
            arguments.append(String(ancestors.count))
            arguments += ancestors.map(\.description)
            let leaves = try LiveValue.leaves(of: value)
            arguments.append(String(leaves.count))
            for (relative, leaf) in leaves {
                let full = try path.appending(try LivePath(segments: relative)).description
                switch leaf {
                case .json(let text): arguments += ["j", full, text]
                case .timestamp: arguments += ["t", full, ""]
                case .increment(let delta): arguments += ["i", full, EventWriter.number(delta)]
                }
            }
        }
        let reply = try await run { [arguments] connection in
            try connection.evaluate(Self.writeScript, keys: [keys.live, keys.livePaths], arguments: arguments).unwrapped()
        }
        let resolved = (reply.array ?? []).compactMap(\.string)
        guard resolved.count == markers else { throw StreamError(.redis, "live write resolved \(resolved.count) server values of \(markers)") }
        do {
            return try JSONValue(jsonText: Self.substitute(dataText, resolved))
        } catch {
            throw StreamError(.redis, "live write produced invalid JSON: \(error)")
        }
    }

    /// `value` as JSON with `\0N\0` in place of the Nth server value, numbered in the order
    /// `LiveValue.leaves` visits them (and the script resolves them).
    static func template(_ value: JSONValue, markers: inout Int) -> String {
        switch value {
        case .object(let object):
            if object[".sv"] != nil {
                markers += 1
                return "\u{0}\(markers)\u{0}"
            }
            var out = "{"
            for (index, member) in object.enumerated() {
                if index > 0 { out += "," }
                out += JSONValue.string(member.key).jsonText + ":" + template(member.value, markers: &markers)
            }
            return out + "}"
        case .array(let elements):
            return "[" + elements.map { template($0, markers: &markers) }.joined(separator: ",") + "]"
        default:
            return value.jsonText
        }
    }

    static func substitute(_ template: String, _ resolved: [String]) -> String {
        guard !resolved.isEmpty else { return template }
        var out = ""
        var parts = template.split(separator: "\u{0}", omittingEmptySubsequences: false)[...]
        while let text = parts.popFirst() {
            out += text
            if let number = parts.popFirst(), let index = Int(number), resolved.indices.contains(index - 1) {
                out += resolved[index - 1]
            }
        }
        return out
    }

    private func run<T: Sendable>(_ body: @escaping @Sendable (RedisConnection) throws -> T) async throws(StreamError) -> T {
        do {
            return try await pool.withConnection(body)
        } catch {
            throw StreamError.wrapping(error)
        }
    }

    // MARK: - Scripts

    /// KEYS[1] live hash, KEYS[2] path index. ARGV[1] path, ARGV[2] most values, ARGV[3…]
    /// ancestors, root side first. Returns `{'value', json}`, `{'tree', paths, values}`,
    /// `{'ancestor', path, json}`, `{'too-large'}` or `{'none'}`.
    static let readScript = RedisScript(#"""
    local live, paths, path, limit = KEYS[1], KEYS[2], ARGV[1], tonumber(ARGV[2])
    local value = redis.call('HGET', live, path)
    if value then return {'value', value} end
    local prefix = path == '/' and '/' or path .. '/'
    local below = redis.call('ZRANGEBYLEX', paths, '[' .. prefix, '(' .. string.sub(prefix, 1, -2) .. '0', 'LIMIT', 0, limit + 1)
    if #below > limit then return {'too-large'} end
    if #below > 0 then
      local values = {}
      for s = 1, #below, 1000 do
        local chunk = redis.call('HMGET', live, unpack(below, s, math.min(s + 999, #below)))
        for _, v in ipairs(chunk) do values[#values + 1] = v end
      end
      return {'tree', below, values}
    end
    for a = #ARGV, 3, -1 do
      local held = redis.call('HGET', live, ARGV[a])
      if held then return {'ancestor', ARGV[a], held} end
    end
    return {'none'}
    """#)

    /// KEYS[1] live hash, KEYS[2] path index. ARGV[1] channel, ARGV[2] message with `\0N\0`
    /// markers, ARGV[3] put count, then per put: path, ancestor count, ancestors, leaf count,
    /// leaves (kind `j` JSON / `t` timestamp / `i` increment, full path, value or delta).
    /// A put removes the path, everything below it and any ancestor holding a value, then
    /// stores its leaves. Returns the resolved server values in order.
    static let writeScript = RedisScript(#"""
    local live, paths = KEYS[1], KEYS[2]
    local resolved = {}
    local now
    local i = 4
    local function chunked(list, body)
      for s = 1, #list, 1000 do body(unpack(list, s, math.min(s + 999, #list))) end
    end
    for p = 1, tonumber(ARGV[3]) do
      local path = ARGV[i]; i = i + 1
      local doomed = {path}
      for a = 1, tonumber(ARGV[i]) do doomed[#doomed + 1] = ARGV[i + a] end
      i = i + tonumber(ARGV[i]) + 1
      local leafCount = tonumber(ARGV[i]); i = i + 1
      -- Server values first: an increment adds to what the put is about to replace.
      local fields, members = {}, {}
      for l = 1, leafCount do
        local kind, leaf, value = ARGV[i], ARGV[i + 1], ARGV[i + 2]; i = i + 3
        if kind == 't' then
          if not now then
            local t = redis.call('TIME')
            now = tostring(tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000))
          end
          value = now
          resolved[#resolved + 1] = value
        elseif kind == 'i' then
          local old = tonumber(redis.call('HGET', live, leaf) or '') or 0
          value = string.format('%.17g', old + tonumber(value))
          resolved[#resolved + 1] = value
        end
        fields[#fields + 1] = leaf
        fields[#fields + 1] = value
        members[#members + 1] = 0
        members[#members + 1] = leaf
      end
      local prefix = path == '/' and '/' or path .. '/'
      for _, below in ipairs(redis.call('ZRANGEBYLEX', paths, '[' .. prefix, '(' .. string.sub(prefix, 1, -2) .. '0')) do
        doomed[#doomed + 1] = below
      end
      chunked(doomed, function(...) redis.call('HDEL', live, ...); redis.call('ZREM', paths, ...) end)
      chunked(fields, function(...) redis.call('HSET', live, ...) end)
      chunked(members, function(...) redis.call('ZADD', paths, ...) end)
    end
    local message = string.gsub(ARGV[2], '%z(%d+)%z', function(n) return resolved[tonumber(n)] end)
    redis.call('PUBLISH', ARGV[1], message)
    return resolved
    """#)
}

/// Firebase-style push ids: 8 characters of milliseconds, then 12 random characters that
/// increase by one within the same millisecond, so ids sort in creation order.
final class PushIDGenerator: Sendable {
    private static let alphabet = Array("-0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ_abcdefghijklmnopqrstuvwxyz".utf8)
    private let state = Mutex<(time: Int64, random: [Int])>((0, []))

    func next() -> String {
        let now = Int64(Date().timeIntervalSince1970 * 1000)
        let (time, random) = state.withLock { state -> (Int64, [Int]) in
            if now <= state.time, !state.random.isEmpty {
                var index = state.random.count - 1
                while index >= 0, state.random[index] == 63 {
                    state.random[index] = 0
                    index -= 1
                }
                if index >= 0 { state.random[index] += 1 }
            } else {
                state.time = now
                state.random = (0..<12).map { _ in Int.random(in: 0..<64) }
            }
            return (state.time, state.random)
        }
        var characters = [UInt8](repeating: 0, count: 20)
        var remaining = time
        for index in stride(from: 7, through: 0, by: -1) {
            characters[index] = Self.alphabet[Int(remaining % 64)]
            remaining /= 64
        }
        for (offset, value) in random.enumerated() { characters[8 + offset] = Self.alphabet[value] }
        return String(decoding: characters, as: UTF8.self)
    }
}
