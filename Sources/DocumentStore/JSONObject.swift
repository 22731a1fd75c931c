/// The fields of a JSON object, kept sorted by key.
///
/// Documents have a handful of fields, so a sorted array beats a hash table: no hashing, one
/// allocation, and the writer emits keys in order without sorting them each time
/// (measured with `fieldops bench projections`, where documents are parsed, changed and written
/// for every event).
public struct JSONObject: Sendable, Hashable, Sequence, ExpressibleByDictionaryLiteral {
    /// Sorted by key (UTF-8 order), keys unique.
    public private(set) var fields: [(key: String, value: JSONValue)]

    public init() {
        fields = []
    }

    public init(_ dictionary: [String: JSONValue]) {
        fields = dictionary.map { (key: $0.key, value: $0.value) }.sorted { $0.key < $1.key }
    }

    public init(dictionaryLiteral elements: (String, JSONValue)...) {
        self.init(minimumCapacity: elements.count)
        for (key, value) in elements { self[key] = value }
    }

    /// An empty object with room for `capacity` fields, so building one allocates once.
    public init(minimumCapacity capacity: Int) {
        fields = []
        fields.reserveCapacity(capacity)
    }

    /// Fields in any order, later duplicates winning; used by the parser. Sorts in place and
    /// copies only when there are duplicates (this runs for every parsed object).
    init(unsorted pairs: consuming [(key: String, value: JSONValue)]) {
        var sorted = pairs
        // Swift's sort is stable, so of equal keys the later one stays last.
        sorted.sort { $0.key < $1.key }
        var duplicates = false
        for index in sorted.indices.dropFirst() where sorted[index - 1].key == sorted[index].key {
            duplicates = true
            break
        }
        guard duplicates else {
            fields = sorted
            return
        }
        var unique: [(key: String, value: JSONValue)] = []
        unique.reserveCapacity(sorted.count)
        for pair in sorted {
            if let last = unique.last, last.key == pair.key {
                unique[unique.count - 1] = pair
            } else {
                unique.append(pair)
            }
        }
        fields = unique
    }

    public var count: Int { fields.count }
    public var isEmpty: Bool { fields.isEmpty }
    public var keys: [String] { fields.map(\.key) }

    public subscript(key: String) -> JSONValue? {
        get {
            let index = position(of: key)
            // Not a ternary: JSONValue is ExpressibleByNilLiteral, so `: nil` would mean `.null`.
            guard index < fields.count, fields[index].key == key else { return Optional<JSONValue>.none }
            return fields[index].value
        }
        set {
            let index = position(of: key)
            let present = index < fields.count && fields[index].key == key
            switch (present, newValue) {
            case (true, let value?): fields[index].value = value
            case (true, nil): fields.remove(at: index)
            case (false, let value?): fields.insert((key, value), at: index)
            case (false, nil): break
            }
        }
    }

    /// Where `key` is or would be inserted.
    private func position(of key: String) -> Int {
        var low = 0
        var high = fields.count
        while low < high {
            let middle = (low + high) / 2
            if fields[middle].key < key { low = middle + 1 } else { high = middle }
        }
        return low
    }

    public func makeIterator() -> IndexingIterator<[(key: String, value: JSONValue)]> {
        fields.makeIterator()
    }

    public static func == (lhs: JSONObject, rhs: JSONObject) -> Bool {
        lhs.fields.count == rhs.fields.count && zip(lhs.fields, rhs.fields).allSatisfy { $0.key == $1.key && $0.value == $1.value }
    }

    public func hash(into hasher: inout Hasher) {
        hasher.combine(fields.count)
        for field in fields {
            hasher.combine(field.key)
            hasher.combine(field.value)
        }
    }
}
