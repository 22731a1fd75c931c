import Foundation
import Redis
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
}
