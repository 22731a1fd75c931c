import DocumentStore
import FieldOpsServer
import Foundation
import Hummingbird
import HummingbirdTesting
import JWTKit
import Projections
import Redis
import Testing

/// Claims with every field under the test's control, to forge bad tokens.
struct ForgedClaims: JWTPayload {
    var sub: SubjectClaim
    var tenant: String
    var role: String
    var iss: IssuerClaim
    var aud: AudienceClaim
    var exp: ExpirationClaim
    var iat: IssuedAtClaim
    var nbf: NotBeforeClaim?

    func verify(using algorithm: some JWTAlgorithm) async throws {}

    static func valid() -> ForgedClaims {
        ForgedClaims(
            sub: "u1", tenant: "acme", role: "dispatcher", iss: "fieldops", aud: AudienceClaim(value: ["fieldops-api"]),
            exp: ExpirationClaim(value: Date().addingTimeInterval(600)), iat: IssuedAtClaim(value: Date()), nbf: nil
        )
    }
}

@Suite("Bearer tokens on /v1")
final class AuthTests: Sendable {
    let fixture: ServerFixture
    var dependencies: ServerDependencies { fixture.dependencies }

    init() async throws {
        fixture = try await ServerFixture()
    }

    func forge(_ claims: ForgedClaims, secret: [UInt8] = ServerFixture.secret) async throws -> String {
        let keys = JWTKeyCollection()
        await keys.add(hmac: HMACKey(from: secret), digestAlgorithm: .sha256)
        return try await keys.sign(claims)
    }

    /// GET /v1/me with `token`; returns status and the error code, or the identity's tenant.
    func me(_ token: String?) async throws -> (HTTPResponse.Status, String?) {
        let app = Application(router: buildRouter(dependencies))
        return try await app.test(.router) { client in
            var headers: HTTPFields = [:]
            if let token { headers[.authorization] = "Bearer \(token)" }
            return try await client.execute(uri: "/v1/me", method: .get, headers: headers) { response in
                let body = try JSONSerialization.jsonObject(with: Data(buffer: response.body)) as? [String: Any]
                let detail = (body?["error"] as? [String: Any])?["code"] as? String ?? body?["tenant"] as? String
                return (response.status, detail)
            }
        }
    }

    @Test func aMintedTokenNamesTheCaller() async throws {
        let token = try await dependencies.authority.mint(tenant: "acme", subject: "dispatcher-7", role: .dispatcher)
        let app = Application(router: buildRouter(dependencies))
        try await app.test(.router) { client in
            try await client.execute(uri: "/v1/me", method: .get, headers: [.authorization: "Bearer \(token)"]) { response in
                #expect(response.status == .ok)
                let body = try JSONSerialization.jsonObject(with: Data(buffer: response.body)) as? [String: String]
                #expect(body == ["tenant": "acme", "subject": "dispatcher-7", "role": "dispatcher"])
            }
        }
    }

    @Test func theBearerSchemeIsCaseInsensitiveAndBlanksAroundTheTokenAreIgnored() async throws {
        let token = try await dependencies.authority.mint(tenant: "acme", subject: "d1", role: .dispatcher)
        let app = Application(router: buildRouter(dependencies))
        try await app.test(.router) { client in
            for header in ["Bearer \(token)", "bearer \(token)", "BEARER  \(token) ", "Bearer \t\(token)\t"] {
                try await client.execute(uri: "/v1/me", method: .get, headers: [.authorization: header]) { response in
                    #expect(response.status == .ok, "\(header)")
                }
            }
            for header in ["Basic \(token)", "Bearer", "Bearer   ", "Bearer\(token)", "Bearerx \(token)"] {
                try await client.execute(uri: "/v1/me", method: .get, headers: [.authorization: header]) { response in
                    #expect(response.status == .unauthorized, "\(header)")
                }
            }
        }
    }

    @Test func missingOrGarbledTokensAre401() async throws {
        #expect(try await me(nil) == (.unauthorized, "missing_token"))
        #expect(try await me("not.a.token") == (.unauthorized, "invalid_token"))
        #expect(try await me("") == (.unauthorized, "missing_token"))
    }

    @Test func forgedTokensAre401() async throws {
        var expired = ForgedClaims.valid()
        expired.exp = ExpirationClaim(value: Date().addingTimeInterval(-60))
        var early = ForgedClaims.valid()
        early.nbf = NotBeforeClaim(value: Date().addingTimeInterval(600))
        var issuer = ForgedClaims.valid()
        issuer.iss = "someone-else"
        var audience = ForgedClaims.valid()
        audience.aud = AudienceClaim(value: ["another-api"])
        var role = ForgedClaims.valid()
        role.role = "root"
        var tenant = ForgedClaims.valid()
        tenant.tenant = "acme}:stream:x"
        for claims in [expired, early, issuer, audience, role, tenant] {
            #expect(try await me(try await forge(claims)) == (.unauthorized, "invalid_token"), "\(claims)")
        }
        // Signed with another secret.
        let stranger = try await forge(.valid(), secret: Array("another-secret-that-is-also-32-bytes-long".utf8))
        #expect(try await me(stranger) == (.unauthorized, "invalid_token"))
        // The same claims, correctly signed, pass: the failures above are the claims' fault.
        #expect(try await me(try await forge(.valid())) == (.ok, "acme"))
    }

    @Test func algNoneIsRefused() async throws {
        func base64URL(_ text: String) -> String {
            Data(text.utf8).base64EncodedString().replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_").replacingOccurrences(of: "=", with: "")
        }
        let exp = Int(Date().addingTimeInterval(600).timeIntervalSince1970)
        let payload = #"{"sub":"u1","tenant":"acme","role":"admin","iss":"fieldops","aud":["fieldops-api"],"exp":\#(exp),"iat":\#(exp - 600)}"#
        for header in [#"{"alg":"none","typ":"JWT"}"#, #"{"alg":"None"}"#, #"{"alg":"HS512"}"#] {
            let token = base64URL(header) + "." + base64URL(payload) + "."
            #expect(try await me(token) == (.unauthorized, "invalid_token"), "\(header)")
        }
    }
}
