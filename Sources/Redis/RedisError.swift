/// Every failure of the Redis layer: hiredis errors, I/O failures and Redis error replies.
public struct RedisError: Error, Sendable, Hashable {
    /// A stable, machine-readable category.
    public struct Code: Sendable, Hashable, CustomStringConvertible {
        public let rawValue: String
        public init(_ rawValue: String) { self.rawValue = rawValue }
        public var description: String { rawValue }

        /// The URL could not be parsed.
        public static let invalidURL = Code("invalid_url")
        /// The connection could not be established (refused, unreachable, no such socket).
        public static let connectionFailed = Code("connection_failed")
        /// The server closed the connection.
        public static let connectionClosed = Code("connection_closed")
        /// A read or write failed, or timed out.
        public static let io = Code("io_error")
        /// A read or write did not complete within the configured timeout.
        public static let timeout = Code("timeout")
        /// The server sent bytes that are not RESP.
        public static let protocolError = Code("protocol_error")
        /// AUTH was refused.
        public static let authenticationFailed = Code("authentication_failed")
        /// Redis answered with an error reply; `serverCode` holds its prefix (`WRONGTYPE`, `NOSCRIPT`…).
        public static let server = Code("server_error")
        /// The reply did not have the shape the caller expected.
        public static let unexpectedReply = Code("unexpected_reply")
        /// The pool or connection was closed by its owner.
        public static let closed = Code("closed")
        /// A hiredis error without a more precise category (for example out of memory).
        public static let other = Code("redis_client_error")
    }

    public let code: Code
    public let message: String

    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }

    /// Builds the error for a Redis error reply, whose first word is its code.
    init(serverMessage: String) {
        self.init(.server, serverMessage)
    }

    /// For server errors, the reply's leading word: `ERR`, `WRONGTYPE`, `NOSCRIPT`, `BUSYGROUP`…
    public var serverCode: String? {
        guard code == .server else { return nil }
        return message.split(separator: " ", maxSplits: 1).first.map(String.init)
    }

    /// True when the connection that raised this error can no longer be used.
    public var isConnectionError: Bool {
        switch code {
        case .connectionFailed, .connectionClosed, .io, .timeout, .protocolError, .closed, .other: return true
        default: return false
        }
    }
}

extension RedisError: CustomStringConvertible {
    public var description: String { "\(code): \(message)" }
}
