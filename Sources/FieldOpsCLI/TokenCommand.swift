import ArgumentParser
import FieldOpsServer
import Foundation

/// `fieldops token`: access tokens signed with the server's secret.
struct TokenCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "token",
        abstract: "Mint access tokens for the API.",
        subcommands: [Create.self]
    )

    struct Create: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Print a bearer token for a subject of a tenant with a role.",
            discussion: """
                Signed with the secret in STORAGE/jwt-secret (created on first use, like `fieldops serve` does).

                Examples:
                  fieldops token create --tenant acme --sub dispatcher-7 --role dispatcher
                  fieldops token create --tenant acme --sub w-42 --role worker --ttl 3600
                  TOKEN=$(fieldops token create --tenant acme --sub me --role admin)
                  curl -H "Authorization: Bearer $TOKEN" http://127.0.0.1:8080/v1/me
                """
        )
        @Option(help: "Tenant the token is scoped to.") var tenant: String
        @Option(help: "Subject: the user, worker or service id.") var sub: String
        @Option(help: ArgumentHelp("Role: \(Role.allCases.map(\.rawValue).joined(separator: ", ")).", valueName: "role")) var role: String
        @Option(help: "Lifetime in seconds.") var ttl = 86_400
        @OptionGroup var storage: StorageOptions

        func validate() throws {
            guard Role(rawValue: role) != nil else {
                throw ValidationError("unknown role '\(role)'; use one of: \(Role.allCases.map(\.rawValue).joined(separator: ", "))")
            }
            guard (60...31_536_000).contains(ttl) else { throw ValidationError("--ttl must be between 60 seconds and one year") }
            guard !sub.isEmpty else { throw ValidationError("--sub cannot be empty") }
        }

        func run() async throws {
            let directory = URL(fileURLWithPath: storage.databasePath).deletingLastPathComponent()
            let secret = TokenAuthority.secretFile(storage: directory).path
            let isNew = !FileManager.default.fileExists(atPath: secret)
            let authority: TokenAuthority
            do {
                authority = try await TokenAuthority.load(storage: directory)
            } catch let error as TokenAuthority.SecretFileError {
                throw CommandFailure(error.description)
            }
            if isNew {
                // Run in the wrong directory, this makes a secret no running server knows.
                warn("made a new signing secret at \(secret): only a fieldops serve with --storage \(directory.path) accepts this token")
            }
            do {
                say(try await authority.mint(tenant: tenant, subject: sub, role: Role(rawValue: role)!, lifetime: .seconds(ttl)))
            } catch let error as APIError {
                throw CommandFailure(error.message)
            }
        }
    }
}
