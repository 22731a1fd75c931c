import DocumentStore
import FieldOpsServer
import Foundation
import Testing

@Suite("/v1/live: the live key tree over REST and Server-Sent Events")
final class LiveRoutesTests: Sendable {
    let fixture: APIFixture

    init() async throws {
        fixture = try await APIFixture(keepAlive: .milliseconds(300))
    }

    @Test func putGetPatchPushDeleteLikeTheRealtimeDatabase() async throws {
        let dispatcher = try await fixture.token(.dispatcher, sub: "d-1")
        try await fixture.test { (api: APIClient) async throws in
            let put = try await api.call(.put, "/v1/live/sites/north.json", token: dispatcher, json: ["pumps": 3, "open": true, "since": [".sv": "timestamp"]])
            #expect(put.status == .ok, "\(put.object)")
            #expect(put["pumps"] as? Int == 3)
            #expect((put["since"] as? Double ?? 0) > 1_700_000_000_000)

            let patch = try await api.call(.patch, "/v1/live/sites", token: dispatcher, json: ["north/pumps": 4, "south": ["pumps": 1]])
            #expect(patch.status == .ok)
            let sites = try await api.call(.get, "/v1/live/sites", token: dispatcher)
            #expect((sites["north"] as? [String: Any])?["pumps"] as? Int == 4)
            #expect((sites["north"] as? [String: Any])?["open"] as? Bool == true)
            #expect((sites["south"] as? [String: Any])?["pumps"] as? Int == 1)

            let pushed = try await api.call(.post, "/v1/live/log", token: dispatcher, json: ["text": "gate opened"])
            let name = try #require(pushed["name"] as? String)
            #expect(name.count == 20)
            let entry = try await api.call(.get, "/v1/live/log/\(name)/text", token: dispatcher)
            #expect(entry.json as? String == "gate opened")

            // Segments may hold what URLs must escape.
            #expect(try await api.call(.put, "/v1/live/notes/shift%20A", token: dispatcher, json: "calm").status == .ok)
            #expect(try await api.call(.get, "/v1/live/notes", token: dispatcher).object["shift A"] as? String == "calm")

            #expect(try await api.call(.delete, "/v1/live/sites/north", token: dispatcher).status == .ok)
            let after = try await api.call(.get, "/v1/live/sites", token: dispatcher)
            #expect(after.object.keys.sorted() == ["south"])
            let missing = try await api.call(.get, "/v1/live/nothing/here", token: dispatcher)
            #expect(missing.status == .ok)
            #expect(missing.json == nil || missing.json is NSNull)
        }
    }

    @Test func badPathsAndValuesAreClearErrors() async throws {
        let dispatcher = try await fixture.token(.dispatcher, sub: "d-1")
        try await fixture.test { (api: APIClient) async throws in
            let dollar = try await api.call(.put, "/v1/live/a/$b", token: dispatcher, json: 1)
            #expect(dollar.status == .badRequest)
            #expect(dollar.errorCode == "invalid_path")
            let deep = try await api.call(.put, "/v1/live/" + Array(repeating: "x", count: 33).joined(separator: "/"), token: dispatcher, json: 1)
            #expect(deep.errorCode == "invalid_path")
            let badKey = try await api.call(.put, "/v1/live/a", token: dispatcher, json: ["b.c": 1])
            #expect(badKey.errorCode == "invalid_path")
            #expect(badKey.errorMessage.contains("b.c"))
            let server = try await api.call(.put, "/v1/live/a", token: dispatcher, json: [".sv": "yesterday"])
            #expect(server.errorCode == "invalid_value")
            let notJSON = try await api.call(.put, "/v1/live/a", token: dispatcher, raw: "{oops", headers: [.contentType: "application/json"])
            #expect(notJSON.errorCode == "invalid_body")
            let patchArray = try await api.call(.patch, "/v1/live/a", token: dispatcher, json: [1, 2])
            #expect(patchArray.errorCode == "invalid_body")
            let overlap = try await api.call(.patch, "/v1/live/a", token: dispatcher, json: ["b": ["c": 1], "b/c": 2])
            #expect(overlap.errorCode == "invalid_path")
            #expect(overlap.errorMessage.contains("overlap"))
            let huge = try await api.call(.put, "/v1/live/a", token: dispatcher, json: String(repeating: "x", count: 1 << 20))
            #expect(huge.status == .contentTooLarge)
        }
    }

    @Test func domainPathsAreReadOnlyAndKeptByTheDomainWrites() async throws {
        let dispatcher = try await fixture.token(.dispatcher, sub: "d-1")
        try await fixture.test { (api: APIClient) async throws in
            #expect(try await api.call(.post, "/v1/tasks", token: dispatcher, json: ["taskId": "T-1", "title": "Check gauge"]).status == .created)
            let task = try await api.call(.get, "/v1/live/tasks/T-1", token: dispatcher)
            #expect(task["status"] as? String == "open")
            let write = try await api.call(.put, "/v1/live/tasks/T-1/status", token: dispatcher, json: "completed")
            #expect(write.status == .forbidden)
            #expect(write.errorCode == "read_only_path")
            #expect(try await api.call(.delete, "/v1/live", token: dispatcher).errorCode == "read_only_path")
            #expect(try await api.call(.patch, "/v1/live", token: dispatcher, json: ["workers/w-1/status": "active"]).errorCode == "read_only_path")
            #expect(try await api.call(.get, "/v1/live/tasks/T-1/status", token: dispatcher).json as? String == "open")
        }
    }

    @Test func workersReadTheirShareAndWriteOnlyTheirOwnPresence() async throws {
        let dispatcher = try await fixture.token(.dispatcher, sub: "d-1")
        let worker = try await fixture.token(.worker, sub: "w-1")
        try await fixture.test { (api: APIClient) async throws in
            #expect(try await api.call(.post, "/v1/rooms", token: dispatcher, json: ["roomId": "ops", "name": "Ops", "members": ["w-1"]]).status == .created)
            #expect(try await api.call(.post, "/v1/rooms", token: dispatcher, json: ["roomId": "board", "name": "Board"]).status == .created)
            #expect(try await api.call(.put, "/v1/live/presence/w-1", token: worker, json: ["online": true]).status == .ok)
            #expect(try await api.call(.put, "/v1/live/presence/w-2", token: worker, json: ["online": true]).status == .forbidden)
            #expect(try await api.call(.put, "/v1/live/ops/plan", token: worker, json: 1).status == .forbidden)
            #expect(try await api.call(.get, "/v1/live/presence", token: worker).status == .ok)
            #expect(try await api.call(.get, "/v1/live/rooms/ops", token: worker).status == .ok)
            #expect(try await api.call(.get, "/v1/live/rooms/board", token: worker).status == .forbidden)
            #expect(try await api.call(.get, "/v1/live/workers/w-2", token: worker).status == .forbidden)
            #expect(try await api.call(.get, "/v1/live", token: worker).status == .forbidden)
        }
    }

    @Test func tenantsNeverSeeEachOthersTree() async throws {
        let acme = try await fixture.token(.dispatcher, sub: "d-1", tenant: "acme")
        let globex = try await fixture.token(.dispatcher, sub: "d-1", tenant: "globex")
        try await fixture.test { (api: APIClient) async throws in
            #expect(try await api.call(.put, "/v1/live/plans/secret", token: acme, json: "acme only").status == .ok)
            let other = try await api.call(.get, "/v1/live/plans/secret", token: globex)
            #expect(other.json == nil || other.json is NSNull)
            let root = try await api.call(.get, "/v1/live", token: globex)
            #expect(root.json == nil || root.json is NSNull)
        }
    }

    @Test func eventStreamSendsTheSubtreeThenItsChanges() async throws {
        let dispatcher = try await fixture.token(.dispatcher, sub: "d-1")
        try await fixture.testLive { (api: APIClient, port: Int) async throws in
            #expect(try await api.call(.put, "/v1/live/crews/c1", token: dispatcher, json: ["status": "idle"]).status == .ok)
            // As a browser's EventSource would: the token in the query, no header.
            let stream = EventStreamClient(port: port, path: "/v1/live/crews?auth=\(dispatcher)", token: nil)
            defer { stream.close() }
            let first = try #require(try await stream.waitFor { $0.name == "put" })
            #expect(first.json == ["path": "/", "data": ["c1": ["status": "idle"]]])

            #expect(try await api.call(.put, "/v1/live/crews/c2/status", token: dispatcher, json: "busy").status == .ok)
            #expect(try await stream.waitFor { $0.json == ["path": "/c2/status", "data": "busy"] } != nil)
            #expect(try await api.call(.patch, "/v1/live/crews", token: dispatcher, json: ["c1/status": "off"]).status == .ok)
            #expect(try await stream.waitFor { $0.name == "patch" && $0.json == ["path": "/", "data": ["c1/status": "off"]] } != nil)
            // A write that replaces an ancestor reaches the listener cut to its part.
            #expect(try await api.call(.delete, "/v1/live/crews", token: dispatcher).status == .ok)
            #expect(try await stream.waitFor { $0.name == "put" && $0.json == ["path": "/", "data": nil] } != nil)
            // Elsewhere in the tree: nothing.
            #expect(try await api.call(.put, "/v1/live/other", token: dispatcher, json: 1).status == .ok)
            #expect(try await eventually(timeout: .seconds(2)) { stream.comments >= 1 })
            #expect(!stream.events.contains { $0.data.contains("other") })
        }
    }

    @Test func eventStreamCarriesDomainChanges() async throws {
        let dispatcher = try await fixture.token(.dispatcher, sub: "d-1")
        try await fixture.testLive { (api: APIClient, port: Int) async throws in
            let stream = EventStreamClient(port: port, path: "/v1/live/tasks", token: dispatcher)
            defer { stream.close() }
            #expect(try await stream.waitFor { $0.name == "put" } != nil)
            #expect(try await api.call(.post, "/v1/tasks", token: dispatcher, json: ["taskId": "T-9", "title": "Fence"]).status == .created)
            #expect(try await stream.waitFor { $0.json == ["path": "/T-9/status", "data": "open"] } != nil)
        }
    }

    @Test func eventStreamIsCancelledWhenAccessEndsAndRevokedWhenTheTokenExpires() async throws {
        let dispatcher = try await fixture.token(.dispatcher, sub: "d-1")
        let worker = try await fixture.token(.worker, sub: "w-1")
        let authority = fixture.dependencies.authority
        try await fixture.testLive { (api: APIClient, port: Int) async throws in
            #expect(try await api.call(.post, "/v1/rooms", token: dispatcher, json: ["roomId": "ops", "name": "Ops", "members": ["w-1"]]).status == .created)
            let member = EventStreamClient(port: port, path: "/v1/live/rooms/ops", token: worker)
            let shortLived = try await authority.mint(tenant: "acme", subject: "d-2", role: .dispatcher, lifetime: .seconds(3))
            let expiring = EventStreamClient(port: port, path: "/v1/live/presence", token: shortLived)
            defer { member.close(); expiring.close() }
            #expect(try await member.waitFor { $0.name == "put" } != nil)
            #expect(try await expiring.waitFor { $0.name == "put" } != nil)
            #expect(try await api.call(.delete, "/v1/rooms/ops/members/w-1", token: dispatcher).status == .ok)
            #expect(try await member.waitFor { $0.name == "cancel" } != nil)
            #expect(try await eventually { member.ended })
            #expect(try await expiring.waitFor(timeout: .seconds(10)) { $0.name == "auth_revoked" } != nil)
        }
    }

    @Test func eventStreamRefusesWhatTheCallerMayNotRead() async throws {
        let worker = try await fixture.token(.worker, sub: "w-1")
        let globex = try await fixture.token(.dispatcher, sub: "d-1", tenant: "globex")
        try await fixture.testLive { (api: APIClient, port: Int) async throws in
            let refused = EventStreamClient(port: port, path: "/v1/live/workers/w-2", token: worker)
            let anonymous = EventStreamClient(port: port, path: "/v1/live/presence", token: nil)
            defer { refused.close(); anonymous.close() }
            #expect(try await eventually { refused.status != nil && anonymous.status != nil })
            #expect(refused.status == 403)
            #expect(anonymous.status == 401)
            _ = globex
        }
    }
}
