import Foundation

/// Starting programs with posix_spawn rather than Foundation's `Process`, which learns of an
/// exit only when a socket the child inherited closes — a daemon the child forks (tmux's
/// server) keeps it open, and `waitUntilExit` never returns.
package enum ChildProcess {
    /// Spawns `executable` (a path, or a name looked up on PATH) with a clean signal mask and
    /// default signal handlers: threads of the calling process (Dispatch's and NIO's among them)
    /// block signals, and a child inheriting that mask would ignore SIGTERM. Standard input is
    /// /dev/null; standard output goes to `output`, standard error to /dev/null.
    package static func spawn(_ executable: String, _ arguments: [String], output: String = "/dev/null", ownProcessGroup: Bool = false) throws(RedisError) -> pid_t {
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        var noSignals = sigset_t()
        sigemptyset(&noSignals)
        posix_spawnattr_setsigmask(&attributes, &noSignals)
        var defaults = sigset_t()
        sigfillset(&defaults)
        posix_spawnattr_setsigdefault(&attributes, &defaults)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF | (ownProcessGroup ? POSIX_SPAWN_SETPGROUP : 0)))

        var files = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&files)
        defer { posix_spawn_file_actions_destroy(&files) }
        posix_spawn_file_actions_addopen(&files, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&files, 1, output, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
        posix_spawn_file_actions_addopen(&files, 2, "/dev/null", O_WRONLY, 0)
        // Nothing else of ours crosses over: a redis-server that outlives its parent would keep
        // the parent's sockets and pipes open (a supervisor waiting for EOF on one would hang).
        _ = closeFrom?(&files, 3)

        // argv strings are strdup'ed and freed after posix_spawn copied them into the child.
        let argv: [UnsafeMutablePointer<CChar>?] = ([executable] + arguments).map { strdup($0) } + [nil]
        defer { argv.forEach { free($0) } }
        var pid: pid_t = 0
        let status = executable.contains("/")
            ? posix_spawn(&pid, executable, &files, &attributes, argv, environ)
            : posix_spawnp(&pid, executable, &files, &attributes, argv, environ)
        guard status == 0 else {
            throw RedisError(.connectionFailed, "cannot start \(executable): \(String(cString: strerror(status)))")
        }
        return pid
    }

    /// glibc's `posix_spawn_file_actions_addclosefrom_np` (2.34 and later), looked up at run time
    /// because Swift's Glibc module leaves out the GNU extensions of `spawn.h`.
    private static let closeFrom: (@convention(c) (UnsafeMutablePointer<posix_spawn_file_actions_t>, Int32) -> Int32)? = {
        guard let symbol = dlsym(nil, "posix_spawn_file_actions_addclosefrom_np") else { return nil }
        return unsafeBitCast(symbol, to: (@convention(c) (UnsafeMutablePointer<posix_spawn_file_actions_t>, Int32) -> Int32).self)
    }()

    /// Waits for `pid` to exit; its exit code, or -1 when a signal ended it.
    package static func wait(_ pid: pid_t) -> Int32 {
        var status: Int32 = 0
        while waitpid(pid, &status, 0) == -1 && errno == EINTR {}
        // WIFEXITED / WEXITSTATUS: a normal exit keeps its code in the second byte.
        return (status & 0x7f) == 0 ? (status >> 8) & 0xff : -1
    }
}
