import DocumentStore
import Streams

/// One change of the live tree, as published on `tenant:{T}:channel:live:changes`
/// (`schemas/live-change.schema.json`).
///
/// A message is `{"changes": [change…]}`, the changes of one atomic write in order. A `put`
/// replaces the subtree at `path` with `data` (`null` deletes it); a `patch` sets each member of
/// `data` — a path relative to `path` — as a `put` would, leaving the rest of the subtree alone.
public struct LiveChange: Sendable, Hashable {
    public enum Operation: String, Sendable, Hashable {
        case put
        case patch
    }

    public let operation: Operation
    public let path: LivePath
    public let data: JSONValue

    public init(_ operation: Operation, path: LivePath, data: JSONValue) {
        self.operation = operation
        self.path = path
        self.data = data
    }

    /// The changes of one published message; `nil` when it is not one.
    public static func decode(message: String) -> [LiveChange]? {
        guard let value = try? JSONValue(jsonText: message), let changes = value["changes"]?.arrayValue else { return nil }
        var out: [LiveChange] = []
        for change in changes {
            guard let operation = change["op"]?.stringValue.flatMap(Operation.init(rawValue:)),
                  let text = change["path"]?.stringValue, let path = try? LivePath(text) else { return nil }
            out.append(LiveChange(operation, path: path, data: change["data"] ?? .null))
        }
        return out
    }

    /// The message text for `changes`, with `\0N\0` markers where a script substitutes server values.
    static func messageText(_ changes: [(operation: Operation, path: LivePath, dataText: String)]) -> String {
        var out = #"{"changes":["#
        for (index, change) in changes.enumerated() {
            if index > 0 { out += "," }
            out += #"{"op":""# + change.operation.rawValue + #"","path":"# + JSONValue.string(change.path.description).jsonText
                + #","data":"# + change.dataText + "}"
        }
        return out + "]}"
    }

    /// What a listener of the subtree at `listener` sees of this change, in the Realtime
    /// Database streaming form: `put`/`patch` events with paths relative to the listener;
    /// empty when the change is elsewhere.
    public func events(for listener: LivePath) -> [LiveChange] {
        if let relative = path.relative(to: listener) {
            return [LiveChange(operation, path: relative, data: data)]
        }
        guard let below = listener.relative(to: path) else { return [] }
        switch operation {
        case .put:
            return [LiveChange(.put, path: .root, data: LiveValue.value(data, at: below))]
        case .patch:
            // The listener sits below the patched node: each member it is affected by becomes a put.
            guard case .object(let members) = data else { return [] }
            var out: [LiveChange] = []
            for (key, value) in members {
                guard let member = try? LivePath(key), let full = try? path.appending(member) else { continue }
                if let relative = full.relative(to: listener) {
                    out.append(LiveChange(.put, path: relative, data: value))
                } else if let inside = listener.relative(to: full) {
                    out.append(LiveChange(.put, path: .root, data: LiveValue.value(value, at: inside)))
                }
            }
            return out
        }
    }
}
