import ArgumentParser

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
}
