import NIOCore
import NIOWebSocket
import Synchronization

/// The work of one `/v1/realtime` socket, done by short tasks: the session starts, then client
/// messages and hub events are handled in arrival order, a batch at a time, and at the end the
/// session finishes (presence, `onDisconnect`). When nothing waits, no task exists for the
/// socket, so an idle client costs its pipeline and session, not a suspended call stack.
///
/// While no task runs, the session's plain subscriptions are handed to the socket's event loop
/// (`DirectRoutes`): the hub gives it the messages waiting there (`LoopMailbox`), and they are
/// written at once, in one write, without a task or an actor hop per socket. Anything else — a
/// client message, a tick, a message for a subscription that needs the session, a socket past
/// its write buffer's high-water mark — starts a task, which first takes the routes back; from
/// then until it is done, hub messages queue for it. So only one of the two ever writes events,
/// and in the order they came.
final class RealtimeConnection: Sendable {
    private struct State {
        var session: RealtimeSession?
        /// Client messages not yet handled; nil stands for a binary message.
        var messages: [String?] = []
        var hubReady = false
        /// A task is working for the socket.
        var running = false
        var socketClosed = false
        /// A close frame was sent: nothing else may follow it.
        var closing = false
        var finished = false
        var listener: HubListener?
        /// What the event loop forwards while no task runs.
        var direct: DirectRoutes?
    }

    private enum Work {
        case start
        case messages([String?])
        case hub
        case finish
        /// Nothing waits.
        case idle
    }

    let channel: any Channel
    let caller: RealtimeEndpoint.Caller
    let endpoint: RealtimeEndpoint
    private let writer: SocketWriter
    private let state = Mutex(State())

    init(channel: any Channel, caller: RealtimeEndpoint.Caller, endpoint: RealtimeEndpoint) {
        self.channel = channel
        self.caller = caller
        self.endpoint = endpoint
        self.writer = SocketWriter(channel: channel)
    }

    /// Starts the session (presence, welcome).
    func begin() { wake() }

    /// A complete client message; nil for a binary one.
    func received(_ text: String?) {
        state.withLock { $0.messages.append(text) }
        wake()
    }

    /// The socket is gone: finish the session.
    func socketClosed() {
        state.withLock { $0.socketClosed = true }
        wake()
    }

    /// The socket sent its close frame.
    func closing() {
        state.withLock { $0.closing = true }
    }

    private func hubReady() {
        state.withLock { $0.hubReady = true }
        wake()
    }

    /// On the socket's event loop, from the hub: writes what `messages` become for this socket,
    /// as one write, when the event loop holds its routes and the socket takes writes; false
    /// when the session must handle them (the hub then queues them for the session's task).
    func sendDirectly(_ messages: [HubMessage]) -> Bool {
        let out = state.withLock { state -> [ByteBuffer]? in
            guard !state.running, !state.socketClosed, !state.closing, channel.isWritable else { return nil }
            // In place: the routes are not copied per message.
            return state.direct?.forward(messages) ?? nil
        }
        guard let out else { return false }
        // Outside the lock: a failed write closes the channel, which calls `socketClosed`.
        for message in SocketWriter.messages(out) { writer.sendNow(message) }
        return true
    }

    /// Starts a task unless one is working (it will see what arrived) or the socket is done.
    private func wake() {
        let (start, direct) = state.withLock { state -> (Bool, DirectRoutes?) in
            guard !state.running, !state.finished else { return (false, nil) }
            state.running = true
            defer { state.direct = nil }
            return (true, state.direct)
        }
        if start { Task { await self.work(takingBack: direct) } }
    }

    private func work(takingBack direct: DirectRoutes?) async {
        if let direct, let session = state.withLock({ $0.session }) { await session.absorb(direct) }
        while true {
            switch nextWork() {
            case .start:
                await start()
            case .messages(let messages):
                guard let session = state.withLock({ $0.session }) else { continue }
                do {
                    for message in messages { try await session.handle(message ?? "binary") }
                } catch {
                    // The socket went away mid-reply: its close is on its way.
                    endpoint.services.logger.debug("realtime socket write failed", metadata: ["error": "\(error)"])
                }
            case .hub:
                await deliverHubEvents()
            case .finish:
                if let session = state.withLock({ $0.session }) {
                    await session.finish()
                } else if let listener = state.withLock({ $0.listener }) {
                    endpoint.services.hub.remove(listener)
                }
                return
            case .idle:
                // Handed over on the event loop, behind the writes this task made (they go there
                // too), so nothing the loop sends directly can overtake them. No task waits for
                // it: a task waiting on every socket's event loop at once (a heartbeat tick of
                // 10 000 sockets) would hold 10 000 call stacks.
                let direct = await state.withLock({ $0.session })?.directRoutes()
                channel.eventLoop.execute { self.park(direct) }
                return
            }
        }
    }

    /// What to do next, in order: start, finish once closed, client messages, hub events.
    private func nextWork() -> Work {
        state.withLock { state in
            if state.listener == nil, !state.socketClosed { return .start }
            if state.socketClosed {
                state.finished = true
                return .finish
            }
            if !state.messages.isEmpty {
                defer { state.messages = [] }
                return .messages(state.messages)
            }
            if state.hubReady {
                state.hubReady = false
                return .hub
            }
            return .idle
        }
    }

    /// On the event loop, as the task ends: hands `direct` to the loop, or, if something arrived
    /// meanwhile, starts a task for it.
    private func park(_ direct: DirectRoutes?) {
        let parked = state.withLock { state in
            guard state.messages.isEmpty, !state.hubReady, !state.socketClosed else { return false }
            state.direct = direct
            state.running = false
            return true
        }
        if !parked { Task { await self.work(takingBack: nil) } }
    }

    private func start() async {
        let services = endpoint.services
        let channel = self.channel
        // A socket that falls behind is closed at once: its writes may be stuck on a full socket.
        let listener = await services.hub.listener(
            channels: [], queueLimit: endpoint.queueLimit, ticks: true,
            onOverflow: { RealtimeSocketHandler.close(channel, RealtimeSession.CloseCode.tooSlow, reason: "too slow: reconnect and resume from the last ids") },
            onReady: { [weak self] in self?.hubReady() },
            direct: (channel.eventLoop, { [weak self] messages in self?.sendDirectly(messages) ?? false })
        )
        state.withLock { $0.listener = listener }
        do {
            let session = try RealtimeSession(
                caller: caller.identity, expires: caller.expires, outbound: writer, services: services, listener: listener
            )
            try await session.start(heartbeat: endpoint.heartbeat)
            state.withLock { $0.session = session }
        } catch {
            services.logger.debug("realtime socket could not start", metadata: ["error": "\(error)"])
            RealtimeSocketHandler.close(channel, .unexpectedServerError, reason: "the server could not start this connection; retry")
        }
    }

    private func deliverHubEvents() async {
        let (session, listener) = state.withLock { ($0.session, $0.listener) }
        guard let session, let listener else { return }
        guard let events = listener.take() else {
            // Cut off for falling behind (already closing), or the node is shutting down.
            if !listener.overflowed {
                RealtimeSocketHandler.close(channel, RealtimeSession.CloseCode.goingAway, reason: "closing")
            }
            return
        }
        do {
            guard try await session.deliver(events) else {
                let code = await session.closeCode ?? RealtimeSession.CloseCode.goingAway
                RealtimeSocketHandler.close(channel, code, reason: code == RealtimeSession.CloseCode.tokenExpired ? "token expired" : "closing")
                return
            }
        } catch {
            // The socket is gone (or Redis failed mid-replay): the client resumes.
            endpoint.services.logger.debug("realtime socket ends", metadata: ["error": "\(error)"])
            channel.close(promise: nil)
        }
    }
}

/// Sends a socket's messages. A send returns at once while the connection takes writes (NIO's
/// write buffer below its high-water mark); past it, it returns only once its message is
/// written, so a client that stops reading holds its sender back (and its hub queue then
/// overflows) instead of growing the buffer.
struct SocketWriter: Sendable {
    let channel: any Channel

    func send(text: String) async throws {
        try await send(ByteBuffer(string: text))
    }

    func send(_ message: ByteBuffer) async throws {
        let last = writeLeadingFragments(message)
        if channel.isWritable {
            // A failed write closes the channel, which finishes the session.
            channel.writeAndFlush(last, promise: nil)
        } else {
            try await channel.writeAndFlush(last).get()
        }
    }

    /// On the channel's event loop: writes and flushes `message` at once.
    func sendNow(_ message: ByteBuffer) {
        channel.eventLoop.assertInEventLoop()
        channel.writeAndFlush(writeLeadingFragments(message), promise: nil)
    }

    /// One text message is one frame when it fits `RealtimeEndpoint.maxInboundBytes`, else
    /// fragments of that size: writes all but the last, which it returns.
    private func writeLeadingFragments(_ message: ByteBuffer) -> WebSocketFrame {
        let limit = RealtimeEndpoint.maxInboundBytes
        var rest = message
        var opcode = WebSocketOpcode.text
        while rest.readableBytes > limit, let part = rest.readSlice(length: limit) {
            channel.write(WebSocketFrame(fin: false, opcode: opcode, data: part), promise: nil)
            opcode = .continuation
        }
        return WebSocketFrame(fin: true, opcode: opcode, data: rest)
    }

    /// Client messages (each a JSON object) as WebSocket messages: one alone goes out as it is
    /// (the bytes rendered for every socket); several as newline-separated objects of up to
    /// 64 KiB, so a socket that has fallen a little behind catches up with one write instead
    /// of one per event (`schemas/realtime.schema.json`).
    static func messages(_ queued: [ByteBuffer]) -> [ByteBuffer] {
        if queued.count == 1 { return queued }
        let limit = RealtimeEndpoint.maxInboundBytes
        var messages: [ByteBuffer] = []
        var batch = ByteBuffer()
        for item in queued {
            if batch.readableBytes > 0, batch.readableBytes + 1 + item.readableBytes > limit {
                messages.append(batch)
                batch = ByteBuffer()
            }
            if batch.readableBytes > 0 { batch.writeInteger(UInt8(ascii: "\n")) }
            batch.writeImmutableBuffer(item)
        }
        if batch.readableBytes > 0 { messages.append(batch) }
        return messages
    }
}
