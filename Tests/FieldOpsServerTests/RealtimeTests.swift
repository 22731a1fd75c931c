import DocumentStore
import FieldOpsServer
import Foundation
import NIOCore
import NIOWebSocket
import LiveTree
import Redis
import Streams
import Synchronization
import Testing

@Suite("/v1/realtime: WebSocket channels with gap-free resume")
final class RealtimeTests: Sendable {
    let fixture: APIFixture

    init() async throws {
        // A client must answer a ping within one heartbeat or lose its socket: 2 s, not less, so
        // an in-process client on a busy 2-core machine is never cut off mid-test.
        fixture = try await APIFixture(keepAlive: .milliseconds(300), heartbeat: .seconds(2))
    }

    /// Posts `count` chat messages to room `ops`; their stream ids.
    @discardableResult
    static func post(_ api: APIClient, _ token: String, _ count: Int, from start: Int = 0) async throws -> [String] {
        var ids: [String] = []
        for n in start..<(start + count) {
            let reply = try await api.call(.post, "/v1/rooms/ops/messages", token: token, json: ["text": "message \(n)"])
            #expect(reply.status == .created, "\(reply.object)")
            ids.append(reply["streamId"] as? String ?? "")
        }
        return ids
    }

    static func makeRoom(_ api: APIClient, _ token: String, members: [String] = ["w-1"]) async throws {
        let room = try await api.call(.post, "/v1/rooms", token: token, json: ["roomId": "ops", "name": "Ops", "members": members])
        #expect(room.status == .created, "\(room.object)")
    }

    @Test func refusedUpgradesAreAnsweredWithJSONErrorsAndAPlainGETIsTold() async throws {
        let token = try await fixture.token(.dispatcher, sub: "d-1")
        try await fixture.testLive { (api: APIClient, port: Int) async throws in
            let upgrade = "Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
            func answer(_ path: String, _ headers: String) async throws -> String {
                try await rawExchange(port: port, "GET \(path) HTTP/1.1\r\nHost: 127.0.0.1\r\n\(headers)\r\n")
            }
            let noToken = try await answer("/v1/realtime", upgrade)
            #expect(noToken.hasPrefix("HTTP/1.1 401"), "\(noToken)")
            #expect(noToken.contains(#""code":"missing_token""#))
            let badToken = try await answer("/v1/realtime?auth=not.a.token", upgrade)
            #expect(badToken.hasPrefix("HTTP/1.1 401"), "\(badToken)")
            #expect(badToken.contains(#""code":"invalid_token""#))
            let otherPath = try await answer("/v1/tasks", upgrade + "Authorization: Bearer \(token)\r\n")
            #expect(otherPath.hasPrefix("HTTP/1.1 404"), "\(otherPath)")
            let upgraded = try await answer("/v1/realtime?auth=\(token)", upgrade)
            #expect(upgraded.hasPrefix("HTTP/1.1 101"), "\(upgraded)")
            #expect(upgraded.contains(#""type":"welcome""#))
            let plain = try await api.call(.get, "/v1/realtime", token: token)
            #expect(plain.status == .badRequest)
            #expect(plain.errorCode == "websocket_required")
            // A first request the HTTP decoder refuses is answered and closed, not left hanging.
            let huge = try await rawExchange(port: port, "GET /v1/live/\(String(repeating: "a", count: 100_000)) HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
            #expect(huge.hasPrefix("HTTP/1.1 431"), "\(huge.prefix(300))")
            #expect(huge.contains(#""code":"request_head_too_large""#))
            let garbage = try await rawExchange(port: port, "NOT HTTP AT ALL\r\n\r\n")
            #expect(garbage.hasPrefix("HTTP/1.1 400"), "\(garbage.prefix(300))")
            #expect(garbage.contains(#""code":"malformed_request""#))
            // So is one the decoder refuses later on a keep-alive connection, after the answers
            // before it.
            let later = try await rawExchange(port: port, "GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\nNOT HTTP AT ALL\r\n\r\n")
            let answers = later.components(separatedBy: "HTTP/1.1 ").dropFirst()
            #expect(answers.count == 2 && answers.first?.hasPrefix("200") == true, "\(later.prefix(600))")
            #expect(answers.last?.hasPrefix("400") == true && answers.last?.contains(#""code":"malformed_request""#) == true, "\(later.prefix(600))")
            #expect(answers.last?.lowercased().contains("content-type: application/json") == true)
            let longHead = try await rawExchange(port: port, "GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\nGET /v1/live/\(String(repeating: "a", count: 100_000)) HTTP/1.1\r\n\r\n")
            #expect(longHead.contains("HTTP/1.1 431") && longHead.contains(#""code":"request_head_too_large""#), "\(longHead.prefix(600))")
        }
    }

    @Test func idleAndStalledConnectionsAreClosed() async throws {
        let quick = try await APIFixture(idleTimeout: .seconds(1))
        try await quick.testLive { (_: APIClient, port: Int) async throws in
            // A request head that never completes gets a 408 once the idle timeout has passed.
            let stalled = try await rawExchange(port: port, "GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n")
            #expect(stalled.hasPrefix("HTTP/1.1 408"), "\(stalled.prefix(300))")
            #expect(stalled.contains(#""code":"request_timeout""#))
            // A keep-alive connection is answered, then closed by the server once idle.
            let idle = try await rawExchange(port: port, "GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n", waiting: 20)
            #expect(idle.text.hasPrefix("HTTP/1.1 200"), "\(idle.text.prefix(300))")
            #expect(idle.closed)
        }
    }

    @Test func subscribeReceivesEventsWithIDsAndEpoch() async throws {
        let dispatcher = try await fixture.token(.dispatcher, sub: "d-1")
        let worker = try await fixture.token(.worker, sub: "w-1")
        try await fixture.testLive { (api: APIClient, port: Int) async throws in
            try await Self.makeRoom(api, dispatcher)
            let client = RealtimeTestClient(port: port, token: worker)
            defer { client.close() }
            #expect(try await client.waitFor { $0["type"] == "welcome" }?["sub"] == "w-1")
            let ack = try #require(try await client.request(["type": "subscribe", "channel": "room:ops"]))
            #expect(ack["type"] == "subscribed")
            let epoch = try #require(ack["epoch"]?.stringValue)
            let ids = try await Self.post(api, dispatcher, 3)
            #expect(try await eventually { client.events("room:ops").count == 3 })
            let events = client.events("room:ops")
            #expect(events.compactMap { $0["id"]?.stringValue } == ids)
            #expect(events.allSatisfy { $0["epoch"]?.stringValue == epoch && $0["eventType"] == "message.created" && $0["stream"] == "chat:ops" })
            #expect(events[0]["payload"]?["text"] == "message 0")
            #expect(try await client.request(["type": "ping"])?["type"] == "pong")
        }
    }

    @Test func resumeReplaysWhatWasMissedWithoutGapOrDuplicate() async throws {
        let dispatcher = try await fixture.token(.dispatcher, sub: "d-1")
        try await fixture.testLive { (api: APIClient, port: Int) async throws in
            try await Self.makeRoom(api, dispatcher)
            let first = RealtimeTestClient(port: port, token: dispatcher)
            let ack = try #require(try await first.request(["type": "subscribe", "channel": "room:ops"]))
            let epoch = try #require(ack["epoch"]?.stringValue)
            let seen = try await Self.post(api, dispatcher, 2)
            #expect(try await eventually { first.events("room:ops").count == 2 })
            first.close()
            #expect(try await eventually { first.ended })

            // Missed while away, and more arriving while the client resumes: the seam.
            let missed = try await Self.post(api, dispatcher, 5, from: 2)
            let second = RealtimeTestClient(port: port, token: dispatcher)
            defer { second.close() }
            let writing = Task { try await Self.post(api, dispatcher, 20, from: 7) }
            let resumed = try #require(try await second.request(["type": "subscribe", "channel": "room:ops", "resume": ["lastId": .string(seen[1]), "epoch": .string(epoch)]]))
            #expect(resumed["recovered"] == true)
            let during = try await writing.value
            let expected = missed + during
            #expect(try await eventually { second.events("room:ops").count >= expected.count })
            try await Task.sleep(for: .milliseconds(300))
            let received = second.events("room:ops").compactMap { $0["id"]?.stringValue }
            #expect(received == expected, "received \(received.count), expected \(expected.count)")
        }
    }

    @Test func resumeAfterTrimOrANewEpochSaysNotRecoveredAndSendsNothingPartial() async throws {
        let dispatcher = try await fixture.token(.dispatcher, sub: "d-1")
        try await fixture.testLive { (api: APIClient, port: Int) async throws in
            try await Self.makeRoom(api, dispatcher)
            let client = RealtimeTestClient(port: port, token: dispatcher)
            defer { client.close() }
            let epoch = try #require(try await client.request(["type": "subscribe", "channel": "room:ops"])?["epoch"]?.stringValue)
            _ = try await client.request(["type": "unsubscribe", "channel": "room:ops"])
            let ids = try await Self.post(api, dispatcher, 10)
            let redis = try RedisConnection(url: self.fixture.server.url)
            _ = try redis.command("XTRIM", "tenant:{acme}:stream:chat:ops", "MAXLEN", "3")

            let trimmed = try #require(try await client.request(["type": "subscribe", "channel": "room:ops", "resume": ["lastId": .string(ids[2]), "epoch": .string(epoch)]]))
            #expect(trimmed["recovered"] == false)
            #expect(trimmed["reason"]?.stringValue?.contains("trimmed") == true)
            try await Task.sleep(for: .milliseconds(200))
            #expect(client.events("room:ops").isEmpty)
            // From here on it follows live.
            let next = try await Self.post(api, dispatcher, 1, from: 10)
            #expect(try await eventually { client.events("room:ops").compactMap { $0["id"]?.stringValue } == next })

            _ = try await client.request(["type": "unsubscribe", "channel": "room:ops"])
            let stale = try #require(try await client.request(["type": "subscribe", "channel": "room:ops", "resume": ["lastId": .string(ids[9]), "epoch": "not-the-epoch"]]))
            #expect(stale["recovered"] == false)
            #expect(stale["reason"]?.stringValue?.contains("epoch") == true)
        }
    }

    @Test func aLostPubSubConnectionLosesNothing() async throws {
        let dispatcher = try await fixture.token(.dispatcher, sub: "d-1")
        try await fixture.testLive { (api: APIClient, port: Int) async throws in
            try await Self.makeRoom(api, dispatcher)
            let client = RealtimeTestClient(port: port, token: dispatcher)
            defer { client.close() }
            #expect(try await client.request(["type": "subscribe", "channel": "room:ops"])?["type"] == "subscribed")
            let before = try await Self.post(api, dispatcher, 3)
            let redis = try RedisConnection(url: self.fixture.server.url)
            #expect((try redis.command("CLIENT", "KILL", "TYPE", "pubsub").int ?? 0) >= 1)
            // Published while the node's subscription is down: pub/sub drops these.
            let during = try await Self.post(api, dispatcher, 10, from: 3)
            #expect(try await eventually { client.events("room:ops").count >= 13 })
            let after = try await Self.post(api, dispatcher, 2, from: 13)
            let expected = before + during + after
            #expect(try await eventually { client.events("room:ops").count >= expected.count })
            try await Task.sleep(for: .milliseconds(200))
            #expect(client.events("room:ops").compactMap { $0["id"]?.stringValue } == expected)
        }
    }

    @Test func eventsKeepStreamOrderWhileTheSocketTalksToo() async throws {
        let dispatcher = try await fixture.token(.dispatcher, sub: "d-1")
        try await fixture.testLive { (api: APIClient, port: Int) async throws in
            try await Self.makeRoom(api, dispatcher)
            let client = RealtimeTestClient(port: port, token: dispatcher)
            defer { client.close() }
            #expect(try await client.request(["type": "subscribe", "channel": "room:ops"])?["type"] == "subscribed")
            // While four writers post, the client keeps its session busy with bursts of
            // commands: each burst takes the socket's events from its event loop back to the
            // session (events arriving meanwhile queue for it), and each pause hands them over
            // again.
            let rounds = Mutex(0)
            let talking = Task { () async throws in
                while !Task.isCancelled {
                    for _ in 0..<10 { client.send(["type": "ping"]) }
                    let subscribed = try await client.request(["type": "subscribe", "channel": "tasks"])
                    let unsubscribed = try await client.request(["type": "unsubscribe", "channel": "tasks"])
                    #expect(subscribed?["type"] == "subscribed" && unsubscribed?["type"] == "unsubscribed")
                    rounds.withLock { $0 += 1 }
                }
            }
            let posted = try await withThrowingTaskGroup(of: [String].self) { group in
                for writer in 0..<4 { group.addTask { try await Self.post(api, dispatcher, 50, from: writer * 50) } }
                return try await group.reduce(into: []) { $0 += $1 }
            }
            talking.cancel()
            _ = await talking.result
            #expect(rounds.withLock { $0 } >= 3, "the session was busy only \(rounds.withLock { $0 }) times")
            let inStreamOrder = posted.sorted { streamID($0, isLessThan: $1) }
            #expect(try await eventually { client.events("room:ops").count >= inStreamOrder.count })
            try await Task.sleep(for: .milliseconds(300))
            let received = client.events("room:ops").compactMap { $0["id"]?.stringValue }
            #expect(received == inStreamOrder, "received \(received.count), posted \(inStreamOrder.count)")
        }
    }

    @Test func channelsAreAuthorizedByTenantAndRole() async throws {
        let dispatcher = try await fixture.token(.dispatcher, sub: "d-1")
        let worker = try await fixture.token(.worker, sub: "w-1")
        let outsider = try await fixture.token(.worker, sub: "w-9")
        let globex = try await fixture.token(.dispatcher, sub: "d-1", tenant: "globex")
        try await fixture.testLive { (api: APIClient, port: Int) async throws in
            try await Self.makeRoom(api, dispatcher)
            let w = RealtimeTestClient(port: port, token: worker)
            let o = RealtimeTestClient(port: port, token: outsider)
            let g = RealtimeTestClient(port: port, token: globex)
            defer { w.close(); o.close(); g.close() }
            for channel in ["tasks", "locations", "workers", "worker:w-2", "tasks:w-2", "notifications:w-2", "live:/workers/w-2", "room:nowhere"] {
                #expect(try await w.request(["type": "subscribe", "channel": .string(channel)])?["code"] == "forbidden", "\(channel)")
            }
            // Not a member: the same answer as for a room that does not exist.
            #expect(try await o.request(["type": "subscribe", "channel": "room:ops"])?["code"] == "forbidden")
            for channel in ["worker:w-1", "tasks:w-1", "notifications:w-1", "resources", "room:ops", "live:/presence"] {
                #expect(try await w.request(["type": "subscribe", "channel": .string(channel)])?["type"] == "subscribed", "\(channel)")
            }
            #expect(try await w.request(["type": "subscribe", "channel": "rooms:ops"])?["code"] == "invalid_channel")
            #expect(try await w.request(["type": "subscribe", "channel": "live:/a.b"])?["code"] == "invalid_channel")
            #expect(try await w.request(["type": "teleport"])?["code"] == "invalid_message")
            // Another tenant's dispatcher subscribes to its own room:ops and hears nothing of acme's.
            #expect(try await g.request(["type": "subscribe", "channel": "room:ops"])?["type"] == "subscribed")
            try await Self.post(api, dispatcher, 2)
            #expect(try await eventually { w.events("room:ops").count == 2 })
            try await Task.sleep(for: .milliseconds(200))
            #expect(g.events("room:ops").isEmpty)
        }
    }

    @Test func filteredChannelsCarryOnlyTheirEntries() async throws {
        let dispatcher = try await fixture.token(.dispatcher, sub: "d-1")
        let w1 = try await fixture.token(.worker, sub: "w-1")
        try await fixture.testLive { (api: APIClient, port: Int) async throws in
            // A dispatcher's board follows every worker through two channels.
            let board = RealtimeTestClient(port: port, token: dispatcher)
            defer { board.close() }
            #expect(try await board.request(["type": "subscribe", "channel": "locations"])?["type"] == "subscribed")
            #expect(try await board.request(["type": "subscribe", "channel": "workers"])?["type"] == "subscribed")
            for id in ["w-1", "w-2"] {
                #expect(try await api.call(.post, "/v1/workers", token: dispatcher, json: ["workerId": id, "name": id]).status == .created)
            }
            let client = RealtimeTestClient(port: port, token: w1)
            defer { client.close() }
            #expect(try await client.request(["type": "subscribe", "channel": "tasks:w-1"])?["type"] == "subscribed")
            #expect(try await client.request(["type": "subscribe", "channel": "worker:w-1"])?["type"] == "subscribed")
            #expect(try await client.request(["type": "subscribe", "channel": "notifications:w-1"])?["type"] == "subscribed")
            #expect(try await api.call(.post, "/v1/tasks", token: dispatcher, json: ["taskId": "T-1", "title": "mine", "assigneeId": "w-1"]).status == .created)
            #expect(try await api.call(.post, "/v1/tasks", token: dispatcher, json: ["taskId": "T-2", "title": "theirs", "assigneeId": "w-2"]).status == .created)
            #expect(try await api.call(.post, "/v1/tasks/T-1/accept", token: w1).status == .ok)
            #expect(try await api.call(.post, "/v1/workers/w-2/locations", token: dispatcher, json: ["lat": 1, "lon": 1]).status == .created)
            #expect(try await api.call(.post, "/v1/workers/w-1/locations", token: w1, json: ["lat": 2, "lon": 2]).status == .created)
            #expect(try await eventually { client.events("tasks:w-1").count == 2 && client.events("worker:w-1").count == 1 && client.events("notifications:w-1").count == 1 })
            try await Task.sleep(for: .milliseconds(200))
            #expect(client.events("tasks:w-1").compactMap { $0["eventType"]?.stringValue } == ["task.created", "task.accepted"])
            #expect(client.events("tasks:w-1").allSatisfy { $0["payload"]?["taskId"] == "T-1" })
            #expect(client.events("worker:w-1").first?["payload"]?["lat"] == 2)
            #expect(client.events("notifications:w-1").first?["eventType"] == "notification.created")
            #expect(try await eventually { board.events("locations").count == 2 && board.events("workers").count == 2 })
            #expect(Set(board.events("locations").compactMap { $0["payload"]?["workerId"]?.stringValue }) == ["w-1", "w-2"])
            #expect(board.events("workers").allSatisfy { $0["eventType"] == "worker.registered" })
        }
    }

    @Test func ephemeralMessagesReachSubscribersAndAreNeverStored() async throws {
        let dispatcher = try await fixture.token(.dispatcher, sub: "d-1")
        let worker = try await fixture.token(.worker, sub: "w-1")
        try await fixture.testLive { (api: APIClient, port: Int) async throws in
            try await Self.makeRoom(api, dispatcher)
            let typing = RealtimeTestClient(port: port, token: worker)
            let watching = RealtimeTestClient(port: port, token: dispatcher)
            defer { typing.close(); watching.close() }
            #expect(try await watching.request(["type": "subscribe", "channel": "room:ops"])?["type"] == "subscribed")
            let published = try await typing.request(["type": "publish", "channel": "room:ops", "data": ["typing": true]])
            #expect(published?["type"] == "published")
            let message = try #require(try await watching.waitFor { $0["type"] == "message" })
            #expect(message["data"] == ["typing": true])
            #expect(message["from"]?["sub"] == "w-1")
            #expect(message["id"] == nil)
            // Not stored: the room's stream holds only its creation.
            let redis = try RedisConnection(url: self.fixture.server.url)
            let stored = try redis.command("XRANGE", "tenant:{acme}:stream:chat:ops", "-", "+").array ?? []
            #expect(stored.count == 1)
            #expect(try await typing.request(["type": "publish", "channel": "tasks", "data": 1])?["code"] == "forbidden")
            let big = try await watching.request(["type": "publish", "channel": "room:ops", "data": .string(String(repeating: "x", count: 20_000))])
            #expect(big?["code"] == "message_too_large")
        }
    }

    @Test func aWriteChoosesPersistOnlyRealtimeOnlyOrBoth() async throws {
        let dispatcher = try await fixture.token(.dispatcher, sub: "d-1")
        try await fixture.testLive { (api: APIClient, port: Int) async throws in
            #expect(try await api.call(.post, "/v1/workers", token: dispatcher, json: ["workerId": "w-1", "name": "Ana"]).status == .created)
            let client = RealtimeTestClient(port: port, token: dispatcher)
            defer { client.close() }
            #expect(try await client.request(["type": "subscribe", "channel": "worker:w-1"])?["type"] == "subscribed")
            let redis = try RedisConnection(url: self.fixture.server.url)
            func stored() throws -> Int { try redis.command("XLEN", "tenant:{acme}:stream:locationUpdates").int ?? 0 }

            let live = try await api.call(.post, "/v1/workers/w-1/locations?delivery=realtime", token: dispatcher, json: ["lat": 1, "lon": 1])
            #expect(live.status == .accepted)
            #expect(live["streamId"] == nil)
            let event = try #require(try await client.waitFor { $0["type"] == "event" })
            #expect(event["realtimeOnly"] == true)
            #expect(event["id"] == nil)
            #expect(try stored() == 0)
            // Still the worker's live location.
            #expect(try await api.call(.get, "/v1/live/workers/w-1/location/lat", token: dispatcher).json as? Double == 1)

            #expect(try await api.call(.post, "/v1/workers/w-1/locations?delivery=persist", token: dispatcher, json: ["lat": 2, "lon": 2]).status == .created)
            #expect(try stored() == 1)
            let both = try await api.call(.post, "/v1/workers/w-1/locations", token: dispatcher, json: ["lat": 3, "lon": 3])
            #expect(try await eventually { client.events("worker:w-1").count == 2 })
            #expect(client.events("worker:w-1").last?["id"]?.stringValue == both["streamId"] as? String)
            #expect(client.events("worker:w-1").allSatisfy { $0["payload"]?["lat"] != 2 })
            #expect(try await api.call(.post, "/v1/workers/w-1/locations?delivery=sometimes", token: dispatcher, json: ["lat": 3, "lon": 3]).status == .badRequest)

            // Chat: "on my way" as a realtime-only message reaches the room and leaves no trace.
            try await Self.makeRoom(api, dispatcher)
            #expect(try await client.request(["type": "subscribe", "channel": "room:ops"])?["type"] == "subscribed")
            let quick = try await api.call(.post, "/v1/rooms/ops/messages?delivery=realtime", token: dispatcher, json: ["text": "on my way"])
            #expect(quick.status == .accepted)
            #expect(try await client.waitFor { $0["channel"] == "room:ops" && $0["type"] == "event" }?["payload"]?["text"] == "on my way")
            #expect(try await api.call(.get, "/v1/rooms/ops/messages", token: dispatcher).list("messages").isEmpty)
            #expect(try await api.call(.get, "/v1/live/rooms/ops/lastMessage", token: dispatcher).json is NSNull)
            let chat = try redis.command("XRANGE", "tenant:{acme}:stream:chat:ops", "-", "+").array ?? []
            #expect(chat.count == 1)
        }
    }

    @Test func everyMessageMatchesTheProtocolSchema() async throws {
        let dispatcher = try await fixture.token(.dispatcher, sub: "d-1")
        let sent = Mutex<[JSONValue]>([])
        try await fixture.testLive { (api: APIClient, port: Int) async throws in
            try await Self.makeRoom(api, dispatcher)
            #expect(try await api.call(.post, "/v1/workers", token: dispatcher, json: ["workerId": "w-1", "name": "Ana"]).status == .created)
            let client = RealtimeTestClient(port: port, token: dispatcher)
            defer { client.close() }
            func request(_ message: JSONObject) async throws {
                sent.withLock { $0.append(.object(message)) }
                _ = try await client.request(message)
            }
            try await request(["type": "subscribe", "channel": "room:ops"])
            try await request(["type": "subscribe", "channel": "worker:w-1"])
            try await request(["type": "subscribe", "channel": "live:/crews"])
            try await request(["type": "subscribe", "channel": "room:ops", "resume": ["lastId": "1-0", "epoch": "old"]])
            try await request(["type": "ping"])
            try await request(["type": "publish", "channel": "room:ops", "data": ["typing": true]])
            try await request(["type": "set", "path": "/crews/c1", "value": ["status": "idle"]])
            try await request(["type": "onDisconnect", "path": "/crews/c1/status", "value": "gone"])
            // A bad request (not recorded as a client message: the schema rejects it too).
            #expect(try await client.request(["type": "subscribe", "channel": "nowhere"])?["code"] == "invalid_channel")
            do {
                _ = try await api.call(.post, "/v1/workers/w-1/locations?delivery=realtime", token: dispatcher, json: ["lat": 1, "lon": 1])
                _ = try await api.call(.post, "/v1/workers/w-1/locations", token: dispatcher, json: ["lat": 2, "lon": 2])
            }
            try await Self.post(api, dispatcher, 1)
            #expect(try await eventually { client.messages("event").count == 3 && client.messages("message").count == 1 && client.messages("live").count >= 2 })
            try await request(["type": "unsubscribe", "channel": "room:ops"])

            let kinds = Set(client.messages.compactMap { $0["type"]?.stringValue })
            #expect(kinds.isSuperset(of: ["welcome", "subscribed", "event", "live", "message", "pong", "published", "set", "onDisconnect", "error", "unsubscribed"]))
            let lines = client.messages.map { JSONValue.object(["direction": "server", "message": $0]).jsonText }
                + sent.withLock { $0 }.map { JSONValue.object(["direction": "client", "message": $0]).jsonText }
            let file = FileManager.default.temporaryDirectory.appendingPathComponent("fieldops-realtime-\(UUID().uuidString.prefix(8)).jsonl")
            defer { try? FileManager.default.removeItem(at: file) }
            try (lines.joined(separator: "\n") + "\n").write(to: file, atomically: true, encoding: .utf8)
            let (status, text) = try ContractTests.runScript("check-realtime.py", file.path)
            #expect(status == 0, "\(text)")
        }
    }

    @Test func liveChannelsSendASnapshotThenChanges() async throws {
        let dispatcher = try await fixture.token(.dispatcher, sub: "d-1")
        try await fixture.testLive { (api: APIClient, port: Int) async throws in
            #expect(try await api.call(.put, "/v1/live/crews/c1", token: dispatcher, json: ["status": "idle"]).status == .ok)
            let client = RealtimeTestClient(port: port, token: dispatcher)
            defer { client.close() }
            #expect(try await client.request(["type": "subscribe", "channel": "live:/crews"])?["type"] == "subscribed")
            #expect(try await client.waitFor { $0["type"] == "live" }?["data"] == ["c1": ["status": "idle"]])
            #expect(try await client.request(["type": "set", "path": "/crews/c2/status", "value": "busy"])?["value"] == "busy")
            #expect(try await client.waitFor { $0["type"] == "live" && $0["path"] == "/c2/status" }?["data"] == "busy")
            // A value larger than one frame arrives whole.
            let notes = String(repeating: "storm front, ", count: 20_000)
            #expect(try await api.call(.put, "/v1/live/crews/c3/notes", token: dispatcher, json: notes).status == .ok)
            #expect(try await client.waitFor { $0["type"] == "live" && $0["path"] == "/c3/notes" }?["data"]?.stringValue == notes)
        }
    }

    @Test func presenceAndOnDisconnectRunWhenTheSocketCloses() async throws {
        let worker = try await fixture.token(.worker, sub: "w-1")
        let dispatcher = try await fixture.token(.dispatcher, sub: "d-1")
        try await fixture.testLive { (api: APIClient, port: Int) async throws in
            let client = RealtimeTestClient(port: port, token: worker)
            let connection = try #require(try await client.waitFor { $0["type"] == "welcome" }?["connectionId"]?.stringValue)
            let presence = try await api.call(.get, "/v1/live/presence/w-1/connections", token: dispatcher)
            #expect(presence.object.keys.sorted() == [connection])
            #expect(try await client.request(["type": "set", "path": "/presence/w-1/status", "value": "on shift"])?["type"] == "set")
            #expect(try await client.request(["type": "onDisconnect", "path": "/presence/w-1/status", "value": "offline"])?["registered"] == true)
            #expect(try await client.request(["type": "onDisconnect", "path": "/presence/w-2/status", "value": "x"])?["code"] == "forbidden")
            client.close()
            #expect(try await eventually {
                try await api.call(.get, "/v1/live/presence/w-1/status", token: dispatcher).json as? String == "offline"
            })
            let after = try await api.call(.get, "/v1/live/presence/w-1", token: dispatcher)
            #expect(after["connections"] == nil)
            #expect(after["lastSeen"] as? Double != nil)
        }
    }

    @Test func onDisconnectRunsWhenAClientVanishesWithoutClosing() async throws {
        // A 2 s heartbeat: time enough for the registration below to land even on a busy
        // machine, before the missed pong drops the socket.
        let fixture = try await APIFixture(heartbeat: .seconds(2))
        let worker = try await fixture.token(.worker, sub: "w-1")
        let dispatcher = try await fixture.token(.dispatcher, sub: "d-1")
        try await fixture.testLive { (api: APIClient, port: Int) async throws in
            // A phone that went into a tunnel: the TCP connection stays open, nothing answers pings.
            let vanished = try await RawWebSocket.open(port: port, token: worker)
            defer { vanished.close() }
            let started = ContinuousClock.now
            try vanished.send(#"{"type":"onDisconnect","path":"/presence/w-1/status","value":"lost"}"#)
            #expect(try await eventually(timeout: .seconds(20)) {
                try await api.call(.get, "/v1/live/presence/w-1/status", token: dispatcher).json as? String == "lost"
            })
            // Dropped after a missed pong: within seconds, not the minutes TCP would take.
            #expect(ContinuousClock.now - started < .seconds(12))
            #expect(try await api.call(.get, "/v1/live/presence/w-1", token: dispatcher)["connections"] == nil)
        }
    }

    @Test func aRestartedNodeClearsThePresenceItLeftBehind() async throws {
        let tree = fixture.dependencies.tree
        let node = fixture.dependencies.configuration.nodeName
        for tenant in ["acme", "globex"] {
            try await tree.set(tenant: tenant, path: LivePath("/presence/w-1/connections/conn-old"), value: ["node": .string(node)])
            try await tree.set(tenant: tenant, path: LivePath("/presence/w-1/connections/conn-other"), value: ["node": "another-node"])
            try await tree.set(tenant: tenant, path: LivePath("/presence/w-2/connections/conn-old2"), value: ["node": .string(node)])
        }
        #expect(try await fixture.dependencies.clearPresenceLeftBehind() == 4)
        for tenant in ["acme", "globex"] {
            let presence = try await tree.get(tenant: tenant, path: LivePath("/presence"))
            #expect(presence["w-1"]?["connections"] == ["conn-other": ["node": "another-node"]])
            #expect(presence["w-2"]?["connections"] == nil)
            #expect(presence["w-2"]?["lastSeen"]?.doubleValue != nil)
        }
        #expect(try await fixture.dependencies.clearPresenceLeftBehind() == 0)
    }

    @Test func aStalledReaderIsCutOffWhileOthersStayOnTime() async throws {
        // A long heartbeat, so the stalled socket is cut for its queue, not for missing pongs.
        let fixture = try await APIFixture(heartbeat: .seconds(60))
        let dispatcher = try await fixture.token(.dispatcher, sub: "d-1")
        let stalledToken = try await fixture.token(.worker, sub: "w-1")
        try await fixture.testLive { (api: APIClient, port: Int) async throws in
            try await Self.makeRoom(api, dispatcher)
            let stalled = RealtimeTestClient(port: port, token: stalledToken, reading: false)
            let reader = RealtimeTestClient(port: port, token: dispatcher)
            defer { stalled.close(); reader.close() }
            stalled.send(["type": "subscribe", "id": "s", "channel": "room:ops"])
            #expect(try await reader.request(["type": "subscribe", "channel": "room:ops"])?["type"] == "subscribed")
            #expect(try await eventually {
                (try await api.call(.get, "/v1/live/presence/w-1/connections", token: dispatcher).object.count) == 1
            })
            try await Task.sleep(for: .milliseconds(300))
            // 15 MB of ephemeral messages, one after the other: more than the stalled socket's
            // kernel buffers plus its 1 MiB queue, at a pace a reading client keeps up with.
            let chunk = String(repeating: "x", count: 15_000)
            let started = ContinuousClock.now
            for n in 0..<1_000 {
                let published = try await reader.request(["type": "publish", "channel": "room:ops", "data": ["n": .number(Double(n)), "fill": .string(chunk)]])
                #expect(published?["type"] == "published")
            }
            #expect(try await eventually(timeout: .seconds(30)) { reader.messages("message").count == 1_000 })
            #expect(reader.messages("message").enumerated().allSatisfy { $0.element["data"]?["n"]?.intValue == $0.offset })
            print("1 000 ephemeral messages of 15 kB published and received in \(ContinuousClock.now - started)")
            // The stalled socket was dropped: it left presence, and the server holds nothing for it.
            #expect(try await eventually(timeout: .seconds(15)) {
                (try await api.call(.get, "/v1/live/presence/w-1/connections", token: dispatcher).object.count) == 0
            })
            // Operators see it: one socket cut off, the reader still connected.
            try await api.client.execute(uri: "/metrics", method: .get) { response in
                let text = String(buffer: response.body)
                #expect(text.contains("fieldops_realtime_cut_off 1"), "\(text)")
                #expect(text.contains("fieldops_realtime_listeners 1"))
            }
        }
    }
}
