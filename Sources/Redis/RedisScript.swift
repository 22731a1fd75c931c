import Synchronization

/// A Lua script run with EVALSHA, loaded once per server.
///
/// The SHA1 comes from `SCRIPT LOAD` the first time; when Redis answers `NOSCRIPT` (restarted,
/// `SCRIPT FLUSH`, another server) the script is sent whole with EVAL, which caches it again.
public final class RedisScript: Sendable {
    public let source: String
    private let sha = Mutex<String?>(nil)

    public init(_ source: String) {
        self.source = source
    }

    /// The EVALSHA command for these keys and arguments (loading the script if needed).
    fileprivate func evalsha(on connection: RedisConnection, keys: [String], arguments: [String]) throws(RedisError) -> [String] {
        let known = sha.withLock { $0 }
        let digest: String
        if let known {
            digest = known
        } else {
            guard let loaded = try connection.command("SCRIPT", "LOAD", source).string else {
                throw RedisError(.unexpectedReply, "SCRIPT LOAD did not return a digest")
            }
            sha.withLock { $0 = loaded }
            digest = loaded
        }
        return ["EVALSHA", digest, String(keys.count)] + keys + arguments
    }

    fileprivate func eval(keys: [String], arguments: [String]) -> [String] {
        ["EVAL", source, String(keys.count)] + keys + arguments
    }
}

extension RedisConnection {
    /// Runs `script` and returns its reply; error replies come back as `.error`.
    public func evaluate(_ script: RedisScript, keys: [String], arguments: [String]) throws(RedisError) -> RedisValue {
        let reply = try send(script.evalsha(on: self, keys: keys, arguments: arguments))
        if case .error(let message) = reply, message.hasPrefix("NOSCRIPT") {
            return try send(script.eval(keys: keys, arguments: arguments))
        }
        return reply
    }
}

extension RedisConnection {
    /// Runs many script calls in one round trip; replies in order, error replies as `.error`.
    public func evaluateAll(_ calls: [(script: RedisScript, keys: [String], arguments: [String])]) throws(RedisError) -> [RedisValue] {
        var buffer = CommandBuffer()
        for call in calls { buffer.append(try call.script.evalsha(on: self, keys: call.keys, arguments: call.arguments)) }
        var replies = try pipeline(buffer)
        for index in replies.indices {
            // Unknown to this server (restarted, flushed): sent whole, which caches it again.
            if case .error(let message) = replies[index], message.hasPrefix("NOSCRIPT") {
                replies[index] = try send(calls[index].script.eval(keys: calls[index].keys, arguments: calls[index].arguments))
            }
        }
        return replies
    }
}
