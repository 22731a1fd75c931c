/// Commands packed into one contiguous byte buffer, ready to hand to hiredis as argv arrays.
///
/// Packing avoids one allocation per argument and keeps every argument binary-safe.
public struct CommandBuffer: Sendable {
    private var bytes: [UInt8] = []
    /// Per argument: offset into `bytes` and length.
    private var arguments: [(offset: Int, length: Int)] = []
    /// Per command: range of its arguments.
    private(set) var commands: [Range<Int>] = []

    public init() {}

    public init(_ command: [String]) {
        append(command)
    }

    public var isEmpty: Bool { commands.isEmpty }
    public var count: Int { commands.count }

    /// Appends one command given as text arguments.
    public mutating func append(_ command: [String]) {
        let start = arguments.count
        for argument in command {
            var argument = argument
            argument.withUTF8 { utf8 in
                arguments.append((bytes.count, utf8.count))
                bytes.append(contentsOf: utf8)
            }
        }
        commands.append(start..<arguments.count)
    }

    /// Appends one command given as raw byte arguments.
    public mutating func append(bytes command: [[UInt8]]) {
        let start = arguments.count
        for argument in command {
            arguments.append((bytes.count, argument.count))
            bytes.append(contentsOf: argument)
        }
        commands.append(start..<arguments.count)
    }

    /// Calls `body` with argc, argv and argvlen for one command; pointers are valid only inside.
    func withArgv<R>(command index: Int, _ body: (Int32, UnsafeMutablePointer<UnsafePointer<CChar>?>, UnsafePointer<Int>) -> R) -> R {
        let range = commands[index]
        // A zero-length array may have no base address; every argument is then empty anyway.
        let padding: [UInt8] = [0]
        let storage = bytes.isEmpty ? padding : bytes
        return storage.withUnsafeBufferPointer { buffer in
            let base = UnsafeRawPointer(buffer.baseAddress!)
            var argv: [UnsafePointer<CChar>?] = range.map { base.advanced(by: arguments[$0].offset).assumingMemoryBound(to: CChar.self) }
            let lengths: [Int] = range.map { arguments[$0].length }
            return argv.withUnsafeMutableBufferPointer { argvBuffer in
                lengths.withUnsafeBufferPointer { lengthBuffer in
                    body(Int32(range.count), argvBuffer.baseAddress!, lengthBuffer.baseAddress!)
                }
            }
        }
    }
}
