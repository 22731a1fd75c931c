import DocumentStore
import Domain
import FileStore
import Foundation
import HTTPTypes
import Hummingbird
import MultipartKit
import NIOCore
import Streams

/// Attachments: upload (raw body or multipart form), download with ranges and validators,
/// metadata, listing, delete. Bytes live in the `FileStore`; metadata in the `files` collection,
/// projected from `file.uploaded` / `file.deleted` in the owner's stream.
///
/// ```
/// curl -X PUT --data-binary @photo.jpg -H "Authorization: Bearer $TOKEN" "$BASE/v1/files/tasks/T-42?name=photo.jpg"
/// curl -F file=@photo.jpg -H "Authorization: Bearer $TOKEN" "$BASE/v1/files/tasks/T-42"
/// curl -H "Range: bytes=0-1023" -H "Authorization: Bearer $TOKEN" "$BASE/v1/files/fk3…"
/// ```
struct FileController {
    let records: FileRecords
    var files: FileStore { records.files }
    var writes: DomainWrites { records.writes }

    func addRoutes(to group: RouterGroup<FieldOpsRequestContext>) {
        // One parameter name at each depth (the router requires it): `:id` is the area in
        // `files/{area}/{ownerId}` and the file id in `files/{fileId}`.
        group.put("files/:id/:ownerId", use: putRaw)
        group.post("files/:id/:ownerId", use: postForm)
        group.get("files", use: list)
        group.get("files/:id", use: download)
        group.head("files/:id", use: download)
        group.get("files/:id/meta", use: meta)
        group.delete("files/:id", use: delete)
    }

    /// `PUT /v1/files/{area}/{ownerId}?name=photo.jpg` with the bytes as the body.
    @Sendable func putRaw(_ request: Request, context: FieldOpsRequestContext) async throws -> Response {
        let caller = try context.requireIdentity()
        let (area, ownerID) = try FileRecords.target(context)
        try await records.requireUploadAccess(caller, area, ownerID)
        let name = FileName.display(request.uri.queryParameters.get("name").map { String($0) } ?? "file")
        let location = try await fileCall { try files.location(tenant: caller.tenant, area: area, ownerId: ownerID, fileId: FileStore.makeFileID(), name: name) }
        let expected = try declaredLength(request)
        let stored = try await bodyCall { try await files.write(location, expectedSize: expected, from: request.body) }
        return try await records.record(stored, name: name, caller: caller, request: request)
    }

    /// `POST /v1/files/{area}/{ownerId}` as `multipart/form-data` with the file in the part
    /// named `file` (its filename is the name); other parts are ignored.
    @Sendable func postForm(_ request: Request, context: FieldOpsRequestContext) async throws -> Response {
        let caller = try context.requireIdentity()
        let (area, ownerID) = try FileRecords.target(context)
        guard let boundary = Self.boundary(request.headers[.contentType]) else {
            throw APIError(.unsupportedMediaType, code: "unsupported_media_type", message: "send multipart/form-data with a boundary, or PUT the raw bytes")
        }
        try await records.requireUploadAccess(caller, area, ownerID)
        let expected = try declaredLength(request).map { $0 - Int64(boundary.utf8.count * 2 + 256) }
        if let expected, expected > files.configuration.maxFileSize { throw files.tooLarge.apiError }
        let upload = try await bodyCall { try await receiveForm(request.body, boundary: boundary, tenant: caller.tenant, area: area, ownerID: ownerID) }
        return try await records.record(upload.stored, name: upload.name, caller: caller, request: request)
    }

    /// Streams the `file` part of a form into the store; the rest is skipped, up to 64 KiB.
    private func receiveForm(_ body: RequestBody, boundary: String, tenant: String, area: FileArea, ownerID: String) async throws -> (stored: StoredFile, name: String) {
        let parser = MultipartParser(boundary: boundary)
        let parts = FormParts()
        parser.onHeader = { name, value in parts.events.append(.header(name, value)) }
        parser.onBody = { buffer in parts.events.append(.body(buffer)) }
        parser.onPartComplete = { parts.events.append(.end) }
        var headers: [String: String] = [:]
        var writer: FileWriter?
        var name = "file"
        var stored: StoredFile?
        var skipped = 0
        do {
            for try await chunk in body {
                do {
                    try parser.execute(chunk)
                } catch {
                    throw APIError(.badRequest, code: "invalid_multipart", message: "the multipart body is malformed: \(error)")
                }
                let events = parts.events
                parts.events = []
                for event in events {
                    switch event {
                    case .header(let field, let value):
                        headers[field.lowercased()] = value
                    case .body(let buffer):
                        if writer == nil, stored == nil, let disposition = headers["content-disposition"], Self.parameter("name", in: disposition) == "file" {
                            name = FileName.display(Self.parameter("filename", in: disposition) ?? "file")
                            let location = try files.location(tenant: tenant, area: area, ownerId: ownerID, fileId: FileStore.makeFileID(), name: name)
                            writer = try await files.beginWrite(location)
                        }
                        if writer != nil {
                            try await writer!.append(buffer)
                        } else {
                            skipped += buffer.readableBytes
                            guard skipped <= 64 * 1_024 else {
                                throw APIError(.contentTooLarge, code: "body_too_large", message: "form fields other than `file` hold at most 64 KiB")
                            }
                        }
                    case .end:
                        if var finished = writer {
                            writer = nil
                            stored = try await finished.commit()
                        }
                        headers = [:]
                    }
                }
            }
        } catch {
            await writer?.abort()
            if let stored { try? await files.remove(stored.location) }
            throw error
        }
        await writer?.abort()
        guard let stored else {
            throw APIError(.badRequest, code: "missing_file", message: "the form has no complete part named `file` (e.g. curl -F file=@photo.jpg)")
        }
        return (stored, name)
    }

    /// A `Content-Length` as announced, refused at once when over the limit.
    private func declaredLength(_ request: Request) throws -> Int64? {
        guard let text = request.headers[.contentLength], let length = Int64(text) else { return nil }
        guard length <= files.configuration.maxFileSize else { throw files.tooLarge.apiError }
        return length
    }

    static func boundary(_ contentType: String?) -> String? {
        guard let contentType, contentType.lowercased().hasPrefix("multipart/form-data") else { return nil }
        return parameter("boundary", in: contentType).flatMap { (1...70).contains($0.utf8.count) ? $0 : nil }
    }

    /// `name=value` or `name="value"` from a header with `;`-separated parameters.
    static func parameter(_ name: String, in header: String) -> String? {
        for part in header.split(separator: ";").dropFirst() {
            let pair = part.split(separator: "=", maxSplits: 1).map { $0.trimmingCharacters(in: .whitespaces) }
            guard pair.count == 2, pair[0].lowercased() == name else { continue }
            var value = pair[1]
            if value.hasPrefix("\""), value.hasSuffix("\""), value.count >= 2 { value = String(value.dropFirst().dropLast()) }
            return value
        }
        return nil
    }

    // MARK: - Reading

    /// `GET /v1/files/{fileId}`: the bytes, with `Range` (one range, 206), `If-None-Match`
    /// (304) and `If-Range`; HEAD gives the headers alone.
    @Sendable func download(_ request: Request, context: FieldOpsRequestContext) async throws -> Response {
        let caller = try context.requireIdentity()
        let (document, location) = try await records.find(caller, try context.parameters.require("id"))
        let (path, size) = try await fileCall { try await files.readable(location) }
        let sha = document.data["sha256"]?.stringValue ?? ""
        let etag = "\"\(sha)\""
        let contentType = document.data["contentType"]?.stringValue ?? ContentSniffer.fallback
        var headers: HTTPFields = [
            .eTag: etag, .acceptRanges: "bytes", .cacheControl: "private, no-cache",
            .contentDisposition: Self.disposition(document.data["name"]?.stringValue ?? "file", inline: ContentSniffer.isInline(contentType)),
            HTTPField.Name("X-Content-Type-Options")!: "nosniff",
            .contentSecurityPolicy: "default-src 'none'; sandbox",
        ]
        if let created = document.data["createdAt"]?.doubleValue {
            headers[.lastModified] = Self.httpDate(Date(timeIntervalSince1970: created / 1_000))
        }
        if let match = request.headers[.ifNoneMatch], match == "*" || match.split(separator: ",").contains(where: { $0.trimmingCharacters(in: .whitespaces) == etag }) {
            return Response(status: .notModified, headers: headers)
        }
        headers[.contentType] = contentType
        var range: ClosedRange<Int64>?
        if let header = request.headers[.range], request.headers[.ifRange].map({ $0 == etag }) ?? true {
            switch Self.byteRange(header, size: size) {
            case .none: break
            case .some(.none):
                throw APIError(.rangeNotSatisfiable, code: "range_not_satisfiable", message: "the file has \(size) bytes; ask for a range within them", headers: [.contentRange: "bytes */\(size)"])
            case .some(.some(let satisfiable)): range = satisfiable
            }
        }
        let status: HTTPResponse.Status = range == nil ? .ok : .partialContent
        if let range { headers[.contentRange] = "bytes \(range.lowerBound)-\(range.upperBound)/\(size)" }
        let length = range.map { Int($0.upperBound - $0.lowerBound + 1) } ?? Int(size)
        if request.method == .head || length == 0 {
            headers[.contentLength] = String(length)
            return Response(status: status, headers: headers, body: ResponseBody(contentLength: length) { writer in try await writer.finish(nil) })
        }
        let span = range.map { Int($0.lowerBound)...Int($0.upperBound) } ?? 0...Int(size - 1)
        let body = try await FileIO(threadPool: .singleton).loadFile(path: path, range: span, context: context)
        return Response(status: status, headers: headers, body: body)
    }

    /// One `bytes=` range within `size`: nil to ignore the header (malformed, or several ranges,
    /// which a server may answer with the whole file), `.some(nil)` when unsatisfiable.
    static func byteRange(_ header: String, size: Int64) -> ClosedRange<Int64>?? {
        guard header.hasPrefix("bytes="), !header.contains(",") else { return nil }
        let spec = header.dropFirst(6).trimmingCharacters(in: .whitespaces)
        let ends = spec.split(separator: "-", maxSplits: 1, omittingEmptySubsequences: false).map(String.init)
        guard ends.count == 2 else { return nil }
        if ends[0].isEmpty {
            // The last N bytes.
            guard let suffix = Int64(ends[1]), suffix >= 0 else { return nil }
            guard suffix > 0, size > 0 else { return .some(nil) }
            return .some(max(0, size - suffix)...(size - 1))
        }
        guard let start = Int64(ends[0]), start >= 0 else { return nil }
        let end: Int64
        if ends[1].isEmpty {
            end = size - 1
        } else {
            guard let last = Int64(ends[1]), last >= start else { return nil }
            end = min(last, size - 1)
        }
        guard start < size else { return .some(nil) }
        return .some(start...end)
    }

    /// `inline` or `attachment`, with an ASCII fallback name and the UTF-8 one (RFC 6266).
    static func disposition(_ name: String, inline: Bool) -> String {
        let ascii = String(name.unicodeScalars.map { $0.isASCII && $0.value >= 0x20 && $0 != "\"" && $0 != "\\" ? Character($0) : "_" })
        let encoded = name.addingPercentEncoding(withAllowedCharacters: .alphanumerics.union(CharacterSet(charactersIn: "-._~"))) ?? "file"
        return "\(inline ? "inline" : "attachment"); filename=\"\(ascii)\"; filename*=UTF-8''\(encoded)"
    }

    static func httpDate(_ date: Date) -> String {
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "GMT")
        formatter.dateFormat = "EEE, dd MMM yyyy HH:mm:ss 'GMT'"
        return formatter.string(from: date)
    }

    /// `GET /v1/files/{fileId}/meta`.
    @Sendable func meta(_ request: Request, context: FieldOpsRequestContext) async throws -> Response {
        let caller = try context.requireIdentity()
        let (document, _) = try await records.find(caller, try context.parameters.require("id"))
        return Response.json(["file": document.resource])
    }

    /// `GET /v1/files?area=rooms&ownerId=ops&limit=50&cursor=…`, newest first. A worker names
    /// an owner it may read.
    @Sendable func list(_ request: Request, context: FieldOpsRequestContext) async throws -> Response {
        let caller = try context.requireIdentity()
        let parameters = request.uri.queryParameters
        var query = Query("files")
        var area: FileArea?
        if let name = parameters.get("area") {
            guard let known = FileArea(rawValue: String(name)) else {
                throw APIError.invalid("area", "must be one of \(FileArea.allCases.map(\.rawValue).joined(separator: ", "))")
            }
            area = known
            query = query.where("area", .equal, .string(known.rawValue))
        }
        let ownerID = parameters.get("ownerId").map { String($0) }
        if let ownerID {
            try Identifiers.validate(ownerID, field: "ownerId")
            query = query.where("ownerId", .equal, .string(ownerID))
        }
        if !caller.seesWholeTenant {
            guard let area, let ownerID else { throw APIError.invalid("ownerId", "a worker lists the files of one owner: give area and ownerId") }
            guard try await records.mayRead(caller, area, ownerID, uploadedBy: nil) else {
                throw APIError.forbidden("a worker token may not list the files of \(area.rawValue)/\(ownerID)")
            }
        }
        query = query.order(by: "createdAt", .descending).limit(try request.intParameter("limit", default: 50, range: 1...1_000))
        if let cursor = try request.cursorParameter() { query = query.start(after: cursor) }
        return pageResponse(try await writes.query(tenant: caller.tenant, query), name: "files")
    }

    // MARK: - Deleting

    /// `DELETE /v1/files/{fileId}`: the uploader or a dispatcher. `file.deleted` goes to the
    /// owner's stream, then the bytes are removed.
    @Sendable func delete(_ request: Request, context: FieldOpsRequestContext) async throws -> Response {
        let caller = try context.requireIdentity()
        let (document, location) = try await records.find(caller, try context.parameters.require("id"))
        guard caller.seesWholeTenant || document.data["uploadedBy"]?.stringValue == caller.subject else {
            throw APIError.forbidden("only the uploader or a dispatcher may delete a file")
        }
        let payload = FileDeleted(fileId: location.fileId, area: location.area.rawValue, ownerId: location.ownerId, by: caller.subject)
        let written = try await writes.record(.init(
            tenant: caller.tenant, stream: FileRecords.stream(location.area, location.ownerId),
            events: [.init(eventType: EventType.fileDeleted, payload: JSONCoding.text(payload), routing: FileRecords.routing(location.area, location.ownerId, location.fileId))],
            conditions: [.init(path: FileRecords.livePath(location.fileId), .exists)],
            liveWrites: [.delete(path: FileRecords.livePath(location.fileId))],
            idempotencyKey: try request.idempotencyKey()
        )) { _, _ in APIError.notFound("file \(location.fileId)") }
        do {
            try await files.remove(location)
        } catch {
            records.logger.warning("file deleted but its bytes remain; `fieldops files gc` removes them", metadata: ["path": "\(location.relativePath)", "error": "\(error)"])
        }
        _ = await writes.waitIfAsked(written, wait: try request.flag("wait"))
        return Response.json(["streamId": .string(written.lastID), "deleted": ["fileId": .string(location.fileId)]])
    }
}

/// What the multipart parser reported for the chunk just fed to it.
private final class FormParts {
    enum Event {
        case header(String, String)
        case body(ByteBuffer)
        case end
    }

    var events: [Event] = []
}
