import NIOCore
import NIOWebSocket
import Synchronization

/// The work of one `/v1/realtime` socket, done by short tasks: the session starts, then client
/// messages and hub events are handled in arrival order, a batch at a time, and at the end the
/// session finishes (presence, `onDisconnect`). When nothing waits, no task exists for the
/// socket, so an idle client costs its pipeline and session, not a suspended call stack.
final class RealtimeConnection: Sendable {
    private struct State {
        var session: RealtimeSession?
        /// Client messages not yet handled; nil stands for a binary message.
        var messages: [String?] = []
        var hubReady = false
        /// A task is working for the socket.
        var running = false
        var socketClosed = false
        var finished = false
        var listener: HubListener?
    }

    private enum Work {
        case start
        case messages([String?])
        case hub
        case finish
    }

    let channel: any Channel
    let caller: RealtimeEndpoint.Caller
    let endpoint: RealtimeEndpoint
    private let state = Mutex(State())

    init(channel: any Channel, caller: RealtimeEndpoint.Caller, endpoint: RealtimeEndpoint) {
        self.channel = channel
        self.caller = caller
        self.endpoint = endpoint
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

    private func hubReady() {
        state.withLock { $0.hubReady = true }
        wake()
    }

    /// Starts a task unless one is working (it will see what arrived) or the socket is done.
    private func wake() {
        let start = state.withLock { state -> Bool in
            guard !state.running, !state.finished else { return false }
            state.running = true
            return true
        }
        if start { Task { await self.work() } }
    }

    private func work() async {
        while let next = nextWork() {
            switch next {
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
            }
        }
    }

    /// What to do next, in order: start, finish once closed, client messages, hub events; nil
    /// (and no task running) when nothing waits.
    private func nextWork() -> Work? {
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
            state.running = false
            return nil
        }
    }

    private func start() async {
        let services = endpoint.services
        let channel = self.channel
        // A socket that falls behind is closed at once: its writes may be stuck on a full socket.
        let listener = await services.hub.listener(
            channels: [], queueLimit: endpoint.queueLimit, ticks: true,
            onOverflow: { RealtimeSocketHandler.close(channel, RealtimeSession.CloseCode.tooSlow, reason: "too slow: reconnect and resume from the last ids") },
            onReady: { [weak self] in self?.hubReady() }
        )
        state.withLock { $0.listener = listener }
        do {
            let session = try RealtimeSession(
                caller: caller.identity, expires: caller.expires, outbound: SocketWriter(channel: channel), services: services, listener: listener
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

    /// One text message: one frame when it fits `RealtimeEndpoint.maxInboundBytes`, else
    /// fragments of that size.
    func send(_ message: ByteBuffer) async throws {
        let limit = RealtimeEndpoint.maxInboundBytes
        var rest = message
        var opcode = WebSocketOpcode.text
        while rest.readableBytes > limit, let part = rest.readSlice(length: limit) {
            channel.write(WebSocketFrame(fin: false, opcode: opcode, data: part), promise: nil)
            opcode = .continuation
        }
        let last = WebSocketFrame(fin: true, opcode: opcode, data: rest)
        if channel.isWritable {
            // A failed write closes the channel, which finishes the session.
            channel.writeAndFlush(last, promise: nil)
        } else {
            try await channel.writeAndFlush(last).get()
        }
    }
}
