import Foundation
import Hummingbird
import HummingbirdCore
import JWTKit
import NIOCore
import Streams
import Synchronization

/// What a caller may do, from its token's `role` claim.
public enum Role: String, Codable, Sendable, CaseIterable {
    case dispatcher
    case worker
    case service
    case admin
}

/// Who is calling: read from a verified token only, never from a request body or path.
public struct Identity: Codable, Sendable, Hashable {
    public let tenant: String
    public let subject: String
    public let role: Role

    public init(tenant: String, subject: String, role: Role) {
        self.tenant = tenant
        self.subject = subject
        self.role = role
    }
}

/// The claims of a FieldOps access token.
struct AccessClaims: JWTPayload {
    var sub: SubjectClaim
    var tenant: String
    var role: Role
    var iss: IssuerClaim
    var aud: AudienceClaim
    var exp: ExpirationClaim
    var iat: IssuedAtClaim
    var nbf: NotBeforeClaim?

    func verify(using algorithm: some JWTAlgorithm) async throws {
        try exp.verifyNotExpired()
        try nbf?.verifyNotBefore()
        guard iss.value == TokenAuthority.issuer else {
            throw JWTError.claimVerificationFailure(failedClaim: iss, reason: "issued by someone else")
        }
        try aud.verifyIntendedAudience(includes: TokenAuthority.audience)
        guard TokenAuthority.isValidTenant(tenant), !sub.value.isEmpty else {
            throw JWTError.claimVerificationFailure(failedClaim: sub, reason: "tenant or subject is malformed")
        }
    }
}

/// Mints and verifies access tokens with one HS256 key.
///
/// The algorithm is fixed by the key, never taken from a token's header, so `alg: none` and
/// algorithm-confusion tokens fail verification.
public final class TokenAuthority: Sendable {
    static let issuer = "fieldops"
    static let audience = "fieldops-api"
    private let keys: JWTKeyCollection
    /// Tokens already verified, by their full text (signature included), until they expire:
    /// decoding a token's JSON costs more than the rest of a small write.
    private let verified = Mutex<[String: (identity: Identity, expires: Date)]>([:])
    private static let cacheLimit = 10_000

    /// - Parameter secret: at least 32 bytes.
    public init(secret: [UInt8]) async throws {
        guard secret.count >= 32 else { throw APIError(.internalServerError, code: "weak_secret", message: "the token secret must be at least 32 bytes") }
        keys = JWTKeyCollection()
        await keys.add(hmac: HMACKey(from: secret), digestAlgorithm: .sha256)
    }

    /// A secret file that is there but unusable. Never replaced silently: a new secret would
    /// void every token issued so far.
    public struct SecretFileError: Error, CustomStringConvertible {
        public let description: String
    }

    /// Where `load` keeps the signing secret of a data directory.
    public static func secretFile(storage: URL) -> URL {
        storage.appendingPathComponent("jwt-secret")
    }

    /// Reads the secret from `storage/jwt-secret`, creating it (random, mode 0600) on first start.
    /// - Throws: `SecretFileError` when the file holds no base64 secret of at least 32 bytes.
    public static func load(storage: URL) async throws -> TokenAuthority {
        let file = secretFile(storage: storage)
        if let existing = try? Data(contentsOf: file) {
            guard let decoded = Data(base64Encoded: String(decoding: existing, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)),
                  decoded.count >= 32 else {
                throw SecretFileError(description: "\(file.path) must hold a base64 secret of at least 32 bytes; restore it, or delete it to have a new one made (tokens signed with the old one then stop working)")
            }
            return try await TokenAuthority(secret: Array(decoded))
        }
        try FileManager.default.createDirectory(at: storage, withIntermediateDirectories: true)
        var secret = [UInt8](repeating: 0, count: 32)
        var generator = SystemRandomNumberGenerator()
        for index in secret.indices { secret[index] = UInt8.random(in: .min ... .max, using: &generator) }
        try Data((Data(secret).base64EncodedString() + "\n").utf8).write(to: file, options: .atomic)
        try FileManager.default.setAttributes([.posixPermissions: 0o600], ofItemAtPath: file.path)
        return try await TokenAuthority(secret: secret)
    }

    /// A signed token for `subject` of `tenant` with `role`, valid for `lifetime`.
    public func mint(tenant: String, subject: String, role: Role, lifetime: Duration = .seconds(86_400)) async throws -> String {
        guard Self.isValidTenant(tenant) else { throw APIError(.badRequest, code: "invalid_tenant", message: "tenant '\(tenant)' must be 1-64 letters, digits, '-' or '_'") }
        let now = Date()
        let claims = AccessClaims(
            sub: SubjectClaim(value: subject), tenant: tenant, role: role,
            iss: IssuerClaim(value: Self.issuer), aud: AudienceClaim(value: [Self.audience]),
            exp: ExpirationClaim(value: now.addingTimeInterval(TimeInterval(lifetime.components.seconds))),
            iat: IssuedAtClaim(value: now), nbf: NotBeforeClaim(value: now.addingTimeInterval(-5))
        )
        return try await keys.sign(claims)
    }

    /// The caller a token names.
    /// - Throws: `APIError` 401 `invalid_token` saying why (expired, wrong audience, bad signature…).
    public func verify(_ token: String) async throws(APIError) -> Identity {
        try await verifyWithExpiry(token).identity
    }

    /// The caller a token names and when the token expires (long-lived streams end then).
    func verifyWithExpiry(_ token: String) async throws(APIError) -> (identity: Identity, expires: Date) {
        let now = Date()
        if let hit = verified.withLock({ $0[token] }), hit.expires > now { return hit }
        do {
            let claims = try await keys.verify(token, as: AccessClaims.self)
            let identity = Identity(tenant: claims.tenant, subject: claims.sub.value, role: claims.role)
            verified.withLock { cache in
                if cache.count >= Self.cacheLimit { cache.removeAll(keepingCapacity: true) }
                cache[token] = (identity, claims.exp.value)
            }
            return (identity, claims.exp.value)
        } catch let error as JWTError {
            throw APIError(.unauthorized, code: "invalid_token", message: "the bearer token was refused: \(Self.reason(error))")
        } catch {
            throw APIError(.unauthorized, code: "invalid_token", message: "the bearer token was refused: it is not a valid token")
        }
    }

    static func reason(_ error: JWTError) -> String {
        switch error.errorType {
        case .claimVerificationFailure: return error.reason ?? "a claim did not verify"
        case .signatureVerificationFailed: return "its signature does not match"
        case .malformedToken: return "it is malformed"
        default: return error.reason ?? "\(error.errorType)"
        }
    }

    /// The tenant rule of the stream keys: a token may only name a tenant keys can be made for.
    static func isValidTenant(_ tenant: String) -> Bool {
        (try? StreamKeys(tenant: tenant)) != nil
    }
}

/// The request context of FieldOps routes: the verified caller, once authenticated.
public struct FieldOpsRequestContext: RequestContext {
    public var coreContext: CoreRequestContextStorage
    public var identity: Identity?
    /// When the caller's token expires.
    public var identityExpires: Date?

    public init(source: Source) {
        coreContext = .init(source: source)
        identity = nil
    }

    /// The caller; routes behind `BearerAuthentication` always have one.
    public func requireIdentity() throws -> Identity {
        guard let identity else { throw APIError(.unauthorized, code: "missing_token", message: "send Authorization: Bearer <token>") }
        return identity
    }
}

/// Verifies `Authorization: Bearer <token>` and puts the caller in the context.
///
/// Browsers' `EventSource` and `WebSocket` cannot send headers, so an event-stream request or a
/// WebSocket upgrade may carry the token as `?auth=TOKEN` instead (Firebase's REST form).
struct BearerAuthentication: RouterMiddleware {
    typealias Context = FieldOpsRequestContext
    let authority: TokenAuthority

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        guard let token = Self.token(authorization: request.headers[.authorization], query: Self.isLongLived(request) ? request.uri : nil) else {
            throw APIError(.unauthorized, code: "missing_token", message: "send Authorization: Bearer <token>; mint one with `fieldops token create`")
        }
        var context = context
        (context.identity, context.identityExpires) = try await authority.verifyWithExpiry(token)
        return try await next(request, context)
    }

    /// The token a request carries: its `Authorization: Bearer` header's, else the `?auth=`
    /// parameter of `query` (given only for requests that may carry it there).
    static func token(authorization: String?, query: URI?) -> String? {
        if let authorization, let bearer = bearerToken(authorization) { return bearer }
        guard let value = query?.queryParameters.get("auth"), !value.isEmpty else { return nil }
        return value
    }

    /// The token of an `Authorization: Bearer <token>` header (scheme case-insensitive, blanks
    /// around the token ignored); nil for another scheme or an empty token.
    ///
    /// Works on the UTF-8 bytes: it runs on every request, and Foundation's trimming bridges
    /// through UTF-16 (5% of a small write's CPU).
    static func bearerToken(_ header: String) -> String? {
        let utf8 = header.utf8
        let scheme = utf8.prefix(7)
        // ASCII letters compare case-insensitively with their 0x20 bit set.
        guard scheme.count == 7, scheme.last == UInt8(ascii: " "), zip(scheme, "bearer".utf8).allSatisfy({ $0 | 0x20 == $1 }) else { return nil }
        let isBlank = { (byte: UInt8) in byte == UInt8(ascii: " ") || byte == UInt8(ascii: "\t") }
        let rest = utf8.dropFirst(7)
        guard let first = rest.firstIndex(where: { !isBlank($0) }), let last = rest.lastIndex(where: { !isBlank($0) }) else { return nil }
        return String(Substring(utf8[first...last]))
    }

    /// An event stream or a WebSocket upgrade.
    static func isLongLived(_ request: Request) -> Bool {
        request.method == .get && (request.headers[.accept]?.contains("text/event-stream") == true || request.headers[.upgrade]?.lowercased() == "websocket")
    }
}
