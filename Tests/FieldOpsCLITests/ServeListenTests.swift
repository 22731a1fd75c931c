@testable import FieldOpsCLI
import Foundation
import NIOCore
import NIOPosix
import Testing

/// `fieldops serve` on an address it cannot have.
@Suite("fieldops serve without its address")
final class ServeListenTests {
    let programs = FieldOpsProcesses()

    @Test(.timeLimit(.minutes(2)))
    func aTakenPortIsExplainedAndNothingIsLeftRunning() async throws {
        let holder = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton).bind(host: "127.0.0.1", port: 0).get()
        defer { holder.close(promise: nil) }
        let port = try #require(holder.localAddress?.port)

        let server = try programs.start(log: "serve.log", ["serve", "--host", "127.0.0.1", "--port", String(port), "--storage", programs.storage.path])
        let status = try await programs.exitStatus(of: server, "fieldops serve exits when it cannot listen")
        let log = programs.serverLog
        #expect(status == 1)
        #expect(log.contains("Error: cannot listen on 127.0.0.1:\(port): the port is in use"), "\(log)")
        #expect(!log.contains("listening on"), "it never claims to listen: \(log)")
        #expect(log.contains("embedded redis-server stopped"))
    }

    @Test(.timeLimit(.minutes(2)))
    func aDamagedSecretStopsTheStartBeforeRedis() async throws {
        try FileManager.default.createDirectory(at: programs.storage, withIntermediateDirectories: true)
        try Data("truncated\n".utf8).write(to: programs.storage.appendingPathComponent("jwt-secret"))
        let server = try programs.start(log: "serve.log", ["serve", "--port", String(try ServerProcess.freePort()), "--storage", programs.storage.path])
        let status = try await programs.exitStatus(of: server, "fieldops serve exits on a damaged secret")
        #expect(status == 1)
        #expect(programs.serverLog.contains("jwt-secret must hold a base64 secret of at least 32 bytes"), "\(programs.serverLog)")
        #expect(!programs.serverLog.contains("embedded redis-server running"), "Redis was not started")
    }
}

/// `fieldops dispatch` and `fieldops simulate` pointed at a server that is not running.
@Suite("fieldops clients without a server")
struct UnreachableServerTests {
    @Test func aRefusedConnectionIsSaidPlainly() async throws {
        let port = try ServerProcess.freePort()
        let session = DispatchSession(server: "http://127.0.0.1:\(port)", token: "-", logger: .init(label: "test"))
        await #expect {
            _ = try await session.call(.GET, "/v1/me")
        } throws: { error in
            "\(error)" == "cannot reach http://127.0.0.1:\(port): nothing listens there (connection refused); is `fieldops serve` running, on that host and port?"
        }
    }
}
