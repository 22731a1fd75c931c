import ArgumentParser
@testable import FieldOpsCLI
import Testing

/// `--help` as it reads in an 80-column terminal.
@Suite("fieldops --help")
struct HelpTextTests {
    /// Every command of the tree, the root first.
    static func commands(_ root: any ParsableCommand.Type = FieldOpsCommand.self) -> [any ParsableCommand.Type] {
        [root] + root.configuration.subcommands.flatMap { commands($0) }
    }

    /// Prose is left to the parser to wrap and examples fit: a hard line break inside a sentence
    /// shows as a short line whose sentence goes on below it, an example too wide as its tail
    /// at the left margin under it.
    @Test func proseWrapsToTheTerminalAndExamplesFitIn80Columns() {
        #expect(Self.commands().count > 15)
        for command in Self.commands() {
            let help = FieldOpsCommand.helpMessage(for: command, columns: 80)
            let discussion = help.split(separator: "\n", omittingEmptySubsequences: false)
                .prefix { !$0.hasPrefix("USAGE:") }
            for (line, next) in zip(discussion, discussion.dropFirst()) {
                let indented = line.hasPrefix(" "), nextIndented = next.hasPrefix(" ")
                #expect(!(indented && !next.isEmpty && !nextIndented),
                        "\(command._commandName): an example wraps to the margin: \"\(line)\" / \"\(next)\"")
                #expect(!(!indented && line.count < 50 && !line.hasSuffix(":") && next.first?.isLowercase == true),
                        "\(command._commandName): a sentence breaks early: \"\(line)\" / \"\(next)\"")
            }
        }
    }
}
