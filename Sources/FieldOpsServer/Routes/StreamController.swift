import DocumentStore
import Foundation
import Hummingbird
import Redis
import Streams

/// The tenant's streams for applications that do not speak Redis: list them, read a range,
/// and consume through a consumer group (read, then acknowledge; unacknowledged entries are
/// read again with `"pending": true`).
///
/// ```
/// GET  /v1/streams
/// GET  /v1/streams/taskAssignments/entries?from=-&to=+&count=100
/// POST /v1/streams/taskAssignments/groups            {"group": "billing", "start": "0"}
/// POST /v1/streams/taskAssignments/groups/billing/read {"consumer": "b-1", "count": 50, "blockMs": 2000}
/// POST /v1/streams/taskAssignments/groups/billing/ack  {"ids": ["1732260000000-0"]}
/// ```
struct StreamController {
    let writes: DomainWrites

    /// Groups FieldOps runs itself: reading through them would steal their entries.
    static func isReserved(_ group: String) -> Bool {
        group == "projector" || group.hasPrefix("projector-") || group == "notifier"
    }

    static let maxBlock = 5_000
    static let maxCount = 1_000

    func addRoutes(to group: RouterGroup<FieldOpsRequestContext>) {
        group.get("streams", use: list)
        group.get("streams/:stream/entries", use: entries)
        group.post("streams/:stream/groups", use: createGroup)
        group.post("streams/:stream/groups/:group/read", use: read)
        group.post("streams/:stream/groups/:group/ack", use: ack)
    }

    struct GroupBody: Decodable {
        var group: String
        /// `0` for the whole retained history, `$` (default) for new entries only.
        var start: String?
    }

    struct ReadBody: Decodable {
        var consumer: String
        var count: Int?
        var blockMs: Int?
        /// Read this consumer's delivered-but-unacknowledged entries instead of new ones.
        var pending: Bool?
    }

    struct AckBody: Decodable {
        var ids: [String]
    }

    @Sendable func list(_ request: Request, context: FieldOpsRequestContext) async throws -> Response {
        let caller = try requireCaller(context)
        let keys = try StreamKeys(tenant: caller.tenant)
        let figures = try await writes.writer.call { connection in
            try ServerMetrics.streamFigures(connection).filter { $0.tenant == keys.tenant }.map { figure -> JSONValue in
                let last = try connection.command("XREVRANGE", keys.stream(figure.stream), "+", "-", "COUNT", "1").unwrapped().array?.first?.array?.first?.string
                return [
                    "name": .string(figure.stream), "length": .number(Double(figure.length)), "lastId": last.map(JSONValue.string) ?? .null,
                    "groups": .array(figure.groups.map { ["name": .string($0.name), "lag": .number(Double($0.lag)), "pending": .number(Double($0.pending))] }),
                ]
            }
        }
        return Response.json(["streams": .array(figures)])
    }

    @Sendable func entries(_ request: Request, context: FieldOpsRequestContext) async throws -> Response {
        let caller = try requireCaller(context)
        let (stream, key) = try streamKey(caller, context)
        let parameters = request.uri.queryParameters
        let from = parameters.get("from") ?? "-", to = parameters.get("to") ?? "+"
        for (name, id) in [("from", from), ("to", to)] {
            do { try StreamName.validateID(id) } catch { throw APIError.invalid(name, error.message) }
        }
        let count = try request.intParameter("count", default: 100, range: 1...Self.maxCount)
        let records = try await writes.writer.call { try $0.rangeEntries(["XRANGE", key, from, to, "COUNT", String(count)]) }
        let rendered = Self.render(records, stream: stream, tenant: caller.tenant)
        let next: JSONValue = records.count == count ? records.last.map { .string(Self.after($0.id)) } ?? .null : .null
        return Response.json(["entries": .array(rendered), "nextFrom": next])
    }

    @Sendable func createGroup(_ request: Request, context: FieldOpsRequestContext) async throws -> Response {
        let caller = try requireCaller(context)
        let (_, key) = try streamKey(caller, context)
        let body = try await request.decodeJSON(GroupBody.self)
        try validateGroup(body.group)
        let start = body.start ?? "$"
        guard start == "$" || start == "0" || (try? StreamName.validateID(start)) != nil else {
            throw APIError.invalid("start", "must be $ (new entries), 0 (all history) or a stream id")
        }
        let reply = try await writes.writer.call { try $0.send(["XGROUP", "CREATE", key, body.group, start, "MKSTREAM"]) }
        if case .error(let message) = reply {
            if message.hasPrefix("BUSYGROUP") { throw APIError(.conflict, code: "group_exists", message: "group \(body.group) already exists") }
            throw APIError(.badRequest, code: "invalid_group", message: message)
        }
        return Response.json(["group": .string(body.group), "start": .string(start)], status: .created)
    }

    @Sendable func read(_ request: Request, context: FieldOpsRequestContext) async throws -> Response {
        let caller = try requireCaller(context)
        let (stream, key) = try streamKey(caller, context)
        let group = try context.parameters.require("group")
        try validateGroup(group)
        let body = try await request.decodeJSON(ReadBody.self)
        do { try StreamName.validateConsumer(body.consumer) } catch { throw APIError.invalid("consumer", error.message) }
        let count = min(max(body.count ?? 100, 1), Self.maxCount)
        let block = min(max(body.blockMs ?? 0, 0), Self.maxBlock)
        var command = ["XREADGROUP", "GROUP", group, body.consumer, "COUNT", String(count)]
        if body.pending != true && block > 0 { command += ["BLOCK", String(block)] }
        command += ["STREAMS", key, body.pending == true ? "0" : ">"]
        let records: [StreamRecord]
        do {
            records = try await writes.writer.withConnection { [command] in try $0.readEntries(command) }
        } catch where error.code == .redis {
            if error.message.hasPrefix("NOGROUP") {
                throw APIError(.notFound, code: "group_not_found", message: "group \(group) does not exist on stream \(stream); create it with POST /v1/streams/\(stream)/groups")
            }
            throw APIError(.badRequest, code: "invalid_read", message: error.message)
        } catch {
            throw DomainWrites.apiError(error)
        }
        return Response.json(["entries": .array(Self.render(records, stream: stream, tenant: caller.tenant))])
    }

    @Sendable func ack(_ request: Request, context: FieldOpsRequestContext) async throws -> Response {
        let caller = try requireCaller(context)
        let (_, key) = try streamKey(caller, context)
        let group = try context.parameters.require("group")
        try validateGroup(group)
        let body = try await request.decodeJSON(AckBody.self)
        guard (1...Self.maxCount).contains(body.ids.count) else { throw APIError.invalid("ids", "give 1-\(Self.maxCount) ids") }
        for id in body.ids {
            do { try StreamName.validateID(id) } catch { throw APIError.invalid("ids", error.message) }
        }
        let acknowledged = try await writes.writer.call { try $0.send(["XACK", key, group] + body.ids).unwrapped().int ?? 0 }
        return Response.json(["acknowledged": .number(Double(acknowledged))])
    }

    // MARK: - Helpers

    private func requireCaller(_ context: FieldOpsRequestContext) throws -> Identity {
        let caller = try context.requireIdentity()
        try caller.require(.dispatcher, .admin, .service, to: "read streams")
        return caller
    }

    private func streamKey(_ caller: Identity, _ context: FieldOpsRequestContext) throws -> (String, String) {
        let stream = try context.parameters.require("stream")
        do {
            try StreamName.validate(stream)
            return (stream, try StreamKeys(tenant: caller.tenant).stream(stream))
        } catch {
            throw APIError.invalid("stream", error.message)
        }
    }

    private func validateGroup(_ group: String) throws {
        do { try StreamName.validateGroup(group) } catch { throw APIError.invalid("group", error.message) }
        if Self.isReserved(group) { throw APIError.forbidden("group \(group) belongs to FieldOps itself; use a group of your own") }
    }


    /// Entries as JSON: envelope fields by name, the payload parsed, routing fields as an object.
    static func render(_ records: [StreamRecord], stream: String, tenant: String) -> [JSONValue] {
        records.map { record in
            guard let fields = record.fields, let event = try? StreamEvent(id: record.id, stream: stream, tenant: tenant, fields: fields) else {
                return ["id": .string(record.id), "deleted": .bool(record.fields == nil), "malformed": .bool(record.fields != nil)]
            }
            var routing = JSONObject()
            for (name, value) in event.routing { routing[name] = .string(value) }
            var entry: JSONObject = [
                "id": .string(event.id), "eventType": .string(event.eventType), "timestamp": .string(event.timestamp),
                "payload": (try? JSONValue(jsonText: event.payload)) ?? .string(event.payload),
                "metadata": (try? JSONValue(jsonText: event.metadata)) ?? .object([:]), "routing": .object(routing),
            ]
            if let key = event.idempotencyKey { entry["idempotencyKey"] = .string(key) }
            return .object(entry)
        }
    }

    /// The smallest id after `id`, for the next page of a range.
    static func after(_ id: String) -> String {
        let (milliseconds, sequence) = streamIDParts(id)
        return "\(milliseconds)-\(sequence + 1)"
    }
}
