import DocumentStore
import Foundation
import HTTPTypes
import Hummingbird
import LiveTree
import ServiceLifecycle
import Streams

/// `GET /v1/live/{path}` with `Accept: text/event-stream`: the subtree's changes in the
/// Realtime Database REST streaming form, so a stock `EventSource` works.
///
/// ```
/// event: put
/// data: {"path":"/","data":{…the subtree now…}}
///
/// event: patch
/// data: {"path":"/w-7","data":{"status":"busy"}}
///
/// : keep-alive
///
/// event: cancel            (the caller may no longer read the path)
/// event: auth_revoked      (the token expired)
/// ```
///
/// The first `put` is the whole subtree; the stream listens before reading it, so no change
/// falls between the two. After the node's pub/sub connection was lost, a fresh `put` of the
/// subtree replaces whatever was missed.
struct LiveEventStream: Sendable {
    let tree: LiveTree
    let access: LiveAccess
    let hub: RealtimeHub
    let keepAlive: Duration

    func response(for caller: Identity, path: LivePath, context: FieldOpsRequestContext) async throws -> Response {
        let channel = try liveCall { try StreamKeys(tenant: caller.tenant).liveChanges }
        let listener = await hub.listener(channels: [channel])
        let snapshot: JSONValue
        do {
            snapshot = try await liveCall { try await self.tree.get(tenant: caller.tenant, path: path) }
        } catch {
            hub.remove(listener)
            throw error
        }
        let expires = context.identityExpires
        let (tree, access, hub, keepAlive) = (self.tree, self.access, self.hub, self.keepAlive)
        let body = ResponseBody { writer in
            let ticker = Task {
                while !Task.isCancelled {
                    try await Task.sleep(for: keepAlive)
                    listener.tick()
                }
            }
            defer {
                ticker.cancel()
                hub.remove(listener)
            }
            try await writer.write(ByteBuffer(string: Self.event(LiveChange(.put, path: .root, data: snapshot))))
            try await withGracefulShutdownHandler {
                try await Self.forward(listener, to: &writer, caller: caller, path: path, expires: expires, tree: tree, access: access)
            } onGracefulShutdown: {
                // The server stops: end the stream so the shutdown does not wait for the client.
                listener.finish()
            }
            try await writer.finish(nil)
        }
        return Response(
            status: .ok,
            headers: [.contentType: "text/event-stream", .cacheControl: "no-cache", HTTPField.Name("X-Accel-Buffering")!: "no"],
            body: body
        )
    }

    private static func forward(
        _ listener: HubListener, to writer: inout any ResponseBodyWriter, caller: Identity, path: LivePath, expires: Date?, tree: LiveTree, access: LiveAccess
    ) async throws {
        stream: while let batch = await listener.next() {
            for event in batch {
            switch event {
            case .message(let message):
                listener.consumed(bytes: message.payload.count)
                let bytes = message.rendered("sse:" + path.description) {
                    (LiveChange.decode(message: message.text) ?? []).flatMap { $0.events(for: path) }.map(Self.event).joined()
                }
                if bytes.readableBytes > 0 { try await writer.write(bytes) }
            case .gap:
                let fresh = try await tree.get(tenant: caller.tenant, path: path)
                try await writer.write(ByteBuffer(string: Self.event(LiveChange(.put, path: .root, data: fresh))))
            case .tick:
                if let expires, expires <= Date() {
                    try await writer.write(ByteBuffer(string: "event: auth_revoked\ndata: \"credential is no longer valid\"\n\n"))
                    break stream
                }
                guard try await access.mayRead(caller, path) else {
                    try await writer.write(ByteBuffer(string: "event: cancel\ndata: null\n\n"))
                    break stream
                }
                try await writer.write(ByteBuffer(string: ": keep-alive\n\n"))
            }
            }
        }
        // A reader too slow for its queue simply loses the stream; EventSource reconnects
        // and starts again from a fresh snapshot.
    }

    static func event(_ change: LiveChange) -> String {
        let data: JSONValue = ["path": .string(change.path.description), "data": change.data]
        return "event: \(change.operation.rawValue)\ndata: \(data.jsonText)\n\n"
    }
}
