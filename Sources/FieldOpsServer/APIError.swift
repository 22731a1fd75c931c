import DocumentStore
import Foundation
import Hummingbird

/// Every API error: a status, a stable code and a message, rendered as
/// `{"error": {"code": "…", "message": "…", "details": {…}}}`.
public struct APIError: HTTPResponseError, Sendable {
    public let status: HTTPResponse.Status
    public let code: String
    public let message: String
    /// Facts a client can act on, e.g. a task's current status after a 409.
    public let details: JSONValue?
    /// Extra headers, e.g. `Retry-After`.
    public let headers: HTTPFields

    public init(_ status: HTTPResponse.Status, code: String, message: String, details: JSONValue? = nil, headers: HTTPFields = [:]) {
        self.status = status
        self.code = code
        self.message = message
        self.details = details
        self.headers = headers
    }

    public func response(from request: Request, context: some RequestContext) throws -> Response {
        var response = Response.json(body, status: status)
        response.headers.append(contentsOf: headers)
        return response
    }

    /// `{"error": {"code", "message", "details"?}}`.
    var body: JSONValue {
        var error: JSONObject = ["code": .string(code), "message": .string(message)]
        if let details { error["details"] = details }
        return ["error": .object(error)]
    }
}

/// Turns anything thrown by a route into a JSON error: `APIError`s and Hummingbird's own errors
/// keep their status; anything else is a 500 that is logged, with no internals in the body.
struct JSONErrorMiddleware<Context: RequestContext>: RouterMiddleware {
    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        do {
            return try await next(request, context)
        } catch let error as APIError {
            throw error
        } catch let error as HTTPError {
            throw APIError(error.status, code: Self.code(for: error.status), message: error.body ?? error.status.reasonPhrase)
        } catch let error as HTTPResponseError where error.status.code < 500 {
            throw APIError(error.status, code: Self.code(for: error.status), message: error.status.reasonPhrase)
        } catch {
            context.logger.error("unhandled error", metadata: ["error": "\(error)", "path": "\(request.uri.path)"])
            throw APIError(.internalServerError, code: "internal_error", message: "the server failed to handle this request; it has been logged")
        }
    }

    static func code(for status: HTTPResponse.Status) -> String {
        switch status {
        case .notFound: return "not_found"
        case .methodNotAllowed: return "method_not_allowed"
        case .badRequest: return "bad_request"
        case .unauthorized: return "unauthorized"
        case .forbidden: return "forbidden"
        case .contentTooLarge: return "body_too_large"
        case .unsupportedMediaType: return "unsupported_media_type"
        default: return "http_\(status.code)"
        }
    }
}
