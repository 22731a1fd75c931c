import Foundation
import Synchronization

/// What a `RedisSubscriber` delivers.
public enum RedisSubscriberEvent: Sendable, Hashable {
    /// A message on a channel subscribed by name.
    case message(channel: String, payload: [UInt8])
    /// A message on a channel matched by a pattern.
    case patternMessage(pattern: String, channel: String, payload: [UInt8])
    /// The connection was lost and is back, every subscription renewed. Pub/sub is at-most-once:
    /// messages published meanwhile are gone, so listeners should fill the gap from the streams.
    case reconnected
}

/// A pub/sub subscriber on its own connection and thread (SUBSCRIBE and PSUBSCRIBE).
///
/// After a lost connection it reconnects with backoff, subscribes to everything again, and emits
/// `.reconnected` so the listener knows a gap may have occurred.
public final class RedisSubscriber: Sendable {
    /// The subscriber's events, in order; finishes after `close()`.
    public let events: AsyncStream<RedisSubscriberEvent>
    private let continuation: AsyncStream<RedisSubscriberEvent>.Continuation
    private let configuration: RedisConfiguration
    private let state = Mutex(State())

    private struct State {
        var connection: RedisConnection?
        var channels: Set<String> = []
        var patterns: Set<String> = []
        var closed = false
        /// Callers of subscribe/psubscribe waiting for the server's confirmation.
        var confirmations: [String: [ConfirmationGroup]] = [:]
    }

    /// Events go to `handler`, called on the subscriber's own thread, when one is given
    /// (`events` then stays empty); otherwise to `events`.
    private let handler: (@Sendable (RedisSubscriberEvent) -> Void)?

    /// - Parameter handler: receives every event on the subscriber's thread, in order; it
    ///   must return quickly (hand the work on), since it holds up the next message.
    public init(configuration: RedisConfiguration, handler: (@Sendable (RedisSubscriberEvent) -> Void)? = nil) {
        self.configuration = configuration
        self.handler = handler
        (events, continuation) = AsyncStream.makeStream(bufferingPolicy: .bufferingNewest(100_000))
        let thread = Thread { [self] in runLoop() }
        thread.name = "fieldops.redis.subscriber"
        thread.start()
    }

    /// Subscribes to channels by name; returns once Redis confirmed every one.
    public func subscribe(_ channels: [String]) async {
        await register(channels.map { "s:" + $0 }) { state in
            state.channels.formUnion(channels)
            return ["SUBSCRIBE"] + channels
        }
    }

    /// Subscribes to glob patterns; returns once Redis confirmed every one.
    public func psubscribe(_ patterns: [String]) async {
        await register(patterns.map { "p:" + $0 }) { state in
            state.patterns.formUnion(patterns)
            return ["PSUBSCRIBE"] + patterns
        }
    }

    /// Stops receiving from these channels.
    public func unsubscribe(_ channels: [String]) {
        let connection = state.withLock { state in
            state.channels.subtract(channels)
            return state.connection
        }
        try? connection?.write(["UNSUBSCRIBE"] + channels)
    }

    /// Stops receiving from these patterns.
    public func punsubscribe(_ patterns: [String]) {
        let connection = state.withLock { state in
            state.patterns.subtract(patterns)
            return state.connection
        }
        try? connection?.write(["PUNSUBSCRIBE"] + patterns)
    }

    /// Ends the loop within a fraction of a second and finishes `events`.
    public func close() {
        let waiters = state.withLock { state in
            state.closed = true
            defer { state.confirmations = [:] }
            return state.confirmations.values.flatMap { $0 }
        }
        waiters.forEach { $0.resumeAll() }
    }

    /// The server connection in use, exposed so tests can find it with `CLIENT LIST`.
    public var isConnected: Bool { state.withLock { $0.connection != nil } }

    private func register(_ keys: [String], _ update: @Sendable (inout State) -> [String]) async {
        await withCheckedContinuation { (waiter: CheckedContinuation<Void, Never>) in
            let (connection, command) = state.withLock { state -> (RedisConnection?, [String]?) in
                if state.closed { return (nil, nil) }
                let command = update(&state)
                // One waiter per subscription; resumed once all confirmations arrive.
                let group = ConfirmationGroup(count: keys.count, waiter: waiter)
                for key in keys { state.confirmations[key, default: []].append(group) }
                return (state.connection, command)
            }
            guard let command else { return waiter.resume() }
            // Without a connection the loop subscribes on (re)connect and confirms then.
            if let connection { try? connection.write(command) }
        }
    }

    // MARK: - Loop

    private func runLoop() {
        var hadConnection = false
        var delay: Duration = .milliseconds(50)
        while !state.withLock({ $0.closed }) {
            guard let connection = state.withLock({ $0.connection }) else {
                do {
                    let connection = try RedisConnection(configuration: configuration)
                    let (channels, patterns) = state.withLock { state in
                        state.connection = connection
                        return (state.channels, state.patterns)
                    }
                    if !channels.isEmpty { try connection.write(["SUBSCRIBE"] + channels.sorted()) }
                    if !patterns.isEmpty { try connection.write(["PSUBSCRIBE"] + patterns.sorted()) }
                    if hadConnection { emit(.reconnected) }
                    hadConnection = true
                    delay = .milliseconds(50)
                } catch {
                    state.withLock { $0.connection = nil }
                    Thread.sleep(forTimeInterval: delay.secondsValue)
                    delay = min(delay * 2, .seconds(1))
                }
                continue
            }
            do {
                if let value = try connection.readPushed(timeout: .milliseconds(100)) { handle(value) }
            } catch {
                state.withLock { $0.connection = nil }
                connection.close()
            }
        }
        state.withLock { $0.connection?.close(); $0.connection = nil }
        continuation.finish()
    }

    private func emit(_ event: RedisSubscriberEvent) {
        if let handler { handler(event) } else { continuation.yield(event) }
    }

    private func handle(_ value: RedisValue) {
        guard let parts = value.array, let kind = parts.first?.string else { return }
        switch kind {
        case "message" where parts.count == 3:
            emit(.message(channel: parts[1].string ?? "", payload: parts[2].bytes ?? []))
        case "pmessage" where parts.count == 4:
            emit(.patternMessage(pattern: parts[1].string ?? "", channel: parts[2].string ?? "", payload: parts[3].bytes ?? []))
        case "subscribe", "psubscribe":
            let key = (kind == "subscribe" ? "s:" : "p:") + (parts[1].string ?? "")
            let waiters = state.withLock { $0.confirmations.removeValue(forKey: key) } ?? []
            waiters.forEach { $0.resumeOne() }
        default:
            break
        }
    }
}

/// Resumes one waiter after `count` confirmations.
final class ConfirmationGroup: Sendable {
    private let remaining: Mutex<(Int, CheckedContinuation<Void, Never>?)>

    init(count: Int, waiter: CheckedContinuation<Void, Never>) {
        remaining = Mutex((count, waiter))
        if count == 0 { resumeOne() }
    }

    func resumeOne() {
        let waiter = remaining.withLock { state -> CheckedContinuation<Void, Never>? in
            state.0 -= 1
            guard state.0 <= 0, let waiter = state.1 else { return nil }
            state.1 = nil
            return waiter
        }
        waiter?.resume()
    }

    func resumeAll() {
        let waiter = remaining.withLock { state -> CheckedContinuation<Void, Never>? in
            defer { state.1 = nil }
            return state.1
        }
        waiter?.resume()
    }
}
