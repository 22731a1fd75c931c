import Foundation

/// A private `redis-server` on a unix socket in its own directory, with AOF on.
///
/// Used by the tests, the benchmarks and (later) the embedded mode of `fieldops serve`.
/// The server is started with the directory's config, so `restart()` comes back with its data.
public final class RedisServerProcess: @unchecked Sendable {
    /// The data directory: socket, AOF and log live here.
    public let directory: URL
    public var socketPath: String { directory.appendingPathComponent("redis.sock").path }
    public var url: String { "unix://\(socketPath)" }
    public var configuration: RedisConfiguration { RedisConfiguration(endpoint: .unix(path: socketPath)) }
    private let lock = NSLock()
    private var pid: pid_t?
    private let extraArguments: [String]
    /// The process id of a redis-server found serving this directory at the last start and shut
    /// down first (one left running when the process that started it was killed).
    public private(set) var stoppedLeftover: pid_t?

    /// Starts redis-server (found on PATH) and waits until it accepts connections.
    /// - Parameters:
    ///   - directory: where to keep data; a new temporary directory when `nil`.
    ///   - extraArguments: more `--option value` pairs for redis-server.
    public init(directory: URL? = nil, extraArguments: [String] = []) throws {
        if let directory {
            self.directory = directory
        } else {
            // Unix socket paths are limited to 107 bytes: keep the temporary path short.
            self.directory = URL(fileURLWithPath: "/tmp").appendingPathComponent("fo-redis-\(UUID().uuidString.prefix(8))")
        }
        self.extraArguments = extraArguments
        try FileManager.default.createDirectory(at: self.directory, withIntermediateDirectories: true)
        try start()
    }

    deinit {
        stop()
    }

    /// Starts the server if it is not running.
    public func start() throws {
        lock.lock()
        defer { lock.unlock() }
        guard pid == nil else { return }
        guard let executable = Self.findExecutable("redis-server") else {
            throw RedisError(.connectionFailed, "redis-server is not on PATH; run scripts/setup.sh to install it")
        }
        // redis-server would only log it.
        if let tooLong = RedisConfiguration.socketPathTooLong(socketPath) {
            throw RedisError(.connectionFailed, tooLong + "; use a shorter data directory (or a symbolic link to it)")
        }
        stoppedLeftover = try Self.shutDownLeftover(socketPath: socketPath)
        let arguments = [
            "--port", "0",
            "--unixsocket", socketPath,
            "--unixsocketperm", "700",
            "--dir", directory.path,
            "--appendonly", "yes",
            "--appendfsync", "everysec",
            "--save", "",
            "--daemonize", "no",
            "--logfile", directory.appendingPathComponent("redis.log").path,
        ] + extraArguments
        let pid = try ChildProcess.spawn(executable, arguments, ownProcessGroup: true)
        self.pid = pid

        let deadline = Date().addingTimeInterval(10)
        while Date() < deadline {
            if let connection = try? RedisConnection(configuration: configuration),
               (try? connection.send(["PING"])) != nil {
                return
            }
            var status: Int32 = 0
            if waitpid(pid, &status, WNOHANG) == pid {
                self.pid = nil
                break
            }
            Thread.sleep(forTimeInterval: 0.02)
        }
        let log = (try? String(contentsOf: directory.appendingPathComponent("redis.log"), encoding: .utf8)) ?? ""
        if let pid = self.pid { Self.terminate(pid, signal: SIGKILL) }
        self.pid = nil
        throw RedisError(.connectionFailed, "redis-server did not start in \(directory.path): \(log.suffix(500))")
    }

    /// Stops the server with SIGTERM (Redis flushes its AOF) and waits for it to exit.
    public func stop() {
        lock.lock()
        defer { lock.unlock() }
        guard let pid else { return }
        Self.terminate(pid, signal: SIGTERM)
        self.pid = nil
    }

    /// Kills the server without letting it clean up, as a crash would.
    public func kill() {
        lock.lock()
        defer { lock.unlock() }
        guard let pid else { return }
        Self.terminate(pid, signal: SIGKILL)
        self.pid = nil
    }

    /// Stops and starts the server on the same socket and data.
    public func restart() throws {
        stop()
        try start()
    }

    /// Stops the server and deletes its directory.
    public func destroy() {
        stop()
        try? FileManager.default.removeItem(at: directory)
    }

    public var isRunning: Bool {
        lock.lock()
        defer { lock.unlock() }
        return pid != nil
    }

    /// True when the server was started and has since died (crash, OOM kill); reaps it.
    public func hasExited() -> Bool {
        lock.lock()
        defer { lock.unlock() }
        guard let pid else { return false }
        var status: Int32 = 0
        guard waitpid(pid, &status, WNOHANG) == pid else { return false }
        self.pid = nil
        return true
    }

    /// The server's process id while it runs.
    public var processID: pid_t? {
        lock.lock()
        defer { lock.unlock() }
        return pid
    }

    // MARK: - Processes

    /// Shuts down a redis-server still answering on the socket: one whose owner was killed
    /// (SIGKILL, OOM) and could not stop it. Left running, it would keep appending to the AOF
    /// the new server loads and rewrite it under the new one's feet. SHUTDOWN flushes its AOF
    /// first, so every write it acknowledged is in the files the new server loads.
    /// - Returns: its process id, or nil when nothing answered.
    private static func shutDownLeftover(socketPath: String) throws(RedisError) -> pid_t? {
        guard let (connection, pid) = answering(socketPath: socketPath) else { return nil }
        if case .error(let message)? = try? connection.send(["SHUTDOWN"]) {
            throw RedisError(.connectionFailed, "a redis-server left running on \(socketPath) (pid \(pid)) refused to shut down: \(message)")
        }
        let deadline = Date().addingTimeInterval(30)
        while isAlive(pid) {
            guard Date() < deadline else {
                throw RedisError(.connectionFailed, "a redis-server left running on \(socketPath) (pid \(pid)) did not exit within 30 s of SHUTDOWN")
            }
            Thread.sleep(forTimeInterval: 0.01)
        }
        return pid
    }

    /// The process id of the redis-server answering on `socketPath`, with the connection that asked.
    package static func answering(socketPath: String) -> (RedisConnection, pid_t)? {
        guard let connection = try? RedisConnection(configuration: RedisConfiguration(endpoint: .unix(path: socketPath))),
              let info = try? connection.send(["INFO", "server"]).string,
              let line = info.split(whereSeparator: \.isNewline).first(where: { $0.hasPrefix("process_id:") }),
              let pid = pid_t(line.dropFirst("process_id:".count))
        else { return nil }
        return (connection, pid)
    }

    /// True while `pid` runs; an exited process waiting to be reaped (a zombie) has stopped.
    package static func isAlive(_ pid: pid_t) -> Bool {
        #if os(Linux)
        guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
              let close = stat.lastIndex(of: ")") else { return false }
        return !stat[close...].hasPrefix(") Z")
        #else
        return Foundation.kill(pid, 0) == 0 || errno == EPERM
        #endif
    }

    /// Sends `signal` and reaps the process, escalating to SIGKILL after 10 seconds.
    private static func terminate(_ pid: pid_t, signal: Int32) {
        Foundation.kill(pid, signal)
        let deadline = Date().addingTimeInterval(10)
        var status: Int32 = 0
        while waitpid(pid, &status, WNOHANG) == 0 {
            if Date() > deadline {
                Foundation.kill(pid, SIGKILL)
                waitpid(pid, &status, 0)
                return
            }
            Thread.sleep(forTimeInterval: 0.005)
        }
    }

    /// Looks a program up on PATH.
    public static func findExecutable(_ name: String) -> String? {
        let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/local/bin:/usr/bin:/bin"
        for directory in path.split(separator: ":") + ["/usr/sbin", "/usr/bin"] {
            let candidate = "\(directory)/\(name)"
            if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
        }
        return nil
    }
}
