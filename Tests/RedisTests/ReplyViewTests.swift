import Foundation
@testable import Redis
import Testing

@Suite("Command encoding and zero-copy replies against a real redis-server")
final class ReplyViewTests {
    let server: RedisServerProcess

    init() throws {
        server = try RedisServerProcess()
    }

    deinit {
        server.destroy()
    }

    @Test func replyViewReadsNestedRepliesInPlace() throws {
        let connection = try RedisConnection(url: server.url)
        for n in 0..<3 { try connection.command("XADD", "s", "\(n + 1)-0", "field", "value-\(n)") }
        let ids = try connection.send(["XRANGE", "s", "-", "+"]) { reply -> [String] in
            #expect(reply.isArray && reply.count == 3)
            return (0..<reply.count).map { reply[$0][0].string ?? "" }
        }
        #expect(ids == ["1-0", "2-0", "3-0"])
        let value = try connection.send(["XRANGE", "s", "2-0", "2-0"]) { $0[0][1][1].string }
        #expect(value == "value-1")
        let error = try connection.send(["INCR", "s"]) { $0.errorMessage }
        #expect(error?.hasPrefix("WRONGTYPE") == true)
        #expect(try connection.send(["GET", "missing"]) { $0.isNull })
        #expect(try connection.send(["XLEN", "s"]) { $0.string } == "3")
    }

    @Test func pipelineDecodesEachReplyInOrder() throws {
        let connection = try RedisConnection(url: server.url)
        var buffer = CommandBuffer()
        for n in 0..<100 { buffer.append(["INCRBY", "counter", String(n)]) }
        let totals = try connection.pipeline(buffer) { Int($0.string ?? "") ?? -1 }
        #expect(totals.count == 100)
        #expect(totals.last == (0..<100).reduce(0, +))
        #expect(try connection.pipeline(CommandBuffer()) { $0.string }.isEmpty)
    }

    @Test func preEncodedArgumentsMatchPlainOnes() throws {
        let connection = try RedisConnection(url: server.url)
        var buffer = CommandBuffer()
        let prefix = CommandBuffer.EncodedArguments(["HSET", "h", "tenant"])
        buffer.beginCommand(argumentCount: prefix.count + 3)
        buffer.append(prefix)
        buffer.appendArgument("acme")
        buffer.appendArgument("binary")
        buffer.appendArgument(bytes: [0, 13, 10, 0xFF])
        #expect(try connection.pipeline(buffer) == [.integer(2)])
        #expect(try connection.send(["HGET", "h", "tenant"]).string == "acme")
        #expect(try connection.send(["HGET", "h", "binary"]) == .bulk([0, 13, 10, 0xFF]))
    }

    @Test func commandsWithoutArgumentsAreRefusedNotSent() throws {
        let connection = try RedisConnection(url: server.url)
        #expect(throws: RedisError.self) { try connection.send([]) }
        #expect(throws: RedisError.self) { try connection.pipeline([["PING"], []]) }
        // Nothing was sent, so the connection is still in step.
        #expect(try connection.command("PING") == .status("PONG"))
        #expect(!connection.isBroken)
    }

    @Test func largeArgumentsRoundTrip() throws {
        let connection = try RedisConnection(url: server.url)
        let big = String(repeating: "0123456789", count: 200_000)
        try connection.command("SET", "big", big)
        #expect(try connection.command("STRLEN", "big").int == 2_000_000)
        #expect(try connection.send(["GET", "big"]) { $0.string } == big)
    }

    // Replies are built in one reusable block per connection (reply_arena.h): these check that
    // a reply stays intact while held, whatever the connection reads meanwhile, and that a huge
    // reply does not leave a huge block behind.

    @Test func everyReplyOfAPipelineStaysIntactUntilAllAreDecoded() throws {
        let connection = try RedisConnection(url: server.url)
        var setup = CommandBuffer()
        for n in 0..<3_000 { setup.append(["XADD", "pages", "\(n + 1)-0", "payload", "entry-\(n)"]) }
        _ = try connection.pipeline(setup)
        // 30 pages are all read before the first is decoded.
        var pages = CommandBuffer()
        for page in 0..<30 { pages.append(["XRANGE", "pages", "\(page * 100 + 1)-0", "\(page * 100 + 100)-0"]) }
        let decoded = try connection.pipeline(pages) { reply in (0..<reply.count).map { reply[$0][1][1].string ?? "" } }
        #expect(Array(decoded.joined()) == (0..<3_000).map { "entry-\($0)" })
    }

    @Test func aReplyBeingDecodedSurvivesCommandsFromAnotherThread() async throws {
        let connection = try RedisConnection(url: server.url)
        let values = (0..<2_000).map { "value-\($0)-" + String(repeating: "x", count: $0 % 50) }
        var buffer = CommandBuffer()
        buffer.append(["RPUSH", "list"] + values)
        _ = try connection.pipeline(buffer)
        // The decode runs outside the connection's lock: while it sleeps, other commands read
        // replies on the same connection, into the same arena.
        async let slow = Task.detached {
            try connection.send(["LRANGE", "list", "0", "-1"]) { reply -> [String] in
                Thread.sleep(forTimeInterval: 0.2)
                return (0..<reply.count).map { reply[$0].string ?? "" }
            }
        }.value
        try await Task.sleep(for: .milliseconds(50))
        for n in 0..<200 { #expect(try connection.send(["ECHO", "echo-\(n)"]).string == "echo-\(n)") }
        #expect(try await slow == values)
    }

    @Test func aHugeReplyLeavesABoundedBlockBehind() throws {
        let connection = try RedisConnection(url: server.url)
        let big = String(repeating: "abcdefgh", count: 4_000_000)  // 32 MB
        try connection.command("SET", "huge", big)
        for _ in 0..<2 { #expect(try connection.send(["GET", "huge"]) { $0.string?.utf8.count } == big.utf8.count) }
        #expect(connection.replyArenaBytes <= 8 * 1024 * 1024)
        #expect(try connection.command("GET", "huge").string == big)
        #expect(try connection.command("PING") == .status("PONG"))
    }
}
