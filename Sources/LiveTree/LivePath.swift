import Streams

/// A path of the live key tree: `/workers/w-7/location`, or `/` for the root.
///
/// The rules are Firebase Realtime Database's: segments are non-empty and hold no `.`, `$`, `#`,
/// `[`, `]`, `/` or control characters; at most 32 levels; at most 768 bytes in all.
public struct LivePath: Sendable, Hashable, CustomStringConvertible {
    public static let maxDepth = 32
    public static let maxBytes = 768

    public let segments: [String]

    public static let root = LivePath(validated: [])

    /// Parses `/a/b/c` (leading and trailing slashes optional, `/` or empty for the root).
    /// - Throws: `invalid_path` naming the rule the path breaks.
    public init(_ text: String) throws(StreamError) {
        var parts = text.split(separator: "/", omittingEmptySubsequences: false).map(String.init)
        if parts.first == "" { parts.removeFirst() }
        if parts.last == "" { parts.removeLast() }
        try self.init(segments: parts)
    }

    /// - Throws: `invalid_path` naming the rule a segment breaks.
    public init(segments: [String]) throws(StreamError) {
        guard segments.count <= Self.maxDepth else {
            throw StreamError(.invalidPath, "a live path has at most \(Self.maxDepth) levels; this one has \(segments.count)")
        }
        for segment in segments { try Self.validate(segment: segment) }
        self.init(validated: segments)
        guard description.utf8.count <= Self.maxBytes else {
            throw StreamError(.invalidPath, "a live path has at most \(Self.maxBytes) bytes; this one has \(description.utf8.count)")
        }
    }

    private init(validated segments: [String]) {
        self.segments = segments
    }

    public static func validate(segment: String) throws(StreamError) {
        guard !segment.isEmpty else { throw StreamError(.invalidPath, "a live path has no empty segments ('//')") }
        for scalar in segment.unicodeScalars {
            if scalar.value < 0x20 || scalar.value == 0x7F {
                throw StreamError(.invalidPath, "live path segment '\(segment.debugDescription.dropFirst().dropLast())' holds a control character")
            }
            if ".$#[]/".unicodeScalars.contains(scalar) {
                throw StreamError(.invalidPath, "live path segment '\(segment)' holds '\(scalar)'; segments may not contain . $ # [ ] /")
            }
        }
    }

    /// `/a/b`, or `/` for the root: the form stored in Redis.
    public var description: String { segments.isEmpty ? "/" : "/" + segments.joined(separator: "/") }

    public var isRoot: Bool { segments.isEmpty }
    public var parent: LivePath? { isRoot ? nil : LivePath(validated: Array(segments.dropLast())) }
    public var last: String? { segments.last }

    /// This path followed by `relative`'s segments.
    /// - Throws: `invalid_path` when the result is too deep or too long.
    public func appending(_ relative: LivePath) throws(StreamError) -> LivePath {
        try LivePath(segments: segments + relative.segments)
    }

    public func appending(_ segment: String) throws(StreamError) -> LivePath {
        try LivePath(segments: segments + [segment])
    }

    /// Every proper ancestor, nearest last, without the root (which never holds a value).
    public var ancestors: [LivePath] {
        (1..<max(segments.count, 1)).map { LivePath(validated: Array(segments.prefix($0))) }
    }

    /// Whether `self` is `other` or lies below it.
    public func isWithin(_ other: LivePath) -> Bool {
        segments.count >= other.segments.count && Array(segments.prefix(other.segments.count)) == other.segments
    }

    /// The segments of `self` below `ancestor`; `nil` unless `self.isWithin(ancestor)`.
    public func relative(to ancestor: LivePath) -> LivePath? {
        guard isWithin(ancestor) else { return nil }
        return LivePath(validated: Array(segments.dropFirst(ancestor.segments.count)))
    }
}

extension StreamError.Code {
    /// A live path that breaks the path rules.
    public static let invalidPath = StreamError.Code("invalid_path")
    /// A live value over the size limit, or a subtree too large to read at once.
    public static let valueTooLarge = StreamError.Code("value_too_large")
    /// A live value the tree cannot store (e.g. a malformed server value).
    public static let invalidValue = StreamError.Code("invalid_value")
}
