import DocumentStore
import Domain
import Foundation
import LiveTree
import Logging
import NIOCore
import NIOWebSocket
import Streams

/// One `/v1/realtime` socket: its subscriptions, what it has sent of each, and its presence.
///
/// Client commands and hub messages arrive from the socket's `RealtimeConnection`. While a
/// subscription replays missed entries from its stream, live messages for it are held and sent
/// after the replay, skipping any the replay already covered — no gap, no duplicate at the seam.
actor RealtimeSession {
    struct Services: Sendable {
        let writer: EventWriter
        let tree: LiveTree
        let access: LiveAccess
        let hub: RealtimeHub
        let nodeName: String
        let logger: Logger
    }

    /// Close codes a client can act on (`schemas/realtime.schema.json`).
    enum CloseCode {
        /// The socket fell too far behind its queue; resume from the last ids.
        static let tooSlow = WebSocketErrorCode.unknown(4001)
        /// The token expired; reconnect with a new one.
        static let tokenExpired = WebSocketErrorCode.unknown(4003)
        /// The server is shutting down; reconnect elsewhere or later.
        static let goingAway = WebSocketErrorCode.goingAway
    }

    let caller: Identity
    let keys: StreamKeys
    let connectionID: String
    private let expires: Date?
    private let outbound: SocketWriter
    private let services: Services
    let listener: HubListener
    private var subscriptions: [String: RealtimeSubscription] = [:]
    /// Pub/sub channel → the client channels fed by it.
    private var routes: [String: Set<String>] = [:]
    /// What to write to the live tree when the socket closes (`.null` removes).
    private var onDisconnect: [LivePath: JSONValue] = [:]
    private var roomMembership: [String: Bool] = [:]
    private(set) var closeCode: WebSocketErrorCode?
    /// Messages rendered once for every socket, waiting for `flush`.
    private var outbox: [ByteBuffer] = []

    init(caller: Identity, expires: Date?, outbound: SocketWriter, services: Services, listener: HubListener) throws {
        self.caller = caller
        self.keys = try StreamKeys(tenant: caller.tenant)
        self.expires = expires
        self.outbound = outbound
        self.services = services
        self.listener = listener
        self.connectionID = Identifiers.make("conn")
    }

    // MARK: - Presence

    private var presencePath: LivePath? {
        try? LivePath(segments: ["presence", caller.subject])
    }

    /// Marks the connection in `/presence/{sub}/connections/{connectionId}` and greets the client.
    func start(heartbeat: Duration) async throws {
        if let presence = presencePath {
            try await services.tree.set(
                tenant: caller.tenant, path: try presence.appending(LivePath(segments: ["connections", connectionID])),
                value: ["node": .string(services.nodeName), "since": [".sv": "timestamp"]]
            )
        }
        try await send([
            "type": "welcome", "connectionId": .string(connectionID), "tenant": .string(caller.tenant), "sub": .string(caller.subject),
            "heartbeatSeconds": .number(heartbeat.secondsValue),
        ])
    }

    /// Removes the connection from `/presence`, stamps `lastSeen`, runs the `onDisconnect` writes.
    func finish() async {
        services.hub.remove(listener)
        do {
            if let presence = presencePath {
                try await services.tree.delete(tenant: caller.tenant, path: try presence.appending(LivePath(segments: ["connections", connectionID])))
                try await services.tree.set(tenant: caller.tenant, path: try presence.appending("lastSeen"), value: [".sv": "timestamp"])
            }
            for (path, value) in onDisconnect.sorted(by: { $0.key.description < $1.key.description }) {
                try await services.tree.set(tenant: caller.tenant, path: path, value: value)
            }
        } catch {
            services.logger.warning("disconnect writes failed", metadata: ["tenant": "\(caller.tenant)", "sub": "\(caller.subject)", "error": "\(error)"])
        }
    }

    // MARK: - Client commands

    /// Handles one text message from the client; errors go back as `error` messages.
    func handle(_ text: String) async throws {
        var requestID: JSONValue = .null
        do {
            guard let message = try? JSONValue(jsonText: text), case .object = message else {
                throw APIError(.badRequest, code: "invalid_message", message: "send one JSON object per message, e.g. {\"type\":\"subscribe\",\"channel\":\"tasks\"}")
            }
            requestID = message["id"] ?? .null
            switch message["type"]?.stringValue {
            case "subscribe": try await subscribe(message, requestID)
            case "unsubscribe": try await unsubscribe(message, requestID)
            case "ping": try await send(["type": "pong", "id": requestID])
            case "publish": try await publish(message, requestID)
            case "set": try await set(message, requestID)
            case "onDisconnect": try await registerOnDisconnect(message, requestID)
            default:
                throw APIError(.badRequest, code: "invalid_message", message: "type is one of subscribe, unsubscribe, ping, publish, set, onDisconnect")
            }
        } catch let error as APIError {
            try await send(["type": "error", "id": requestID, "code": .string(error.code), "message": .string(error.message)])
        } catch let error as StreamError where error.isRedisFailure {
            try await send(["type": "error", "id": requestID, "code": "redis_unavailable", "message": "the event log is unreachable; retry shortly"])
        } catch let error as StreamError {
            try await send(["type": "error", "id": requestID, "code": .string(error.code.rawValue), "message": .string(error.message)])
        }
    }

    private func channel(of message: JSONValue) throws -> RealtimeChannel {
        guard let name = message["channel"]?.stringValue else {
            throw APIError(.badRequest, code: "invalid_message", message: "channel is required")
        }
        return try RealtimeChannel(name)
    }

    private func requireAccess(_ channel: RealtimeChannel) async throws {
        guard try await channel.mayAccess(caller, access: services.access) else {
            // The same answer whether or not the room, worker or path exists.
            throw APIError(.forbidden, code: "forbidden", message: "a \(caller.role.rawValue) token may not use channel '\(channel.name)'")
        }
    }

    private func subscribe(_ message: JSONValue, _ requestID: JSONValue) async throws {
        let channel = try channel(of: message)
        try await requireAccess(channel)
        if subscriptions[channel.name] != nil {
            try await send(["type": "subscribed", "id": requestID, "channel": .string(channel.name), "already": true])
            return
        }
        let resume: (lastID: String, epoch: String)?
        if let request = message["resume"], request != .null {
            guard let lastID = request["lastId"]?.stringValue, let epoch = request["epoch"]?.stringValue, (try? StreamName.validateID(lastID)) != nil else {
                throw APIError(.badRequest, code: "invalid_message", message: "resume is {\"lastId\": STREAM_ID, \"epoch\": EPOCH} as the channel's events carried them")
            }
            resume = (lastID, epoch)
        } else {
            resume = nil
        }
        // Listen first, so nothing published from now on is missed; hold it until the replay is sent.
        subscriptions[channel.name] = RealtimeSubscription(channel: channel, keys: keys)
        for source in [channel.sourceChannel(keys), channel.ephemeralChannel(keys)] {
            routes[source, default: []].insert(channel.name)
            services.hub.add(listener, channel: source)
        }
        do {
            switch channel.source {
            case .stream(let stream, _):
                try await subscribeToStream(channel, stream: stream, resume: resume, requestID: requestID)
            case .live(let path):
                let snapshot = try await services.tree.get(tenant: caller.tenant, path: path)
                try await send(["type": "subscribed", "id": requestID, "channel": .string(channel.name)])
                try await sendLive(channel.name, LiveChange(.put, path: .root, data: snapshot))
            }
        } catch {
            removeSubscription(channel.name)
            throw error
        }
        try await release(channel.name)
    }

    private func subscribeToStream(_ channel: RealtimeChannel, stream: String, resume: (lastID: String, epoch: String)?, requestID: JSONValue) async throws {
        let keys = self.keys
        var ack: JSONObject = ["type": "subscribed", "id": requestID, "channel": .string(channel.name)]
        var missed: [StreamEvent] = []
        let head: StreamResume.Head
        if let resume {
            let (current, outcome) = try await self.resume(stream, after: resume.lastID, epoch: resume.epoch)
            head = current
            switch outcome {
            case .complete(let events):
                for event in events where try await matches(event, channel) { missed.append(event) }
                ack["recovered"] = true
                ack["replayed"] = .number(Double(missed.count))
            case .incomplete(let reason):
                // Nothing partial: the client reloads, then follows live from here.
                ack["recovered"] = false
                ack["reason"] = .string(reason)
            }
        } else {
            head = try await services.writer.withConnection { connection in try StreamResume.head(connection, keys: keys, stream: stream) }
        }
        ack["epoch"] = .string(head.epoch)
        ack["lastId"] = .string(head.lastGeneratedID)
        subscriptions[channel.name]?.epoch = head.epoch
        subscriptions[channel.name]?.lastSent = head.lastGeneratedID
        try await send(.object(ack))
        for event in missed { try await sendEvent(event, channel: channel.name, epoch: head.epoch) }
    }

    /// What this socket missed of `stream` after `lastID` (see `StreamResume`).
    private func resume(_ stream: String, after lastID: String, epoch: String) async throws -> (head: StreamResume.Head, outcome: StreamResume.Outcome) {
        let keys = self.keys
        return try await services.writer.withConnection { connection in
            try StreamResume.resume(connection, keys: keys, stream: stream, after: lastID, epoch: epoch)
        }
    }

    /// Sends what was held during a replay, then lets live messages through.
    private func release(_ name: String) async throws {
        while let held = subscriptions[name]?.held, !held.isEmpty {
            subscriptions[name]?.held = []
            for message in held { try await forward(message, to: name) }
        }
        subscriptions[name]?.replaying = false
        try await flush()
    }

    private func unsubscribe(_ message: JSONValue, _ requestID: JSONValue) async throws {
        let channel = try channel(of: message)
        removeSubscription(channel.name)
        try await send(["type": "unsubscribed", "id": requestID, "channel": .string(channel.name)])
    }

    private func removeSubscription(_ name: String) {
        guard let subscription = subscriptions.removeValue(forKey: name) else { return }
        for source in [subscription.channel.sourceChannel(keys), subscription.channel.ephemeralChannel(keys)] {
            routes[source]?.remove(name)
            if routes[source]?.isEmpty == true {
                routes.removeValue(forKey: source)
                services.hub.remove(listener, channel: source)
            }
        }
    }

    /// An ephemeral message: fanned out through pub/sub to the channel's subscribers, never stored.
    private func publish(_ message: JSONValue, _ requestID: JSONValue) async throws {
        let channel = try channel(of: message)
        if case .live = channel.source {
            throw APIError(.badRequest, code: "invalid_channel", message: "live channels change through set or /v1/live, not publish")
        }
        try await requireAccess(channel)
        let data = message["data"] ?? .null
        let out: JSONValue = [
            "type": "message", "channel": .string(channel.name), "data": data,
            "from": ["sub": .string(caller.subject), "role": .string(caller.role.rawValue)],
            "sentAt": .string(ISOTime.string(milliseconds: Int64(Date().timeIntervalSince1970 * 1_000))),
        ]
        let text = out.jsonText
        guard text.utf8.count <= RealtimeEndpoint.maxEphemeralBytes else {
            throw APIError(.contentTooLarge, code: "message_too_large", message: "an ephemeral message is at most \(RealtimeEndpoint.maxEphemeralBytes) bytes of JSON")
        }
        let target = channel.ephemeralChannel(keys)
        let receivers = try await services.writer.withConnection { try $0.command("PUBLISH", target, text).int ?? 0 }
        try await send(["type": "published", "id": requestID, "channel": .string(channel.name), "nodes": .number(Double(receivers))])
    }

    /// A live-tree write over the socket (the same rules as `PUT /v1/live`).
    private func set(_ message: JSONValue, _ requestID: JSONValue) async throws {
        let path = try livePath(message)
        try await services.access.requireWrite(caller, path)
        let (tree, tenant, value) = (services.tree, caller.tenant, message["value"] ?? .null)
        let stored = try await liveCall { @Sendable in try await tree.set(tenant: tenant, path: path, value: value) }
        try await send(["type": "set", "id": requestID, "path": .string(path.description), "value": stored])
    }

    /// `{"type":"onDisconnect","path":P,"value":V}` writes V (null removes) when the socket
    /// closes or stops answering pings; `"cancel": true` forgets it.
    private func registerOnDisconnect(_ message: JSONValue, _ requestID: JSONValue) async throws {
        let path = try livePath(message)
        try await services.access.requireWrite(caller, path)
        if message["cancel"]?.boolValue == true {
            onDisconnect.removeValue(forKey: path)
        } else {
            guard onDisconnect.count < 64 || onDisconnect[path] != nil else {
                throw APIError(.badRequest, code: "too_many_on_disconnect", message: "a connection registers at most 64 onDisconnect paths")
            }
            onDisconnect[path] = message["value"] ?? .null
        }
        try await send(["type": "onDisconnect", "id": requestID, "path": .string(path.description), "registered": .bool(message["cancel"]?.boolValue != true)])
    }

    private func livePath(_ message: JSONValue) throws -> LivePath {
        guard let text = message["path"]?.stringValue else { throw APIError(.badRequest, code: "invalid_message", message: "path is required") }
        return try liveCall { try LivePath(text) }
    }

    // MARK: - Hub events

    /// Handles the hub events waiting for this socket, sending what they produce in as few
    /// writes as possible; returns false when the socket should close.
    func deliver(_ events: [HubEvent]) async throws -> Bool {
        for event in events {
            guard try await deliver(event) else {
                try await flush()
                return false
            }
        }
        try await flush()
        return true
    }

    private func deliver(_ event: HubEvent) async throws -> Bool {
        switch event {
        case .message(let message):
            defer { listener.consumed(bytes: message.payload.count) }
            for name in routes[message.channel] ?? [] {
                if subscriptions[name]?.replaying == true {
                    subscriptions[name]?.held.append(message)
                } else {
                    try await forward(message, to: name)
                }
            }
            return true
        case .gap:
            try await fillGaps()
            return true
        case .tick:
            roomMembership = [:]
            if let expires, expires <= Date() {
                try await send(["type": "error", "code": "auth_revoked", "message": "the token expired; reconnect with a new one and resume"])
                closeCode = CloseCode.tokenExpired
                return false
            }
            for (name, subscription) in subscriptions where !(try await subscription.channel.mayAccess(caller, access: services.access)) {
                removeSubscription(name)
                try await send(["type": "unsubscribed", "channel": .string(name), "reason": "access revoked"])
            }
            return true
        }
    }

    private func forward(_ message: HubMessage, to name: String) async throws {
        guard var subscription = subscriptions[name] else { return }
        switch subscription.forward(message, tenant: caller.tenant) {
        case .nothing:
            subscriptions[name] = subscription
        case .send(let bytes):
            subscriptions[name] = subscription
            outbox.append(bytes)
        case .needsSession:
            switch subscription.channel.source {
            case .live(let path):
                for change in LiveChange.decode(message: message.text) ?? [] {
                    for event in change.events(for: path) { try await sendLive(name, event) }
                }
            case .stream(let stream, _):
                // Whether a notification is for this user may take a look at room membership.
                guard let event = message.event(stream: stream, tenant: caller.tenant) else { return }
                let matched = try await matches(event, subscription.channel)
                guard var subscription = subscriptions[name] else { return }
                if case .send(let bytes) = subscription.forward(message, tenant: caller.tenant, matched: matched) { outbox.append(bytes) }
                subscriptions[name] = subscription
            }
        }
    }

    // MARK: - Handing over to the event loop

    /// The subscriptions the socket's event loop may forward on its own until the session has
    /// work again (see `DirectRoutes`).
    func directRoutes() -> DirectRoutes {
        var direct = DirectRoutes(tenant: caller.tenant)
        for (source, names) in routes {
            direct.add(source: source, names.sorted().compactMap { subscriptions[$0] })
        }
        return direct
    }

    /// Takes back what the event loop sent while the session was idle.
    func absorb(_ direct: DirectRoutes) {
        for subscription in direct.subscriptions {
            subscriptions[subscription.channel.name]?.lastSent = subscription.lastSent
        }
    }

    /// After the node's pub/sub connection came back: each stream subscription replays what it
    /// missed, or says it cannot; live subscriptions get a fresh snapshot.
    private func fillGaps() async throws {
        for name in subscriptions.keys.sorted() {
            guard let subscription = subscriptions[name] else { continue }
            subscriptions[name]?.replaying = true
            switch subscription.channel.source {
            case .stream(let stream, _):
                let (head, outcome) = try await resume(stream, after: subscription.lastSent ?? "0-0", epoch: subscription.epoch ?? "")
                switch outcome {
                case .complete(let events):
                    for event in events where try await matches(event, subscription.channel) {
                        try await sendEvent(event, channel: name, epoch: head.epoch)
                    }
                    if let last = events.last?.id { subscriptions[name]?.lastSent = last }
                case .incomplete(let reason):
                    subscriptions[name]?.epoch = head.epoch
                    subscriptions[name]?.lastSent = head.lastGeneratedID
                    try await send(["type": "gap", "channel": .string(name), "recovered": false, "reason": .string(reason), "epoch": .string(head.epoch), "lastId": .string(head.lastGeneratedID)])
                }
            case .live(let path):
                let snapshot = try await services.tree.get(tenant: caller.tenant, path: path)
                try await sendLive(name, LiveChange(.put, path: .root, data: snapshot))
            }
            try await release(name)
        }
    }

    // MARK: - Filters

    private func matches(_ event: StreamEvent, _ channel: RealtimeChannel) async throws -> Bool {
        guard case .stream(_, let filter?) = channel.source else { return true }
        switch filter {
        case .routing(let field, let value):
            return event.routingValue(field) == value
        case .recipient(let userID):
            if event.routingValue("userId") == userID { return true }
            guard let recipient = event.routingValue("recipient") else { return false }
            if recipient == "user:" + userID { return true }
            if userID == caller.subject, recipient == "role:" + caller.role.rawValue { return true }
            guard recipient.hasPrefix("room:") else { return false }
            return try await isMember(userID, of: String(recipient.dropFirst(5)))
        }
    }

    // MARK: - Sending

    private func sendEvent(_ event: StreamEvent, channel: String, epoch: String) async throws {
        try await sendText(Self.eventText(event, channel: channel, epoch: epoch))
        if let last = subscriptions[channel]?.lastSent, !streamID(last, isLessThan: event.id) { return }
        subscriptions[channel]?.lastSent = event.id
    }

    /// `{"type":"event","channel","stream","id","epoch","eventType","timestamp","payload","routing"}`;
    /// a realtime-only event has `"realtimeOnly": true` instead of `id` and `epoch`.
    static func eventText(_ event: StreamEvent, channel: String, epoch: String) -> String {
        var routing = JSONObject()
        for field in event.routing { routing[field.name] = .string(field.value) }
        let payload = (try? JSONValue(jsonText: event.payload)) ?? .string(event.payload)
        var out: JSONObject = [
            "type": "event", "channel": .string(channel), "stream": .string(event.stream),
            "eventType": .string(event.eventType), "timestamp": .string(event.timestamp), "payload": payload, "routing": .object(routing),
        ]
        if event.id.isEmpty {
            out["realtimeOnly"] = true
        } else {
            out["id"] = .string(event.id)
            out["epoch"] = .string(epoch)
        }
        return JSONValue.object(out).jsonText
    }

    private func sendLive(_ channel: String, _ change: LiveChange) async throws {
        try await send(["type": "live", "channel": .string(channel), "op": .string(change.operation.rawValue), "path": .string(change.path.description), "data": change.data])
    }

    private func send(_ message: JSONValue) async throws {
        try await sendText(message.jsonText)
    }

    /// Sends `text` after whatever is queued, keeping the order.
    private func sendText(_ text: String) async throws {
        try await flush()
        try await outbound.send(text: text)
    }

    /// Sends the queued messages, several as one WebSocket message (`SocketWriter.messages`).
    private func flush() async throws {
        guard !outbox.isEmpty else { return }
        let queued = outbox
        outbox = []
        for message in SocketWriter.messages(queued) { try await outbound.send(message) }
    }

    /// Whether `userID` is in the room, remembered until the next tick.
    private func isMember(_ userID: String, of room: String) async throws -> Bool {
        if let known = roomMembership[room] { return known }
        guard StreamKeys.isIdentifier(room, maxLength: 128) else { return false }
        let member = try await services.tree.get(tenant: caller.tenant, path: LivePath(segments: ["rooms", room, "members", userID])) != .null
        roomMembership[room] = member
        return member
    }
}
