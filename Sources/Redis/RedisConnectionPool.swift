import Dispatch
import Foundation
import Synchronization

/// A bounded pool of `RedisConnection`s that callers borrow.
///
/// A connection that failed, or that the server closed while it sat idle (restart, `CLIENT KILL`),
/// is discarded and never handed out again; a new one is opened in its place, retrying with
/// bounded exponential backoff while Redis is unreachable.
public final class RedisConnectionPool: Sendable {
    /// How many connections to keep and how hard to retry.
    public struct Configuration: Sendable, Hashable {
        /// Upper bound on open connections; further borrowers wait.
        public var maxConnections: Int
        /// First delay between connection attempts; doubles up to `maxBackoff`.
        public var initialBackoff: Duration
        public var maxBackoff: Duration
        /// How long to keep retrying to connect before failing a borrower.
        public var connectDeadline: Duration

        public init(
            maxConnections: Int = 8,
            initialBackoff: Duration = .milliseconds(50),
            maxBackoff: Duration = .seconds(1),
            connectDeadline: Duration = .seconds(10)
        ) {
            self.maxConnections = maxConnections
            self.initialBackoff = initialBackoff
            self.maxBackoff = maxBackoff
            self.connectDeadline = connectDeadline
        }
    }

    public let redis: RedisConfiguration
    public let configuration: Configuration
    private let state = Mutex(State())

    private struct State {
        var idle: [RedisConnection] = []
        /// Connections handed out or being opened, plus idle ones.
        var open = 0
        var closed = false
        /// Borrowers waiting for a connection; woken in order with a connection or `nil`
        /// (meaning: a slot is free, open your own).
        var waiters: [(id: UInt64, wake: @Sendable (Result<RedisConnection?, RedisError>) -> Void)] = []
        var nextWaiterID: UInt64 = 0
    }

    private enum Lease {
        case reuse(RedisConnection)
        case open
        case wait(UInt64)
    }

    public init(redis: RedisConfiguration, configuration: Configuration = Configuration()) {
        precondition(configuration.maxConnections > 0, "a pool needs at least one connection")
        self.redis = redis
        self.configuration = configuration
    }

    public convenience init(url: String, configuration: Configuration = Configuration()) throws(RedisError) {
        self.init(redis: try RedisConfiguration(url: url), configuration: configuration)
    }

    /// Borrows a connection for `body`, which runs on that connection's own queue.
    ///
    /// A connection that `body` leaves broken is discarded; any other is returned to the pool.
    @discardableResult
    public func withConnection<T: Sendable>(_ body: @escaping @Sendable (RedisConnection) throws -> T) async throws -> T {
        let connection = try await acquire()
        defer { release(connection) }
        return try await connection.run(body)
    }

    /// Borrows a connection on the calling thread, blocking while none is free.
    ///
    /// For callers that own a thread (benchmarks, bulk loaders); async code uses `withConnection`.
    @discardableResult
    public func withConnectionBlocking<T>(_ body: (RedisConnection) throws -> T) throws -> T {
        let connection = try acquireBlocking()
        defer { release(connection) }
        return try body(connection)
    }

    /// Closes idle connections and fails waiters; borrowed connections close when returned.
    public func close() {
        let (idle, waiters) = state.withLock { state in
            state.closed = true
            defer { state.idle = []; state.waiters = [] }
            state.open -= state.idle.count
            return (state.idle, state.waiters)
        }
        idle.forEach { $0.close() }
        waiters.forEach { $0.wake(.failure(RedisError(.closed, "the connection pool was closed"))) }
    }

    /// Number of open connections (idle and borrowed).
    public var openConnections: Int { state.withLock { $0.open } }

    // MARK: - Borrowing

    private func lease() throws(RedisError) -> Lease {
        try state.withLock { (state: inout State) throws(RedisError) -> Lease in
            if state.closed { throw RedisError(.closed, "the connection pool was closed") }
            while let connection = state.idle.popLast() {
                if connection.isUsable { return .reuse(connection) }
                state.open -= 1
            }
            if state.open < configuration.maxConnections {
                state.open += 1
                return .open
            }
            state.nextWaiterID += 1
            return .wait(state.nextWaiterID)
        }
    }

    private func acquire() async throws -> RedisConnection {
        while true {
            switch try lease() {
            case .reuse(let connection):
                return connection
            case .open:
                return try await openConnection()
            case .wait(let id):
                let woken: RedisConnection? = try await withTaskCancellationHandler {
                    try await withCheckedThrowingContinuation { continuation in
                        enqueue(id) { continuation.resume(with: $0.mapError { $0 as Error }) }
                    }
                } onCancel: {
                    cancelWaiter(id)
                }
                if let woken { return woken }
                return try await openConnection()
            }
        }
    }

    private func acquireBlocking() throws -> RedisConnection {
        while true {
            switch try lease() {
            case .reuse(let connection):
                return connection
            case .open:
                return try openConnectionBlocking()
            case .wait(let id):
                let semaphore = DispatchSemaphore(value: 0)
                let box = Mutex<Result<RedisConnection?, RedisError>?>(nil)
                enqueue(id) { result in
                    box.withLock { $0 = result }
                    semaphore.signal()
                }
                semaphore.wait()
                if let woken = try box.withLock({ $0 })!.get() { return woken }
                return try openConnectionBlocking()
            }
        }
    }

    /// Registers a waiter, unless a connection came back between `lease()` and now.
    private func enqueue(_ id: UInt64, wake: @escaping @Sendable (Result<RedisConnection?, RedisError>) -> Void) {
        let immediate: Result<RedisConnection?, RedisError>? = state.withLock { state in
            if state.closed { return .failure(RedisError(.closed, "the connection pool was closed")) }
            if let connection = state.idle.popLast() { return .success(connection) }
            if state.open < configuration.maxConnections {
                state.open += 1
                return .success(nil)
            }
            state.waiters.append((id, wake))
            return nil
        }
        if let immediate { wake(immediate) }
    }

    private func cancelWaiter(_ id: UInt64) {
        let waiter = state.withLock { state -> (@Sendable (Result<RedisConnection?, RedisError>) -> Void)? in
            guard let index = state.waiters.firstIndex(where: { $0.id == id }) else { return nil }
            return state.waiters.remove(at: index).wake
        }
        waiter?(.failure(RedisError(.closed, "cancelled while waiting for a connection")))
    }

    /// Returns a connection: to the next waiter, to the idle list, or discards it if broken.
    private func release(_ connection: RedisConnection) {
        let broken = connection.isBroken
        let (waiter, closeIt) = state.withLock { state -> ((@Sendable (Result<RedisConnection?, RedisError>) -> Void)?, Bool) in
            if state.closed || broken {
                state.open -= 1
                guard !state.closed, !state.waiters.isEmpty else { return (nil, true) }
                // The freed slot goes to the first waiter, which opens its own connection.
                state.open += 1
                return (state.waiters.removeFirst().wake, true)
            }
            if !state.waiters.isEmpty { return (state.waiters.removeFirst().wake, false) }
            state.idle.append(connection)
            return (nil, false)
        }
        if closeIt {
            connection.close()
            waiter?(.success(nil))
        } else {
            waiter?(.success(connection))
        }
    }

    // MARK: - Connecting with backoff

    private func openConnection() async throws -> RedisConnection {
        do {
            return try await retryingConnect { delay in try await Task.sleep(for: delay) } connect: { [redis] in
                try await withCheckedThrowingContinuation { continuation in
                    DispatchQueue.global().async {
                        continuation.resume(with: Result { () throws(RedisError) -> RedisConnection in try RedisConnection(configuration: redis) }.mapError { $0 as Error })
                    }
                }
            }
        } catch {
            giveBackSlot()
            throw error
        }
    }

    private func openConnectionBlocking() throws -> RedisConnection {
        do {
            var delay = configuration.initialBackoff
            let deadline = ContinuousClock.now + configuration.connectDeadline
            while true {
                do {
                    return try RedisConnection(configuration: redis)
                } catch where error.code == .connectionFailed && ContinuousClock.now + delay < deadline {
                    Thread.sleep(forTimeInterval: delay.secondsValue)
                    delay = min(delay * 2, configuration.maxBackoff)
                }
            }
        } catch {
            giveBackSlot()
            throw error
        }
    }

    private func retryingConnect(
        sleep: (Duration) async throws -> Void,
        connect: () async throws -> RedisConnection
    ) async throws -> RedisConnection {
        var delay = configuration.initialBackoff
        let deadline = ContinuousClock.now + configuration.connectDeadline
        while true {
            do {
                return try await connect()
            } catch let error as RedisError where error.code == .connectionFailed && ContinuousClock.now + delay < deadline {
                try await sleep(delay)
                delay = min(delay * 2, configuration.maxBackoff)
            }
        }
    }

    /// A connect failed: free its slot, letting a waiter try in turn.
    private func giveBackSlot() {
        let waiter = state.withLock { state -> (@Sendable (Result<RedisConnection?, RedisError>) -> Void)? in
            state.open -= 1
            guard !state.waiters.isEmpty else { return nil }
            state.open += 1
            return state.waiters.removeFirst().wake
        }
        waiter?(.success(nil))
    }
}
