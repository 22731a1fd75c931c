@testable import FieldOpsCLI
import Foundation
import Testing

/// `fieldops` programs run as a user runs them, on one private storage directory, with their
/// output logged there; stopped and the directory deleted when the owner goes.
final class FieldOpsProcesses {
    let storage = FileManager.default.temporaryDirectory.appendingPathComponent("fieldops-e2e-\(UUID().uuidString)")
    /// The `fieldops` built beside the test bundle.
    let fieldops = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("fieldops").path
    private var processes: [Process] = []

    deinit {
        for process in processes where process.isRunning {
            process.terminate()
            // Bounded: a wait for a process Foundation never sees exit must not hang the suite.
            let deadline = Date().addingTimeInterval(30)
            while process.isRunning && Date() < deadline { Thread.sleep(forTimeInterval: 0.05) }
            if process.isRunning { kill(process.processIdentifier, SIGKILL) }
        }
        try? FileManager.default.removeItem(at: storage)
    }

    /// Starts `fieldops` with its output in `log` (under the storage, shown when a check fails).
    func start(log: String, _ arguments: [String]) throws -> Process {
        try FileManager.default.createDirectory(at: storage, withIntermediateDirectories: true)
        let logURL = storage.appendingPathComponent(log)
        FileManager.default.createFile(atPath: logURL.path, contents: nil)
        let output = try FileHandle(forWritingTo: logURL)
        try output.seekToEnd()
        let process = Process()
        process.executableURL = URL(fileURLWithPath: fieldops)
        process.arguments = arguments
        process.standardOutput = output
        process.standardError = output
        process.environment = ProcessInfo.processInfo.environment.merging(["FIELDOPS_LOG_LEVEL": "debug"]) { $1 }
        process.standardInput = FileHandle.nullDevice
        try process.run()
        processes.append(process)
        return process
    }

    /// Starts `fieldops serve` on the storage and waits until `/readyz` answers.
    func serve(port: Int) async throws -> Process {
        let server = try start(log: "serve.log", ["serve", "--host", "127.0.0.1", "--port", String(port), "--storage", storage.path, "--rate-limit", "0"])
        let probe = DispatchSession(server: "http://127.0.0.1:\(port)", token: "-", logger: .init(label: "e2e"))
        let deadline = ContinuousClock.now + .seconds(60)
        while (try? await probe.call(.GET, "/readyz")) == nil {
            guard server.isRunning, ContinuousClock.now < deadline else { throw DispatchSession.Failure(description: "fieldops serve did not start:\n\(serverLog)") }
            try await Task.sleep(for: .milliseconds(200))
        }
        return server
    }

    /// Sends SIGTERM and waits (up to 30 s, then SIGKILL) for the exit; the exit status.
    func stop(_ process: Process) async throws -> Int32 {
        process.terminate()
        var deadline = ContinuousClock.now + .seconds(30)
        while process.isRunning {
            if ContinuousClock.now > deadline {
                deadline = .now + .seconds(3_600)
                kill(process.processIdentifier, SIGKILL)
                Issue.record("fieldops serve did not stop within 30 s of SIGTERM; its log:\n\(serverLog)")
            }
            try await Task.sleep(for: .milliseconds(100))
        }
        return process.terminationStatus
    }

    /// Waits for `process` to exit by itself, up to a minute; the exit status.
    func exitStatus(of process: Process, _ comment: Comment, sourceLocation: SourceLocation = #_sourceLocation) async throws -> Int32 {
        let deadline = ContinuousClock.now + .seconds(60)
        while process.isRunning {
            try #require(ContinuousClock.now < deadline, comment, sourceLocation: sourceLocation)
            try await Task.sleep(for: .milliseconds(100))
        }
        return process.terminationStatus
    }

    /// The end of the server's log.
    var serverLog: String {
        let text = (try? String(contentsOf: storage.appendingPathComponent("serve.log"), encoding: .utf8)) ?? ""
        return text.split(separator: "\n").suffix(30).joined(separator: "\n")
    }
}
