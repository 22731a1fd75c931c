import DocumentStore
import Streams

/// How a JSON value is stored in the flat tree: one entry per leaf.
///
/// Objects become one path per member (arrays one per index, as Firebase stores them); `null`
/// and empty objects store nothing. A leaf may be a server value, resolved by the script that
/// writes it: `{".sv": "timestamp"}` (Redis's clock, epoch milliseconds) or
/// `{".sv": {"increment": n}}` (the number at that path plus `n`, missing counting as zero).
enum LiveLeaf: Sendable, Hashable {
    case json(String)
    case timestamp
    case increment(Double)
}

enum LiveValue {
    /// Most leaves one write may store.
    static let maxLeaves = 10_000

    /// The leaves of `value`, relative to where it is written.
    /// - Throws: `invalid_path` for a member name that breaks the path rules, `invalid_value`
    ///   for a malformed server value, `value_too_large` past `maxLeaves`.
    static func leaves(of value: JSONValue) throws(StreamError) -> [(path: [String], leaf: LiveLeaf)] {
        var out: [(path: [String], leaf: LiveLeaf)] = []
        var prefix: [String] = []
        try collect(value, prefix: &prefix, into: &out)
        return out
    }

    private static func collect(_ value: JSONValue, prefix: inout [String], into out: inout [(path: [String], leaf: LiveLeaf)]) throws(StreamError) {
        switch value {
        case .null:
            return
        case .object(let object):
            if let server = object[".sv"] {
                out.append((prefix, try serverValue(server, members: object.count)))
            } else {
                for (key, member) in object {
                    try LivePath.validate(segment: key)
                    prefix.append(key)
                    try collect(member, prefix: &prefix, into: &out)
                    prefix.removeLast()
                }
            }
        case .array(let elements):
            for (index, element) in elements.enumerated() {
                prefix.append(String(index))
                try collect(element, prefix: &prefix, into: &out)
                prefix.removeLast()
            }
        case .bool, .number, .string:
            out.append((prefix, .json(value.jsonText)))
        }
        guard prefix.count <= LivePath.maxDepth else {
            throw StreamError(.invalidPath, "a live value nests deeper than \(LivePath.maxDepth) levels")
        }
        guard out.count <= maxLeaves else {
            throw StreamError(.valueTooLarge, "a live write stores at most \(maxLeaves) values; split it into several")
        }
    }

    private static func serverValue(_ value: JSONValue, members: Int) throws(StreamError) -> LiveLeaf {
        guard members == 1 else {
            throw StreamError(.invalidValue, "a server value object has only the '.sv' member")
        }
        if value.stringValue == "timestamp" { return .timestamp }
        if let increment = value["increment"]?.doubleValue, increment.isFinite { return .increment(increment) }
        throw StreamError(.invalidValue, #"unknown server value \#(value.jsonText): use {".sv": "timestamp"} or {".sv": {"increment": n}}"#)
    }

    /// Builds the tree below `base` from stored `(path, JSON text)` pairs; arrays come back as
    /// arrays when their members are exactly the indexes 0…n-1.
    static func assemble(_ stored: [(path: LivePath, json: String)], below base: LivePath) throws(StreamError) -> JSONValue {
        var root = JSONValue.null
        for (path, json) in stored {
            guard let relative = path.relative(to: base) else { continue }
            let value: JSONValue
            do { value = try JSONValue(jsonText: json) } catch { value = .string(json) }
            place(value, at: relative.segments[...], in: &root)
        }
        return arraysRestored(root)
    }

    private static func place(_ value: JSONValue, at path: ArraySlice<String>, in node: inout JSONValue) {
        guard let first = path.first else {
            node = value
            return
        }
        var object = node.objectValue ?? JSONObject()
        var child = object[first] ?? .null
        place(value, at: path.dropFirst(), in: &child)
        object[first] = child
        node = .object(object)
    }

    private static func arraysRestored(_ value: JSONValue) -> JSONValue {
        guard case .object(let object) = value else { return value }
        var restored = JSONObject()
        for (key, member) in object { restored[key] = arraysRestored(member) }
        let indexes = restored.keys.compactMap { Int($0) }
        if indexes.count == restored.count, Set(indexes) == Set(0..<restored.count), restored.keys.allSatisfy({ $0 == String(Int($0)!) }) {
            return .array((0..<restored.count).map { restored[String($0)]! })
        }
        return .object(restored)
    }

    /// The part of `value` at `path` below it; `.null` when missing.
    static func value(_ value: JSONValue, at path: LivePath) -> JSONValue {
        var current = value
        for segment in path.segments {
            switch current {
            case .object(let object): current = object[segment] ?? .null
            case .array(let elements): current = Int(segment).flatMap { elements.indices.contains($0) ? elements[$0] : nil } ?? .null
            default: return .null
            }
        }
        return current
    }
}
