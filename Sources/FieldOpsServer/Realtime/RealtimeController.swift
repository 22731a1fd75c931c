import Foundation
import Hummingbird
import HummingbirdWebSocket
import NIOWebSocket
import NIOCore
import ServiceLifecycle

/// `GET /v1/realtime`: the WebSocket endpoint (protocol in `schemas/realtime.schema.json`).
///
/// ```
/// → {"type":"subscribe","id":"1","channel":"room:ops","resume":{"lastId":"1763820120123-0","epoch":"9f2c…"}}
/// ← {"type":"subscribed","id":"1","channel":"room:ops","recovered":true,"replayed":3,"epoch":"9f2c…","lastId":"…"}
/// ← {"type":"event","channel":"room:ops","stream":"chat:ops","id":"…","epoch":"9f2c…","eventType":"message.created",…}
/// → {"type":"publish","id":"2","channel":"room:ops","data":{"typing":true}}
/// ```
///
/// The token comes as `Authorization: Bearer` or `?auth=` (browsers cannot set headers on
/// WebSockets). The server pings every heartbeat and drops a socket that stops answering; the
/// socket's `onDisconnect` writes then run, and it leaves `/presence/{sub}/connections`.
struct RealtimeController {
    /// Largest client message.
    static let maxInboundBytes = 64 * 1_024
    /// Largest ephemeral message, as sent to subscribers.
    static let maxEphemeralBytes = 16 * 1_024

    let services: RealtimeSession.Services
    let heartbeat: Duration
    let queueLimit: Int

    func addRoutes(to router: Router<FieldOpsRequestContext>) {
        router.ws("v1/realtime", shouldUpgrade: { _, context in
            _ = try context.requireIdentity()
            return .upgrade([:])
        }) { inbound, outbound, context in
            await run(inbound: inbound, outbound: outbound, context: context.requestContext)
        }
    }

    /// The socket's life: greet, then hub events and client messages side by side until either
    /// ends, closing with a code the client can act on when the server ends it.
    private func run(inbound: WebSocketInboundStream, outbound: WebSocketOutboundWriter, context: FieldOpsRequestContext) async {
        guard let caller = context.identity else { return }
        // A socket that falls behind is closed at once: its writes may be stuck on a full socket.
        let channel = context.channel
        let listener = await services.hub.listener(channels: [], queueLimit: queueLimit, ticks: true) { channel.close(promise: nil) }
        let session: RealtimeSession
        do {
            session = try RealtimeSession(caller: caller, expires: context.identityExpires, outbound: outbound, services: services, listener: listener)
            try await session.start(heartbeat: heartbeat)
        } catch {
            services.hub.remove(listener)
            return
        }
        // Two loops per socket: hub events in a child task, client messages in this one (each
        // task a socket keeps costs memory: its async frames stay allocated while it waits).
        await withGracefulShutdownHandler {
            await withTaskGroup(of: Void.self) { group in
                group.addTask {
                    while let events = await listener.next() {
                        do {
                            guard try await session.deliver(events) else { break }
                        } catch {
                            // The socket is gone (or Redis failed mid-replay): the client resumes.
                            services.logger.debug("realtime socket ends", metadata: ["error": "\(error)"])
                            break
                        }
                    }
                    // Ended from the server's side (cut off, token expired, shutdown) unless the
                    // client left first: close the socket, which ends the loop below too.
                    guard !Task.isCancelled else { return }
                    await Self.close(outbound, channel: channel, listener: listener, session: session)
                }
                do {
                    for try await message in inbound.messages(maxSize: Self.maxInboundBytes) {
                        guard case .text(let text) = message else {
                            try await session.handle("binary")
                            continue
                        }
                        try await session.handle(text)
                    }
                } catch {
                    services.logger.debug("realtime socket closed", metadata: ["error": "\(error)"])
                }
                group.cancelAll()
            }
        } onGracefulShutdown: {
            listener.finish()
        }
        await session.finish()
    }

    /// Closes with a code the client can act on; the connection goes within seconds even if
    /// the client never answers the close.
    private static func close(_ outbound: WebSocketOutboundWriter, channel: any Channel, listener: HubListener, session: RealtimeSession) async {
        let code: WebSocketErrorCode
        let reason: String
        if listener.overflowed {
            (code, reason) = (RealtimeSession.CloseCode.tooSlow, "too slow: reconnect and resume from the last ids")
        } else if let expired = await session.closeCode {
            (code, reason) = (expired, "token expired")
        } else {
            (code, reason) = (RealtimeSession.CloseCode.goingAway, "closing")
        }
        channel.eventLoop.scheduleTask(in: .seconds(2)) { channel.close(promise: nil) }
        try? await outbound.close(code, reason: reason)
    }
}
