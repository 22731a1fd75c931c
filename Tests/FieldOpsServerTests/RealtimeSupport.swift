import DocumentStore
import Foundation
#if canImport(Glibc)
import Glibc
#endif
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

/// A WebSocket client reduced to a TCP socket: it upgrades, can send one text frame, and
/// otherwise never reads or answers a ping — a client that vanished without closing.
final class RawWebSocket: Sendable {
    private let fd: Int32

    /// Connects on a thread of its own: the handshake blocks, and a blocked cooperative thread
    /// can starve the in-process server it is waiting for.
    static func open(port: Int, token: String) async throws -> RawWebSocket {
        try await withCheckedThrowingContinuation { continuation in
            Thread { continuation.resume(with: Result { try RawWebSocket(port: port, token: token) }) }.start()
        }
    }

    private init(port: Int, token: String) throws {
        fd = try loopbackSocket(port: port)
        try write(Array((
            "GET /v1/realtime HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            + "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\nAuthorization: Bearer \(token)\r\n\r\n"
        ).utf8))
        // Read the 101 answer (and perhaps the welcome), then never read again.
        var buffer = [UInt8](repeating: 0, count: 4_096)
        let count = read(fd, &buffer, buffer.count)
        guard count > 0, String(decoding: buffer[..<count], as: UTF8.self).hasPrefix("HTTP/1.1 101") else { throw POSIXError(.EPROTO) }
    }

    /// One masked text frame, as a client must send.
    func send(_ text: String) throws {
        let payload = Array(text.utf8)
        precondition(payload.count < 126)
        let mask: [UInt8] = [1, 2, 3, 4]
        try write([0x81, 0x80 | UInt8(payload.count)] + mask + payload.enumerated().map { $0.element ^ mask[$0.offset % 4] })
    }

    private func write(_ bytes: [UInt8]) throws {
        guard Glibc.write(fd, bytes, bytes.count) == bytes.count else { throw POSIXError(.EIO) }
    }

    func close() {
        Glibc.close(fd)
    }
}

/// A blocking TCP socket connected to 127.0.0.1:`port`; use it on a thread of its own.
func loopbackSocket(port: Int) throws -> Int32 {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_port = in_port_t(UInt16(port).bigEndian)
    inet_pton(AF_INET, "127.0.0.1", &address.sin_addr)
    let connected = withUnsafePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
    }
    guard connected == 0 else {
        close(fd)
        throw POSIXError(.ECONNREFUSED)
    }
    return fd
}

/// Sends `request` on a new connection and returns everything the server sends until it
/// closes (or 5 s pass); on a thread of its own, as the socket blocks.
func rawExchange(port: Int, _ request: String) async throws -> String {
    try await rawExchange(port: port, request, waiting: 5).text
}

/// As `rawExchange`, waiting up to `seconds` for more bytes; `closed` says whether the server
/// closed the connection (rather than the wait running out).
func rawExchange(port: Int, _ request: String, waiting seconds: Int) async throws -> (text: String, closed: Bool) {
    try await withCheckedThrowingContinuation { continuation in
        Thread {
            continuation.resume(with: Result {
                let fd = try loopbackSocket(port: port)
                defer { close(fd) }
                var timeout = timeval(tv_sec: seconds, tv_usec: 0)
                setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
                let bytes = Array(request.utf8)
                guard write(fd, bytes, bytes.count) == bytes.count else { throw POSIXError(.EIO) }
                var received: [UInt8] = []
                var buffer = [UInt8](repeating: 0, count: 4_096)
                while true {
                    let count = read(fd, &buffer, buffer.count)
                    guard count > 0 else {
                        // 0: the server closed; -1 with EAGAIN: the wait ran out.
                        return (String(decoding: received, as: UTF8.self), count == 0 || errno == ECONNRESET)
                    }
                    received += buffer[..<count]
                }
            })
        }.start()
    }
}
