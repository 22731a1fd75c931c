import AsyncHTTPClient
import DispatchBoard
import DocumentStore
import Foundation
import HTTPTypes
import HummingbirdWSClient
import Logging
import NIOCore
import NIOHTTP1
import Synchronization

/// `HTTPClient.shared` but for the connect timeout: a refused connection is retried for 3 s,
/// not the shared client's 90 s, so a server that is not running is reported promptly.
private let cliHTTPClient: HTTPClient = {
    var configuration = HTTPClient.Configuration.singletonConfiguration
    configuration.timeout.connect = .seconds(3)
    return HTTPClient(eventLoopGroup: HTTPClient.defaultEventLoopGroup, configuration: configuration)
}()

/// The board as shared between the connection (which applies events) and the screen (which
/// draws copies of it): a value under a lock, with a change counter so the screen redraws
/// only when something changed.
final class SharedBoard: Sendable {
    private let state: Mutex<(board: BoardState, version: Int)>

    init(_ board: BoardState) {
        state = Mutex((board, 0))
    }

    func update<T>(_ change: (inout BoardState) -> T) -> T {
        state.withLock { state in
            state.version += 1
            return change(&state.board)
        }
    }

    var snapshot: (board: BoardState, version: Int) { state.withLock { ($0.board, $0.version) } }
}

/// A dispatcher's connection to a FieldOps server: REST snapshots, the realtime socket with
/// resume from the last stream ids, reconnection with backoff, and the commands typed on the
/// board. Talks only to the public API, so it runs on any machine.
final class DispatchSession: Sendable {
    struct Failure: Error, CustomStringConvertible {
        let description: String
    }

    let server: String
    let token: String
    let board: SharedBoard
    let logger: Logger
    /// Per channel, the last stream id and epoch seen: where a reconnect resumes.
    private let cursors = Mutex<[String: (id: String, epoch: String)]>([:])
    /// Set when the server said a gap cannot be filled: the next loop reloads the snapshot.
    private let needsReload = Atomic<Bool>(false)
    /// Failed connects in a row, for the backoff.
    private let attempts = Atomic<Int>(0)
    /// Connections lost since start (for `--stats`).
    let connectionsLost = Atomic<Int>(0)
    private let subject: Mutex<String> = Mutex("")
    /// A new room was found: reconnect now, resuming every channel.
    private let resubscribe = Atomic<Bool>(false)
    private let reconnectAtOnce = Atomic<Bool>(false)
    /// Events that arrived while a snapshot loads (nil when none is loading).
    private let pending = Mutex<[BoardEvent]?>(nil)

    init(server: String, token: String, logger: Logger) {
        self.server = server.hasSuffix("/") ? String(server.dropLast()) : server
        self.token = token
        self.board = SharedBoard(BoardState(tenant: "…"))
        self.logger = logger
    }

    static var now: Int64 { Int64(Date().timeIntervalSince1970 * 1_000) }

    // MARK: - REST

    /// One JSON call; a 4xx/5xx becomes a `Failure` with the server's message in plain words.
    func call(_ method: HTTPMethod, _ path: String, body: JSONValue? = nil) async throws -> JSONValue {
        var request = HTTPClientRequest(url: server + path)
        request.method = method
        request.headers.add(name: "Authorization", value: "Bearer \(token)")
        if let body {
            request.headers.add(name: "Content-Type", value: "application/json")
            request.body = .bytes(ByteBuffer(string: body.jsonText))
        }
        let response: HTTPClientResponse
        do {
            response = try await cliHTTPClient.execute(request, timeout: .seconds(15))
        } catch {
            throw Failure(description: unreachable(error))
        }
        let bytes = try await response.body.collect(upTo: 32 << 20)
        let json = (try? JSONValue(jsonText: String(buffer: bytes))) ?? .null
        guard response.status.code < 400 else {
            let message = json["error"]?["message"]?.stringValue ?? response.status.reasonPhrase
            throw Failure(description: "\(response.status.code) \(message)")
        }
        return json
    }

    /// Why the server could not be reached, in plain words.
    func unreachable(_ error: any Error) -> String {
        let reason: String
        if (error as? IOError)?.errnoCode == ECONNREFUSED {
            reason = "nothing listens there (connection refused); is `fieldops serve` running, on that host and port?"
        } else if let error = error as? HTTPClientError, error == .connectTimeout {
            reason = "no connection within 3 s (a host that does not answer, or a firewall)"
        } else if let error = error as? HTTPClientError, error == .deadlineExceeded {
            reason = "no answer within 15 s"
        } else {
            reason = "\(error)"
        }
        return "cannot reach \(server): \(reason)"
    }

    /// Every page of a list (`name` holds the items), up to `cap` items.
    func list(_ path: String, _ name: String, cap: Int = 10_000) async throws -> [JSONValue] {
        var items: [JSONValue] = []
        var cursor: String?
        repeat {
            let separator = path.contains("?") ? "&" : "?"
            let page = try await call(.GET, path + separator + "limit=1000" + (cursor.map { "&cursor=\($0)" } ?? ""))
            items += page[name]?.arrayValue ?? []
            cursor = page["nextCursor"]?.stringValue
        } while cursor != nil && items.count < cap
        return items
    }

    /// Loads the whole board from the API: who we are, workers, tasks, rooms and their recent
    /// messages, resources, notifications.
    func loadSnapshot() async throws {
        let me = try await call(.GET, "/v1/me")
        let tenant = me["tenant"]?.stringValue ?? "?"
        subject.withLock { $0 = me["subject"]?.stringValue ?? "" }
        async let workers = list("/v1/workers", "workers")
        async let tasks = list("/v1/tasks", "tasks", cap: 5_000)
        async let rooms = list("/v1/rooms", "rooms")
        async let resources = list("/v1/resources", "resources")
        async let notifications = call(.GET, "/v1/notifications?limit=200")
        let (w, t, r, s, n) = try await (workers, tasks, rooms, resources, notifications)
        var messages: [String: [JSONValue]] = [:]
        for room in r.compactMap({ $0["roomId"]?.stringValue }).prefix(50) {
            messages[room] = try await call(.GET, "/v1/rooms/\(room)/messages?limit=50")["messages"]?.arrayValue ?? []
        }
        let now = Self.now
        board.update { board in
            board.tenant = tenant
            board.load(workers: w, tasks: t, rooms: r, resources: s, now: now)
            for (room, list) in messages { board.load(messages: list, room: room) }
            board.load(notifications: n["notifications"]?.arrayValue ?? [])
        }
    }

    /// Runs a typed command; the outcome goes to the status line.
    func execute(_ command: BoardCommand) async {
        switch command {
        case .request(let method, let path, let body, let summary):
            do {
                _ = try await call(HTTPMethod(rawValue: method), path, body: body)
                board.update { $0.status = (summary, false) }
            } catch {
                // The command is in the history: say so, so fixing it needs no retyping.
                board.update { $0.status = ("\(error) · ↑ on the command line recalls it", true) }
            }
        case .openRoom(let room):
            board.update { board in
                if board.rooms[room] == nil {
                    board.status = ("no room \(room)", true)
                } else {
                    board.select(room: room)
                    board.status = ("#\(room)", false)
                }
            }
        case .help, .quit:
            break
        }
    }

    // MARK: - Realtime

    /// The channels a dispatcher's board follows.
    func channels() -> [String] {
        let (rooms, me) = (board.snapshot.board.rooms.keys.sorted(), subject.withLock { $0 })
        return ["locations", "workers", "tasks", "resources"] + (me.isEmpty ? [] : ["notifications:\(me)"]) + rooms.map { "room:\($0)" }
    }

    /// Keeps the socket up until cancelled: connects, subscribes (resuming from the cursors),
    /// applies events; on a drop says so, keeps the board, and reconnects with backoff.
    func run() async {
        while !Task.isCancelled {
            do {
                try await connectOnce()
                if Task.isCancelled { return }
                if !needsReload.load(ordering: .relaxed), !reconnectAtOnce.exchange(false, ordering: .relaxed) {
                    throw Failure(description: "the server closed the connection")
                }
            } catch {
                if Task.isCancelled { return }
                connectionsLost.add(1, ordering: .relaxed)
                let attempt = attempts.add(1, ordering: .relaxed).newValue
                let reason = (error as? Failure)?.description ?? "cannot reach \(server)"
                board.update { $0.connection = .reconnecting(attempt: attempt, reason: String(reason.prefix(80))) }
                // 0.5 s doubling to 10 s, with jitter so a fleet of clients does not reconnect in step.
                let delay = min(10.0, 0.5 * pow(2, Double(min(attempt - 1, 5)))) * Double.random(in: 0.8...1.2)
                try? await Task.sleep(for: .milliseconds(Int(delay * 1_000)))
            }
        }
    }

    /// One connection: learns the rooms, subscribes (resuming where it can), and when the
    /// board has no snapshot yet (or the server said a gap cannot be filled) loads one while the
    /// events that arrive meanwhile wait, then applies them on top — so nothing between the
    /// snapshot and the subscription is lost. Ends when the socket does, or to resubscribe.
    private func connectOnce() async throws {
        let reload = needsReload.exchange(false, ordering: .relaxed) || board.snapshot.board.tenant == "…"
        if reload {
            cursors.withLock { $0 = [:] }
            pending.withLock { $0 = [] }
            let me = try await call(.GET, "/v1/me")
            subject.withLock { $0 = me["subject"]?.stringValue ?? "" }
            let rooms = try await list("/v1/rooms", "rooms")
            board.update { board in
                board.tenant = me["tenant"]?.stringValue ?? "?"
                board.add(rooms: rooms)
            }
        }
        let url = server.replacingOccurrences(of: "http://", with: "ws://").replacingOccurrences(of: "https://", with: "wss://") + "/v1/realtime"
        var headers = HTTPFields()
        headers[.authorization] = "Bearer \(token)"
        let channels = channels()
        let closeFrame = try await WebSocketClient.connect(
            url: url, configuration: .init(maxFrameSize: 1 << 22, additionalHeaders: headers), logger: logger
        ) { inbound, outbound, _ in
            let cursors = self.cursors.withLock { $0 }
            for channel in channels {
                var subscribe: JSONObject = ["type": "subscribe", "id": .string(channel), "channel": .string(channel)]
                if let cursor = cursors[channel] { subscribe["resume"] = ["lastId": .string(cursor.id), "epoch": .string(cursor.epoch)] }
                try await outbound.write(.text(JSONValue.object(subscribe).jsonText))
            }
            self.board.update { $0.connection = .live }
            self.attempts.store(0, ordering: .relaxed)
            let snapshot: Task<Void, Never>? = reload ? Task { await self.loadSnapshotUnderEvents() } : nil
            let rooms = Task { await self.watchForNewRooms() }
            defer {
                snapshot?.cancel()
                rooms.cancel()
            }
            for try await message in inbound.messages(maxSize: 1 << 22) {
                guard case .text(let text) = message else { continue }
                self.receive(text)
                if self.needsReload.load(ordering: .relaxed) || self.resubscribe.load(ordering: .relaxed) { break }
            }
        }
        if needsReload.load(ordering: .relaxed) { return }
        if resubscribe.exchange(false, ordering: .relaxed) {
            reconnectAtOnce.store(true, ordering: .relaxed)
            return
        }
        if let closeFrame, closeFrame.closeCode == .unknown(4003) {
            throw Failure(description: "the token expired: start again with a new one")
        }
    }

    /// Rooms created after the board loaded: every 30 s the room list is read again, and a new
    /// room makes the socket resubscribe (resuming the other channels where they were).
    private func watchForNewRooms() async {
        while !Task.isCancelled {
            try? await Task.sleep(for: .seconds(30))
            guard !Task.isCancelled, let rooms = try? await list("/v1/rooms", "rooms") else { continue }
            let added = board.update { board -> Bool in
                let before = board.rooms.count
                board.add(rooms: rooms)
                return board.rooms.count > before
            }
            if added { resubscribe.store(true, ordering: .relaxed) }
        }
    }

    /// The snapshot, then the events that arrived while it loaded (the board's reducer ignores
    /// what the snapshot already holds).
    private func loadSnapshotUnderEvents() async {
        do {
            try await loadSnapshot()
        } catch {
            board.update { $0.status = ("could not load the board: \(error)", true) }
        }
        let now = Self.now
        let waiting = pending.withLock { pending in
            defer { pending = nil }
            return pending ?? []
        }
        board.update { board in
            for event in waiting { board.apply(event, receivedAt: now) }
        }
    }

    /// Handles what one socket message holds (several JSON objects, one per line).
    func receive(_ text: String) {
        let now = Self.now
        var events: [BoardEvent] = []
        var reload = false
        var notices: [(String, Bool)] = []
        for line in text.split(separator: "\n") {
            guard let message = try? JSONValue(jsonText: String(line)) else { continue }
            if let event = BoardEvent(message: message) {
                events.append(event)
                continue
            }
            switch message["type"]?.stringValue {
            case "subscribed":
                guard let channel = message["channel"]?.stringValue else { continue }
                if message["recovered"] == .bool(false) {
                    reload = true
                    notices.append(("missed events on \(channel) could not be recovered (\(message["reason"]?.stringValue ?? "gap")); reloading", true))
                } else if let last = message["lastId"]?.stringValue, let epoch = message["epoch"]?.stringValue {
                    cursors.withLock { cursors in
                        if cursors[channel] == nil || message["recovered"] == nil { cursors[channel] = (last, epoch) }
                    }
                }
            case "gap":
                reload = true
                notices.append(("the server lost track of \(message["channel"]?.stringValue ?? "a channel"); reloading", true))
            case "error":
                notices.append((message["message"]?.stringValue ?? "server error", true))
            default:
                continue
            }
        }
        if !events.isEmpty {
            cursors.withLock { cursors in
                for event in events where !event.id.isEmpty { cursors[event.channel] = (event.id, event.epoch) }
            }
        }
        guard !events.isEmpty || !notices.isEmpty else { return }
        let waiting = pending.withLock { pending -> Bool in
            guard pending != nil else { return false }
            pending!.append(contentsOf: events)
            return true
        }
        board.update { board in
            if !waiting { for event in events { board.apply(event, receivedAt: now) } }
            if let notice = notices.last { board.status = notice }
        }
        if reload { needsReload.store(true, ordering: .relaxed) }
    }
}
