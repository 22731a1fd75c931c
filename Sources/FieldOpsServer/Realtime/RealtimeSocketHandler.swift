import NIOCore
import NIOWebSocket

/// The WebSocket protocol of one `/v1/realtime` socket, on its event loop: reassembles client
/// messages (at most `RealtimeEndpoint.maxInboundBytes`), answers pings, pings the client
/// every heartbeat and closes the socket when a ping goes unanswered until the next one, and
/// runs the close handshake. Messages and the end of the socket go to its `RealtimeConnection`.
final class RealtimeSocketHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = WebSocketFrame
    typealias OutboundOut = WebSocketFrame

    /// Asks the handler to close the socket with `code` (a user inbound event, so it can come
    /// from any thread, and the handler stays off the path of every outbound write): a close
    /// frame, then the connection once the client answers or within `closeTimeout`.
    struct CloseRequest: Sendable {
        let code: WebSocketErrorCode
        let reason: String
    }

    static let closeTimeout = TimeAmount.seconds(2)

    private let connection: RealtimeConnection
    private let heartbeat: TimeAmount
    /// The fragments of a client message so far.
    private var fragments: ByteBuffer?
    private var fragmentsAreText = true
    private var awaitingPong = false
    private var pinger: Scheduled<Void>?
    private var sentClose = false

    init(connection: RealtimeConnection, heartbeat: Duration) {
        self.connection = connection
        self.heartbeat = TimeAmount(heartbeat)
    }

    /// Asks the socket of `channel` to close with `code`.
    static func close(_ channel: any Channel, _ code: WebSocketErrorCode, reason: String) {
        channel.pipeline.fireUserInboundEventTriggered(CloseRequest(code: code, reason: reason))
    }

    func handlerAdded(context: ChannelHandlerContext) {
        schedulePing(context: context)
    }

    func channelInactive(context: ChannelHandlerContext) {
        pinger?.cancel()
        connection.socketClosed()
        context.fireChannelInactive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let frame = unwrapInboundIn(data)
        // Any frame shows the client is there.
        awaitingPong = false
        switch frame.opcode {
        case .text, .binary:
            guard fragments == nil else { return fail(context, .protocolError, "a new message began before the last one ended") }
            fragmentsAreText = frame.opcode == .text
            fragments = frame.unmaskedData
            if frame.fin { deliver(context) }
        case .continuation:
            guard fragments != nil else { return fail(context, .protocolError, "a continuation frame without a message") }
            var data = frame.unmaskedData
            guard fragments!.readableBytes + data.readableBytes <= RealtimeEndpoint.maxInboundBytes else {
                return fail(context, .messageTooLarge, "a message is at most \(RealtimeEndpoint.maxInboundBytes) bytes")
            }
            fragments!.writeBuffer(&data)
            if frame.fin { deliver(context) }
        case .ping:
            guard !sentClose else { return }
            context.writeAndFlush(wrapOutboundOut(WebSocketFrame(fin: true, opcode: .pong, data: frame.unmaskedData)), promise: nil)
        case .pong:
            break
        case .connectionClose:
            if sentClose {
                context.close(promise: nil)
                return
            }
            // Answer with the client's code, then end the connection.
            sentClose = true
            connection.closing()
            var data = frame.unmaskedData
            let code = data.readWebSocketErrorCode() ?? .normalClosure
            var answer = context.channel.allocator.buffer(capacity: 2)
            answer.write(webSocketErrorCode: code)
            context.writeAndFlush(wrapOutboundOut(WebSocketFrame(fin: true, opcode: .connectionClose, data: answer))).assumeIsolated().whenComplete { _ in
                context.close(promise: nil)
            }
        default:
            fail(context, .protocolError, "unknown opcode")
        }
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let request = event as? CloseRequest {
            sendClose(context, request.code, reason: request.reason)
            return
        }
        // The server is shutting down.
        if event is ChannelShouldQuiesceEvent {
            sendClose(context, RealtimeSession.CloseCode.goingAway, reason: "the server is shutting down: reconnect and resume")
            return
        }
        context.fireUserInboundEventTriggered(event)
    }

    private func deliver(_ context: ChannelHandlerContext) {
        guard let message = fragments else { return }
        fragments = nil
        // Binary messages are answered with an error: the protocol is JSON text.
        connection.received(fragmentsAreText ? String(buffer: message) : nil)
    }

    private func schedulePing(context: ChannelHandlerContext) {
        pinger = context.eventLoop.assumeIsolated().scheduleTask(in: heartbeat) { [self] in
            guard context.channel.isActive, !sentClose else { return }
            if awaitingPong {
                // Gone without closing (a phone out of coverage): its onDisconnect runs now.
                context.close(promise: nil)
                return
            }
            awaitingPong = true
            context.writeAndFlush(wrapOutboundOut(WebSocketFrame(fin: true, opcode: .ping, data: ByteBuffer())), promise: nil)
            schedulePing(context: context)
        }
    }

    private func fail(_ context: ChannelHandlerContext, _ code: WebSocketErrorCode, _ reason: String) {
        fragments = nil
        sendClose(context, code, reason: reason)
    }

    private func sendClose(_ context: ChannelHandlerContext, _ code: WebSocketErrorCode, reason: String) {
        guard !sentClose, context.channel.isActive else { return }
        sentClose = true
        connection.closing()
        var data = context.channel.allocator.buffer(capacity: 2 + reason.utf8.count)
        data.write(webSocketErrorCode: code)
        data.writeString(reason)
        context.writeAndFlush(wrapOutboundOut(WebSocketFrame(fin: true, opcode: .connectionClose, data: data)), promise: nil)
        // A client that never answers (or cannot read: it fell behind) is not waited for long.
        context.eventLoop.assumeIsolated().scheduleTask(in: Self.closeTimeout) {
            context.close(promise: nil)
        }
    }
}
