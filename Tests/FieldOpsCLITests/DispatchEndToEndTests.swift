@testable import FieldOpsCLI
import FieldOpsServer
import Foundation
import NIOPosix
import Redis
import Testing

/// `fieldops dispatch` as a dispatcher uses it: in a terminal (tmux), against a real
/// `fieldops serve` with the simulator running, keys sent and the screen read back.
@Suite("fieldops dispatch end to end, under tmux")
final class DispatchEndToEndTests {
    let programs = FieldOpsProcesses()
    var storage: URL { programs.storage }
    /// A tmux server of the test's own (`-L`), so it never touches the user's sessions.
    let tmuxSocket = "fieldops-e2e-\(UInt32.random(in: 0...UInt32.max))"

    deinit {
        Self.runBlocking(["tmux", "-L", tmuxSocket, "kill-server"])
    }

    /// Runs a program found on PATH to the end; its exit status and output. Blocks the calling
    /// thread.
    @discardableResult
    static func runBlocking(_ arguments: [String]) -> (status: Int32, output: String) {
        let output = FileManager.default.temporaryDirectory.appendingPathComponent("fieldops-e2e-out-\(UUID().uuidString)").path
        defer { unlink(output) }
        guard let pid = try? ChildProcess.spawn(arguments[0], Array(arguments.dropFirst()), output: output) else { return (-1, "") }
        let status = ChildProcess.wait(pid)
        return (status, (try? String(contentsOfFile: output, encoding: .utf8)) ?? "")
    }

    /// `runBlocking` off the cooperative pool.
    @discardableResult
    func run(_ arguments: [String]) async throws -> (status: Int32, output: String) {
        try await NIOThreadPool.singleton.runIfActive { Self.runBlocking(arguments) }
    }

    func tmux(_ arguments: String...) async throws -> (status: Int32, output: String) {
        try await run(["tmux", "-L", tmuxSocket] + arguments)
    }

    func screen() async throws -> String {
        try await tmux("capture-pane", "-p", "-t", "board").output
    }

    func keys(_ keys: String...) async throws {
        try await run(["tmux", "-L", tmuxSocket, "send-keys", "-t", "board"] + keys)
    }

    /// Waits until the screen shows `text`.
    func expectScreen(_ text: String, within limit: Duration = .seconds(30), sourceLocation: SourceLocation = #_sourceLocation) async throws {
        let deadline = ContinuousClock.now + limit
        var shown = ""
        while ContinuousClock.now < deadline {
            shown = try await screen()
            if shown.contains(text) { return }
            try await Task.sleep(for: .milliseconds(150))
        }
        Issue.record("the screen never showed \"\(text)\":\n\(shown)\nserver log:\n\(programs.serverLog)", sourceLocation: sourceLocation)
        throw DispatchSession.Failure(description: "screen check failed")
    }

    @Test(.timeLimit(.minutes(5)))
    func theBoardFollowsTheServerTakesCommandsAndSurvivesARestart() async throws {
        try #require(try await run(["tmux", "-V"]).status == 0, "tmux is needed (scripts/setup.sh installs it)")
        try #require(FileManager.default.isExecutableFile(atPath: programs.fieldops), "fieldops is built beside the tests")
        let port = try ServerProcess.freePort()
        var server = try await programs.serve(port: port)
        let base = "http://127.0.0.1:\(port)"
        let token = try await TokenAuthority.load(storage: storage).mint(tenant: "e2e", subject: "d-1", role: .dispatcher)
        let api = DispatchSession(server: base, token: token, logger: .init(label: "e2e"))
        _ = try await api.call(.POST, "/v1/workers", body: ["workerId": "w-1", "name": "Ana Lima"])
        _ = try await api.call(.POST, "/v1/tasks?wait=true", body: ["taskId": "T-1", "title": "Replace valve"])

        let command = "\(programs.fieldops) dispatch --server \(base) --token \(token); echo DISPATCH-EXITED; sleep 60"
        try #require(try await tmux("new-session", "-d", "-s", "board", "-x", "120", "-y", "36", "-e", "TERM=xterm-256color", command).status == 0)
        try await expectScreen("● live")
        try await expectScreen("Replace valve")

        // The simulator's workers appear; a worker moves (its fixes update the row).
        _ = try programs.start(log: "simulate.log", ["simulate", "--server", base, "--token", token, "--workers", "3", "--rate", "15", "--duration", "15s", "--seed", "2"])
        try await expectScreen("sim-w-003")
        _ = try await api.call(.POST, "/v1/workers/w-1/locations", body: ["lat": 52.52, "lon": 13.40, "battery": 42])
        try await expectScreen("42% ")
        _ = try await api.call(.POST, "/v1/workers/w-1/locations", body: ["lat": 52.53, "lon": 13.41, "battery": 41])
        try await expectScreen("41% ")

        // An assignment typed on the board reaches the server and comes back through realtime.
        try await keys("assign T-1 to w-1", "Enter")
        try await expectScreen("T-1 assigned to w-1")
        try await expectScreen("asgd w-1")
        #expect(try await api.call(.GET, "/v1/tasks/T-1")["task"]?["assigneeId"] == "w-1")

        // An illegal transition is explained in the status line.
        try await keys("complete T-1", "Enter")
        try await expectScreen("409 task T-1 is assigned")

        // The server restarts: the board says so, keeps its state, and comes back live.
        #expect(try await programs.stop(server) == 0, "fieldops serve exits 0 on SIGTERM")
        try await expectScreen("reconnecting")
        #expect(try await screen().contains("Replace valve"))
        server = try await programs.serve(port: port)
        try await expectScreen("● live")
        _ = try await api.call(.POST, "/v1/workers/w-1/locations", body: ["lat": 52.54, "lon": 13.42, "battery": 40])
        try await expectScreen("40% ")

        // q leaves a clean terminal.
        try await keys("q")
        try await expectScreen("DISPATCH-EXITED")
        #expect(try await !screen().contains("Workers"))
    }
}
