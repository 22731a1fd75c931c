import Foundation

/// A JSON value: the body of a document and the values of query filters.
public enum JSONValue: Sendable, Hashable {
    case null
    case bool(Bool)
    case number(Double)
    case string(String)
    case array([JSONValue])
    case object(JSONObject)

    /// The value at a dotted path (`location.lat`), or `nil` when any step is missing.
    public subscript(path path: FieldPath) -> JSONValue? {
        var current = self
        for segment in path.segments {
            guard case .object(let fields) = current, let next = fields[segment] else { return nil }
            current = next
        }
        return current
    }

    public subscript(key: String) -> JSONValue? {
        guard case .object(let fields) = self else { return nil }
        return fields[key]
    }

    public var stringValue: String? {
        if case .string(let text) = self { return text }
        return nil
    }

    public var doubleValue: Double? {
        if case .number(let number) = self { return number }
        return nil
    }

    public var intValue: Int? {
        guard case .number(let number) = self, number.rounded() == number, abs(number) < 9e15 else { return nil }
        return Int(number)
    }

    public var objectValue: JSONObject? {
        if case .object(let fields) = self { return fields }
        return nil
    }

    public var arrayValue: [JSONValue]? {
        if case .array(let values) = self { return values }
        return nil
    }

    public var boolValue: Bool? {
        if case .bool(let flag) = self { return flag }
        return nil
    }

    /// Sets the value at `path`, creating intermediate objects.
    public mutating func set(_ value: JSONValue, at path: FieldPath) {
        set(value, at: path.segments[...])
    }

    private mutating func set(_ value: JSONValue, at segments: ArraySlice<String>) {
        guard let first = segments.first else {
            self = value
            return
        }
        var fields: JSONObject
        if case .object(let existing) = self { fields = existing } else { fields = JSONObject() }
        var child = fields[first] ?? .null
        child.set(value, at: segments.dropFirst())
        fields[first] = child
        self = .object(fields)
    }
}

extension JSONValue: Codable {
    public init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        if container.decodeNil() {
            self = .null
        } else if let flag = try? container.decode(Bool.self) {
            self = .bool(flag)
        } else if let number = try? container.decode(Double.self) {
            self = .number(number)
        } else if let text = try? container.decode(String.self) {
            self = .string(text)
        } else if let array = try? container.decode([JSONValue].self) {
            self = .array(array)
        } else {
            self = .object(JSONObject(try container.decode([String: JSONValue].self)))
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        switch self {
        case .null: try container.encodeNil()
        case .bool(let flag): try container.encode(flag)
        case .number(let number):
            if number.rounded() == number, abs(number) < 9e15 {
                try container.encode(Int64(number))
            } else {
                try container.encode(number)
            }
        case .string(let text): try container.encode(text)
        case .array(let array): try container.encode(array)
        case .object(let object): try container.encode(Dictionary(object.fields, uniquingKeysWith: { $1 }))
        }
    }
}

extension JSONValue {
    /// Parses JSON text.
    /// - Throws: `DocumentStoreError` `invalid_json` naming where the text went wrong.
    public init(jsonText: String) throws(DocumentStoreError) {
        do {
            self = try JSONText.parse(jsonText)
        } catch {
            throw DocumentStoreError(.invalidJSON, "not valid JSON: \(error)")
        }
    }

    /// Compact JSON text with sorted keys.
    public var jsonText: String {
        JSONText.write(self)
    }
}

extension JSONValue: ExpressibleByStringLiteral, ExpressibleByIntegerLiteral, ExpressibleByFloatLiteral,
    ExpressibleByBooleanLiteral, ExpressibleByArrayLiteral, ExpressibleByDictionaryLiteral, ExpressibleByNilLiteral
{
    public init(stringLiteral value: String) { self = .string(value) }
    public init(integerLiteral value: Int) { self = .number(Double(value)) }
    public init(floatLiteral value: Double) { self = .number(value) }
    public init(booleanLiteral value: Bool) { self = .bool(value) }
    public init(arrayLiteral elements: JSONValue...) { self = .array(elements) }
    public init(dictionaryLiteral elements: (String, JSONValue)...) {
        self = .object(JSONObject(unsorted: elements.map { (key: $0.0, value: $0.1) }))
    }
    public init(nilLiteral: ()) { self = .null }
}
