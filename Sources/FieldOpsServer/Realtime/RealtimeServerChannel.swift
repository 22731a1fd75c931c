import DocumentStore
import HTTPTypes
import Hummingbird
import HummingbirdCore
import Logging
import NIOCore
import NIOHTTP1
import NIOHTTPTypes
import NIOHTTPTypesHTTP1
import NIOWebSocket
import Synchronization

/// HTTP/1.1, where `GET /v1/realtime` with a valid token upgrades to a WebSocket that lives in
/// the connection's channel pipeline (`RealtimeSocketHandler`) instead of in a task.
///
/// A task waiting on a socket keeps its whole async call stack allocated; with Hummingbird's
/// WebSocket support every connected client held several (about 40 kB in all). Here an idle
/// socket holds none: short tasks run only while it has work (`RealtimeConnection`).
///
/// A refused upgrade (another path, a missing or bad token) is answered with the JSON error
/// and the connection closed; a request without an upgrade goes on to the router.
struct RealtimeServerChannel: ServerChildChannel, HTTPChannelHandler {
    enum UpgradeResult: Sendable {
        /// The socket runs in the pipeline from now on.
        case webSocket
        case http(NIOAsyncChannel<HTTPRequestPart, HTTPResponsePart>)
        case refused(NIOAsyncChannel<HTTPRequestPart, HTTPResponsePart>, APIError)
    }

    struct Value: ServerChildChannelValue {
        let upgradeResult: EventLoopFuture<UpgradeResult>
        let channel: any Channel
    }

    let responder: Responder
    let http1: HTTP1Channel.Configuration
    let endpoint: RealtimeEndpoint
    /// See `ServerConfiguration.idleTimeout`; also how long the first request head may take.
    let idleTimeout: TimeAmount

    init(responder: @escaping Responder, idleTimeout: Duration, endpoint: RealtimeEndpoint) {
        self.responder = responder
        self.idleTimeout = TimeAmount(idleTimeout)
        self.http1 = HTTP1Channel.Configuration(idleTimeout: self.idleTimeout)
        self.endpoint = endpoint
    }

    func setup(channel: any Channel, logger: Logger) -> EventLoopFuture<Value> {
        channel.eventLoop.makeCompletedFuture {
            // The upgrade check's answer, for the pipeline set-up or the refusal.
            let check = UpgradeCheck()
            let endpoint = self.endpoint
            let upgrader = NIOTypedWebSocketServerUpgrader<UpgradeResult>(
                maxFrameSize: RealtimeEndpoint.maxInboundBytes,
                shouldUpgrade: { channel, head in
                    let promise = channel.eventLoop.makePromise(of: HTTPHeaders?.self)
                    promise.completeWithTask {
                        let result = await endpoint.authenticate(head)
                        check.result.withLock { $0 = result }
                        return (try? result.get()) == nil ? nil : HTTPHeaders()
                    }
                    return promise.futureResult
                },
                upgradePipelineHandler: { channel, _ in
                    channel.eventLoop.makeCompletedFuture {
                        guard let verified = try? check.result.withLock({ $0 })?.get() else { throw ChannelError.inappropriateOperationForState }
                        try endpoint.start(on: channel, caller: verified)
                        return .webSocket
                    }
                }
            )
            let upgrades = NIOTypedHTTPServerUpgradeConfiguration(
                upgraders: [upgrader],
                notUpgradingCompletionHandler: { channel in
                    channel.eventLoop.makeCompletedFuture {
                        try channel.pipeline.syncOperations.addHandler(HTTP1ToHTTPServerCodec(secure: false))
                        try channel.pipeline.syncOperations.addHandler(ParserErrorAnswer())
                        try channel.pipeline.syncOperations.addHandlers(self.http1.additionalChannelHandlers())
                        try channel.pipeline.syncOperations.addHandler(
                            HTTPConnectionStateHandler(idleTimeout: self.http1.idleTimeout.map { .init($0) }, logger: logger)
                        )
                        let http = try NIOAsyncChannel<HTTPRequestPart, HTTPResponsePart>(
                            wrappingChannelSynchronously: channel, configuration: .init(isOutboundHalfClosureEnabled: true)
                        )
                        if case .failure(let error) = check.result.withLock({ $0 }) { return .refused(http, error) }
                        return .http(http)
                    }
                }
            )
            var configuration = NIOUpgradableHTTPServerPipelineConfiguration<UpgradeResult>(upgradeConfiguration: upgrades)
            // As Hummingbird's own HTTP/1 channel: it pipelines, handles errors and validates
            // headers itself.
            configuration.enablePipelining = false
            configuration.enableErrorHandling = false
            configuration.enableResponseHeaderValidation = false
            configuration.decoderConfiguration.maxHeaderFieldSize = http1.httpDecoder.maxHeaderFieldSize
            configuration.decoderConfiguration.maxHeaderListSize = http1.httpDecoder.maxHeaderListSize
            configuration.decoderConfiguration.maxHeaderFieldCount = http1.httpDecoder.maxHeaderFieldCount
            let result = try channel.pipeline.syncOperations.configureUpgradableHTTPServerPipeline(configuration: configuration)
            try channel.pipeline.syncOperations.addHandler(FirstRequestGuard(headTimeout: self.idleTimeout))
            return Value(upgradeResult: result, channel: channel)
        }
    }

    private final class UpgradeCheck: Sendable {
        let result = Mutex<Result<RealtimeEndpoint.Caller, APIError>?>(nil)
    }

    func handle(value: Value, logger: Logger) async {
        do {
            switch try await value.upgradeResult.get() {
            case .http(let http):
                await handleHTTP(asyncChannel: http, logger: logger)
            case .refused(let http, let error):
                await refuse(http, error)
            case .webSocket:
                // Nothing to wait for: the pipeline serves the socket until it closes.
                break
            }
        } catch {
            // A malformed upgrade (no Sec-WebSocket-Key, another version): nothing more is read.
            logger.debug("connection ended before its first request was handled", metadata: ["error": "\(error)"])
            try? await value.channel.close()
        }
    }

    /// Answers a refused upgrade with its JSON error and closes: after an upgrade request the
    /// connection reads no further requests.
    private func refuse(_ http: NIOAsyncChannel<HTTPRequestPart, HTTPResponsePart>, _ error: APIError) async {
        let (head, body) = error.closingAnswer
        try? await http.executeThenClose { _, outbound in
            try await outbound.write(contentsOf: [.head(head), .body(body), .end(nil)])
        }
    }
}

/// Guards a connection until its first request head is read: a head the decoder refuses (a
/// request line or headers past 80 KiB, malformed syntax) gets a 431 or 400, and one that has
/// not arrived after `headTimeout` a 408, each closing the connection. The upgrade handler waits
/// for a complete head before anything else runs, and the idle timeout starts only after it, so
/// without this such a connection would hang unanswered; from the first complete head on,
/// Hummingbird answers parser errors (in JSON through `ParserErrorAnswer`) and closes idle
/// connections itself.
final class FirstRequestGuard: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    private let headTimeout: TimeAmount
    private var deadline: Scheduled<Void>?

    init(headTimeout: TimeAmount) {
        self.headTimeout = headTimeout
    }

    func handlerAdded(context: ChannelHandlerContext) {
        let seconds = Double(headTimeout.nanoseconds) / 1e9
        deadline = context.eventLoop.assumeIsolated().scheduleTask(in: headTimeout) {
            self.answer(context, APIError(.requestTimeout, code: "request_timeout", message: "no complete request head within \(seconds) s"))
        }
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        deadline?.cancel()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        context.fireChannelRead(data)
        context.pipeline.syncOperations.removeHandler(context: context, promise: nil)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        guard let parserError = error as? HTTPParserError else { return context.fireErrorCaught(error) }
        deadline?.cancel()
        answer(context, Self.refusal(of: parserError))
    }

    /// The answer to a request the HTTP decoder refused.
    static func refusal(of error: HTTPParserError) -> APIError {
        error == .headerOverflow
            ? APIError(
                .init(code: 431, reasonPhrase: "Request Header Fields Too Large"), code: "request_head_too_large",
                message: "the request line and headers are at most 80 KiB"
            )
            : APIError(.badRequest, code: "malformed_request", message: "the request is not valid HTTP/1.1")
    }

    private func answer(_ context: ChannelHandlerContext, _ error: APIError) {
        guard context.channel.isActive else { return }
        let body = ByteBuffer(string: error.body.jsonText)
        var headers = HTTPHeaders()
        headers.add(name: "Content-Type", value: "application/json; charset=utf-8")
        headers.add(name: "Content-Length", value: String(body.readableBytes))
        headers.add(name: "Connection", value: "close")
        let head = HTTPResponseHead(version: .http1_1, status: .init(statusCode: Int(error.status.code)), headers: headers)
        context.write(wrapOutboundOut(.head(head)), promise: nil)
        context.write(wrapOutboundOut(.body(.byteBuffer(body))), promise: nil)
        context.writeAndFlush(wrapOutboundOut(.end(nil))).assumeIsolated().whenComplete { _ in context.close(promise: nil) }
    }
}

/// Gives the answer to a request the decoder refuses after the first (the guard above answers
/// the first) the API's JSON error: Hummingbird answers such a request with an empty 400 and
/// closes. Its answer still goes out in order, after the responses before it; only its head and
/// body are replaced here.
final class ParserErrorAnswer: ChannelDuplexHandler {
    typealias InboundIn = HTTPRequestPart
    typealias InboundOut = HTTPRequestPart
    typealias OutboundIn = HTTPResponsePart
    typealias OutboundOut = HTTPResponsePart

    private var refusal: APIError?

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        if let parserError = error as? HTTPParserError { refusal = FirstRequestGuard.refusal(of: parserError) }
        context.fireErrorCaught(error)
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        guard let refusal, case .head(let head) = unwrapOutboundIn(data), head.status == .badRequest else {
            return context.write(data, promise: promise)
        }
        self.refusal = nil
        let (answer, body) = refusal.closingAnswer
        context.write(wrapOutboundOut(.head(answer)), promise: nil)
        context.write(wrapOutboundOut(.body(body)), promise: promise)
    }
}

extension APIError {
    /// The error as the head and body of an answer after which the connection closes.
    fileprivate var closingAnswer: (HTTPResponse, ByteBuffer) {
        let body = ByteBuffer(string: self.body.jsonText)
        let head = HTTPResponse(status: status, headerFields: [
            .contentType: "application/json; charset=utf-8", .contentLength: String(body.readableBytes), .connection: "close",
        ])
        return (head, body)
    }
}
