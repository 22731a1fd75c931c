import ArgumentParser
import DispatchBoard
import DocumentStore
import Foundation
import Logging

/// `fieldops dispatch`: the dispatcher's full-screen board, a client of the JSON API and the
/// realtime socket.
struct DispatchCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "dispatch",
        abstract: "The dispatcher's live board: workers, tasks, chat and alerts, with a command line.",
        discussion: """
            Needs a dispatcher token: --token, $FIELDOPS_TOKEN, or a config file \
            (default ~/.config/fieldops/dispatch.json) holding \
            {"server": "http://…", "token": "…"}.

            Examples:
              TOKEN=$(fieldops token create --tenant demo --sub d-1 \\
                  --role dispatcher)
              fieldops dispatch --server http://127.0.0.1:8080 --token $TOKEN
              fieldops dispatch --once --width 120 --height 40   # as text

            Keys: Tab moves between panes, arrows select, Enter shows details \
            (opens a room in Chat), / filters, : or any letter starts a \
            command, Tab completes ids, ? lists everything, q quits.

            Commands:
              assign T-42 to w-7
              create task "Replace valve" --priority high --at 52.52,13.40
              accept|start|complete T-42 ["note"]
              cancel T-42 "duplicate"
              say ops "Storm front at 14:00"
              adjust R-3 -2 "used on T-42"
              notify w-7 "Call the depot"
              room ops
            """
    )

    @Option(help: ArgumentHelp("Server base URL. Defaults to the config file, $FIELDOPS_SERVER, then http://127.0.0.1:8080.", valueName: "url"))
    var server: String?
    @Option(help: ArgumentHelp("Dispatcher token. Defaults to the config file, then $FIELDOPS_TOKEN.", valueName: "jwt"))
    var token: String?
    @Option(help: ArgumentHelp("JSON file with server and token.", valueName: "file"))
    var config: String?
    @Flag(help: "Print the current board as text and exit.")
    var once = false
    @Option(help: "Width of the --once board (default: the terminal's, else 120).")
    var width: Int?
    @Option(help: "Height of the --once board (default: the terminal's, else 40).")
    var height: Int?
    @Option(name: .customLong("stale-after"), help: ArgumentHelp("Seconds after which a worker's position is shown as stale.", valueName: "seconds"))
    var staleAfter = 120
    @Flag(help: "Show times in UTC rather than the local time zone (from $TZ or the system).")
    var utc = false
    @Flag(help: "On exit, print events received, redraws, CPU time and peak memory (for measuring the client).")
    var stats = false

    func validate() throws {
        if let width, width < BoardRenderer.minimumWidth { throw ValidationError("--width is at least \(BoardRenderer.minimumWidth)") }
        if let height, height < BoardRenderer.minimumHeight { throw ValidationError("--height is at least \(BoardRenderer.minimumHeight)") }
        guard staleAfter > 0 else { throw ValidationError("--stale-after is a number of seconds above 0") }
    }

    /// Server and token after the flags, the config file and the environment.
    func connection() throws -> (server: String, token: String) {
        let environment = ProcessInfo.processInfo.environment
        let path = config ?? (NSHomeDirectory() + "/.config/fieldops/dispatch.json")
        var file: JSONValue = .null
        if let data = FileManager.default.contents(atPath: path) {
            guard let parsed = try? JSONValue(jsonText: String(decoding: data, as: UTF8.self)) else {
                throw ValidationError("\(path) is not JSON like {\"server\": \"http://…\", \"token\": \"…\"}")
            }
            file = parsed
        } else if config != nil {
            throw ValidationError("cannot read \(path)")
        }
        let server = self.server ?? file["server"]?.stringValue ?? environment["FIELDOPS_SERVER"] ?? "http://127.0.0.1:8080"
        guard let token = token ?? file["token"]?.stringValue ?? environment["FIELDOPS_TOKEN"], !token.isEmpty else {
            throw ValidationError("give a dispatcher token: --token, $FIELDOPS_TOKEN or a config file (fieldops token create --role dispatcher …)")
        }
        return (server, token)
    }

    func run() async throws {
        let (server, token) = try connection()
        var logger = Logger(label: "fieldops.dispatch")
        logger.logLevel = .critical
        let session = DispatchSession(server: server, token: token, logger: logger)
        if once {
            do {
                try await session.loadSnapshot()
            } catch {
                throw CommandFailure("\(error)")
            }
        } else {
            // A refused token ends here; an unreachable server does not: the board opens and
            // connects when it can.
            do {
                _ = try await session.call(.GET, "/v1/me")
            } catch let error as DispatchSession.Failure where error.description.hasPrefix("401") || error.description.hasPrefix("403") {
                throw CommandFailure("\(error)")
            } catch {
                session.board.update { $0.status = ("\(error)", true) }
            }
        }
        var view = BoardView()
        view.staleAfter = Int64(staleAfter) * 1_000
        if !utc { view.clock = Self.localClock() }
        view.monochrome = ProcessInfo.processInfo.environment["NO_COLOR"].map { !$0.isEmpty } ?? false
        if once {
            var board = session.board.snapshot.board
            board.connection = .live
            let size = Self.terminalSize()
            let grid = BoardRenderer.render(board, view, now: DispatchSession.now, width: width ?? size?.width ?? 120, height: height ?? size?.height ?? 40)
            print(grid.text)
            return
        }
        guard isatty(STDIN_FILENO) == 1, isatty(STDOUT_FILENO) == 1 else {
            throw CommandFailure("dispatch needs a terminal; use --once for text output")
        }
        let connection = Task { await session.run() }
        let started = ContinuousClock.now
        let screen = DispatchScreen(session: session, view: view)
        await screen.run()
        connection.cancel()
        if stats {
            print(Self.statsLine(
                seconds: (ContinuousClock.now - started).secondsValue, events: session.board.snapshot.board.eventsApplied,
                redraws: screen.redraws, reconnects: session.connectionsLost.load(ordering: .relaxed)
            ))
        }
    }

    /// The local zone's offset now, named as people there write it (CET, EDT), else +HHMM.
    static func localClock() -> BoardClock {
        let zone = TimeZone.current
        let seconds = zone.secondsFromGMT()
        guard seconds != 0 || !["UTC", "GMT", "Etc/UTC", "Etc/GMT", "Universal", "Zulu"].contains(zone.identifier) else { return .utc }
        let name = zone.abbreviation().flatMap { $0.hasPrefix("GMT") ? nil : $0 }
            ?? String(format: "%@%02d%02d", seconds < 0 ? "-" : "+", abs(seconds) / 3_600, abs(seconds) / 60 % 60)
        return BoardClock(offset: Int64(seconds) * 1_000, zone: name)
    }

    /// What the client did and what it cost, from the process's own resource usage.
    static func statsLine(seconds: Double, events: Int, redraws: Int, reconnects: Int) -> String {
        var usage = rusage()
        getrusage(RUSAGE_SELF.rawValue, &usage)
        let cpu = Double(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) + Double(usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) / 1_000_000
        return String(
            format: "dispatch ran %.0f s: %d events (%.0f/s), %d redraws (%.1f/s), %d connections lost, CPU %.1f s (%.0f%% of one core), peak memory %.0f MB",
            seconds, events, Double(events) / seconds, redraws, Double(redraws) / seconds, reconnects, cpu, cpu / seconds * 100, Double(usage.ru_maxrss) / 1_024
        )
    }

    static func terminalSize() -> (width: Int, height: Int)? {
        var size = winsize()
        guard isatty(STDOUT_FILENO) == 1, ioctl(STDOUT_FILENO, UInt(TIOCGWINSZ), &size) == 0, size.ws_col > 0 else { return nil }
        return (Int(size.ws_col), Int(size.ws_row))
    }
}

/// The interactive loop, on a thread of its own (ncurses is not thread-safe and its key reads
/// block): keys in, at most 20 redraws a second, only when something changed.
final class DispatchScreen: @unchecked Sendable {
    let session: DispatchSession
    var view: BoardView
    /// Frames drawn so far.
    private(set) var redraws = 0
    static let frameInterval: Int64 = 50

    init(session: DispatchSession, view: BoardView) {
        self.session = session
        self.view = view
    }

    func run() async {
        await withCheckedContinuation { (done: CheckedContinuation<Void, Never>) in
            let thread = Thread {
                self.loop()
                done.resume()
            }
            thread.name = "fieldops-dispatch-screen"
            thread.start()
        }
    }

    private func loop() {
        let terminal = Terminal(monochrome: view.monochrome)
        defer { terminal.restore() }
        var drawnVersion = -1
        var drawnView = view
        var drawnSize = (width: 0, height: 0)
        var lastDraw: Int64 = 0
        var lastSecond: Int64 = 0
        while !terminalQuitRequested.load(ordering: .relaxed) {
            if let key = terminal.readKey() {
                if key == .resize {
                    drawnVersion = -1
                } else if let boardKey = Self.boardKey(key) {
                    let now = DispatchSession.now
                    let width = terminal.size.width
                    var view = self.view
                    let action = session.board.update { board in
                        BoardInput.handle(boardKey, view: &view, board: &board, now: now, width: width)
                    }
                    self.view = view
                    switch action {
                    case .quit: return
                    case .run(let command):
                        let session = self.session
                        Task { await session.execute(command) }
                    case .none: break
                    }
                }
            }
            let now = DispatchSession.now
            let (board, version) = session.board.snapshot
            let size = terminal.size
            // Redraw for a change (or each second for the clock and ages), at most 20 times a second.
            let changed = version != drawnVersion || view != drawnView || size != drawnSize || now / 1_000 != lastSecond
            guard changed, now - lastDraw >= Self.frameInterval else { continue }
            terminal.draw(BoardRenderer.render(board, view, now: now, width: size.width, height: size.height))
            redraws += 1
            (drawnVersion, drawnView, drawnSize, lastDraw, lastSecond) = (version, view, size, now, now / 1_000)
        }
    }

    static func boardKey(_ key: Terminal.Key) -> BoardKey? {
        switch key {
        case .character(let character): .character(character)
        case .up: .up
        case .down: .down
        case .pageUp: .pageUp
        case .pageDown: .pageDown
        case .home: .home
        case .end: .end
        case .tab: .tab
        case .backTab: .backTab
        case .enter: .enter
        case .escape: .escape
        case .backspace: .backspace
        case .left, .right, .resize: nil
        }
    }
}
