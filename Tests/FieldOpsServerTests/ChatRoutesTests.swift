import FieldOpsServer
import Foundation
import HTTPTypes
import Testing

@Suite("Chat and notifications over HTTP")
final class ChatRoutesTests: Sendable {
    let fixture: APIFixture

    init() async throws {
        fixture = try await APIFixture()
    }

    @Test func membersPostEditDeleteAndPageThroughMessages() async throws {
        let dispatcher = try await fixture.token(.dispatcher, sub: "d1")
        let member = try await fixture.token(.worker, sub: "w-1")
        let outsider = try await fixture.token(.worker, sub: "w-9")
        try await fixture.test { api in
            let room = try await api.call(.post, "/v1/rooms", token: dispatcher, json: ["roomId": "ops", "name": "Operations", "members": ["w-1"]])
            #expect(room.status == .created, "\(room.object)")
            #expect(room.resource("room")["members"] as? [String] == ["w-1"])
            // At most 1 000 members as sent, duplicates included (the contract's maxItems).
            let crowded = try await api.call(.post, "/v1/rooms", token: dispatcher, json: ["name": "Crowd", "members": Array(repeating: "w-1", count: 1_001)])
            #expect(crowded.status == .badRequest)
            #expect(crowded.errorMessage.hasPrefix("members:"))

            var ids: [String] = []
            for n in 1...7 {
                let posted = try await api.call(.post, "/v1/rooms/ops/messages\(n == 7 ? "?wait=true" : "")", token: n % 2 == 0 ? dispatcher : member, json: ["text": "message \(n)"])
                #expect(posted.status == .created, "\(posted.object)")
                ids.append(try #require(posted.resource("message")["messageId"] as? String))
            }
            #expect(try await api.call(.post, "/v1/rooms/ops/messages", token: outsider, json: ["text": "let me in"]).status == .notFound)
            #expect(try await api.call(.get, "/v1/rooms/ops/messages", token: outsider).status == .notFound)
            #expect(try await api.call(.post, "/v1/rooms/ops/messages", token: member, json: ["text": "   "]).status == .badRequest)

            // Newest first, then older pages with `before`, newer ones with `after`.
            let first = try await api.call(.get, "/v1/rooms/ops/messages?limit=3", token: member)
            #expect(first.list("messages").map { $0["text"] as? String } == ["message 7", "message 6", "message 5"])
            let before = try #require(first["nextBefore"] as? String)
            let second = try await api.call(.get, "/v1/rooms/ops/messages?limit=3&before=\(before)", token: member)
            #expect(second.list("messages").map { $0["text"] as? String } == ["message 4", "message 3", "message 2"])
            let newer = try await api.call(.get, "/v1/rooms/ops/messages?limit=2&after=\(ids[1])", token: member)
            #expect(newer.list("messages").map { $0["text"] as? String } == ["message 4", "message 3"])

            // Only the sender edits; a dispatcher may delete.
            #expect(try await api.call(.patch, "/v1/rooms/ops/messages/\(ids[0])", token: dispatcher, json: ["text": "forged"]).status == .forbidden)
            let edited = try await api.call(.patch, "/v1/rooms/ops/messages/\(ids[0])?wait=true", token: member, json: ["text": "message 1 (fixed)"])
            #expect(edited.resource("message")["text"] as? String == "message 1 (fixed)")
            let deleted = try await api.call(.delete, "/v1/rooms/ops/messages/\(ids[0])?wait=true", token: dispatcher)
            #expect(deleted.resource("message")["deleted"] as? Bool == true)
            #expect(try await api.call(.patch, "/v1/rooms/ops/messages/\(ids[0])", token: member, json: ["text": "again"]).status == .conflict)

            // A worker lists only its rooms.
            _ = try await api.call(.post, "/v1/rooms?wait=true", token: dispatcher, json: ["roomId": "private", "name": "Leads"])
            #expect(try await api.call(.get, "/v1/rooms", token: member).list("rooms").map { $0["roomId"] as? String } == ["ops"])
            #expect(try await api.call(.get, "/v1/rooms", token: dispatcher).list("rooms").count == 2)
            let detail = try await api.call(.get, "/v1/rooms/ops", token: member)
            #expect((detail["lastMessage"] as? [String: Any])?["text"] as? String == "message 7")

            // Membership changes take effect at once.
            #expect(try await api.call(.post, "/v1/rooms/ops/members", token: dispatcher, json: ["userId": "w-9"]).status == .created)
            #expect(try await api.call(.post, "/v1/rooms/ops/members", token: dispatcher, json: ["userId": "w-9"]).errorCode == "already_member")
            #expect(try await api.call(.post, "/v1/rooms/ops/messages", token: outsider, json: ["text": "thanks"]).status == .created)
            #expect(try await api.call(.delete, "/v1/rooms/ops/members/w-9", token: dispatcher).status == .ok)
            #expect(try await api.call(.post, "/v1/rooms/ops/messages", token: outsider, json: ["text": "hello?"]).status == .notFound)
        }
    }

    @Test func notificationsReachTheirUserRoleOrRoomAndAreMarkedRead() async throws {
        let dispatcher = try await fixture.token(.dispatcher, sub: "d1")
        let worker = try await fixture.token(.worker, sub: "w-1")
        let otherWorker = try await fixture.token(.worker, sub: "w-2")
        try await fixture.test { api in
            _ = try await api.call(.post, "/v1/rooms", token: dispatcher, json: ["roomId": "north", "name": "North team", "members": ["w-1"]])
            let personal = try await api.call(.post, "/v1/notifications", token: dispatcher, json: ["userId": "w-1", "title": "Call the office"])
            #expect(personal.status == .created, "\(personal.object)")
            _ = try await api.call(.post, "/v1/notifications", token: dispatcher, json: ["role": "worker", "title": "Storm front at 14:00"])
            _ = try await api.call(.post, "/v1/notifications?wait=true", token: dispatcher, json: ["roomId": "north", "title": "Bridge closed"])
            #expect(try await api.call(.post, "/v1/notifications", token: dispatcher, json: ["userId": "w-1", "role": "worker", "title": "x"]).status == .badRequest)
            #expect(try await api.call(.post, "/v1/notifications", token: worker, json: ["userId": "w-2", "title": "x"]).status == .forbidden)

            let mine = try await api.call(.get, "/v1/notifications", token: worker)
            #expect(Set(mine.list("notifications").compactMap { $0["title"] as? String }) == ["Call the office", "Storm front at 14:00", "Bridge closed"])
            let theirs = try await api.call(.get, "/v1/notifications", token: otherWorker)
            #expect(theirs.list("notifications").compactMap { $0["title"] as? String } == ["Storm front at 14:00"])

            let id = try #require(personal.resource("notification")["notificationId"] as? String)
            #expect(try await api.call(.post, "/v1/notifications/\(id)/read", token: otherWorker).status == .notFound)
            let read = try await api.call(.post, "/v1/notifications/\(id)/read?wait=true", token: worker)
            #expect(read.resource("notification")["read"] as? Bool == true)
            let unread = try await api.call(.get, "/v1/notifications?unread=true", token: worker)
            #expect(Set(unread.list("notifications").compactMap { $0["title"] as? String }) == ["Storm front at 14:00", "Bridge closed"])
        }
    }
}
