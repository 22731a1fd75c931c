import Foundation
import Redis
import Testing

@Suite("Connection pool against a real redis-server")
final class RedisConnectionPoolTests {
    let server: RedisServerProcess

    init() throws {
        server = try RedisServerProcess()
    }

    deinit {
        server.destroy()
    }

    @Test func boundsConnectionsUnderConcurrency() async throws {
        let pool = RedisConnectionPool(redis: server.configuration, configuration: .init(maxConnections: 3))
        try await withThrowingTaskGroup(of: Void.self) { group in
            for _ in 0..<60 {
                group.addTask {
                    _ = try await pool.withConnection { try $0.command("INCR", "hits") }
                }
            }
            try await group.waitForAll()
        }
        #expect(pool.openConnections <= 3)
        let hits = try await pool.withConnection { try $0.command("GET", "hits").int }
        #expect(hits == 60)
    }

    @Test func survivesClientKill() async throws {
        let pool = RedisConnectionPool(redis: server.configuration, configuration: .init(maxConnections: 2))
        let firstID = try await pool.withConnection { try $0.command("CLIENT", "ID").int }
        let admin = try RedisConnection(url: server.url)
        try admin.command("CLIENT", "KILL", "ID", String(firstID!))
        // The pooled connection is dead; the next borrower must get a fresh, working one.
        let secondID = try await pool.withConnection { try $0.command("CLIENT", "ID").int }
        #expect(secondID != firstID)
        #expect(try await pool.withConnection { try $0.command("PING") } == .status("PONG"))
    }

    @Test func discardsAConnectionBrokenDuringUse() async throws {
        var redis = server.configuration
        redis.commandTimeout = .milliseconds(100)
        let pool = RedisConnectionPool(redis: redis, configuration: .init(maxConnections: 1))
        await #expect(throws: RedisError.self) {
            try await pool.withConnection { try $0.command("BLPOP", "never", "1") }
        }
        #expect(pool.openConnections == 0)
        #expect(try await pool.withConnection { try $0.command("PING") } == .status("PONG"))
    }

    @Test func reconnectsAfterRedisRestart() async throws {
        let pool = RedisConnectionPool(redis: server.configuration)
        try await pool.withConnection { try $0.command("SET", "kept", "yes") }
        server.stop()
        // Restart while a borrower is already retrying with backoff.
        let restarter = Task.detached { [server] in
            try await Task.sleep(for: .milliseconds(300))
            try server.start()
        }
        let value = try await pool.withConnection { try $0.command("GET", "kept").string }
        try await restarter.value
        #expect(value == "yes")
    }

    @Test func failsClearlyWhenRedisStaysDown() async throws {
        let pool = RedisConnectionPool(redis: server.configuration, configuration: .init(connectDeadline: .milliseconds(300)))
        server.stop()
        await #expect {
            try await pool.withConnection { try $0.command("PING") }
        } throws: { error in
            (error as? RedisError)?.code == .connectionFailed
        }
        #expect(pool.openConnections == 0)
    }

    @Test func blockingBorrowWorksFromAThread() throws {
        let pool = RedisConnectionPool(redis: server.configuration, configuration: .init(maxConnections: 1))
        let total = try pool.withConnectionBlocking { connection in
            try (0..<10).reduce(0) { sum, _ in sum + (try connection.command("INCR", "n").int ?? 0) }
        }
        #expect(total == 55)
    }
}

@Suite("Pub/sub subscriber against a real redis-server")
final class RedisSubscriberTests {
    let server: RedisServerProcess

    init() throws {
        server = try RedisServerProcess()
    }

    deinit {
        server.destroy()
    }

    private func next(_ iterator: inout AsyncStream<RedisSubscriberEvent>.Iterator) async -> RedisSubscriberEvent? {
        await iterator.next()
    }

    @Test func receivesChannelAndPatternMessages() async throws {
        let subscriber = RedisSubscriber(configuration: server.configuration)
        defer { subscriber.close() }
        await subscriber.subscribe(["alerts"])
        await subscriber.psubscribe(["tenant:{acme}:channel:*"])
        let publisher = try RedisConnection(url: server.url)
        try publisher.command("PUBLISH", "alerts", "storm")
        try publisher.command("PUBLISH", "tenant:{acme}:channel:tasks", "t1")
        var events = subscriber.events.makeAsyncIterator()
        #expect(await next(&events) == .message(channel: "alerts", payload: Array("storm".utf8)))
        #expect(await next(&events) == .patternMessage(pattern: "tenant:{acme}:channel:*", channel: "tenant:{acme}:channel:tasks", payload: Array("t1".utf8)))
    }

    @Test func resubscribesAfterClientKillAndReportsTheGap() async throws {
        let subscriber = RedisSubscriber(configuration: server.configuration)
        defer { subscriber.close() }
        await subscriber.subscribe(["alerts"])
        await subscriber.psubscribe(["room:*"])
        let admin = try RedisConnection(url: server.url)
        try admin.command("CLIENT", "KILL", "TYPE", "pubsub")
        var events = subscriber.events.makeAsyncIterator()
        #expect(await next(&events) == .reconnected)
        try await waitForSubscribers(admin, channel: "alerts")
        try admin.command("PUBLISH", "alerts", "after-kill")
        try admin.command("PUBLISH", "room:7", "hello")
        #expect(await next(&events) == .message(channel: "alerts", payload: Array("after-kill".utf8)))
        #expect(await next(&events) == .patternMessage(pattern: "room:*", channel: "room:7", payload: Array("hello".utf8)))
    }

    @Test func resubscribesAfterRedisRestart() async throws {
        let subscriber = RedisSubscriber(configuration: server.configuration)
        defer { subscriber.close() }
        await subscriber.subscribe(["alerts"])
        try server.restart()
        var events = subscriber.events.makeAsyncIterator()
        #expect(await next(&events) == .reconnected)
        let admin = try RedisConnection(url: server.url)
        try await waitForSubscribers(admin, channel: "alerts")
        try admin.command("PUBLISH", "alerts", "back")
        #expect(await next(&events) == .message(channel: "alerts", payload: Array("back".utf8)))
    }

    /// The `.reconnected` event precedes the server's handling of SUBSCRIBE; wait until it did.
    private func waitForSubscribers(_ connection: RedisConnection, channel: String) async throws {
        for _ in 0..<100 {
            let reply = try connection.command("PUBSUB", "NUMSUB", channel)
            if reply.array?.last?.int == 1 { return }
            try await Task.sleep(for: .milliseconds(10))
        }
        Issue.record("subscriber never resubscribed to \(channel)")
    }
}
