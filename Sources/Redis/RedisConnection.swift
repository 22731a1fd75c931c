import CHiredis
import CRedisReplyArena
import Dispatch
import Foundation
import Synchronization

/// One blocking hiredis connection.
///
/// hiredis contexts are not thread-safe, so every use of the context happens under a lock and
/// async callers run on the connection's own serial queue (`run(_:)`), never on the cooperative
/// pool. Commands are sent as argv arrays (binary-safe). Once a read or write fails the context
/// is unusable: the connection marks itself broken and every later call throws.
public final class RedisConnection: Sendable {
    public let configuration: RedisConfiguration
    /// The queue that async callers run blocking work on; one per connection.
    let queue: DispatchQueue
    fileprivate let handle: Mutex<Handle>
    private let serverClientID = Mutex<Int?>(nil)

    /// Owns the `redisContext*`; freed exactly once, by `deinit` or `close()`.
    fileprivate struct Handle {
        var context: UnsafeMutablePointer<redisContext>?
        /// Where the reader builds replies (`reply_arena.h`); nil if it could not be allocated,
        /// and then replies are hiredis's own.
        var arena: OpaquePointer?
        var broken = false

        init(context: UnsafeMutablePointer<redisContext>) {
            self.context = context
            self.arena = fieldops_reply_arena_install(context)
        }

        /// Counts a reply `redisGetReply` returned as in use.
        func hold() {
            if let arena { fieldops_reply_arena_hold(arena) }
        }

        /// Gives a reply back; its memory may be reused at once.
        mutating func release(_ reply: UnsafeMutableRawPointer) {
            guard let arena else { return freeReplyObject(reply) }
            fieldops_reply_arena_release(arena, context?.pointee.reader)
            if context == nil { freeArenaIfIdle() }
        }

        /// Frees the context, and the arena unless a reply in it is still being read (then the
        /// last `release` frees it).
        mutating func free() {
            if let context { redisFree(context) }
            context = nil
            freeArenaIfIdle()
        }

        private mutating func freeArenaIfIdle() {
            guard let arena, fieldops_reply_arena_held(arena) == 0 else { return }
            fieldops_reply_arena_free(arena)
            self.arena = nil
        }
    }

    /// hiredis writes with plain `write(2)`: on a connection the server already closed (a
    /// restarted redis-server, CLIENT KILL) that raises SIGPIPE, whose default action ends the
    /// whole process. Ignored once for the process, the write fails with EPIPE instead and the
    /// connection reports itself broken.
    private static let ignoreBrokenPipes: Void = {
        signal(SIGPIPE, SIG_IGN)
    }()

    /// Connects, authenticates and selects the configured database.
    /// - Throws: `RedisError` (`connection_failed`, `authentication_failed`, …).
    public init(configuration: RedisConfiguration) throws(RedisError) {
        _ = Self.ignoreBrokenPipes
        self.configuration = configuration
        self.queue = DispatchQueue(label: "fieldops.redis.connection")
        let context = try Self.connect(configuration)
        self.handle = Mutex(Handle(context: context))
        if let password = configuration.password {
            var auth = ["AUTH"]
            if let username = configuration.username { auth.append(username) }
            auth.append(password)
            do {
                try send(auth).unwrapped()
            } catch where error.code == .server {
                throw RedisError(.authenticationFailed, error.message)
            }
        }
        if configuration.database != 0 {
            try send(["SELECT", String(configuration.database)]).unwrapped()
        }
    }

    /// Opens a connection from a `redis://` or `unix://` URL.
    public convenience init(url: String) throws(RedisError) {
        try self.init(configuration: RedisConfiguration(url: url))
    }

    deinit {
        // redisFree closes the socket and releases the reader, buffers and the context itself.
        handle.withLock { $0.free() }
    }

    private static func connect(_ configuration: RedisConfiguration) throws(RedisError) -> UnsafeMutablePointer<redisContext> {
        let connectTimeout = timeval(configuration.connectTimeout)
        // Both constructors return a context even on failure (NULL only when out of memory);
        // the caller owns it and must redisFree it.
        let context: UnsafeMutablePointer<redisContext>?
        switch configuration.endpoint {
        case .tcp(let host, let port):
            context = redisConnectWithTimeout(host, Int32(port), connectTimeout)
        case .unix(let path):
            context = redisConnectUnixWithTimeout(path, connectTimeout)
        }
        guard let context else { throw RedisError(.other, "hiredis could not allocate a context") }
        if context.pointee.err != 0 {
            let message = Self.errorString(context)
            redisFree(context)
            throw RedisError(.connectionFailed, "cannot connect to \(configuration): \(message)")
        }
        guard redisSetTimeout(context, timeval(configuration.commandTimeout)) == REDIS_OK else {
            let message = Self.errorString(context)
            redisFree(context)
            throw RedisError(.connectionFailed, "cannot set timeout on \(configuration): \(message)")
        }
        return context
    }

    // MARK: - State

    /// False once a read or write failed or `close()` was called.
    public var isBroken: Bool { handle.withLock { $0.broken || $0.context == nil } }

    /// True when the connection is open and the server has not closed it.
    ///
    /// Polls the socket without waiting: on an idle connection, readable means the server sent
    /// EOF (restart, `CLIENT KILL`, timeout) or an error, so the connection must not be reused.
    public var isUsable: Bool {
        handle.withLock { handle in
            guard !handle.broken, let context = handle.context else { return false }
            var descriptor = pollfd(fd: context.pointee.fd, events: Int16(POLLIN), revents: 0)
            let ready = poll(&descriptor, 1, 0)
            if ready != 0 { handle.broken = true }
            return ready == 0
        }
    }

    /// Bytes the reply arena keeps for the next replies (for tests).
    var replyArenaBytes: Int {
        handle.withLock { handle in handle.arena.map { Int(fieldops_reply_arena_capacity($0)) } ?? 0 }
    }

    /// Closes the socket; later calls throw `closed`.
    public func close() {
        handle.withLock { handle in
            handle.free()
            handle.broken = true
        }
    }

    // MARK: - Commands

    /// Sends one command and returns its reply; error replies come back as `.error`, not thrown.
    /// - Throws: `RedisError` when the connection fails.
    @discardableResult
    public func send(_ arguments: [String]) throws(RedisError) -> RedisValue {
        try pipeline(CommandBuffer(arguments))[0]
    }

    /// Sends one binary command.
    @discardableResult
    public func send(bytes arguments: [[UInt8]]) throws(RedisError) -> RedisValue {
        var buffer = CommandBuffer()
        buffer.append(bytes: arguments)
        return try pipeline(buffer)[0]
    }

    /// The server's id of this connection (`CLIENT ID`, asked once): what another connection
    /// passes to `CLIENT UNBLOCK` to end a blocking read of this one early.
    public func clientID() throws(RedisError) -> Int {
        if let id = serverClientID.withLock({ $0 }) { return id }
        guard let id = try command("CLIENT", "ID").int else { throw RedisError(.other, "CLIENT ID did not answer a number") }
        serverClientID.withLock { $0 = id }
        return id
    }

    /// Sends one command and throws when Redis answers with an error reply.
    @discardableResult
    public func command(_ arguments: String...) throws(RedisError) -> RedisValue {
        try send(arguments).unwrapped()
    }

    /// Sends every command, then reads every reply: one round trip for N commands.
    /// Error replies are returned in place as `.error`.
    public func pipeline(_ commands: [[String]]) throws(RedisError) -> [RedisValue] {
        var buffer = CommandBuffer()
        for command in commands { buffer.append(command) }
        return try pipeline(buffer)
    }

    /// Sends the commands in `buffer` and reads one reply per command.
    /// An empty buffer sends nothing and returns no replies.
    public func pipeline(_ buffer: CommandBuffer) throws(RedisError) -> [RedisValue] {
        do {
            return try pipeline(buffer) { $0.value }
        } catch let error as RedisError {
            throw error
        } catch {
            throw RedisError(.other, "\(error)")
        }
    }

    /// Sends every command in `buffer` and hands each reply, in order, to `decode` without
    /// copying it into a `RedisValue` first; each reply is freed after its `decode`.
    /// - Throws: `RedisError` when the connection fails, or what `decode` throws.
    public func pipeline<T>(_ buffer: CommandBuffer, decode: (RedisReplyView) throws -> T) throws -> [T] {
        guard !buffer.isEmpty else { return [] }
        guard !buffer.hasEmptyCommand else { throw RedisError(.unexpectedReply, "a command needs at least one argument") }
        let replies = try handle.withLock { (handle: inout Handle) throws(RedisError) -> [OwnedReply] in
            let context = try Self.usableContext(&handle)
            let status = buffer.bytes.withUnsafeBufferPointer { encoded in
                encoded.withMemoryRebound(to: CChar.self) { redisAppendFormattedCommand(context, $0.baseAddress, $0.count) }
            }
            if status != REDIS_OK { throw Self.fail(&handle, context) }
            var replies: [OwnedReply] = []
            replies.reserveCapacity(buffer.count)
            for _ in 0..<buffer.count {
                var raw: UnsafeMutableRawPointer?
                guard redisGetReply(context, &raw) == REDIS_OK, let raw else {
                    replies.forEach { handle.release($0.raw) }
                    throw Self.fail(&handle, context)
                }
                handle.hold()
                replies.append(OwnedReply(raw: raw))
            }
            return replies
        }
        // The reply trees are ours once redisGetReply returned them; each is released exactly once.
        defer { handle.withLock { handle in replies.forEach { handle.release($0.raw) } } }
        return try replies.map { try decode(RedisReplyView($0.raw.assumingMemoryBound(to: redisReply.self))) }
    }

    /// Waits up to `timeout` for a message the server pushes (pub/sub); `nil` when none came.
    ///
    /// Unlike a read timeout inside hiredis, which poisons the context, waiting here leaves the
    /// connection usable: the socket is polled first and read only when data is there.
    public func readPushed(timeout: Duration) throws(RedisError) -> RedisValue? {
        try handle.withLock { (handle: inout Handle) throws(RedisError) -> RedisValue? in
            let context = try Self.usableContext(&handle)
            if let value = try Self.replyFromReader(&handle, context) { return value }
            var descriptor = pollfd(fd: context.pointee.fd, events: Int16(POLLIN), revents: 0)
            let milliseconds = Int32(clamping: timeout.milliseconds)
            let ready = poll(&descriptor, 1, milliseconds)
            if ready < 0 {
                if errno == EINTR { return nil }
                handle.broken = true
                throw RedisError(.io, String(cString: strerror(errno)))
            }
            if ready == 0 { return nil }
            guard redisBufferRead(context) == REDIS_OK else { throw Self.fail(&handle, context) }
            return try Self.replyFromReader(&handle, context)
        }
    }

    /// Runs blocking work with this connection on its own serial queue.
    public func run<T: Sendable>(_ body: @escaping @Sendable (RedisConnection) throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { continuation in
            queue.async {
                continuation.resume(with: Result { try body(self) })
            }
        }
    }

    // MARK: - hiredis error mapping (the one place C errors become RedisError)

    fileprivate static func usableContext(_ handle: inout Handle) throws(RedisError) -> UnsafeMutablePointer<redisContext> {
        guard let context = handle.context else { throw RedisError(.closed, "the connection was closed") }
        if handle.broken { throw RedisError(.connectionClosed, "the connection failed earlier and cannot be reused") }
        return context
    }

    private static func replyFromReader(_ handle: inout Handle, _ context: UnsafeMutablePointer<redisContext>) throws(RedisError) -> RedisValue? {
        var raw: UnsafeMutableRawPointer?
        guard redisGetReplyFromReader(context, &raw) == REDIS_OK else { throw fail(&handle, context) }
        guard let raw else { return nil }
        handle.hold()
        defer { handle.release(raw) }
        return RedisValue(raw.assumingMemoryBound(to: redisReply.self))
    }

    /// Marks the connection broken and translates the context's error.
    fileprivate static func fail(_ handle: inout Handle, _ context: UnsafeMutablePointer<redisContext>) -> RedisError {
        let savedErrno = errno
        handle.broken = true
        let message = errorString(context)
        switch context.pointee.err {
        case REDIS_ERR_EOF:
            return RedisError(.connectionClosed, "server closed the connection")
        case REDIS_ERR_PROTOCOL:
            return RedisError(.protocolError, message)
        case REDIS_ERR_IO where savedErrno == EAGAIN || savedErrno == EWOULDBLOCK:
            return RedisError(.timeout, "no reply within the command timeout")
        case REDIS_ERR_IO:
            return RedisError(.io, message)
        default:
            return RedisError(.other, message)
        }
    }

    private static func errorString(_ context: UnsafeMutablePointer<redisContext>) -> String {
        withUnsafeBytes(of: &context.pointee.errstr) { raw in
            String(decoding: raw.prefix(while: { $0 != 0 }), as: UTF8.self)
        }
    }
}

/// Carries a reply out of the connection's lock; only the call that read it touches it.
private struct OwnedReply: @unchecked Sendable {
    let raw: UnsafeMutableRawPointer
}

extension RedisValue {
    /// Copies a hiredis reply tree into Swift values; the caller still owns and frees `reply`.
    init(_ reply: UnsafeMutablePointer<redisReply>) {
        let node = reply.pointee
        switch node.type {
        case REDIS_REPLY_STRING:
            self = .bulk(Self.copy(node.str, node.len))
        case REDIS_REPLY_STATUS:
            self = .status(String(decoding: Self.copy(node.str, node.len), as: UTF8.self))
        case REDIS_REPLY_ERROR:
            self = .error(String(decoding: Self.copy(node.str, node.len), as: UTF8.self))
        case REDIS_REPLY_INTEGER:
            self = .integer(node.integer)
        case REDIS_REPLY_ARRAY:
            var elements: [RedisValue] = []
            elements.reserveCapacity(node.elements)
            for index in 0..<node.elements {
                if let child = fieldops_reply_element(reply, index) { elements.append(RedisValue(child)) } else { elements.append(.null) }
            }
            self = .array(elements)
        default:
            self = .null
        }
    }

    private static func copy(_ pointer: UnsafeMutablePointer<CChar>?, _ length: Int) -> [UInt8] {
        guard let pointer, length > 0 else { return [] }
        return Array(UnsafeRawBufferPointer(start: pointer, count: Int(length)).bindMemory(to: UInt8.self))
    }
}

extension timeval {
    init(_ duration: Duration) {
        let (seconds, attoseconds) = duration.components
        self.init(tv_sec: Int(seconds), tv_usec: Int(attoseconds / 1_000_000_000_000))
    }
}

extension RedisConnection {
    /// Writes a command without reading its reply (pub/sub mode, where replies arrive as pushes).
    public func write(_ arguments: [String]) throws(RedisError) {
        try handle.withLock { (handle: inout Handle) throws(RedisError) in
            let context = try Self.usableContext(&handle)
            guard !arguments.isEmpty else { throw RedisError(.unexpectedReply, "a command needs at least one argument") }
            let buffer = CommandBuffer(arguments)
            let status = buffer.bytes.withUnsafeBufferPointer { encoded in
                encoded.withMemoryRebound(to: CChar.self) { redisAppendFormattedCommand(context, $0.baseAddress, $0.count) }
            }
            if status != REDIS_OK { throw Self.fail(&handle, context) }
            var done: Int32 = 0
            while done == 0 {
                // Blocking write of hiredis' output buffer; bounded by the command timeout.
                if redisBufferWrite(context, &done) != REDIS_OK { throw Self.fail(&handle, context) }
            }
        }
    }
}
