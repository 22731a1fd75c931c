import Foundation
import Hummingbird
import HummingbirdCore
import NIOCore
import NIOHTTP1

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
struct RealtimeEndpoint: Sendable {
    static let path = "/v1/realtime"
    /// Largest client message, and largest frame either way.
    static let maxInboundBytes = 64 * 1_024
    /// Largest ephemeral message, as sent to subscribers.
    static let maxEphemeralBytes = 16 * 1_024

    /// Who opened a socket, from a verified token.
    struct Caller: Sendable {
        let identity: Identity
        /// When the token expires; the socket is closed then.
        let expires: Date?
    }

    let authority: TokenAuthority
    let services: RealtimeSession.Services
    let heartbeat: Duration
    let queueLimit: Int

    /// The caller of an upgrade request to `/v1/realtime` that carries a valid token, or why
    /// the upgrade is refused.
    func authenticate(_ head: HTTPRequestHead) async -> Result<Caller, APIError> {
        let uri = URI(head.uri)
        guard uri.path == Self.path else {
            return .failure(APIError(.notFound, code: "not_found", message: "only \(Self.path) upgrades to a WebSocket"))
        }
        guard let token = BearerAuthentication.token(authorization: head.headers.first(name: "authorization"), query: uri) else {
            return .failure(APIError(.unauthorized, code: "missing_token", message: "send Authorization: Bearer <token> or ?auth=<token>"))
        }
        do {
            let (identity, expires) = try await authority.verifyWithExpiry(token)
            return .success(Caller(identity: identity, expires: expires))
        } catch {
            return .failure(error)
        }
    }

    /// Puts the socket's handler in the upgraded pipeline and starts its session; runs on the
    /// channel's event loop.
    func start(on channel: any Channel, caller: Caller) throws {
        let connection = RealtimeConnection(channel: channel, caller: caller, endpoint: self)
        try channel.pipeline.syncOperations.addHandler(RealtimeSocketHandler(connection: connection, heartbeat: heartbeat))
        connection.begin()
    }

    /// `GET /v1/realtime` without a WebSocket upgrade: the token was good (else the
    /// authentication middleware answered 401), the request was not a usable upgrade.
    static func addRoutes(to group: RouterGroup<FieldOpsRequestContext>) {
        group.get("realtime") { _, _ -> Response in
            throw APIError(
                .badRequest, code: "websocket_required",
                message: "open /v1/realtime as a WebSocket (Upgrade: websocket, Sec-WebSocket-Version: 13) as the first request of a new connection"
            )
        }
    }
}
