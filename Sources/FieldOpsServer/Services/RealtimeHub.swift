import DocumentStore
import NIOCore
import Redis
import Streams
import Synchronization

/// What a realtime listener receives.
enum HubEvent: Sendable {
    /// A message published on one of the listener's channels.
    case message(HubMessage)
    /// The node's pub/sub connection was lost and is back: messages may be missing, so a
    /// listener fills the gap from the streams (or reloads).
    case gap
    /// A timer of the listener's owner fired (keep-alives, access re-checks).
    case tick
}

/// The node's one Redis pub/sub subscription (a pattern over every tenant's channels), shared
/// by all local sockets: each message goes to the listeners of its channel.
///
/// Listeners have bounded queues (`HubListener`): a socket that cannot keep up is cut off rather
/// than growing the server's memory or delaying other sockets. A socket's listener is offered
/// its messages on the socket's event loop, through that loop's `LoopMailbox`: one hop per event
/// loop for all of its sockets, not one per socket.
final class RealtimeHub: Sendable {
    static let pattern = "tenant:{*}:channel:*"

    private struct State {
        var byChannel: [String: Listeners] = [:]
        var all = Listeners()
        /// One per event loop, shared by every group on it.
        var mailboxes: [ObjectIdentifier: LoopMailbox] = [:]
    }

    /// Listeners, and the same grouped by event loop (worked out at the first message after a
    /// change, not per message).
    private struct Listeners {
        private(set) var members: [ObjectIdentifier: HubListener] = [:]
        private var grouped: [ListenerGroup]?

        var isEmpty: Bool { members.isEmpty }
        var count: Int { members.count }

        mutating func insert(_ listener: HubListener) {
            members[ObjectIdentifier(listener)] = listener
            grouped = nil
        }

        mutating func remove(_ listener: HubListener) {
            guard members.removeValue(forKey: ObjectIdentifier(listener)) != nil else { return }
            grouped = nil
        }

        mutating func groups(mailboxes: inout [ObjectIdentifier: LoopMailbox]) -> [ListenerGroup] {
            if let grouped { return grouped }
            var byLoop: [ObjectIdentifier: ListenerGroup] = [:]
            var unbound = ListenerGroup(mailbox: nil)
            for listener in members.values {
                guard let loop = listener.eventLoop else {
                    unbound.listeners.append(listener)
                    continue
                }
                let key = ObjectIdentifier(loop)
                if byLoop[key] == nil {
                    let mailbox = mailboxes[key] ?? LoopMailbox(eventLoop: loop)
                    mailboxes[key] = mailbox
                    byLoop[key] = ListenerGroup(mailbox: mailbox)
                }
                byLoop[key]!.listeners.append(listener)
            }
            let groups = Array(byLoop.values) + (unbound.listeners.isEmpty ? [] : [unbound])
            grouped = groups
            return groups
        }
    }

    /// Listeners offered an event together: through their event loop's mailbox, or (none)
    /// where it arrives.
    private struct ListenerGroup {
        let mailbox: LoopMailbox?
        var listeners: [HubListener] = []

        func offer(_ event: HubEvent) {
            guard let mailbox else { return HubListener.offer(event, to: listeners) }
            mailbox.post(event, to: listeners)
        }
    }

    private let state = Mutex(State())
    private let subscribed = Mutex(false)
    private let subscriber: Mutex<RedisSubscriber?> = Mutex(nil)
    private let ticker: Mutex<Task<Void, Never>?> = Mutex(nil)
    private let configuration: RedisConfiguration
    /// How often listeners that want ticks get one.
    let tickInterval: Duration

    /// - Parameter tickInterval: the heartbeat of realtime sockets; one timer for the whole
    ///   node rather than one per socket.
    init(redisURL: String, tickInterval: Duration = .seconds(5)) throws {
        configuration = try RedisConfiguration(url: redisURL)
        self.tickInterval = tickInterval
    }

    /// Makes sure the subscription is confirmed; the first listener starts it.
    private func subscribe() async {
        if subscribed.withLock({ $0 }) { return }
        let subscriber = self.subscriber.withLock { current -> RedisSubscriber in
            if let current { return current }
            let created = RedisSubscriber(configuration: configuration) { [weak self] event in self?.dispatch(event) }
            current = created
            return created
        }
        await subscriber.psubscribe([Self.pattern])
        subscribed.withLock { $0 = true }
        ticker.withLock { ticker in
            guard ticker == nil else { return }
            ticker = Task { [weak self, tickInterval] in
                while !Task.isCancelled {
                    try? await Task.sleep(for: tickInterval)
                    guard let self else { return }
                    let listeners = self.state.withLock { Array($0.all.members.values) }
                    for listener in listeners where listener.ticks { listener.tick() }
                }
            }
        }
    }

    /// A new listener on `channels`; more can be added later.
    /// - Parameters:
    ///   - ticks: receive `.tick` every `tickInterval`.
    ///   - onOverflow: runs (on the hub's thread) when the listener's queue overflows.
    ///   - onReady: see `HubListener.init`.
    ///   - direct: see `HubListener.init`.
    func listener(
        channels: [String], queueLimit: Int = HubListener.defaultQueueLimit, ticks: Bool = false, onOverflow: (@Sendable () -> Void)? = nil,
        onReady: (@Sendable () -> Void)? = nil, direct: HubListener.DirectDelivery? = nil
    ) async -> HubListener {
        await subscribe()
        let listener = HubListener(queueLimit: queueLimit, ticks: ticks, onOverflow: { [weak self] in
            self?.overflows.wrappingAdd(1, ordering: .relaxed)
            onOverflow?()
        }, onReady: onReady, direct: direct)
        state.withLock { state in
            state.all.insert(listener)
            for channel in channels { state.byChannel[channel, default: Listeners()].insert(listener) }
        }
        return listener
    }

    func add(_ listener: HubListener, channel: String) {
        state.withLock { $0.byChannel[channel, default: Listeners()].insert(listener) }
    }

    func remove(_ listener: HubListener, channel: String) {
        state.withLock { state in
            state.byChannel[channel]?.remove(listener)
            if state.byChannel[channel]?.isEmpty == true { state.byChannel.removeValue(forKey: channel) }
        }
    }

    /// Ends a listener: it receives nothing more.
    func remove(_ listener: HubListener) {
        state.withLock { state in
            state.all.remove(listener)
            for channel in Array(state.byChannel.keys) {
                state.byChannel[channel]?.remove(listener)
                if state.byChannel[channel]?.isEmpty == true { state.byChannel.removeValue(forKey: channel) }
            }
        }
        listener.finish()
    }

    /// Sockets and event streams listening on this node.
    var listenerCount: Int { state.withLock { $0.all.count } }
    /// Listeners cut off since start for falling behind their queue.
    var overflowCount: Int { overflows.load(ordering: .relaxed) }
    private let overflows = Atomic<Int>(0)

    func close() {
        ticker.withLock { $0?.cancel() }
        subscriber.withLock { $0?.close() }
        let listeners = state.withLock { state in
            defer { state = State() }
            return Array(state.all.members.values)
        }
        listeners.forEach { $0.finish() }
    }

    /// On the subscriber's thread: hand each message to its channel's listeners. A gap goes the
    /// same way, so it reaches each listener after the messages before it.
    private func dispatch(_ event: RedisSubscriberEvent) {
        switch event {
        case .patternMessage(_, let channel, let payload), .message(let channel, let payload):
            guard let groups = state.withLock({ $0.byChannel[channel]?.groups(mailboxes: &$0.mailboxes) }) else { return }
            let message = HubEvent.message(HubMessage(channel: channel, payload: payload))
            for group in groups { group.offer(message) }
        case .reconnected:
            let groups = state.withLock { $0.all.groups(mailboxes: &$0.mailboxes) }
            for group in groups { group.offer(.gap) }
        }
    }
}

/// An event loop's hub events, offered there in one go: while the loop is busy, messages pile up
/// here and each socket then gets all of its waiting messages in one write — the busier the
/// node, the larger the batches, and the fewer writes per event.
final class LoopMailbox: Sendable {
    private struct Letter {
        let event: HubEvent
        let listeners: [HubListener]
    }

    let eventLoop: any EventLoop
    private let letters = Mutex<(waiting: [Letter], scheduled: Bool)>(([], false))

    init(eventLoop: any EventLoop) {
        self.eventLoop = eventLoop
    }

    func post(_ event: HubEvent, to listeners: [HubListener]) {
        let schedule = letters.withLock { letters -> Bool in
            letters.waiting.append(Letter(event: event, listeners: listeners))
            defer { letters.scheduled = true }
            return !letters.scheduled
        }
        if schedule { eventLoop.execute { self.deliver() } }
    }

    private func deliver() {
        let waiting = letters.withLock { letters -> [Letter] in
            letters.scheduled = false
            defer { letters.waiting = [] }
            return letters.waiting
        }
        if waiting.count == 1, let letter = waiting.first { return HubListener.offer(letter.event, to: letter.listeners) }
        // Each listener's events, in the order they came, and the listeners in order of first event.
        var order: [HubListener] = []
        var events: [ObjectIdentifier: [HubEvent]] = [:]
        for letter in waiting {
            for listener in letter.listeners {
                let key = ObjectIdentifier(listener)
                if events[key] == nil { order.append(listener) }
                events[key, default: []].append(letter.event)
            }
        }
        for listener in order { listener.offer(events[ObjectIdentifier(listener)] ?? []) }
    }
}

/// One socket's view of the hub: its events in order, with a bounded queue.
///
/// The owner takes everything waiting at once (so a busy socket sends several events per
/// write), either waiting in `next()` or, told by `onReady`, with `take()`; it calls
/// `consumed(bytes:)` once it has sent a message on. When more than `queueLimit` bytes wait,
/// the listener overflows: it ends, `overflowed` is true, and `onOverflow` runs so the owner's
/// socket is closed even if a write to it is stuck.
final class HubListener: Sendable {
    static let defaultQueueLimit = 1 << 20

    private struct State {
        var pending: [HubEvent] = []
        var waiter: CheckedContinuation<[HubEvent]?, Never>?
        var finished = false
    }

    private let state = Mutex(State())
    private let queued = Atomic<Int>(0)
    private let overflow = Atomic<Bool>(false)
    let queueLimit: Int
    /// Receives the hub's heartbeat ticks.
    let ticks: Bool
    private let overflowAction: (@Sendable () -> Void)?
    private let readyAction: (@Sendable () -> Void)?
    private let directDelivery: (@Sendable ([HubMessage]) -> Bool)?
    /// Where messages are offered to the listener (nil: on the hub's thread).
    let eventLoop: (any EventLoop)?

    /// A socket's way past the queue: on its event loop, a function that sends messages at
    /// once and says so, or returns false to have them queued.
    typealias DirectDelivery = (eventLoop: any EventLoop, send: @Sendable ([HubMessage]) -> Bool)

    /// - Parameters:
    ///   - onReady: for an owner that keeps no task waiting in `next()`: runs (where the event
    ///     was offered) when an event arrives or the listener ends; the owner then calls `take()`.
    ///   - direct: messages are offered on its event loop, first to its `send`.
    init(
        queueLimit: Int, ticks: Bool = false, onOverflow: (@Sendable () -> Void)? = nil, onReady: (@Sendable () -> Void)? = nil,
        direct: DirectDelivery? = nil
    ) {
        self.queueLimit = queueLimit
        self.ticks = ticks
        self.overflowAction = onOverflow
        self.readyAction = onReady
        self.eventLoop = direct?.eventLoop
        self.directDelivery = direct?.send
    }

    /// One hub event for several listeners (one array for all of them, not one per listener).
    static func offer(_ event: HubEvent, to listeners: [HubListener]) {
        guard case .message(let message) = event else {
            for listener in listeners { listener.deliver(event, bytes: 0) }
            return
        }
        let messages = [message]
        for listener in listeners { listener.offer(messages) }
    }

    /// Hub events in order: each run of messages as `offer(_: [HubMessage])`, anything else queued.
    func offer(_ events: [HubEvent]) {
        var messages: [HubMessage] = []
        for event in events {
            if case .message(let message) = event {
                messages.append(message)
                continue
            }
            if !messages.isEmpty { offer(messages) }
            messages = []
            deliver(event, bytes: 0)
        }
        if !messages.isEmpty { offer(messages) }
    }

    /// Messages in order: sent on directly if the owner can, else queued.
    func offer(_ messages: [HubMessage]) {
        if let directDelivery, !overflowed, directDelivery(messages) { return }
        for message in messages { deliver(.message(message), bytes: message.payload.count) }
    }

    /// Every event waiting, in order (perhaps none); nil once the listener has ended and
    /// nothing is left.
    func take() -> [HubEvent]? {
        state.withLock { state in
            if state.pending.isEmpty { return state.finished ? nil : [] }
            defer { state.pending = [] }
            return state.pending
        }
    }

    var overflowed: Bool { overflow.load(ordering: .acquiring) }

    /// Every event waiting, in order, after waiting for one if none is; `nil` once the listener
    /// has ended (or the calling task is cancelled) and nothing is left.
    func next() async -> [HubEvent]? {
        await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<[HubEvent]?, Never>) in
                let ready = state.withLock { state -> [HubEvent]?? in
                    if !state.pending.isEmpty {
                        defer { state.pending = [] }
                        return .some(state.pending)
                    }
                    if state.finished || Task.isCancelled { return .some(nil) }
                    state.waiter = continuation
                    return .none
                }
                if let ready { continuation.resume(returning: ready) }
            }
        } onCancel: {
            finish()
        }
    }

    func deliver(_ event: HubEvent, bytes: Int) {
        guard !overflowed else { return }
        let total = queued.wrappingAdd(bytes, ordering: .relaxed).newValue
        if total > queueLimit {
            guard !overflow.exchange(true, ordering: .acquiringAndReleasing) else { return }
            finish()
            overflowAction?()
            return
        }
        enqueue(event)
    }

    /// The owner sent on a message of `bytes`.
    func consumed(bytes: Int) {
        queued.wrappingSubtract(bytes, ordering: .relaxed)
    }

    /// Wakes the owner with `.tick` (does not count against the queue).
    func tick() {
        enqueue(.tick)
    }

    /// Ends the listener: `next()` returns what is left, then `nil`.
    func finish() {
        let (waiter, first) = state.withLock { state -> (CheckedContinuation<[HubEvent]?, Never>?, Bool) in
            defer { state.finished = true; state.waiter = nil }
            return (state.waiter, !state.finished)
        }
        waiter?.resume(returning: nil)
        if first { readyAction?() }
    }

    private func enqueue(_ event: HubEvent) {
        let (waiter, queued) = state.withLock { state -> (CheckedContinuation<[HubEvent]?, Never>?, Bool) in
            guard !state.finished else { return (nil, false) }
            if let waiter = state.waiter {
                state.waiter = nil
                return (waiter, false)
            }
            state.pending.append(event)
            return (nil, true)
        }
        waiter?.resume(returning: [event])
        if queued { readyAction?() }
    }
}

/// One published message, shared by every listener it goes to: what it decodes to and how it
/// is rendered for a client channel are worked out once, not once per socket, and the rendered
/// bytes are shared by every socket's write.
final class HubMessage: Sendable {
    let channel: String
    let payload: [UInt8]
    private let cache = Mutex<(event: StreamEvent??, rendered: [String: ByteBuffer])>((nil, [:]))

    init(channel: String, payload: [UInt8]) {
        self.channel = channel
        self.payload = payload
    }

    var text: String { String(decoding: payload, as: UTF8.self) }

    /// The stream entry the message carries (`id` empty for a realtime-only write), decoded once.
    func event(stream: String, tenant: String) -> StreamEvent? {
        if let cached = cache.withLock({ $0.event }) { return cached }
        let decoded = Self.decode(text, stream: stream, tenant: tenant)
        cache.withLock { $0.event = .some(decoded) }
        return decoded
    }

    /// `render()`'s result for `key`, computed by the first caller only.
    func rendered(_ key: String, _ render: () -> String) -> ByteBuffer {
        if let hit = cache.withLock({ $0.rendered[key] }) { return hit }
        let buffer = ByteBuffer(string: render())
        cache.withLock { $0.rendered[key] = buffer }
        return buffer
    }

    private static func decode(_ text: String, stream: String, tenant: String) -> StreamEvent? {
        guard let value = try? JSONValue(jsonText: text), case .object(let object) = value else { return nil }
        let id = object["id"]?.stringValue ?? ""
        var fields: [(String, String)] = []
        for (key, member) in object where key != "id" && key != "stream" {
            guard let text = member.stringValue else { continue }
            fields.append((key, text))
        }
        return try? StreamEvent(id: id, stream: stream, tenant: tenant, fields: fields)
    }
}
