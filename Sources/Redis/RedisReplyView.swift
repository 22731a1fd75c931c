import CHiredis

/// A read-only view of a reply as hiredis decoded it, without copying it into `RedisValue`s.
///
/// Valid only inside the closure it is passed to: the reply is freed when the closure returns.
/// For large replies (a thousand stream entries) this saves an allocation per element.
public struct RedisReplyView {
    /// Borrowed from the reply tree owned by `RedisConnection.send(_:decode:)`.
    private let reply: UnsafeMutablePointer<redisReply>

    init(_ reply: UnsafeMutablePointer<redisReply>) {
        self.reply = reply
    }

    public var isNull: Bool { reply.pointee.type == REDIS_REPLY_NIL }
    public var isArray: Bool { reply.pointee.type == REDIS_REPLY_ARRAY }

    /// The error reply's text, if this is an error.
    public var errorMessage: String? {
        guard reply.pointee.type == REDIS_REPLY_ERROR else { return nil }
        return text
    }

    /// Number of elements of an array reply; 0 for anything else.
    public var count: Int {
        reply.pointee.type == REDIS_REPLY_ARRAY ? reply.pointee.elements : 0
    }

    /// The element at `index` of an array reply.
    public subscript(index: Int) -> RedisReplyView {
        precondition(index >= 0 && index < count, "reply element \(index) out of range")
        return RedisReplyView(fieldops_reply_element(reply, index))
    }

    /// Bulk strings and statuses as UTF-8 text, integers in decimal; `nil` otherwise.
    public var string: String? {
        switch reply.pointee.type {
        case REDIS_REPLY_STRING, REDIS_REPLY_STATUS: return text
        case REDIS_REPLY_INTEGER: return String(reply.pointee.integer)
        default: return nil
        }
    }

    /// A copy as a `RedisValue`.
    public var value: RedisValue { RedisValue(reply) }

    private var text: String {
        guard let pointer = reply.pointee.str, reply.pointee.len > 0 else { return "" }
        return String(decoding: UnsafeRawBufferPointer(start: pointer, count: reply.pointee.len), as: UTF8.self)
    }
}

extension RedisConnection {
    /// Sends one command and hands its reply to `decode` without copying it first.
    /// - Throws: `RedisError` when the connection fails, or what `decode` throws.
    public func send<T>(_ arguments: [String], decode: (RedisReplyView) throws -> T) throws -> T {
        guard !arguments.isEmpty else { throw RedisError(.unexpectedReply, "a command needs at least one argument") }
        return try pipeline(CommandBuffer(arguments), decode: decode)[0]
    }
}
