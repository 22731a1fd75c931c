import DocumentStore
import Foundation
import HTTPTypes
import Hummingbird
import NIOCore

/// Refuses a malformed `?wait=` before the route runs: writes read it only once their event is
/// appended, when a 400 would hide a write that happened.
struct WaitParameterMiddleware<Context: RequestContext>: RouterMiddleware {
    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        _ = try request.flag("wait")
        return try await next(request, context)
    }
}

extension Request {
    /// The body as `T`, with errors a caller can act on: 415 for a body that is not JSON,
    /// 413 past `limit`, 400 naming the field that is missing or of the wrong type.
    /// Unknown fields are ignored, so server-owned values (`tenant`, `id`, `createdAt`…) in a
    /// body never take effect.
    func decodeJSON<T: Decodable>(_ type: T.Type, limit: Int = RequestLimits.jsonBody) async throws -> T {
        try Self.decode(T.self, from: try await collectJSON(limit: limit))
    }

    /// Decodes with the document store's JSON reader, several times cheaper than `JSONDecoder`
    /// (measured with `fieldops bench api`), with the same errors.
    static func decode<T: Decodable>(_ type: T.Type, from buffer: ByteBuffer) throws -> T {
        let value: JSONValue
        do {
            value = try JSONValue(jsonText: String(buffer: buffer))
        } catch {
            throw APIError(.badRequest, code: "invalid_body", message: "the body is \(error.message)")
        }
        do {
            return try value.decode(as: T.self)
        } catch let error as DecodingError {
            throw APIError(.badRequest, code: "invalid_body", message: Self.describe(error))
        }
    }

    /// The body as `T`, or `nil` when the request has no body.
    func decodeOptionalJSON<T: Decodable>(_ type: T.Type, limit: Int = RequestLimits.jsonBody) async throws -> T? {
        if headers[.contentLength] == "0" { return nil }
        let buffer: ByteBuffer
        do {
            buffer = try await body.collect(upTo: limit)
        } catch is NIOTooManyBytesError {
            throw APIError.bodyTooLarge(limit)
        }
        guard buffer.readableBytes > 0 else { return nil }
        if let type = headers[.contentType]?.lowercased(), !type.hasPrefix("application/json"), !type.contains("+json") {
            throw APIError(.unsupportedMediaType, code: "unsupported_media_type", message: "send the body as application/json (got \(type))")
        }
        return try Self.decode(T.self, from: buffer)
    }

    /// The raw JSON body after the content-type and size checks.
    func collectJSON(limit: Int = RequestLimits.jsonBody) async throws -> ByteBuffer {
        if let type = headers[.contentType]?.lowercased(), !type.hasPrefix("application/json"), !type.contains("+json") {
            throw APIError(.unsupportedMediaType, code: "unsupported_media_type", message: "send the body as application/json (got \(type))")
        }
        if let length = headers[.contentLength].flatMap(Int.init), length > limit {
            throw APIError.bodyTooLarge(limit)
        }
        do {
            return try await body.collect(upTo: limit)
        } catch is NIOTooManyBytesError {
            throw APIError.bodyTooLarge(limit)
        }
    }

    /// `?name=true` or `?name=false` (absent: false). Anything else is a 400, so a typo such as
    /// `wait=ture` is not silently read as false.
    func flag(_ name: String) throws -> Bool {
        guard let value = uri.queryParameters.get(name) else { return false }
        switch value.lowercased() {
        case "true": return true
        case "false": return false
        default: throw APIError.invalid(name, "'\(value)' is not true or false")
        }
    }

    /// The `Idempotency-Key` header, checked.
    func idempotencyKey() throws -> String? {
        guard let key = headers[HTTPField.Name("Idempotency-Key")!] else { return nil }
        guard !key.isEmpty, key.utf8.count <= 200, key.unicodeScalars.allSatisfy({ $0.value > 0x20 && $0.value < 0x7F }) else {
            throw APIError(.badRequest, code: "invalid_idempotency_key", message: "Idempotency-Key must be 1-200 visible ASCII characters")
        }
        return key
    }

    static func describe(_ error: DecodingError) -> String {
        func path(_ codingPath: [any CodingKey], _ key: (any CodingKey)? = nil) -> String {
            let parts = (codingPath + (key.map { [$0] } ?? [])).map { $0.intValue.map { "[\($0)]" } ?? $0.stringValue }
            return parts.joined(separator: ".").replacingOccurrences(of: ".[", with: "[")
        }
        switch error {
        case .keyNotFound(let key, let context): return "field '\(path(context.codingPath, key))' is required"
        case .typeMismatch(let type, let context) where context.codingPath.isEmpty: return "the body must be \(Self.describe(type))"
        case .typeMismatch(let type, let context): return "field '\(path(context.codingPath))' must be \(Self.describe(type))"
        case .valueNotFound(let type, let context): return "field '\(path(context.codingPath))' must be \(Self.describe(type)), not null"
        case .dataCorrupted(let context):
            if context.codingPath.isEmpty { return "the body is not valid JSON" }
            return "field '\(path(context.codingPath))': \(context.debugDescription)"
        @unknown default: return "the body does not match what this route expects"
        }
    }

    private static func describe(_ type: Any.Type) -> String {
        switch type {
        case is String.Type: return "a string"
        case is Double.Type: return "a number"
        // A decimal or a number past Int64's range is reported as this mismatch too.
        case is Int.Type, is Int64.Type: return "a whole number"
        case is Bool.Type: return "true or false"
        case is [Any].Type, is [JSONValue].Type: return "an array"
        case is JSONObject.Type: return "an object"
        default:
            let name = "\(type)"
            return name.hasPrefix("Array") ? "an array" : name.hasPrefix("Dictionary") ? "an object" : "an object"
        }
    }
}

/// Sizes the server accepts.
enum RequestLimits {
    /// JSON bodies: a batch of 1 000 locations fits with room to spare.
    static let jsonBody = 1 << 20
}

extension APIError {
    static func bodyTooLarge(_ limit: Int) -> APIError {
        APIError(.contentTooLarge, code: "body_too_large", message: "the body is larger than \(limit) bytes")
    }

    static func notFound(_ what: String) -> APIError {
        APIError(.notFound, code: "not_found", message: "\(what) does not exist")
    }

    static func invalid(_ field: String, _ message: String) -> APIError {
        APIError(.badRequest, code: "invalid_field", message: "\(field): \(message)")
    }

    static func forbidden(_ message: String) -> APIError {
        APIError(.forbidden, code: "forbidden", message: message)
    }
}
