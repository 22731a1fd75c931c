import Dispatch
import Synchronization

/// Runs script calls from many concurrent callers, sending every call that arrives while a
/// round trip is under way together in the next one (automatic pipelining).
///
/// A write path of one script call per HTTP request would otherwise pay a thread hand-off and
/// a Redis round trip per request; under concurrency the batch grows with the load, so Redis
/// reads many commands per wake-up and the caller threads wake once per batch.
public final class RedisPipeliner: Sendable {
    private struct Call {
        let script: RedisScript
        let keys: [String]
        let arguments: [String]
        let continuation: CheckedContinuation<RedisValue, any Error>
    }

    private struct State {
        var calls: [Call] = []
        var draining = false
    }

    private let pool: RedisConnectionPool
    private let queue = DispatchQueue(label: "fieldops.redis.pipeliner")
    private let state = Mutex(State())
    /// Most calls per round trip.
    public let maxBatch: Int

    public init(pool: RedisConnectionPool, maxBatch: Int = 256) {
        self.pool = pool
        self.maxBatch = maxBatch
    }

    /// Runs `script`; its reply (error replies as `.error`), or the connection's error.
    public func evaluate(_ script: RedisScript, keys: [String], arguments: [String]) async throws -> RedisValue {
        try await withCheckedThrowingContinuation { continuation in
            let start = state.withLock { state -> Bool in
                state.calls.append(Call(script: script, keys: keys, arguments: arguments, continuation: continuation))
                if state.draining { return false }
                state.draining = true
                return true
            }
            if start { queue.async { self.drain() } }
        }
    }

    private func drain() {
        while true {
            let batch = state.withLock { state -> [Call] in
                guard !state.calls.isEmpty else {
                    state.draining = false
                    return []
                }
                let count = min(state.calls.count, maxBatch)
                defer { state.calls.removeFirst(count) }
                return Array(state.calls.prefix(count))
            }
            guard !batch.isEmpty else { return }
            do {
                let replies = try pool.withConnectionBlocking { connection in
                    try connection.evaluateAll(batch.map { (script: $0.script, keys: $0.keys, arguments: $0.arguments) })
                }
                for (call, reply) in zip(batch, replies) { call.continuation.resume(returning: reply) }
            } catch {
                for call in batch { call.continuation.resume(throwing: error) }
            }
        }
    }
}
