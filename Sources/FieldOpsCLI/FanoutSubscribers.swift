import NIOCore
import NIOPosix

/// The fan-out benchmark's WebSocket clients: each a NIO channel on the shared event loops
/// that upgrades, subscribes, answers pings and reads frames in its handler — no task per
/// socket and one lock per read for the receipts, so a thousand of them leave the machine's
/// cores to the server being measured.
enum FanoutSubscribers {
    /// Opens a client on `/v1/realtime` that subscribes to `channel` (nil: stays idle).
    static func connect(port: Int, token: String, channel: String?, receipts: Receipts) -> EventLoopFuture<any Channel> {
        ClientBootstrap(group: NIOSingletons.posixEventLoopGroup)
            .channelOption(.socketOption(.tcp_nodelay), value: 1)
            .channelInitializer { [channel] connection in
                connection.eventLoop.makeCompletedFuture {
                    try connection.pipeline.syncOperations.addHandler(Handler(port: port, token: token, subscribeTo: channel, receipts: receipts))
                }
            }
            .connect(host: "127.0.0.1", port: port)
    }

    private final class Handler: ChannelInboundHandler {
        typealias InboundIn = ByteBuffer
        typealias OutboundOut = ByteBuffer

        private let request: String
        private let subscription: String?
        private let receipts: Receipts
        private var buffer = ByteBuffer()
        private var upgraded = false

        init(port: Int, token: String, subscribeTo channel: String?, receipts: Receipts) {
            request = "GET /v1/realtime HTTP/1.1\r\nHost: 127.0.0.1:\(port)\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                + "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\nAuthorization: Bearer \(token)\r\n\r\n"
            subscription = channel.map { #"{"type":"subscribe","channel":"\#($0)"}"# }
            self.receipts = receipts
        }

        func channelActive(context: ChannelHandlerContext) {
            context.writeAndFlush(wrapOutboundOut(ByteBuffer(string: request)), promise: nil)
        }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            var incoming = unwrapInboundIn(data)
            buffer.writeBuffer(&incoming)
            if !upgraded {
                guard let end = buffer.withUnsafeReadableBytes({ Self.find(Array("\r\n\r\n".utf8), in: $0, from: 0) }) else { return }
                let head = buffer.readString(length: end + 4) ?? ""
                guard head.hasPrefix("HTTP/1.1 101") else {
                    context.close(promise: nil)
                    return
                }
                upgraded = true
                if let subscription { send(context, opcode: 0x1, Array(subscription.utf8)) }
            }
            var sentAt: [UInt64] = []
            var welcomed = false, acknowledged = false
            while let (opcode, payload) = nextFrame() {
                switch opcode {
                case 0x1, 0x0:
                    if !Self.sendTimes(payload, into: &sentAt) {
                        welcomed = welcomed || Self.contains(Self.welcomeMarker, payload)
                        acknowledged = acknowledged || Self.contains(Self.subscribedMarker, payload)
                    }
                case 0x9:
                    send(context, opcode: 0xA, Array(payload.readableBytesView))
                case 0x8:
                    context.close(promise: nil)
                default:
                    break
                }
            }
            buffer.discardReadBytes()
            receipts.note(sentAt: sentAt, welcomed: welcomed, acknowledged: acknowledged)
        }

        /// The next complete frame from the server (unmasked), if one is buffered.
        private func nextFrame() -> (opcode: UInt8, payload: ByteBuffer)? {
            let view = buffer.readableBytesView
            guard view.count >= 2 else { return nil }
            let first = view[view.startIndex], second = view[view.startIndex + 1] & 0x7F
            var header = 2
            var length = Int(second)
            if second == 126 {
                guard view.count >= 4 else { return nil }
                length = Int(view[view.startIndex + 2]) << 8 | Int(view[view.startIndex + 3])
                header = 4
            } else if second == 127 {
                guard view.count >= 10 else { return nil }
                length = (2..<10).reduce(0) { $0 << 8 | Int(view[view.startIndex + $1]) }
                header = 10
            }
            guard view.count >= header + length else { return nil }
            buffer.moveReaderIndex(forwardBy: header)
            return (first & 0x0F, buffer.readSlice(length: length)!)
        }

        /// A masked client frame.
        private func send(_ context: ChannelHandlerContext, opcode: UInt8, _ payload: [UInt8]) {
            precondition(payload.count < 126)
            let mask: [UInt8] = [0x12, 0x34, 0x56, 0x78]
            var frame = context.channel.allocator.buffer(capacity: 6 + payload.count)
            frame.writeBytes([0x80 | opcode, 0x80 | UInt8(payload.count)] + mask)
            frame.writeBytes(payload.enumerated().map { $0.element ^ mask[$0.offset % 4] })
            context.writeAndFlush(wrapOutboundOut(frame), promise: nil)
        }

        /// The send times of the events in a message (`"text":"t=NANOSECONDS"`, several when
        /// the server batched events one per line); false when there is none.
        static func sendTimes(_ payload: ByteBuffer, into times: inout [UInt64]) -> Bool {
            payload.withUnsafeReadableBytes { bytes in
                var found = false
                var from = 0
                while let start = find(textMarker, in: bytes, from: from) {
                    var value: UInt64 = 0
                    var index = start + textMarker.count
                    while index < bytes.count, bytes[index] >= 0x30, bytes[index] <= 0x39 {
                        value = value * 10 + UInt64(bytes[index] - 0x30)
                        index += 1
                    }
                    if value > 0 {
                        times.append(value)
                        found = true
                    }
                    from = index
                }
                return found
            }
        }

        static func contains(_ marker: [UInt8], _ payload: ByteBuffer) -> Bool {
            payload.withUnsafeReadableBytes { find(marker, in: $0, from: 0) != nil }
        }

        static let textMarker = Array(#""text":"t="#.utf8)
        static let welcomeMarker = Array(#""type":"welcome""#.utf8)
        static let subscribedMarker = Array(#""type":"subscribed""#.utf8)

        /// Where `marker` first occurs in `bytes` at or after `from`. A plain loop: Foundation's
        /// generic `firstRange(of:)` took a fifth of the client's CPU.
        private static func find(_ marker: [UInt8], in bytes: UnsafeRawBufferPointer, from: Int) -> Int? {
            guard let first = marker.first, bytes.count >= marker.count else { return nil }
            var index = from
            let last = bytes.count - marker.count
            while index <= last {
                if bytes[index] == first {
                    var offset = 1
                    while offset < marker.count, bytes[index + offset] == marker[offset] { offset += 1 }
                    if offset == marker.count { return index }
                }
                index += 1
            }
            return nil
        }
    }
}
