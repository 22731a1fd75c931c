import DocumentStore
import Domain
import Foundation
import Hummingbird
import Streams

/// Reading route and query parameters with clear 400s.
extension Request {
    /// A query parameter as a number in `range`, or `defaultValue` when absent.
    func intParameter(_ name: String, default defaultValue: Int, range: ClosedRange<Int>) throws -> Int {
        guard let text = uri.queryParameters.get(name) else { return defaultValue }
        guard let value = Int(text), range.contains(value) else {
            throw APIError.invalid(name, "must be a whole number from \(range.lowerBound) to \(range.upperBound)")
        }
        return value
    }

    /// A query parameter holding a time (see `APITime`), as milliseconds.
    func timeParameter(_ name: String) throws -> Int64? {
        guard let text = uri.queryParameters.get(name) else { return nil }
        guard let time = APITime.milliseconds(text) else {
            throw APIError.invalid(name, "'\(text)' is not a time: use ISO 8601 (2026-11-22T14:02:00Z) or epoch seconds or milliseconds")
        }
        return time
    }

    /// The `cursor` query parameter of paged lists.
    func cursorParameter() throws -> QueryCursor? {
        guard let token = uri.queryParameters.get("cursor") else { return nil }
        do {
            return try QueryCursor(token: token)
        } catch {
            throw APIError.invalid("cursor", "not a cursor this server issued")
        }
    }
}

extension FieldOpsRequestContext {
    /// A path parameter that must be an id.
    func id(_ name: String) throws -> String {
        let value = try parameters.require(name)
        try Identifiers.validate(value, field: name)
        return value
    }
}

/// Times as the API accepts them.
enum APITime {
    /// Milliseconds since 1970 from ISO 8601 (`2026-11-22T14:02:00Z`, fractions and offsets
    /// allowed) or a number of epoch seconds (up to 11 digits) or milliseconds, up to the end
    /// of the year 9999 as ISO 8601 can write it.
    static func milliseconds(_ text: String) -> Int64? {
        if let number = Double(text) {
            guard number.isFinite, number >= 0 else { return nil }
            // Epoch seconds stay below 1e11 until the year 5138; milliseconds are above it since 1973.
            let milliseconds = number < 100_000_000_000 ? number * 1000 : number
            // Checked before converting: a larger Double does not fit an Int64 and would trap.
            guard milliseconds < Double(latest) else { return nil }
            return Int64(milliseconds.rounded())
        }
        return ISOTime.milliseconds(text)
    }

    /// 10000-01-01T00:00:00Z.
    static let latest: Int64 = 253_402_300_800_000

    /// ISO 8601 with milliseconds, UTC.
    static func iso(_ milliseconds: Int64) -> String {
        ISOTime.string(milliseconds: milliseconds)
    }

    static var nowMilliseconds: Int64 { Int64((Date().timeIntervalSince1970 * 1000).rounded()) }
}

/// A page of documents as lists return it: `{"NAME": [...], "nextCursor": "…" | null}`.
func pageResponse(_ page: QueryPage, name: String) -> Response {
    Response.json([
        name: .array(page.documents.map(\.resource)),
        "nextCursor": page.nextCursor.map { .string($0.token) } ?? .null,
    ])
}

extension Request {
    /// `?delivery=both` (default: stored and published live), `persist` (stored, not published
    /// live) or `realtime` (published live without an id, never stored) — the hybrid pattern,
    /// for the writes that offer it (location reports, chat messages).
    func delivery() throws -> EventWriter.Delivery {
        guard let text = uri.queryParameters.get("delivery") else { return .both }
        guard let delivery = EventWriter.Delivery(rawValue: text) else {
            throw APIError.invalid("delivery", "is one of both, persist, realtime")
        }
        return delivery
    }
}
