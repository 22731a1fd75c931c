@testable import FieldOpsCLI
import DocumentStore
import FieldOpsServer
import Foundation
import Redis
import Testing

/// `fieldops serve` killed outright (SIGKILL, the OOM killer) and started again on its storage.
@Suite("fieldops serve after a crash")
final class ServeCrashTests {
    let programs = FieldOpsProcesses()

    /// The process id of the redis-server answering on the storage's socket, or nil.
    func embeddedRedis() -> pid_t? {
        RedisServerProcess.answering(socketPath: programs.storage.appendingPathComponent("redis/redis.sock").path)?.1
    }

    @Test(.timeLimit(.minutes(3)))
    func aKilledServerComesBackOnItsStorageWithEveryAcknowledgedWrite() async throws {
        try #require(FileManager.default.isExecutableFile(atPath: programs.fieldops), "fieldops is built beside the tests")
        let port = try ServerProcess.freePort()
        let first = try await programs.serve(port: port)
        let token = try await TokenAuthority.load(storage: programs.storage).mint(tenant: "crash", subject: "d-1", role: .dispatcher)
        let api = DispatchSession(server: "http://127.0.0.1:\(port)", token: token, logger: .init(label: "crash"))
        // Half read back through the projection, half only acknowledged by the append.
        for i in 0..<40 {
            _ = try await api.call(.POST, "/v1/tasks" + (i.isMultiple(of: 2) ? "?wait=true" : ""), body: ["taskId": .string("T-\(i)"), "title": .string("Task \(i)")])
        }

        kill(first.processIdentifier, SIGKILL)
        let killed = ContinuousClock.now
        while first.isRunning {
            // Foundation sees the exit when a socket the child inherited closes: a redis-server
            // holding it too would hide the exit for as long as it runs.
            try #require(ContinuousClock.now - killed < .seconds(20), "the killed fieldops is seen to exit")
            try await Task.sleep(for: .milliseconds(50))
        }
        let leftover = try #require(embeddedRedis(), "the killed server's redis-server outlives it")
        defer { kill(leftover, SIGKILL) }   // when the check below fails, not to outlive the test

        _ = try await programs.serve(port: port)
        let successor = try #require(embeddedRedis())
        #expect(successor != leftover, "a new redis-server serves the storage")
        #expect(!RedisServerProcess.isAlive(leftover), "the leftover redis-server has exited")
        #expect(programs.serverLog.contains("shut down a redis-server left running on this storage"))

        let deadline = ContinuousClock.now + .seconds(30)
        var tasks: [JSONValue] = []
        while ContinuousClock.now < deadline {
            tasks = try await api.list("/v1/tasks", "tasks")
            if tasks.count >= 40 { break }
            try await Task.sleep(for: .milliseconds(200))
        }
        #expect(Set(tasks.compactMap { $0["taskId"]?.stringValue }) == Set((0..<40).map { "T-\($0)" }), "every acknowledged task is back")
    }
}
