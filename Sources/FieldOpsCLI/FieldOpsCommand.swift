import ArgumentParser
import Redis

/// The `fieldops` command line.
public struct FieldOpsCommand: AsyncParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "fieldops",
        abstract: "FieldOps: the realtime backend for field operations.",
        discussion: """
            Redis is found with --redis-url or FIELDOPS_REDIS_URL; without either, the socket of the \
            embedded server under ./storage/redis/ is used.
            """,
        subcommands: [ServeCommand.self, TokenCommand.self, DispatchCommand.self, SimulateCommand.self, StreamsCommand.self, ProjectionsCommand.self, FilesCommand.self, ReplayCommand.self, BenchCommand.self]
    )

    public init() {}

    /// Parses and runs as `AsyncParsableCommand.main` does; a command that could not reach Redis
    /// also says where to look.
    public static func main() async {
        do {
            var command = try parseAsRoot()
            if var command = command as? any AsyncParsableCommand {
                try await command.run()
            } else {
                try command.run()
            }
        } catch {
            exit(withError: advising(error))
        }
    }

    /// `error`, with the advice for an unreachable Redis when that is what it says.
    static func advising(_ error: any Error) -> any Error {
        let text = "\(error)"
        guard text.contains(RedisError.Code.connectionFailed.rawValue), text.contains("cannot connect to") else { return error }
        return CommandFailure("""
            \(text)
            Is `fieldops serve` running here? Point to another Redis with --redis-url or FIELDOPS_REDIS_URL.
            """)
    }
}
