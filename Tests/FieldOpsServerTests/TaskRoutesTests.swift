import FieldOpsServer
import Foundation
import HTTPTypes
import Testing

@Suite("Workers and tasks over HTTP, against real Redis and SQLite")
final class TaskRoutesTests: Sendable {
    let fixture: APIFixture

    init() async throws {
        fixture = try await APIFixture()
    }

    @Test func aTaskGoesThroughItsWholeLifeAndIllegalStepsAre409() async throws {
        let dispatcher = try await fixture.token(.dispatcher, sub: "d1")
        let worker = try await fixture.token(.worker, sub: "w-7")
        let otherWorker = try await fixture.token(.worker, sub: "w-8")
        try await fixture.test { api in
            let registered = try await api.call(.post, "/v1/workers", token: dispatcher, json: ["workerId": "w-7", "name": "Ana", "team": "north", "skills": ["valves"]])
            #expect(registered.status == .created, "\(registered.object)")
            #expect(registered.resource("worker")["name"] as? String == "Ana")
            #expect(registered.resource("worker")["active"] as? Bool == true)
            _ = try await api.call(.post, "/v1/workers", token: dispatcher, json: ["workerId": "w-8", "name": "Ben"])

            let created = try await api.call(.post, "/v1/tasks", token: dispatcher, json: ["taskId": "T-42", "title": "Replace valve", "priority": "high", "location": ["lat": 52.52, "lon": 13.40]])
            #expect(created.status == .created, "\(created.object)")
            #expect(created.resource("task")["status"] as? String == "open")
            #expect(created.resource("task")["priority"] as? Double == 3)
            #expect((created["streamId"] as? String)?.contains("-") == true)

            // Not assigned yet: accepting is illegal, and the reply names the current state.
            let early = try await api.call(.post, "/v1/tasks/T-42/accept", token: dispatcher)
            #expect(early.status == .conflict)
            #expect(early.errorCode == "illegal_transition")
            #expect(early.errorMessage.contains("open"))
            #expect(((early["error"] as? [String: Any])?["details"] as? [String: Any])?["currentStatus"] as? String == "open")

            let assigned = try await api.call(.post, "/v1/tasks/T-42/assign?wait=true", token: dispatcher, json: ["assigneeId": "w-7"])
            #expect(assigned.status == .ok, "\(assigned.object)")
            #expect(assigned.resource("task")["assigneeId"] as? String == "w-7")
            #expect(assigned.resource("task")["status"] as? String == "assigned")

            // Another worker cannot touch it; its assignee can.
            #expect(try await api.call(.post, "/v1/tasks/T-42/accept", token: otherWorker).status == .notFound)
            #expect(try await api.call(.get, "/v1/tasks/T-42", token: otherWorker).status == .notFound)
            #expect(try await api.call(.post, "/v1/tasks/T-42/accept", token: worker).resource("task")["status"] as? String == "accepted")
            #expect(try await api.call(.post, "/v1/tasks/T-42/start", token: worker).resource("task")["status"] as? String == "in_progress")
            let done = try await api.call(.post, "/v1/tasks/T-42/complete?wait=true", token: worker, json: ["note": "valve replaced"])
            #expect(done.resource("task")["status"] as? String == "completed")
            #expect(try await api.call(.post, "/v1/tasks/T-42/cancel", token: worker).status == .forbidden)
            let late = try await api.call(.post, "/v1/tasks/T-42/cancel", token: dispatcher, json: ["note": "duplicate"])
            #expect(late.status == .conflict)
            #expect(late.errorMessage.contains("completed"))

            // The worker sees its task in its list, with the dispatcher's filters ignored.
            let mine = try await api.call(.get, "/v1/tasks?assigneeId=w-8", token: worker)
            #expect(mine.list("tasks").map { $0["taskId"] as? String } == ["T-42"])
            #expect(try await api.call(.get, "/v1/tasks?status=completed", token: dispatcher).list("tasks").count == 1)
            #expect(try await api.call(.get, "/v1/tasks?status=open", token: dispatcher).list("tasks").isEmpty)
            #expect(try await api.call(.get, "/v1/tasks?status=bogus", token: dispatcher).status == .badRequest)
        }
    }

    @Test func assigningProducesANotificationForTheAssignee() async throws {
        let dispatcher = try await fixture.token(.dispatcher, sub: "d1")
        try await fixture.test { api in
            _ = try await api.call(.post, "/v1/workers", token: dispatcher, json: ["workerId": "w-1", "name": "Ana"])
            _ = try await api.call(.post, "/v1/tasks?wait=true", token: dispatcher, json: ["taskId": "t1", "title": "Check pump", "assigneeId": "w-1"])
            let stored = try await eventually { () -> Bool in
                let page = try await self.fixture.dependencies.store.query(tenant: "acme", .init("notifications"))
                return page.documents.contains { $0.data["userId"] == "w-1" && $0.data["subject"] == "task:t1" }
            }
            #expect(stored)
        }
    }

    @Test func assigningToAnUnknownOrDeactivatedWorkerIsRefused() async throws {
        let dispatcher = try await fixture.token(.dispatcher)
        try await fixture.test { api in
            let unknown = try await api.call(.post, "/v1/tasks", token: dispatcher, json: ["title": "x", "assigneeId": "ghost"])
            #expect(unknown.status == .unprocessableContent)
            #expect(unknown.errorCode == "worker_unavailable")
            _ = try await api.call(.post, "/v1/workers", token: dispatcher, json: ["workerId": "w-2", "name": "Cleo"])
            #expect(try await api.call(.post, "/v1/workers/w-2/deactivate", token: dispatcher).status == .ok)
            #expect(try await api.call(.post, "/v1/workers/w-2/deactivate", token: dispatcher).errorCode == "already_inactive")
            let inactive = try await api.call(.post, "/v1/tasks", token: dispatcher, json: ["title": "x", "assigneeId": "w-2"])
            #expect(inactive.errorCode == "worker_unavailable")
            // Nothing was created by the refused writes.
            #expect(try await api.call(.get, "/v1/tasks", token: dispatcher).list("tasks").isEmpty)
        }
    }

    @Test func aRetryWithTheSameIdempotencyKeyReturnsTheFirstResult() async throws {
        let dispatcher = try await fixture.token(.dispatcher)
        try await fixture.test { api in
            let key: HTTPFields = [HTTPField.Name("Idempotency-Key")!: "create-1"]
            let first = try await api.call(.post, "/v1/tasks", token: dispatcher, json: ["title": "Flood barrier"], headers: key)
            let second = try await api.call(.post, "/v1/tasks", token: dispatcher, json: ["title": "Flood barrier"], headers: key)
            #expect(first.status == .created)
            #expect(second.status == .ok)
            #expect(second["streamId"] as? String == first["streamId"] as? String)
            #expect(second.resource("task")["taskId"] as? String == first.resource("task")["taskId"] as? String)
            #expect(try await api.call(.get, "/v1/tasks?wait=true", token: dispatcher).list("tasks").count == 1)
            // The same key on another kind of request is a client bug, said plainly.
            let reused = try await api.call(.post, "/v1/workers", token: dispatcher, json: ["name": "X"], headers: key)
            #expect(reused.status == .unprocessableContent)
            #expect(reused.errorCode == "idempotency_key_reused")
        }
    }

    @Test func badBodiesGetClearErrors() async throws {
        let dispatcher = try await fixture.token(.dispatcher)
        try await fixture.test { api in
            let missing = try await api.call(.post, "/v1/tasks", token: dispatcher, json: ["priority": 2])
            #expect(missing.status == .badRequest)
            #expect(missing.errorMessage.contains("'title'"))
            let wrongType = try await api.call(.post, "/v1/tasks", token: dispatcher, json: ["title": 5])
            #expect(wrongType.errorMessage.contains("'title' must be a string"))
            let array = try await api.call(.post, "/v1/tasks", token: dispatcher, raw: "[]", headers: [.contentType: "application/json"])
            #expect(array.errorMessage == "the body must be an object")
            let notJSON = try await api.call(.post, "/v1/tasks", token: dispatcher, raw: "{title:", headers: [.contentType: "application/json"])
            #expect(notJSON.status == .badRequest)
            #expect(notJSON.errorCode == "invalid_body")
            let form = try await api.call(.post, "/v1/tasks", token: dispatcher, raw: "title=x", headers: [.contentType: "application/x-www-form-urlencoded"])
            #expect(form.status == .unsupportedMediaType)
            let huge = try await api.call(.post, "/v1/tasks", token: dispatcher, json: ["title": "x", "description": String(repeating: "a", count: 2_000_000)])
            #expect(huge.status == .contentTooLarge)
            #expect(huge.errorCode == "body_too_large")
            let badID = try await api.call(.post, "/v1/tasks", token: dispatcher, json: ["taskId": "../etc", "title": "x"])
            #expect(badID.status == .badRequest)
            #expect(badID.errorMessage.contains("taskId"))
            // Server-owned fields in a body do not take effect.
            let sneaky = try await api.call(.post, "/v1/tasks?wait=true", token: dispatcher, json: ["taskId": "t9", "title": "x", "tenant": "globex", "status": "completed", "createdAt": 1])
            #expect(sneaky.resource("task")["status"] as? String == "open")
            #expect(try await self.fixture.dependencies.store.get(tenant: "globex", collection: "tasks", id: "t9") == nil)
            // A mistyped `wait` is refused before anything is written, not read as false.
            let typo = try await api.call(.post, "/v1/tasks?wait=ture", token: dispatcher, json: ["taskId": "t10", "title": "x"])
            #expect(typo.status == .badRequest)
            #expect(typo.errorMessage == "wait: 'ture' is not true or false")
            // (A second create of an existing task is a 409: this one finds none.)
            #expect(try await api.call(.post, "/v1/tasks?wait=true", token: dispatcher, json: ["taskId": "t10", "title": "x"]).status == .created)
            #expect(try await api.call(.post, "/v1/tasks", token: dispatcher, json: ["taskId": "t10", "title": "x"]).status == .conflict)
        }
    }

    @Test func aWaitThatRunsOutAnswers202WithTheResourceAsItWillBeStored() async throws {
        let dispatcher = try await fixture.token(.dispatcher)
        // No projection: every wait runs out (after the fixture's 5 s).
        fixture.projecting.cancel()
        _ = await fixture.projecting.result
        try await fixture.test { api in
            let created = try await api.call(.post, "/v1/tasks?wait=true", token: dispatcher, json: ["taskId": "t-late", "title": "Check pump"])
            #expect(created.status == .accepted, "\(created.object)")
            #expect(created.resource("task")["title"] as? String == "Check pump")
            #expect(created.resource("task")["status"] as? String == "open")
        }
    }

    @Test func anotherTenantSeesAndChangesNothing() async throws {
        let acme = try await fixture.token(.dispatcher, tenant: "acme")
        let globex = try await fixture.token(.dispatcher, tenant: "globex")
        try await fixture.test { api in
            _ = try await api.call(.post, "/v1/workers", token: acme, json: ["workerId": "w-1", "name": "Ana"])
            _ = try await api.call(.post, "/v1/tasks?wait=true", token: acme, json: ["taskId": "t1", "title": "acme only"])
            #expect(try await api.call(.get, "/v1/tasks/t1", token: globex).status == .notFound)
            #expect(try await api.call(.get, "/v1/tasks", token: globex).list("tasks").isEmpty)
            #expect(try await api.call(.post, "/v1/tasks/t1/cancel", token: globex).status == .notFound)
            #expect(try await api.call(.get, "/v1/workers/w-1", token: globex).status == .notFound)
            #expect(try await api.call(.patch, "/v1/workers/w-1", token: globex, json: ["name": "Mallory"]).status == .notFound)
            #expect(try await api.call(.post, "/v1/workers/w-1/locations", token: globex, json: ["lat": 1, "lon": 1]).status == .unprocessableContent)
            #expect(try await api.call(.get, "/v1/tasks/t1", token: acme).resource("task")["title"] as? String == "acme only")
        }
    }

    @Test func redisStoppedMidSessionGives503AndTheServerRecovers() async throws {
        let dispatcher = try await fixture.token(.dispatcher)
        try await fixture.test { api in
            #expect(try await api.call(.post, "/v1/tasks", token: dispatcher, json: ["taskId": "t1", "title": "before"]).status == .created)
            self.fixture.server.stop()
            let down = try await api.call(.post, "/v1/tasks", token: dispatcher, json: ["taskId": "t2", "title": "during"])
            #expect(down.status == .serviceUnavailable)
            #expect(down.errorCode == "redis_unavailable")
            #expect(down.headers[.retryAfter] != nil)
            #expect(try await api.call(.get, "/v1/workers/w-1/location", token: dispatcher).status == .serviceUnavailable)
            try self.fixture.server.start()
            // A client retries 503s after Retry-After; Redis may still be loading its data.
            var back = try await api.call(.post, "/v1/tasks?wait=true", token: dispatcher, json: ["taskId": "t2", "title": "after"])
            let deadline = ContinuousClock.now + .seconds(10)
            while back.status == .serviceUnavailable, ContinuousClock.now < deadline {
                try await Task.sleep(for: .milliseconds(100))
                back = try await api.call(.post, "/v1/tasks?wait=true", token: dispatcher, json: ["taskId": "t2", "title": "after"])
            }
            #expect(back.status == .created, "\(back.object)")
            #expect(back.resource("task")["title"] as? String == "after")
        }
    }
}
