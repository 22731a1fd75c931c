import DocumentStore
import Domain

/// One stream event as `/v1/realtime` delivers it (or as a REST read replays it).
public struct BoardEvent: Sendable, Hashable {
    public var channel: String
    public var stream: String
    /// Stream id; empty for realtime-only events.
    public var id: String
    public var epoch: String
    public var eventType: String
    /// Milliseconds since 1970, from the stream id (the producer's clock when there is none).
    public var time: Int64
    public var payload: JSONValue

    public init(channel: String, stream: String, id: String, epoch: String, eventType: String, time: Int64, payload: JSONValue) {
        self.channel = channel
        self.stream = stream
        self.id = id
        self.epoch = epoch
        self.eventType = eventType
        self.time = time
        self.payload = payload
    }

    /// An `event` message of the realtime protocol; nil for any other message.
    public init?(message: JSONValue) {
        guard message["type"]?.stringValue == "event", let channel = message["channel"]?.stringValue,
              let eventType = message["eventType"]?.stringValue else { return nil }
        let id = message["id"]?.stringValue ?? ""
        let milliseconds = id.split(separator: "-").first.flatMap { Int64($0) }
        self.init(
            channel: channel, stream: message["stream"]?.stringValue ?? "", id: id, epoch: message["epoch"]?.stringValue ?? "",
            eventType: eventType, time: milliseconds ?? message["timestamp"]?.stringValue.flatMap(ISOTime.milliseconds) ?? 0,
            payload: message["payload"] ?? .null
        )
    }
}
