import Foundation
import Redis
import Testing

@Suite("Redis URL parsing")
struct RedisConfigurationTests {
    @Test func parsesTCPURLWithCredentialsAndDatabase() throws {
        let configuration = try RedisConfiguration(url: "redis://ops%40team:p%3Ass@cache.local:6380/3")
        #expect(configuration.endpoint == .tcp(host: "cache.local", port: 6380))
        #expect(configuration.username == "ops@team")
        #expect(configuration.password == "p:ss")
        #expect(configuration.database == 3)
        #expect(configuration.description == "redis://cache.local:6380/3")
    }

    @Test func defaultsPortAndDatabase() throws {
        let configuration = try RedisConfiguration(url: "redis://localhost")
        #expect(configuration.endpoint == .tcp(host: "localhost", port: 6379))
        #expect(configuration.database == 0)
        #expect(configuration.username == nil && configuration.password == nil)
    }

    @Test func passwordOnlyAuthenticatesDefaultUser() throws {
        let configuration = try RedisConfiguration(url: "redis://:secret@localhost")
        #expect(configuration.username == nil)
        #expect(configuration.password == "secret")
    }

    @Test func parsesUnixSocketURL() throws {
        let configuration = try RedisConfiguration(url: "unix:///var/run/redis.sock?db=2")
        #expect(configuration.endpoint == .unix(path: "/var/run/redis.sock"))
        #expect(configuration.database == 2)
    }

    @Test(arguments: ["http://localhost", "redis://", "redis://host/abc", "unix://relative", "not a url", "redis://host:99999", "unix:///" + String(repeating: "d", count: 103) + ".sock"])
    func rejectsInvalidURLs(url: String) {
        #expect {
            try RedisConfiguration(url: url)
        } throws: { error in
            (error as? RedisError)?.code == .invalidURL
        }
    }
}

@Suite("Redis connection against a real redis-server")
final class RedisConnectionTests {
    let server: RedisServerProcess

    init() throws {
        server = try RedisServerProcess()
    }

    deinit {
        server.destroy()
    }

    @Test func decodesEveryReplyKind() throws {
        let connection = try RedisConnection(url: server.url)
        #expect(try connection.send(["PING"]) == .status("PONG"))
        #expect(try connection.send(["INCR", "counter"]) == .integer(1))
        #expect(try connection.send(["GET", "missing"]) == .null)
        try connection.command("SET", "text", "hello")
        #expect(try connection.send(["GET", "text"]) == .bulk(Array("hello".utf8)))
        guard case .error(let message) = try connection.send(["LPUSH", "text", "x"]) else {
            Issue.record("expected an error reply")
            return
        }
        #expect(message.hasPrefix("WRONGTYPE"))
        let nested = try connection.send(["EVAL", "return {1, 'two', {3, 'four'}, false}", "0"])
        #expect(nested == .array([.integer(1), .bulk(Array("two".utf8)), .array([.integer(3), .bulk(Array("four".utf8))]), .null]))
    }

    @Test func errorRepliesThrowWithServerCode() throws {
        let connection = try RedisConnection(url: server.url)
        try connection.command("SET", "text", "hello")
        #expect {
            try connection.command("LPUSH", "text", "x")
        } throws: { error in
            let error = error as? RedisError
            return error?.code == .server && error?.serverCode == "WRONGTYPE" && error?.message.contains("wrong kind") == true
        }
        // An error reply does not break the connection.
        #expect(try connection.command("PING") == .status("PONG"))
    }

    @Test func argumentsAreBinarySafe() throws {
        let connection = try RedisConnection(url: server.url)
        let value: [UInt8] = [0, 13, 10, 255, 36, 42, 0]
        try connection.send(bytes: [Array("SET".utf8), [0, 1, 2], value]).unwrapped()
        #expect(try connection.send(bytes: [Array("GET".utf8), [0, 1, 2]]) == .bulk(value))
        #expect(try connection.send(["SET", "empty", ""]) == .status("OK"))
        #expect(try connection.send(["GET", "empty"]) == .bulk([]))
    }

    @Test func pipelineReadsOneReplyPerCommandInOrder() throws {
        let connection = try RedisConnection(url: server.url)
        var commands = (0..<200).map { ["RPUSH", "list", String($0)] }
        commands.insert(["HGET", "list", "x"], at: 100)
        let replies = try connection.pipeline(commands)
        #expect(replies.count == 201)
        #expect(replies[0] == .integer(1))
        if case .error = replies[100] {} else { Issue.record("expected WRONGTYPE in place, got \(replies[100])") }
        #expect(replies[200] == .integer(200))
        #expect(try connection.command("LLEN", "list") == .integer(200))
    }

    @Test func commandTimeoutBreaksTheConnectionWithATimeoutError() throws {
        var configuration = server.configuration
        configuration.commandTimeout = .milliseconds(200)
        let connection = try RedisConnection(configuration: configuration)
        let start = ContinuousClock.now
        #expect {
            try connection.command("BLPOP", "nothing", "20")
        } throws: { error in
            (error as? RedisError)?.code == .timeout
        }
        // Far sooner than the BLPOP's own 20 s, with room for a loaded machine.
        #expect(ContinuousClock.now - start < .seconds(5))
        #expect(connection.isBroken)
        #expect(throws: RedisError.self) { try connection.command("PING") }
    }

    @Test func connectingToNothingFailsClearly() throws {
        #expect {
            try RedisConnection(url: "unix:///tmp/no-such-redis.sock")
        } throws: { error in
            let error = error as? RedisError
            return error?.code == .connectionFailed && error?.message.contains("no-such-redis.sock") == true
        }
    }

    @Test func selectsTheDatabaseFromTheURL() throws {
        let db2 = try RedisConnection(url: server.url + "?db=2")
        try db2.command("SET", "where", "db2")
        let db0 = try RedisConnection(url: server.url)
        #expect(try db0.send(["GET", "where"]) == .null)
        #expect(try db2.send(["GET", "where"]).string == "db2")
    }

    @Test func scriptsFallBackToEvalAfterScriptFlush() throws {
        let connection = try RedisConnection(url: server.url)
        let script = RedisScript("return redis.call('INCRBY', KEYS[1], ARGV[1])")
        #expect(try connection.evaluate(script, keys: ["n"], arguments: ["2"]) == .integer(2))
        try connection.command("SCRIPT", "FLUSH")
        #expect(try connection.evaluate(script, keys: ["n"], arguments: ["3"]) == .integer(5))
    }
}

@Suite("Redis authentication")
struct RedisAuthenticationTests {
    @Test func authenticatesACLUserOverTCPAndRefusesWrongPassword() throws {
        let port = Int.random(in: 20_000..<60_000)
        let server = try RedisServerProcess(extraArguments: ["--port", String(port), "--bind", "127.0.0.1", "--requirepass", "adminpass"])
        defer { server.destroy() }
        let admin = try RedisConnection(url: "redis://:adminpass@127.0.0.1:\(port)")
        try admin.command("ACL", "SETUSER", "dispatcher", "on", ">s3cret", "~*", "+@all")
        let user = try RedisConnection(url: "redis://dispatcher:s3cret@127.0.0.1:\(port)/1")
        #expect(try user.command("ACL", "WHOAMI").string == "dispatcher")
        #expect {
            try RedisConnection(url: "redis://dispatcher:wrong@127.0.0.1:\(port)")
        } throws: { error in
            (error as? RedisError)?.code == .authenticationFailed
        }
    }
}

@Suite("A private redis-server process")
struct RedisServerProcessTests {
    /// What `fieldops serve` meets after a SIGKILL: the server it started still runs on the
    /// directory. Two servers on one AOF would each append to it, and the old one's exit would
    /// unlink the new one's socket.
    @Test func aServerLeftRunningOnTheDirectoryIsShutDownFirstAndItsWritesKept() throws {
        let orphan = try RedisServerProcess()
        let directory = orphan.directory
        let orphanPID = try #require(orphan.processID)
        let writer = try RedisConnection(url: orphan.url)
        for i in 0..<500 { try writer.command("SET", "key:\(i)", "value \(i)") }
        try writer.command("XADD", "events", "*", "type", "last")

        let successor = try RedisServerProcess(directory: directory)
        defer { successor.destroy() }
        //X
        #expect(orphan.hasExited(), "the old server exited")
        let reader = try RedisConnection(url: successor.url)
        let info = try #require(reader.command("INFO", "server").string)
        #expect(info.contains("process_id:\(try #require(successor.processID))\r\n"))
        #expect(try reader.command("DBSIZE") == .integer(501))
        #expect(try reader.command("GET", "key:499").string == "value 499")
        #expect(try reader.command("XLEN", "events") == .integer(1))

        // A restart of the successor finds nothing left over.
        try successor.restart()
        //Y
        #expect(try RedisConnection(url: successor.url).command("DBSIZE") == .integer(501))
    }

    @Test func aDirectoryTooDeepForAUnixSocketIsRefusedPlainly() throws {
        let directory = URL(fileURLWithPath: "/tmp/fo-" + String(repeating: "d", count: 100))
        defer { try? FileManager.default.removeItem(at: directory) }
        #expect {
            try RedisServerProcess(directory: directory)
        } throws: { error in
            "\(error)".contains("is 119 bytes, and a unix socket's may have at most 107; use a shorter data directory")
        }
    }

    /// A server that outlives its parent must not hold the parent's files open: Foundation's
    /// `Process` waits for EOF on a socket its child inherited, so the parent would never be seen
    /// to exit.
    @Test func theServerInheritsNoDescriptorButItsStandardOnes() throws {
        let marker = FileManager.default.temporaryDirectory.appendingPathComponent("fo-marker-\(UUID().uuidString)").path
        let fd = open(marker, O_RDONLY | O_CREAT, 0o600)   // no O_CLOEXEC, as a leaked descriptor
        #expect(fd >= 0)
        defer { close(fd); unlink(marker) }
        let server = try RedisServerProcess()
        defer { server.destroy() }
        let pid = try #require(server.processID)
        let descriptors = try FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/fd")
        let targets = descriptors.compactMap { try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/\(pid)/fd/\($0)") }
        #expect(!targets.isEmpty, "the server's descriptors are readable")
        #expect(!targets.contains(marker), "the server holds none of its parent's files: \(targets)")
    }
}
