import NIOCore
import Streams

/// One channel a socket subscribed to: where its messages come from, what it has sent, and how
/// a hub message becomes a client message. A value, so a socket's event loop can forward with
/// a copy while its session is idle (`DirectRoutes`).
struct RealtimeSubscription: Sendable {
    let channel: RealtimeChannel
    /// The pub/sub channel of its ephemeral messages.
    let ephemeral: String
    var epoch: String? {
        didSet { renderKey = "ws:" + channel.name + "@" + (epoch ?? "") }
    }
    /// Sockets on the same channel and epoch share one rendering of each event.
    private(set) var renderKey: String
    /// The last stream id this socket sent for the channel (or the head when it subscribed).
    var lastSent: String?
    var replaying = true
    var held: [HubMessage] = []

    init(channel: RealtimeChannel, keys: StreamKeys) {
        self.channel = channel
        self.ephemeral = channel.ephemeralChannel(keys)
        self.renderKey = "ws:" + channel.name + "@"
    }

    enum Forwarded {
        /// Nothing for this subscription: filtered out, or already sent.
        case nothing
        /// The client message, rendered once for every socket.
        case send(ByteBuffer)
        /// Only the session can tell: a live change, or whether a notification is for this user.
        case needsSession
    }

    /// Whether messages of `source` can be forwarded without the session (no room membership
    /// to look up, no live change to decode).
    func forwardsWithoutSession(from source: String) -> Bool {
        if source == ephemeral { return true }
        switch channel.source {
        case .live, .stream(_, .recipient): return false
        case .stream(_, .routing), .stream(_, nil): return true
        }
    }

    /// What `message` becomes for this subscription, advancing `lastSent` past a stream entry.
    /// - Parameter matched: for a filter only the session evaluates (`.recipient`), its answer.
    mutating func forward(_ message: HubMessage, tenant: String, matched: Bool? = nil) -> Forwarded {
        if message.channel == ephemeral { return .send(message.rendered("raw") { message.text }) }
        guard case .stream(let stream, let filter) = channel.source else { return .needsSession }
        guard let event = message.event(stream: stream, tenant: tenant) else { return .nothing }
        let isMatch: Bool
        switch filter {
        case nil: isMatch = true
        case .routing(let field, let value): isMatch = event.routingValue(field) == value
        case .recipient:
            guard let matched else { return .needsSession }
            isMatch = matched
        }
        let name = channel.name
        if event.id.isEmpty {
            // A realtime-only write: no id, so nothing to resume to or deduplicate.
            guard isMatch else { return .nothing }
            return .send(message.rendered(renderKey) { RealtimeSession.eventText(event, channel: name, epoch: "") })
        }
        // Already sent by a replay, or older than where this subscription started.
        if let lastSent, !streamID(lastSent, isLessThan: event.id) { return .nothing }
        lastSent = event.id
        guard isMatch else { return .nothing }
        let epoch = self.epoch ?? ""
        return .send(message.rendered(renderKey) { RealtimeSession.eventText(event, channel: name, epoch: epoch) })
    }
}

/// What a session hands to its socket's event loop while it is idle: the subscriptions fed by
/// each pub/sub channel whose messages need nothing from the session. The loop forwards those
/// messages itself, advancing the copies' `lastSent`; the session takes the copies back before
/// it handles anything else, so the two never both send.
struct DirectRoutes: Sendable {
    let tenant: String
    private(set) var subscriptions: [RealtimeSubscription] = []
    /// Pub/sub channel → indices into `subscriptions`.
    private var byChannel: [String: [Int]] = [:]

    init(tenant: String) {
        self.tenant = tenant
    }

    /// Routes `source` to `routed` (each kept once however many channels feed it), unless one
    /// of them needs its session for it or is still replaying; false then.
    @discardableResult
    mutating func add(source: String, _ routed: [RealtimeSubscription]) -> Bool {
        guard routed.allSatisfy({ !$0.replaying && $0.forwardsWithoutSession(from: source) }) else { return false }
        byChannel[source] = routed.map { subscription in
            if let index = subscriptions.firstIndex(where: { $0.channel.name == subscription.channel.name }) { return index }
            subscriptions.append(subscription)
            return subscriptions.count - 1
        }
        return true
    }

    /// The client messages `messages` become, in order; nil (and nothing changed) when one of
    /// them comes from a channel not routed here: the session decides.
    mutating func forward(_ messages: [HubMessage]) -> [ByteBuffer]? {
        guard messages.allSatisfy({ byChannel[$0.channel] != nil }) else { return nil }
        var out: [ByteBuffer] = []
        for message in messages {
            for index in byChannel[message.channel] ?? [] {
                switch subscriptions[index].forward(message, tenant: tenant) {
                case .send(let bytes): out.append(bytes)
                case .nothing: continue
                case .needsSession:
                    // `add` keeps only channels that need no session.
                    preconditionFailure("a direct route needs the session")
                }
            }
        }
        return out
    }
}
