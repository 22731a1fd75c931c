import DocumentStore
import Domain
import FileStore
import Foundation
import Hummingbird
import Logging
import Streams

/// What the file routes share: where a file's events go, who may upload to and read an owner's
/// files, and the write that makes stored bytes a file (`file.uploaded` with its live marker).
///
/// The live path `/files/{fileId}` holds `"{area}/{ownerId}"` while the file exists: messages
/// and tasks check their attachments against it in the same script that appends them.
struct FileRecords: Sendable {
    let files: FileStore
    let writes: DomainWrites
    let access: LiveAccess
    let logger: Logger

    static func livePath(_ fileID: String) -> String { "/files/\(fileID)" }
    static func owner(_ area: FileArea, _ ownerID: String) -> String { "\(area.rawValue)/\(ownerID)" }

    /// The stream of an owner's files: the room's chat, the task board, the workers, incidents.
    static func stream(_ area: FileArea, _ ownerID: String) -> String {
        switch area {
        case .rooms: StreamNames.chat(ownerID)
        case .tasks: StreamNames.taskAssignments
        case .workers: StreamNames.workers
        case .incidents: StreamNames.incidents
        }
    }

    static func routing(_ area: FileArea, _ ownerID: String, _ fileID: String) -> [(String, String)] {
        let owner: String = switch area {
        case .rooms: "roomId"
        case .tasks: "taskId"
        case .workers: "workerId"
        case .incidents: "incidentId"
        }
        return [("fileId", fileID), (owner, ownerID)]
    }

    /// `{area}/{ownerId}` from the path.
    static func target(_ context: FieldOpsRequestContext) throws -> (FileArea, String) {
        (try area(try context.parameters.require("id")), try context.id("ownerId"))
    }

    /// - Throws: 400 `invalid_area` naming the areas there are.
    static func area(_ name: String) throws -> FileArea {
        guard let area = FileArea(rawValue: name) else {
            throw APIError(.badRequest, code: "invalid_area", message: "area must be one of \(FileArea.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        return area
    }

    /// What must hold for `caller` to add files to an owner, checked again atomically with the
    /// append: the owner exists, and a worker is in the room, holds the task, or is the worker.
    func ownerConditions(_ caller: Identity, _ area: FileArea, _ ownerID: String) throws -> [EventWriter.Condition] {
        let mine = JSONCoding.string(caller.subject)
        switch area {
        case .rooms:
            return [.init(path: caller.seesWholeTenant ? ChatController.namePath(ownerID) : ChatController.memberPath(ownerID, caller.subject), .exists)]
        case .tasks:
            return [.init(path: caller.seesWholeTenant ? TaskController.statusPath(ownerID) : TaskController.assigneePath(ownerID), caller.seesWholeTenant ? .exists : .equals(mine))]
        case .workers:
            guard caller.seesWholeTenant || ownerID == caller.subject else { throw APIError.forbidden("a worker token may add files only to its own worker, \(caller.subject)") }
            return [.init(path: WorkerController.statusPath(ownerID), .exists)]
        case .incidents:
            try caller.require(.dispatcher, .admin, .service, to: "add incident files")
            return []
        }
    }

    static func ownerMissing(_ area: FileArea, _ ownerID: String) -> APIError {
        let what = switch area {
        case .rooms: "room"
        case .tasks: "task"
        case .workers: "worker"
        case .incidents: "incident"
        }
        return APIError.notFound("\(what) \(ownerID)")
    }

    /// Checks the owner before any byte is read, so a bad target fails at once, not after 25 MiB.
    func requireUploadAccess(_ caller: Identity, _ area: FileArea, _ ownerID: String) async throws {
        for condition in try ownerConditions(caller, area, ownerID) {
            let value = try await writes.live(tenant: caller.tenant, path: condition.path)
            let holds = switch condition.kind {
            case .exists: value != nil
            case .equals(let json): value.map { $0.jsonText == json } ?? false
            default: true
            }
            guard holds else { throw Self.ownerMissing(area, ownerID) }
        }
    }

    /// Records stored bytes as a file: `file.uploaded` in the owner's stream and the live
    /// marker. When the record fails, or repeats an earlier upload with the same
    /// `Idempotency-Key`, the new bytes are removed.
    func record(_ stored: StoredFile, name: String, caller: Identity, request: Request) async throws -> Response {
        let location = stored.location
        let payload = FileUploaded(
            fileId: location.fileId, area: location.area.rawValue, ownerId: location.ownerId, name: name, contentType: stored.contentType,
            size: stored.size, sha256: stored.sha256, path: location.relativePath, uploadedBy: caller.subject
        )
        let written: DomainWrites.Written
        do {
            written = try await writes.record(.init(
                tenant: caller.tenant, stream: Self.stream(location.area, location.ownerId),
                events: [.init(eventType: EventType.fileUploaded, payload: JSONCoding.text(payload), routing: Self.routing(location.area, location.ownerId, location.fileId))],
                conditions: try ownerConditions(caller, location.area, location.ownerId),
                liveWrites: [.set(path: Self.livePath(location.fileId), json: JSONCoding.string(Self.owner(location.area, location.ownerId)))],
                idempotencyKey: try request.idempotencyKey()
            )) { _, _ in Self.ownerMissing(location.area, location.ownerId) }
        } catch {
            await discard(location)
            throw error
        }
        if written.repeated { await discard(location) }
        return try await writes.reply(written, "file", from: "files", id: written.id("fileId", made: location.fileId), request: request, created: true)
    }

    private func discard(_ location: FileLocation) async {
        do {
            try await files.remove(location)
        } catch {
            logger.warning("could not remove bytes of an unrecorded file; `fieldops files gc` will", metadata: ["path": "\(location.relativePath)", "error": "\(error)"])
        }
    }

    /// A file's metadata and location, if `caller` may read it; 404 otherwise, whether it does
    /// not exist, belongs to another tenant, or is out of the caller's reach.
    func find(_ caller: Identity, _ fileID: String) async throws -> (document: Document, location: FileLocation) {
        let missing = APIError.notFound("file \(fileID)")
        guard FileStore.isIdentifier(fileID), let owner = try await writes.live(tenant: caller.tenant, path: Self.livePath(fileID))?.stringValue else { throw missing }
        let parts = owner.split(separator: "/", maxSplits: 1).map(String.init)
        guard parts.count == 2, let area = FileArea(rawValue: parts[0]) else { throw missing }
        // Just uploaded: the projection may be a moment behind the marker.
        guard let document = try await writes.current(tenant: caller.tenant, collection: "files", id: fileID, stream: Self.stream(area, parts[1])),
              let path = document.data["path"]?.stringValue, let name = path.split(separator: "/").last else { throw missing }
        guard try await mayRead(caller, area, parts[1], uploadedBy: document.data["uploadedBy"]?.stringValue) else { throw missing }
        let location = FileLocation(tenant: caller.tenant, area: area, ownerId: parts[1], fileId: fileID, fileName: String(name))
        return (document, location)
    }

    /// Dispatchers read every file of their tenant; a worker the files of its rooms, its tasks,
    /// itself, and what it uploaded.
    func mayRead(_ caller: Identity, _ area: FileArea, _ ownerID: String, uploadedBy: String?) async throws -> Bool {
        if caller.seesWholeTenant || uploadedBy == caller.subject { return true }
        guard area != .incidents else { return false }
        return try await access.mayRead(caller, .init(segments: [area.rawValue, ownerID]))
    }
}

extension FileStoreError {
    /// The API's view: a full disk is 507, a broken one 503, the caller's mistakes 4xx.
    var apiError: APIError {
        switch code {
        case .tooLarge: APIError(.contentTooLarge, code: code.rawValue, message: message)
        case .insufficientStorage: APIError(.init(code: 507, reasonPhrase: "Insufficient Storage"), code: code.rawValue, message: message)
        case .invalidIdentifier: APIError(.badRequest, code: code.rawValue, message: message)
        case .notFound, .unsafePath: APIError(.notFound, code: "not_found", message: message)
        case .offsetMismatch, .incomplete, .busy: APIError(.conflict, code: code.rawValue, message: message)
        default: APIError(.serviceUnavailable, code: "storage_unavailable", message: "the file store failed (\(message)); retry shortly", headers: [.retryAfter: "5"])
        }
    }
}

/// Runs a file store call that reads the request body: as `fileCall`, and a body that broke off
/// (the client hung up or sent less than it announced) is a 400 rather than a server fault.
func bodyCall<T: Sendable>(_ body: () async throws -> T) async throws -> T {
    do {
        return try await fileCall(body)
    } catch let error as APIError {
        throw error
    } catch {
        throw APIError(.badRequest, code: "body_interrupted", message: "the request body ended early (\(error)); nothing partial was kept as a file")
    }
}

/// Runs a file store call, mapping its errors to API errors.
func fileCall<T: Sendable>(_ body: () async throws -> T) async throws -> T {
    do {
        return try await body()
    } catch let error as FileStoreError {
        throw error.apiError
    }
}

/// Files attached to a message or a task step.
enum Attachments {
    static let maxCount = 10

    /// The ids, checked and without repeats.
    static func ids(_ ids: [String]?) throws -> [String] {
        var seen: Set<String> = []
        let unique = (ids ?? []).filter { seen.insert($0).inserted }
        guard unique.count <= maxCount else { throw APIError.invalid("attachments", "at most \(maxCount) attachments") }
        for id in unique { try Identifiers.validate(id, field: "attachments") }
        return unique
    }

    /// One condition per attachment: it is a file of `area/ownerId` (so of this tenant, and not deleted).
    static func conditions(_ ids: [String], _ area: FileArea, _ ownerID: String) -> [EventWriter.Condition] {
        ids.map { .init(path: FileRecords.livePath($0), .equals(JSONCoding.string(FileRecords.owner(area, ownerID)))) }
    }

    static func refused(_ id: String, _ area: FileArea, _ ownerID: String) -> APIError {
        APIError(
            .badRequest, code: "invalid_attachment",
            message: "attachment \(id) is not a file of \(area.rawValue)/\(ownerID); upload it with PUT /v1/files/\(area.rawValue)/\(ownerID) first"
        )
    }
}
