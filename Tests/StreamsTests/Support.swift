import Foundation
import Redis
import Streams
import Synchronization
import Testing

/// A private redis-server per test, with helpers to reach it.
final class StreamTestContext: Sendable {
    let server: RedisServerProcess
    let tenant = "acme"

    init() throws {
        server = try RedisServerProcess()
    }

    deinit {
        server.destroy()
    }

    var url: String { server.url }

    func connection() throws -> RedisConnection {
        try RedisConnection(url: server.url)
    }

    func producer(_ stream: String, configuration: StreamProducer.Configuration = .init()) throws -> StreamProducer {
        try StreamProducer(redisURL: url, tenant: tenant, stream: stream, configuration: configuration)
    }

    func manager() throws -> StreamManager {
        try StreamManager(redisURL: url, tenant: tenant)
    }

    func groups() throws -> ConsumerGroupManager {
        try ConsumerGroupManager(redisURL: url, tenant: tenant)
    }

    func consumer(_ stream: String, group: String, name: String, configuration: StreamConsumer.Configuration = .fast) throws -> StreamConsumer {
        try StreamConsumer(redisURL: url, tenant: tenant, stream: stream, group: group, consumer: name, configuration: configuration)
    }

    /// Creates the stream and a group reading it from the start.
    func prepare(_ stream: String, group: String) async throws {
        try await manager().createStream(name: stream)
        try await groups().createGroup(stream: stream, group: group)
    }
}

extension StreamConsumer.Configuration {
    /// Short timings so retries and reclaims happen within a test.
    static var fast: Self {
        .init(batchSize: 50, block: .milliseconds(100), claimMinIdle: .milliseconds(200), claimInterval: .milliseconds(100), maxDeliveries: 3, leaseTTL: .seconds(1))
    }
}

/// Collects what handlers saw, safely across tasks.
final class Seen: Sendable {
    private let events = Mutex<[StreamEvent]>([])

    func add(_ event: StreamEvent) {
        events.withLock { $0.append(event) }
    }

    var all: [StreamEvent] { events.withLock { $0 } }
    var count: Int { events.withLock { $0.count } }
    var payloads: [String] { all.map(\.payload) }
}

/// Polls `condition` until it holds or `timeout` passes; records an issue on timeout.
func eventually(
    timeout: Duration = .seconds(10),
    _ message: @autoclosure () -> String = "condition never held",
    sourceLocation: SourceLocation = #_sourceLocation,
    _ condition: () async throws -> Bool
) async throws {
    let deadline = ContinuousClock.now + timeout
    while ContinuousClock.now < deadline {
        if try await condition() { return }
        try await Task.sleep(for: .milliseconds(20))
    }
    Issue.record(Comment(rawValue: message()), sourceLocation: sourceLocation)
}

/// Expects `body` to throw a `StreamError` with `code`; returns it for further checks.
@discardableResult
func expectStreamError(
    _ code: StreamError.Code,
    sourceLocation: SourceLocation = #_sourceLocation,
    _ body: () async throws -> Void
) async -> StreamError? {
    do {
        try await body()
        Issue.record("expected \(code), nothing was thrown", sourceLocation: sourceLocation)
    } catch let error as StreamError {
        #expect(error.code == code, "\(error)", sourceLocation: sourceLocation)
        return error
    } catch {
        Issue.record("expected \(code), got \(error)", sourceLocation: sourceLocation)
    }
    return nil
}
