import Foundation

/// Where commands write their output: standard output, or a test's collector.
public enum Console {
    /// Receives each line a command prints (without the newline).
    @TaskLocal public static var write: @Sendable (String) -> Void = { line in
        print(line)
        fflush(nil)
    }
}

/// Writes a line through `Console`.
func say(_ line: String) {
    Console.write(line)
}
