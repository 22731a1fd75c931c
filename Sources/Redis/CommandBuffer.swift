/// Commands encoded as RESP multi-bulk arrays in one contiguous buffer.
///
/// This is the encoding `redisAppendCommandArgv` produces (binary-safe: every argument is
/// length-prefixed), done once in Swift so a whole pipeline reaches hiredis as one
/// `redisAppendFormattedCommand` call instead of one formatted copy per argument.
public struct CommandBuffer: Sendable {
    private(set) var bytes: [UInt8] = []
    /// Number of commands in the buffer.
    public private(set) var count = 0

    public init() {}

    public init(_ command: [String]) {
        append(command)
    }

    public var isEmpty: Bool { count == 0 }
    /// True when some command has no arguments; Redis would never answer it.
    private(set) var hasEmptyCommand = false

    /// Appends one command given as text arguments.
    public mutating func append(_ command: [String]) {
        beginCommand(argumentCount: command.count)
        for argument in command { appendArgument(argument) }
    }

    /// Appends one command given as raw byte arguments.
    public mutating func append(bytes command: [[UInt8]]) {
        beginCommand(argumentCount: command.count)
        for argument in command { appendArgument(bytes: argument) }
    }

    /// Starts a command of `argumentCount` arguments; exactly that many `appendArgument` calls
    /// must follow. Lets callers encode without building an array of arguments first.
    public mutating func beginCommand(argumentCount: Int) {
        count += 1
        if argumentCount == 0 { hasEmptyCommand = true }
        bytes.append(UInt8(ascii: "*"))
        appendDecimal(argumentCount)
        bytes.append(13)
        bytes.append(10)
    }

    /// Appends one argument of the current command.
    public mutating func appendArgument(_ argument: String) {
        var argument = argument
        argument.withUTF8 { appendArgument(bytes: $0) }
    }

    /// Appends one binary argument of the current command.
    public mutating func appendArgument(bytes argument: some Collection<UInt8>) {
        bytes.append(UInt8(ascii: "$"))
        appendDecimal(argument.count)
        bytes.append(13)
        bytes.append(10)
        bytes.append(contentsOf: argument)
        bytes.append(13)
        bytes.append(10)
    }

    /// Arguments encoded once, for parts of a command that repeat (`XADD key *`, field names).
    public struct EncodedArguments: Sendable {
        fileprivate let bytes: [UInt8]
        /// How many arguments the bytes hold.
        public let count: Int

        public init(_ arguments: [String]) {
            var buffer = CommandBuffer()
            for argument in arguments { buffer.appendArgument(argument) }
            bytes = buffer.bytes
            count = arguments.count
        }
    }

    /// Appends pre-encoded arguments to the current command (they count toward its
    /// `argumentCount`).
    public mutating func append(_ arguments: EncodedArguments) {
        bytes.append(contentsOf: arguments.bytes)
    }

    /// Reserves room for about `byteCount` more bytes.
    ///
    /// Grows geometrically: `Array.reserveCapacity` allocates exactly what it is asked for, so
    /// calling it per command would copy the whole buffer every time.
    public mutating func reserveCapacity(_ byteCount: Int) {
        let needed = bytes.count + byteCount
        if needed > bytes.capacity { bytes.reserveCapacity(max(needed, bytes.capacity * 2)) }
    }

    private mutating func appendDecimal(_ value: Int) {
        if value < 10 {
            bytes.append(UInt8(ascii: "0") + UInt8(value))
            return
        }
        var digits: (UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8) =
            (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
        var remaining = value
        var length = 0
        withUnsafeMutableBytes(of: &digits) { buffer in
            while remaining > 0 {
                buffer[19 - length] = UInt8(ascii: "0") + UInt8(remaining % 10)
                remaining /= 10
                length += 1
            }
            bytes.append(contentsOf: buffer[(20 - length)...])
        }
    }
}
