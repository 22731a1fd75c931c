import Foundation

/// Where commands write their output: standard output, or a test's collector.
public enum Console {
    /// Receives each line a command prints (without the newline).
    @TaskLocal public static var write: @Sendable (String) -> Void = { line in
        print(line)
        fflush(nil)
    }

    /// Receives each warning a command gives beside its output (standard error).
    @TaskLocal public static var warn: @Sendable (String) -> Void = { line in
        FileHandle.standardError.write(Data((line + "\n").utf8))
    }
}

/// Writes a line through `Console`.
func say(_ line: String) {
    Console.write(line)
}

/// Writes a warning through `Console`, apart from the output a script reads.
func warn(_ line: String) {
    Console.warn(line)
}
