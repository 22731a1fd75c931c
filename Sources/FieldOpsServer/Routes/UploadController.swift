import Domain
import FileStore
import Foundation
import HTTPTypes
import Hummingbird

/// Resumable uploads for flaky mobile networks, in the manner of tus: create a session with the
/// total size, send chunks at the offset the server reports, finish into a file.
///
/// ```
/// POST  /v1/uploads                      {"area":"tasks","ownerId":"T-42","name":"photo.jpg","size":5242880}
/// PATCH /v1/uploads/{id}  Upload-Offset: 0        (raw bytes)      → Upload-Offset: 1048576
/// HEAD  /v1/uploads/{id}                          → Upload-Offset: 1048576  (after a dropped connection)
/// PATCH /v1/uploads/{id}  Upload-Offset: 1048576  (the rest)
/// POST  /v1/uploads/{id}/complete                 → 201 {"file": …}
/// ```
///
/// The bytes of a chunk cut off by a dropped connection are kept up to where they stopped.
/// Sessions belong to the caller who made them and expire (24 h by default).
struct UploadController {
    let records: FileRecords
    var files: FileStore { records.files }

    static let offsetHeader = HTTPField.Name("Upload-Offset")!

    func addRoutes(to group: RouterGroup<FieldOpsRequestContext>) {
        group.post("uploads", use: create)
        group.get("uploads/:uploadId", use: status)
        group.head("uploads/:uploadId", use: status)
        group.patch("uploads/:uploadId", use: append)
        group.post("uploads/:uploadId/complete", use: complete)
        group.delete("uploads/:uploadId", use: cancel)
    }

    struct CreateBody: Decodable {
        var area: String
        var ownerId: String
        var name: String?
        var size: Int64
    }

    @Sendable func create(_ request: Request, context: FieldOpsRequestContext) async throws -> Response {
        let caller = try context.requireIdentity()
        let body = try await request.decodeJSON(CreateBody.self)
        let area = try FileRecords.area(body.area)
        try Identifiers.validate(body.ownerId, field: "ownerId")
        guard body.size >= 0 else { throw APIError.invalid("size", "must be the file's length in bytes, 0 or more") }
        try await records.requireUploadAccess(caller, area, body.ownerId)
        let session = try await fileCall {
            try await files.createUpload(tenant: caller.tenant, area: area, ownerId: body.ownerId, name: body.name ?? "file", size: body.size, createdBy: caller.subject)
        }
        var response = Self.reply(session, status: .created)
        response.headers[.location] = "/v1/uploads/\(session.uploadId)"
        return response
    }

    /// `GET` or `HEAD`: where the upload stands (`Upload-Offset`).
    @Sendable func status(_ request: Request, context: FieldOpsRequestContext) async throws -> Response {
        let session = try await session(request, context)
        var response = Self.reply(session)
        if request.method == .head { response.body = .init() }
        return response
    }

    /// `PATCH` with `Upload-Offset` and the next bytes.
    @Sendable func append(_ request: Request, context: FieldOpsRequestContext) async throws -> Response {
        let caller = try context.requireIdentity()
        let session = try await session(request, context)
        guard let text = request.headers[Self.offsetHeader], let offset = Int64(text), offset >= 0 else {
            throw APIError(.badRequest, code: "missing_offset", message: "send Upload-Offset: the offset these bytes start at (now \(session.offset))")
        }
        do {
            let updated = try await files.appendUpload(tenant: caller.tenant, id: session.uploadId, offset: offset, from: request.body)
            return Self.reply(updated)
        } catch let error as FileStoreError where error.code == .offsetMismatch {
            let current = (try? await files.upload(tenant: caller.tenant, id: session.uploadId).offset) ?? session.offset
            throw APIError(.conflict, code: error.code.rawValue, message: error.message, details: ["offset": .number(Double(current))], headers: [Self.offsetHeader: String(current)])
        } catch let error as FileStoreError {
            throw error.apiError
        } catch {
            throw APIError(.badRequest, code: "body_interrupted", message: "the chunk ended early (\(error)); what arrived is kept: ask HEAD for Upload-Offset and resend from there")
        }
    }

    /// Finishes a complete upload into a file (`file.uploaded`, like a direct upload).
    @Sendable func complete(_ request: Request, context: FieldOpsRequestContext) async throws -> Response {
        let caller = try context.requireIdentity()
        let session = try await session(request, context)
        // The owner may have gone (or the caller left the room) since the upload began.
        try await records.requireUploadAccess(caller, session.area, session.ownerId)
        let stored = try await fileCall { try await files.finishUpload(tenant: caller.tenant, id: session.uploadId, fileId: FileStore.makeFileID()) }
        return try await records.record(stored, name: session.name, caller: caller, request: request)
    }

    @Sendable func cancel(_ request: Request, context: FieldOpsRequestContext) async throws -> Response {
        let caller = try context.requireIdentity()
        let session = try await session(request, context)
        try await fileCall { try await files.cancelUpload(tenant: caller.tenant, id: session.uploadId) }
        return Response.json(["cancelled": ["uploadId": .string(session.uploadId)]])
    }

    /// The caller's own upload named in the path; 404 for anyone else's.
    private func session(_ request: Request, _ context: FieldOpsRequestContext) async throws -> UploadSession {
        let caller = try context.requireIdentity()
        let uploadID = try context.parameters.require("uploadId")
        let session = try await fileCall { try await files.upload(tenant: caller.tenant, id: uploadID) }
        guard session.createdBy == caller.subject else { throw APIError.notFound("upload \(uploadID)") }
        return session
    }

    static func reply(_ session: UploadSession, status: HTTPResponse.Status = .ok) -> Response {
        var response = Response.json([
            "upload": [
                "uploadId": .string(session.uploadId), "area": .string(session.area.rawValue), "ownerId": .string(session.ownerId),
                "name": .string(session.name), "size": .number(Double(session.size)), "offset": .number(Double(session.offset)),
                "expiresAt": .string(ISOTime.string(milliseconds: Int64(session.expiresAt.timeIntervalSince1970 * 1_000))),
            ],
        ], status: status)
        response.headers[Self.offsetHeader] = String(session.offset)
        response.headers[.cacheControl] = "no-store"
        return response
    }
}
