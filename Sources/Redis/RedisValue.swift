/// One reply from Redis, covering every kind hiredis 0.14 decodes (RESP2).
public enum RedisValue: Sendable, Hashable {
    /// A simple string such as `OK` or `QUEUED`.
    case status(String)
    /// An error reply such as `NOSCRIPT No matching script`.
    case error(String)
    case integer(Int64)
    /// A bulk string; binary-safe.
    case bulk([UInt8])
    /// A nil bulk string or nil array.
    case null
    case array([RedisValue])
}

extension RedisValue {
    /// The value as text: bulk strings (decoded as UTF-8), statuses and integers.
    public var string: String? {
        switch self {
        case .bulk(let bytes): return String(decoding: bytes, as: UTF8.self)
        case .status(let text): return text
        case .integer(let value): return String(value)
        default: return nil
        }
    }

    /// The value as an integer: integer replies and bulk strings holding digits.
    public var int: Int? {
        switch self {
        case .integer(let value): return Int(value)
        case .bulk, .status: return string.flatMap { Int($0) }
        default: return nil
        }
    }

    /// The elements of an array reply.
    public var array: [RedisValue]? {
        if case .array(let elements) = self { return elements }
        return nil
    }

    /// The raw bytes of a bulk string.
    public var bytes: [UInt8]? {
        if case .bulk(let bytes) = self { return bytes }
        return nil
    }

    public var isNull: Bool {
        if case .null = self { return true }
        return false
    }

    /// Reads a flat `[key, value, key, value…]` array (HGETALL, XINFO) as a dictionary.
    public var pairs: [String: RedisValue]? {
        guard let elements = array, elements.count % 2 == 0 else { return nil }
        var result: [String: RedisValue] = [:]
        result.reserveCapacity(elements.count / 2)
        var index = 0
        while index < elements.count {
            if let key = elements[index].string { result[key] = elements[index + 1] }
            index += 2
        }
        return result
    }

    /// Throws the error reply as a `RedisError`; returns any other reply unchanged.
    @discardableResult
    public func unwrapped() throws(RedisError) -> RedisValue {
        if case .error(let message) = self { throw RedisError(serverMessage: message) }
        return self
    }
}

extension RedisValue: CustomStringConvertible {
    public var description: String {
        switch self {
        case .status(let text): return text
        case .error(let text): return "(error) \(text)"
        case .integer(let value): return "(integer) \(value)"
        case .bulk(let bytes): return "\"\(String(decoding: bytes, as: UTF8.self))\""
        case .null: return "(nil)"
        case .array(let elements): return "[" + elements.map(\.description).joined(separator: ", ") + "]"
        }
    }
}
