import DocumentStore
import Domain
import Foundation
import Hummingbird
import Projections
import Redis
import Streams

/// What every domain controller shares: the write path (one script per write), the documents
/// it projects into, and the projector for read-your-writes.
struct DomainWrites: Sendable {
    let writer: EventWriter
    let store: DocumentStore
    let projector: Projector
    /// Longest a `?wait=true` write waits for its projection.
    let waitTimeout: Duration

    /// The events one write stored, with their stream ids.
    struct Written: Sendable {
        let tenant: String
        let stream: String
        let events: [StreamEvent]
        /// True when an earlier request with the same idempotency key wrote them.
        let repeated: Bool

        var lastID: String { events.last?.id ?? "" }

        /// The first event's routing field `name`: for a repeated create, the id the first
        /// request made rather than the one this request would have made.
        func id(_ name: String, made: String) -> String {
            repeated ? events.first?.routingValue(name) ?? made : made
        }
    }

    /// Runs one write.
    /// - Parameter refused: the error for a condition that did not hold, by index and the
    ///   path's current JSON value (`nil` when the path holds none).
    /// - Throws: `APIError`: 503 when Redis is unreachable, 422 when the idempotency key was
    ///   used for a different request, or what `refused` returns.
    func record(_ append: EventWriter.Append, refused: (Int, String?) -> APIError) async throws -> Written {
        let outcome: EventWriter.Outcome
        do {
            outcome = try await writer.append(append)
        } catch {
            throw Self.apiError(error)
        }
        switch outcome {
        case .appended(let ids):
            let events = zip(append.events, ids).map { draft, id in
                StreamEvent(
                    id: id, stream: append.stream, eventType: draft.eventType, payload: draft.payload, timestamp: "",
                    tenant: append.tenant, idempotencyKey: append.idempotencyKey, routing: draft.routing.map { (name: $0.0, value: $0.1) }
                )
            }
            // A new stream (a new room's) is projected now, not when the projector next looks.
            projector.noteAppend(tenant: append.tenant, stream: append.stream)
            return Written(tenant: append.tenant, stream: append.stream, events: events, repeated: false)
        case .repeated(let first, let last):
            let events: [StreamEvent]
            do {
                events = try await writer.entries(tenant: append.tenant, stream: append.stream, from: first, to: last)
            } catch {
                throw Self.apiError(error)
            }
            // The key's first write must be this kind of request, on this stream.
            guard !events.isEmpty, events.allSatisfy({ $0.idempotencyKey == append.idempotencyKey }),
                  Set(events.map(\.eventType)) == Set(append.events.map(\.eventType)) else {
                throw APIError(
                    .unprocessableContent, code: "idempotency_key_reused",
                    message: "Idempotency-Key '\(append.idempotencyKey ?? "")' was already used for a different request; use a new key for a new request"
                )
            }
            return Written(tenant: append.tenant, stream: append.stream, events: events, repeated: true)
        case .refused(let index, let current):
            throw refused(index, current)
        }
    }

    /// The document a write produced: read after the projection applied it when `wait` is set
    /// (or when it already has), otherwise computed by the projection's own appliers over the
    /// stored documents, so the reply is what the store will hold.
    /// - Returns: the document, and whether it is known to be applied (false after a timed-out wait).
    func document(_ collection: String, _ id: String, after written: Written, wait: Bool) async throws -> (document: Document?, applied: Bool) {
        let tenant = written.tenant
        if wait || written.repeated || isApplied(written) {
            let applied = await projector.waitUntilApplied(tenant: tenant, stream: written.stream, id: written.lastID, timeout: waitTimeout)
            let stored = try await get(tenant: tenant, collection: collection, id: id)
            guard stored == nil, !applied, !written.repeated else { return (stored, applied) }
            // The wait ran out before the projection wrote the document: answer with what it will hold.
            return (try await predicted(collection, id, after: written) ?? nil, false)
        }
        if let predicted = try await predicted(collection, id, after: written) { return (predicted, false) }
        let applied = await projector.waitUntilApplied(tenant: tenant, stream: written.stream, id: written.lastID, timeout: waitTimeout)
        return (try await get(tenant: tenant, collection: collection, id: id), applied)
    }

    /// The document as the projection's appliers make it from the stored documents and the
    /// write's events; `nil` when they cannot apply them here.
    private func predicted(_ collection: String, _ id: String, after written: Written) async throws -> Document?? {
        let (tenant, events) = (written.tenant, written.events)
        return try await readStore { transaction in
            let workspace = DocumentWorkspace(transaction)
            do {
                for event in events { _ = try Appliers.apply(event, in: workspace) }
            } catch is ApplyFailure {
                // The stored documents are behind (the projection has not reached an earlier
                // write yet) or ahead (it applied this one meanwhile): read the applied result.
                return .none
            }
            return .some(try workspace.get(tenant: tenant, collection: collection, id: id))
        }
    }

    /// The reply to a write: the document `id` of `collection` as the write left it, under `name`,
    /// with the event's stream id; waits for the projection when the request says `?wait=true`.
    func reply(_ written: Written, _ name: String, from collection: String, id: String, request: Request, created: Bool = false) async throws -> Response {
        let wait = try request.flag("wait")
        let (document, applied) = try await document(collection, id, after: written, wait: wait)
        if written.repeated && document == nil {
            // A retry whose first request's resource was deleted since: nothing to answer with.
            throw APIError(
                .gone, code: "resource_gone",
                message: "this Idempotency-Key's first request wrote \(collection)/\(id), which no longer exists; use a new key for a new request"
            )
        }
        return writeResponse(written, name: name, document: document, applied: applied, wait: wait, created: created)
    }

    /// Waits for the projection of a write when asked to; false when the wait timed out.
    func waitIfAsked(_ written: Written, wait: Bool) async -> Bool {
        guard wait else { return false }
        return await projector.waitUntilApplied(tenant: written.tenant, stream: written.stream, id: written.lastID, timeout: waitTimeout)
    }

    func isApplied(_ written: Written) -> Bool {
        isApplied(tenant: written.tenant, stream: written.stream, id: written.lastID)
    }

    func isApplied(tenant: String, stream: String, id: String) -> Bool {
        guard let applied = projector.appliedID(tenant: tenant, stream: stream) else { return false }
        return !streamID(applied, isLessThan: id)
    }

    // MARK: - Reads

    func get(tenant: String, collection: String, id: String) async throws -> Document? {
        do {
            return try await store.get(tenant: tenant, collection: collection, id: id)
        } catch {
            throw Self.apiError(error)
        }
    }

    /// The document as of everything already appended to `stream`: when it is not stored yet,
    /// waits (bounded) for the projection to reach the stream's head and reads again. For writes
    /// that check a document (editing a message just posted) and reads by id, so a resource read
    /// right after the write that created it is found (a new room's stream is otherwise
    /// projected only once the projector next looks for new streams, seconds later).
    func current(tenant: String, collection: String, id: String, stream: String) async throws -> Document? {
        if let document = try await get(tenant: tenant, collection: collection, id: id) { return document }
        let key = try StreamKeys(tenant: tenant).stream(stream)
        let head = try await writer.call { try $0.command("XREVRANGE", key, "+", "-", "COUNT", "1").unwrapped().array?.first?.array?.first?.string }
        guard let head else { return nil }
        // Returns at once when the head is applied already (perhaps just after the read above).
        _ = await projector.waitUntilApplied(tenant: tenant, stream: stream, id: head, timeout: waitTimeout)
        return try await get(tenant: tenant, collection: collection, id: id)
    }

    func query(tenant: String, _ query: Query) async throws -> QueryPage {
        do {
            return try await store.query(tenant: tenant, query)
        } catch {
            throw Self.apiError(error)
        }
    }

    func readStore<T: Sendable>(_ body: @escaping @Sendable (DocumentTransaction) throws -> T) async throws -> T {
        do {
            return try await store.read(body)
        } catch {
            throw Self.apiError(error)
        }
    }

    /// The live value at a path, decoded.
    func live(tenant: String, path: String) async throws -> JSONValue? {
        do {
            guard let text = try await writer.liveValue(tenant: tenant, path: path) else { return nil }
            return try JSONValue(jsonText: text)
        } catch {
            throw Self.apiError(error)
        }
    }

    /// Maps a store or stream failure to the API: the caller's mistakes are 4xx, an unreachable
    /// Redis is 503 (retry later), anything else a logged 500.
    static func apiError(_ error: any Error) -> any Error {
        switch error {
        case let error as APIError:
            return error
        case let error as StreamError:
            switch error.code {
            case .unavailable:
                return APIError(.serviceUnavailable, code: "redis_unavailable", message: "the event log is unreachable; retry shortly", headers: [.retryAfter: "1"])
            case .payloadTooLarge:
                return APIError(.contentTooLarge, code: "payload_too_large", message: error.message)
            case .invalidField, .invalidEventType, .invalidStreamName, .invalidMessageID, .invalidTenant:
                return APIError(.badRequest, code: error.code.rawValue, message: error.message)
            default:
                return error
            }
        case let error as DocumentStoreError:
            switch error.code {
            case .storage: return error
            case .notFound: return APIError(.notFound, code: "not_found", message: error.message)
            case .unknownCollection: return APIError(.notFound, code: error.code.rawValue, message: error.message)
            case .documentTooLarge: return APIError(.contentTooLarge, code: error.code.rawValue, message: error.message)
            case .versionConflict, .alreadyExists: return APIError(.conflict, code: error.code.rawValue, message: error.message)
            default: return APIError(.badRequest, code: error.code.rawValue, message: error.message)
            }
        default:
            return error
        }
    }
}

extension EventWriter {
    /// Runs `body` on a pooled connection for the API: an unreachable Redis is a 503, a caller's
    /// mistake a 4xx (see `DomainWrites.apiError`).
    func call<T: Sendable>(_ body: @escaping @Sendable (RedisConnection) throws -> T) async throws -> T {
        do {
            return try await withConnection(body)
        } catch {
            throw DomainWrites.apiError(error)
        }
    }
}

extension Identity {
    /// - Throws: 403 unless the caller has one of `roles`.
    func require(_ roles: Role..., to action: String) throws {
        guard roles.contains(role) else {
            throw APIError.forbidden("a \(role.rawValue) token may not \(action); this needs \(roles.map(\.rawValue).joined(separator: " or "))")
        }
    }

    /// Dispatchers, admins and services act on everything in their tenant.
    var seesWholeTenant: Bool { role != .worker }
}

/// Identifiers the API accepts and makes.
enum Identifiers {
    /// A caller-chosen id, or a new one with `prefix`.
    static func chosen(_ id: String?, field: String, prefix: String) throws -> String {
        guard let id else { return make(prefix) }
        try validate(id, field: field)
        return id
    }

    /// Ids are 1-64 letters, digits, `-` or `_`: safe in paths, keys and live paths alike.
    static func validate(_ id: String, field: String) throws {
        guard StreamKeys.isIdentifier(id, maxLength: 64) else {
            throw APIError.invalid(field, "must be 1-64 letters, digits, '-' or '_'")
        }
    }

    /// `prefix-` and 12 random lowercase letters and digits.
    static func make(_ prefix: String) -> String {
        let alphabet = Array("abcdefghijkmnpqrstuvwxyz23456789")
        var generator = SystemRandomNumberGenerator()
        return prefix + "-" + String((0..<12).map { _ in alphabet[Int.random(in: 0..<alphabet.count, using: &generator)] })
    }
}

/// JSON helpers for building events and replies.
enum JSONCoding {
    static func text<T: Encodable>(_ value: T) -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return String(decoding: (try? encoder.encode(value)) ?? Data("{}".utf8), as: UTF8.self)
    }

    /// A JSON string literal.
    static func string(_ text: String) -> String {
        JSONValue.string(text).jsonText
    }
}

extension Document {
    /// The document as an API resource: its fields plus `version`.
    var resource: JSONValue {
        guard case .object(var fields) = data else { return data }
        fields["version"] = .number(Double(version))
        return .object(fields)
    }
}

/// The reply to a write: the stored resource under `name`, and the stream id of the event.
func writeResponse(_ written: DomainWrites.Written, name: String, document: Document?, applied: Bool, wait: Bool, created: Bool = false) -> Response {
    var body: JSONObject = ["streamId": .string(written.lastID)]
    body[name] = document?.resource ?? .null
    // A wait that ran out of time: accepted, not yet visible in reads.
    let status: HTTPResponse.Status = wait && !applied ? .accepted : created && !written.repeated ? .created : .ok
    return Response.json(.object(body), status: status)
}
