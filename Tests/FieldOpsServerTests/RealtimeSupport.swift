import DocumentStore
import Foundation
import HTTPTypes
import HummingbirdWSClient
import Logging
import NIOWebSocket
import Synchronization

/// A `/v1/realtime` client over a real socket: sends commands, collects what the server sends.
final class RealtimeTestClient: Sendable {
    private final class Inbox: Sendable {
        let state = Mutex<(messages: [JSONValue], ended: Bool, closeCode: WebSocketErrorCode?)>(([], false, nil))
    }

    private let inbox = Inbox()
    private let commands: AsyncStream<String>.Continuation
    private let running: Task<Void, any Error>

    /// - Parameter reading: false makes a client that never reads what the server sends (a
    ///   stalled phone): its socket's buffers fill up and the server's writes to it stall.
    init(port: Int, token: String?, query: String = "", reading: Bool = true) {
        let (outgoing, continuation) = AsyncStream<String>.makeStream()
        commands = continuation
        let inbox = self.inbox
        running = Task {
            var headers = HTTPFields()
            if let token { headers[.authorization] = "Bearer \(token)" }
            let frame = try? await WebSocketClient.connect(
                url: "ws://127.0.0.1:\(port)/v1/realtime\(query)",
                configuration: .init(maxFrameSize: 1 << 21, additionalHeaders: headers),
                logger: Logger(label: "test.realtime")
            ) { inbound, outbound, _ in
                try await withThrowingTaskGroup(of: Void.self) { group in
                    group.addTask {
                        for await text in outgoing { try await outbound.write(.text(text)) }
                        try await outbound.close(.normalClosure, reason: nil)
                    }
                    group.addTask {
                        guard reading else {
                            try await Task.sleep(for: .seconds(3_600))
                            return
                        }
                        for try await message in inbound.messages(maxSize: 1 << 22) {
                            // One WebSocket message may carry several, one JSON object per line.
                            guard case .text(let text) = message else { continue }
                            let values = text.split(separator: "\n").compactMap { try? JSONValue(jsonText: String($0)) }
                            inbox.state.withLock { $0.messages.append(contentsOf: values) }
                        }
                    }
                    try await group.next()
                    group.cancelAll()
                }
            }
            inbox.state.withLock { state in
                state.ended = true
                state.closeCode = frame?.closeCode
            }
        }
    }

    deinit {
        commands.finish()
        running.cancel()
    }

    func send(_ message: JSONValue) {
        commands.yield(message.jsonText)
    }

    /// Closes the socket politely.
    func close() {
        commands.finish()
    }

    /// Drops the connection without a close handshake.
    func drop() {
        running.cancel()
    }

    var messages: [JSONValue] { inbox.state.withLock { $0.messages } }
    var ended: Bool { inbox.state.withLock { $0.ended } }
    var closeCode: WebSocketErrorCode? { inbox.state.withLock { $0.closeCode } }

    /// The messages of one type (and channel).
    func messages(_ type: String, channel: String? = nil) -> [JSONValue] {
        messages.filter { $0["type"]?.stringValue == type && (channel == nil || $0["channel"]?.stringValue == channel) }
    }

    /// The events received on `channel`, in order.
    func events(_ channel: String) -> [JSONValue] { messages("event", channel: channel) }

    /// Waits for a message that satisfies `match`.
    func waitFor(timeout: Duration = .seconds(10), _ match: @escaping @Sendable (JSONValue) -> Bool) async throws -> JSONValue? {
        guard try await eventually(timeout: timeout, { self.messages.contains(where: match) }) else { return nil }
        return messages.first(where: match)
    }

    /// Sends a command with `id` and waits for the reply carrying that id.
    func request(_ message: JSONObject, timeout: Duration = .seconds(10)) async throws -> JSONValue? {
        var message = message
        let id = "r\(UInt32.random(in: 0...UInt32.max))"
        message["id"] = .string(id)
        send(.object(message))
        return try await waitFor(timeout: timeout) { $0["id"]?.stringValue == id }
    }
}
