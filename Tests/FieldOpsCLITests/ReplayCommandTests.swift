import DocumentStore
import Domain
import FieldOpsCLI
import Foundation
import Redis
import Projections
@testable import Replay
import Streams
import Testing

@Suite("fieldops replay against a real redis-server")
struct ReplayCommandTests {
    let context: CLIContext

    init() throws {
        context = try CLIContext()
    }

    /// Nine events over three streams, written through the stream library in this order, a few
    /// milliseconds apart (within one millisecond, ids of different streams do not say which
    /// came first; the timeline then orders them by stream name).
    func seed() async throws -> [String] {
        let locations = try StreamProducer(redisURL: context.server.url, tenant: "acme", stream: StreamNames.locationUpdates)
        let tasks = try StreamProducer(redisURL: context.server.url, tenant: "acme", stream: StreamNames.taskAssignments)
        let chat = try StreamProducer(redisURL: context.server.url, tenant: "acme", stream: "chat:ops")
        var ids: [String] = []
        try await Task.sleep(for: .milliseconds(3))
        ids.append(try await tasks.publish(eventType: EventType.taskCreated, payload: #"{"taskId":"T-1","title":"Replace valve","by":"d-1","location":{"lat":52.52,"lon":13.40}}"#, routing: ["taskId": "T-1"]))
        try await Task.sleep(for: .milliseconds(3))
        ids.append(try await locations.publish(eventType: EventType.locationReported, payload: #"{"workerId":"w-1","lat":52.50,"lon":13.37,"battery":80}"#, routing: ["workerId": "w-1"]))
        try await Task.sleep(for: .milliseconds(3))
        ids.append(try await chat.publish(eventType: EventType.messageCreated, payload: #"{"messageId":"m-1","roomId":"ops","senderId":"d-1","text":"Storm front at 14:00"}"#, routing: ["roomId": "ops"]))
        try await Task.sleep(for: .milliseconds(3))
        ids.append(try await tasks.publish(eventType: EventType.taskAssigned, payload: #"{"taskId":"T-1","assigneeId":"w-1","by":"d-1"}"#, routing: ["taskId": "T-1"]))
        try await Task.sleep(for: .milliseconds(3))
        ids.append(try await locations.publish(eventType: EventType.locationReported, payload: #"{"workerId":"w-2","lat":48.14,"lon":11.58}"#, routing: ["workerId": "w-2"]))
        try await Task.sleep(for: .milliseconds(3))
        ids.append(try await tasks.publish(eventType: EventType.taskAccepted, payload: #"{"taskId":"T-1","by":"w-1"}"#, routing: ["taskId": "T-1"]))
        try await Task.sleep(for: .milliseconds(3))
        ids.append(try await chat.publish(eventType: EventType.messageCreated, payload: #"{"messageId":"m-2","roomId":"ops","senderId":"w-1","text":"On my way"}"#, routing: ["roomId": "ops"]))
        try await Task.sleep(for: .milliseconds(3))
        ids.append(try await locations.publish(eventType: EventType.locationReported, payload: #"{"workerId":"w-1","lat":52.51,"lon":13.38,"battery":79}"#, routing: ["workerId": "w-1"]))
        try await Task.sleep(for: .milliseconds(3))
        ids.append(try await tasks.publish(eventType: EventType.taskCompleted, payload: #"{"taskId":"T-1","by":"w-1","note":"valve replaced"}"#, routing: ["taskId": "T-1"]))
        return ids
    }

    func time(_ id: String) -> String {
        ISOTime.string(milliseconds: Int64(streamIDParts(id).milliseconds))
    }

    func replay(_ arguments: [String]) async throws -> String {
        try await context.run(["replay", "--redis-url", context.server.url, "--tenant", "acme", "--tz", "UTC"] + arguments)
    }

    /// The events of a jsonl replay: (stream, id, type), header dropped.
    func events(_ output: String) throws -> [(stream: String, id: String, type: String)] {
        try output.split(separator: "\n").dropFirst().map { line in
            let object = try JSONValue(jsonText: String(line))
            return (object["stream"]?.stringValue ?? "", object["id"]?.stringValue ?? "", object["eventType"]?.stringValue ?? "")
        }
    }

    @Test func theStreamsMergeIntoOneTimelineInIdOrder() async throws {
        let ids = try await seed()
        let output = try await replay(["--from", time(ids.first!), "--to", time(ids.last!), "--format", "jsonl"])
        let header = try JSONValue(jsonText: String(output.split(separator: "\n")[0]))
        #expect(header["complete"] == true)
        #expect(header["streams"] == ["chat:ops", "locationUpdates", "taskAssignments"])
        let timeline = try events(output)
        #expect(timeline.map(\.id) == ids)
        #expect(timeline.map(\.type) == [
            "task.created", "location.reported", "message.created", "task.assigned", "location.reported",
            "task.accepted", "message.created", "location.reported", "task.completed",
        ])
        // The text form says who did what, in order.
        let text = try await replay(["--from", time(ids.first!), "--to", time(ids.last!)])
        let lines = text.split(separator: "\n").map(String.init)
        #expect(lines[0].hasPrefix("FieldOps replay · tenant acme · "))
        let assigned = try #require(lines.first { $0.contains("task.assigned") })
        #expect(assigned.contains("d-1") && assigned.contains("T-1 → w-1"))
        #expect(lines.contains { $0.contains("#ops w-1: \"On my way\"") })
        #expect(lines.last == "9 events shown of 9 read.")
    }

    @Test func theWindowAndTheFiltersChooseTheEvents() async throws {
        let ids = try await seed()
        let window = ["--from", time(ids.first!), "--to", time(ids.last!), "--format", "jsonl"]
        // A window that ends before the last fix leaves it (and what follows) out.
        let early = try events(try await replay(["--from", time(ids[0]), "--to", time(ids[0]), "--format", "jsonl"]))
        #expect(early.allSatisfy { Int64(streamIDParts($0.id).milliseconds) == Int64(streamIDParts(ids[0]).milliseconds) })
        #expect(early.contains { $0.id == ids[0] })

        #expect(try events(try await replay(window + ["--worker", "w-2"])).map(\.id) == [ids[4]])
        #expect(try events(try await replay(window + ["--worker", "w-1"])).map(\.id) == [ids[1], ids[3], ids[5], ids[6], ids[7], ids[8]])
        #expect(try events(try await replay(window + ["--task", "T-1"])).map(\.id) == [ids[0], ids[3], ids[5], ids[8]])
        #expect(try events(try await replay(window + ["--room", "ops"])).map(\.id) == [ids[2], ids[6]])
        #expect(try events(try await replay(window + ["--stream", "locationUpdates"])).map(\.id) == [ids[1], ids[4], ids[7]])
        #expect(try events(try await replay(window + ["--event-type", "task.assigned", "--event-type", "task.completed"])).map(\.id) == [ids[3], ids[8]])
        // Berlin, not Munich: the two fixes of w-1 and the task's place.
        #expect(try events(try await replay(window + ["--bbox", "52.4,13.3,52.6,13.5"])).map(\.id) == [ids[0], ids[1], ids[7]])
        // Kinds combine with AND.
        #expect(try events(try await replay(window + ["--worker", "w-1", "--stream", "taskAssignments"])).map(\.id) == [ids[3], ids[5], ids[8]])
    }

    @Test func theSameWindowPrintsTheSameBytes() async throws {
        let ids = try await seed()
        for format in ["text", "jsonl"] {
            let arguments = ["--from", time(ids.first!), "--to", time(ids.last!), "--format", format]
            let first = try await replay(arguments)
            let second = try await replay(arguments)
            #expect(first == second)
            #expect(!first.isEmpty)
        }
    }

    @Test func aWindowThatStartsBeforeTrimmedEntriesSaysSoAtTheTop() async throws {
        let ids = try await seed()
        let redis = try RedisConnection(url: context.server.url)
        // Keep the newest fix only: the first two are gone.
        try redis.command("XTRIM", "tenant:{acme}:stream:locationUpdates", "MAXLEN", "1")
        let text = try await replay(["--from", time(ids.first!), "--to", time(ids.last!)])
        let top = text.split(separator: "\n").prefix(4).joined(separator: "\n")
        #expect(top.contains("! INCOMPLETE locationUpdates: entries up to"))
        #expect(!top.contains("INCOMPLETE taskAssignments"))
        let jsonl = try await replay(["--from", time(ids.first!), "--to", time(ids.last!), "--format", "jsonl"])
        let header = try JSONValue(jsonText: String(jsonl.split(separator: "\n")[0]))
        #expect(header["complete"] == false)
        #expect(header["gaps"]?.arrayValue?.first?["stream"] == "locationUpdates")
        // A window after the trimmed part is complete.
        let later = try await replay(["--from", time(ids[8]), "--to", time(ids[8]), "--format", "jsonl"])
        #expect(try JSONValue(jsonText: String(later.split(separator: "\n")[0]))["complete"] == true)
    }

    @Test func theStateAtAnInstantIsWhatTheLiveProjectionShowedThen() async throws {
        let url = context.server.url
        let tasks = try StreamProducer(redisURL: url, tenant: "acme", stream: StreamNames.taskAssignments)
        let locations = try StreamProducer(redisURL: url, tenant: "acme", stream: StreamNames.locationUpdates)
        let stock = try StreamProducer(redisURL: url, tenant: "acme", stream: StreamNames.resourceUpdates)
        let notifications = try StreamProducer(redisURL: url, tenant: "acme", stream: StreamNames.notifications)
        func publish(_ producer: StreamProducer, _ type: String, _ payload: String) async throws -> String {
            try await Task.sleep(for: .milliseconds(3))
            return try await producer.publish(eventType: type, payload: payload, routing: [:])
        }
        // Until 14:02, say: a task assigned, a worker moving, stock used, an alert.
        _ = try await publish(tasks, EventType.taskCreated, #"{"taskId":"T-1","title":"Replace valve","priority":4}"#)
        _ = try await publish(tasks, EventType.taskAssigned, #"{"taskId":"T-1","assigneeId":"w-1","by":"d-1"}"#)
        _ = try await publish(locations, EventType.locationReported, #"{"workerId":"w-1","lat":52.50,"lon":13.37,"battery":80}"#)
        _ = try await publish(stock, EventType.resourceCreated, #"{"resourceId":"R-3","name":"Sandbags","quantity":40,"unit":"bags"}"#)
        _ = try await publish(stock, EventType.resourceAdjusted, #"{"resourceId":"R-3","delta":-2,"reason":"used on T-1"}"#)
        let then = try await publish(notifications, EventType.notificationCreated, #"{"notificationId":"n-1","role":"dispatcher","title":"Flood warning"}"#)
        // What the projector showed at that moment.
        let live = try DocumentStore(path: ":memory:")
        _ = try await ProjectionMaintenance.rebuild(redisURL: url, store: live, tenant: "acme")
        // Later: the task is worked and done, the worker moves on, more stock goes, the alert is read.
        _ = try await publish(tasks, EventType.taskAccepted, #"{"taskId":"T-1","by":"w-1"}"#)
        _ = try await publish(locations, EventType.locationReported, #"{"workerId":"w-1","lat":52.51,"lon":13.38,"battery":78}"#)
        _ = try await publish(tasks, EventType.taskStarted, #"{"taskId":"T-1","by":"w-1"}"#)
        _ = try await publish(stock, EventType.resourceAdjusted, #"{"resourceId":"R-3","delta":-10,"reason":"levee"}"#)
        _ = try await publish(tasks, EventType.taskCompleted, #"{"taskId":"T-1","by":"w-1"}"#)
        // Completing twice is illegal: refused by the fold as by the projector.
        let end = try await publish(tasks, EventType.taskCompleted, #"{"taskId":"T-1","by":"w-1"}"#)
        _ = try await publish(notifications, EventType.notificationRead, #"{"notificationId":"n-1","userId":"d-1"}"#)

        let atThen = try JSONValue(jsonText: try await replay(["--at", time(then), "--format", "jsonl"]))
        let task = try #require(try await live.get(tenant: "acme", collection: "tasks", id: "T-1"))
        let worker = try #require(try await live.get(tenant: "acme", collection: "workers", id: "w-1"))
        let sandbags = try #require(try await live.get(tenant: "acme", collection: "resources", id: "R-3"))
        #expect(atThen["tasks"]?.arrayValue?.first?["status"]?.stringValue == task.data["status"]?.stringValue)
        #expect(atThen["tasks"]?.arrayValue?.first?["status"] == "assigned")
        #expect(atThen["tasks"]?.arrayValue?.first?["assignee"] == task.data["assigneeId"])
        #expect(atThen["workers"]?.arrayValue?.first?["position"] == .string(String(format: "%.5f,%.5f", worker.data[path: "location.lat"]!.doubleValue!, worker.data[path: "location.lon"]!.doubleValue!)))
        #expect(atThen["stock"]?.arrayValue?.first?["quantity"]?.stringValue == sandbags.data["quantity"]?.doubleValue.map { String(Int($0)) })
        #expect(atThen["unread"]?.arrayValue?.count == 1)
        #expect(atThen["complete"] == true)

        let atEnd = try JSONValue(jsonText: try await replay(["--at", time(end), "--format", "jsonl"]))
        #expect(atEnd["tasks"]?.arrayValue?.first?["status"] == "completed")
        #expect(atEnd["stock"]?.arrayValue?.first?["quantity"] == "28")
        #expect(atEnd["eventsRefused"] == 1)

        let changes = try await replay(["--diff", time(then), time(end)])
        #expect(changes.contains("status assigned → completed"))
        #expect(changes.contains("quantity 38 → 28"))
        #expect(changes.contains("position 52.50000,13.37000 → 52.51000,13.38000"))
        // The text state reads as a list per kind.
        let text = try await replay(["--at", time(then)])
        #expect(text.contains("Tasks (1)") && text.contains("status assigned · assignee w-1"))
    }

    @Test func foldingInSmallBatchesEndsWhereTheLiveProjectionIs() async throws {
        // Batches of 7 over 200 events: documents changed in one batch are read by the next
        // (from the batch's changes, not SQLite), and a refusal falls inside a batch.
        let url = context.server.url
        let tasks = try StreamProducer(redisURL: url, tenant: "fold", stream: StreamNames.taskAssignments)
        let locations = try StreamProducer(redisURL: url, tenant: "fold", stream: StreamNames.locationUpdates)
        let stock = try StreamProducer(redisURL: url, tenant: "fold", stream: StreamNames.resourceUpdates)
        _ = try stock.publishBatchBlocking([(EventType.resourceCreated, #"{"resourceId":"R-1","name":"Sandbags","quantity":100}"#, [])])
        for step in 0..<40 {
            let task = "T-\(step / 5)", worker = "w-\(step % 5)"
            let (type, payload) = switch step % 5 {
            case 0: (EventType.taskCreated, #"{"taskId":"\#(task)","title":"Check pump","priority":2}"#)
            case 1: (EventType.taskAssigned, #"{"taskId":"\#(task)","assigneeId":"\#(worker)","by":"d-1"}"#)
            case 2: (EventType.taskAccepted, #"{"taskId":"\#(task)","by":"\#(worker)"}"#)
            case 3: (EventType.taskStarted, #"{"taskId":"\#(task)","by":"\#(worker)"}"#)
            default: (EventType.taskCompleted, #"{"taskId":"\#(task)","by":"\#(worker)"}"#)
            }
            _ = try tasks.publishBatchBlocking([(type, payload, [("taskId", task)])])
            _ = try locations.publishBatchBlocking((0..<3).map { fix in
                (EventType.locationReported, #"{"workerId":"\#(worker)","lat":52.\#(step * 3 + fix),"lon":13.4,"battery":\#(99 - step)}"#, [("workerId", worker)])
            })
            // 40 × 3 bags from 100: the 34th adjustment would go below zero and is refused.
            _ = try stock.publishBatchBlocking([(EventType.resourceAdjusted, #"{"resourceId":"R-1","delta":-3,"reason":"levee"}"#, [])])
        }
        let live = try DocumentStore(path: ":memory:")
        _ = try await ProjectionMaintenance.rebuild(redisURL: url, store: live, tenant: "fold")
        let now = Int64(Date().timeIntervalSince1970 * 1_000) + 1_000
        let small = try TenantFold(redisURL: url, tenant: "fold", batchSize: 7)
        try await small.advance(to: now)
        let whole = try TenantFold(redisURL: url, tenant: "fold")
        try await whole.advance(to: now)
        let (inSmall, inWhole) = (try await small.snapshot(), try await whole.snapshot())
        #expect(small.folded == 201 && small.refused == 7 && whole.refused == 7)
        #expect(inSmall.rows == inWhole.rows)
        func rows(_ collection: String, _ row: (Document) -> TenantSnapshot.Row) async throws -> [TenantSnapshot.Row] {
            try await live.query(tenant: "fold", Query(collection).limit(1_000)).documents.map(row).sorted { $0.id < $1.id }
        }
        #expect(inSmall.rows[.workers] == (try await rows("workers", TenantSnapshot.worker)))
        #expect(inSmall.rows[.tasks] == (try await rows("tasks", TenantSnapshot.task)))
        #expect(inSmall.rows[.stock] == (try await rows("resources", TenantSnapshot.resource)))
        #expect(inSmall.rows[.stock]?.first?.value("quantity") == "1")
        #expect(inSmall.rows[.workers]?.first { $0.id == "w-4" }?.value("battery") == "60")
    }

    @Test func exportsCarryTheTracksTaskPlacesAndTimeline() async throws {
        let ids = try await seed()
        let window = ["--from", time(ids.first!), "--to", time(ids.last!)]

        let geojson = try JSONValue(jsonText: try await replay(window + ["--export", "geojson"]))
        #expect(geojson["type"] == "FeatureCollection")
        let features = try #require(geojson["features"]?.arrayValue)
        let w1 = try #require(features.first { $0["properties"]?["workerId"] == "w-1" })
        #expect(w1["geometry"]?["type"] == "LineString")
        #expect(w1["geometry"]?["coordinates"] == [[13.37, 52.5], [13.38, 52.51]])
        #expect(w1["properties"]?["times"] == [.string(time(ids[1])), .string(time(ids[7]))])
        let w2 = try #require(features.first { $0["properties"]?["workerId"] == "w-2" })
        #expect(w2["geometry"] == ["type": "Point", "coordinates": [11.58, 48.14]])
        let task = try #require(features.first { $0["properties"]?["taskId"] == "T-1" })
        #expect(task["geometry"]?["coordinates"] == [13.4, 52.52])
        #expect(task["properties"]?["status"] == "completed")

        let csv = try await replay(window + ["--export", "csv"]).split(separator: "\n")
        #expect(csv.first == "time,stream,id,event_type,actor,worker,task,room,lat,lon,summary")
        #expect(csv.count == 10)
        #expect(csv.contains { $0.hasPrefix(time(ids[3]) + ",taskAssignments,\(ids[3]),task.assigned,d-1,w-1,T-1,") })

        let file = FileManager.default.temporaryDirectory.appendingPathComponent("replay-\(UUID().uuidString).html")
        defer { try? FileManager.default.removeItem(at: file) }
        #expect(try await replay(window + ["--export", "html", "--output", file.path]).isEmpty)
        let html = try String(contentsOf: file, encoding: .utf8)
        #expect(html.hasPrefix("<!DOCTYPE html>"))
        #expect(html.components(separatedBy: "<polyline class=\"track\"").count - 1 == 2)
        let polyline = try #require(html.split(separator: "\n").first { $0.contains("data-worker=\"w-1\"") && $0.contains("<polyline") })
        let points = try #require(polyline.split(separator: "points=\"").last?.split(separator: "\"").first)
        #expect(points.split(separator: " ").count == 2)
        #expect(html.contains("<rect class=\"task\""))
        #expect(html.components(separatedBy: "<tr data-t=").count - 1 == 9)
        #expect(html.contains("id=\"slider\"") && html.contains("id=\"play\""))
        // Self-contained: nothing is fetched (the SVG namespace is a name, not a request).
        #expect(!html.replacingOccurrences(of: "xmlns=\"http://www.w3.org/2000/svg\"", with: "").contains("http"))
        #expect(!html.contains("<script src") && !html.contains("<link"))
        let data = try #require(html.split(separator: "id=\"tracks\">").last?.split(separator: "</script>").first)
        #expect(try JSONValue(jsonText: String(data)).arrayValue?.count == 2)

        // Where a Chromium is installed, the page also runs in it: its script draws the tracks up
        // to the slider's moment and labels that moment.
        let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin"
        let browsers = ["chromium", "chromium-browser", "google-chrome"].flatMap { name in path.split(separator: ":").map { "\($0)/\(name)" } }
        if let browser = browsers.first(where: { FileManager.default.isExecutableFile(atPath: $0) }) {
            let dom = FileManager.default.temporaryDirectory.appendingPathComponent("replay-dom-\(UUID().uuidString).html")
            defer { try? FileManager.default.removeItem(at: dom) }
            let pid = try ChildProcess.spawn(browser, ["--headless", "--no-sandbox", "--disable-gpu", "--dump-dom", file.absoluteString], output: dom.path)
            #expect(ChildProcess.wait(pid) == 0)
            let rendered = try String(contentsOf: dom, encoding: .utf8)
            #expect(rendered.contains("<span id=\"now\">\(ReplayTime.format(Int64(streamIDParts(ids.last!).milliseconds), zone: TimeZone(secondsFromGMT: 0)!)) UTC</span>"))
            #expect(rendered.components(separatedBy: "<polyline class=\"track\"").count - 1 == 2)
        }
    }

    @Test func republishingPlaysTheWindowIntoASandboxAndNeverTouchesTheSource() async throws {
        let ids = try await seed()
        let redis = try RedisConnection(url: context.server.url)
        let streams = ["chat:ops", "locationUpdates", "taskAssignments"]
        func lengths(_ tenant: String) throws -> [Int] {
            try streams.map { try redis.command("XLEN", "tenant:{\(tenant)}:stream:\($0)").int ?? -1 }
        }
        let before = try lengths("acme")
        let window = ["--from", time(ids.first!), "--to", time(ids.last!)]
        let said = try await replay(window + ["--into-tenant", "training", "--speed", "max"])
        #expect(said.contains("published 9 events into training"))
        #expect(try lengths("acme") == before)
        #expect(try lengths("training") == [2, 3, 4])

        // The sandbox holds the same story, newly numbered, with where each event came from.
        let copy = try await context.run(["replay", "--redis-url", context.server.url, "--tenant", "training", "--from", time(ids.first!), "--format", "jsonl"])
        let lines = try copy.split(separator: "\n").dropFirst().map { try JSONValue(jsonText: String($0)) }
        #expect(lines.map { $0["eventType"]?.stringValue ?? "" } == [
            "task.created", "location.reported", "message.created", "task.assigned", "location.reported",
            "task.accepted", "message.created", "location.reported", "task.completed",
        ])
        let first = try #require(try redis.command("XRANGE", "tenant:{training}:stream:taskAssignments", "-", "+", "COUNT", "1").array?.first?.array?[1].array)
        let fields = Dictionary(stride(from: 0, to: first.count - 1, by: 2).map { (first[$0].string ?? "", first[$0 + 1].string ?? "") }, uniquingKeysWith: { $1 })
        let metadata = try JSONValue(jsonText: fields["metadata"] ?? "{}")
        #expect(metadata["replayOf"] == .string("acme/taskAssignments/\(ids[0])"))
        #expect(metadata["originalTime"] == .string(time(ids[0])))
        #expect(lines.allSatisfy { $0["id"]?.stringValue.map { !ids.contains($0) } ?? false })

        // A second run (say after an interruption) adds nothing.
        let again = try await replay(window + ["--into-tenant", "training", "--speed", "max"])
        #expect(again.contains("published 0 events into training; 9 were already there"))
        #expect(try lengths("training") == [2, 3, 4])

        await #expect(throws: (any Error).self) { try await replay(window + ["--into-tenant", "acme"]) }
        await #expect(throws: (any Error).self) { try await replay(window + ["--into-tenant", "training", "--speed", "fast"]) }
    }

    @Test func mistakesAreExplained() async throws {
        await #expect(throws: (any Error).self) { try await replay(["--from", "yesterday-ish"]) }
        do {
            _ = try await replay(["--from", "2026-11-22T15:00:00Z", "--to", "2026-11-22T14:00:00Z"])
            Issue.record("a reversed window was accepted")
        } catch {
            #expect("\(error)".contains("is after --to"))
        }
        await #expect(throws: (any Error).self) { try await replay(["--from", "now", "--bbox", "91,0,92,1"]) }
        await #expect(throws: (any Error).self) { try await replay(["--from", "now", "--tz", "Mars/Olympus"]) }
    }
}

@Suite("Replay times")
struct ReplayTimeTests {
    let now: Int64 = 1_795_356_120_000  // 2026-11-22T14:02:00Z
    let utc = TimeZone(secondsFromGMT: 0)!
    let berlin = TimeZone(identifier: "Europe/Berlin")!

    @Test func timesAsInvestigatorsTypeThem() throws {
        #expect(try ReplayTime.parse("2026-11-22T14:02:00Z", now: 0, zone: berlin) == now)
        #expect(try ReplayTime.parse("2026-11-22T15:02:00+01:00", now: 0, zone: utc) == now)
        #expect(try ReplayTime.parse("2026-11-22T14:02:00.250Z", now: 0, zone: utc) == now + 250)
        #expect(try ReplayTime.parse("2026-11-22 15:02", now: 0, zone: berlin) == now)
        #expect(try ReplayTime.parse("2026-11-22 15:02 Europe/Berlin", now: 0, zone: utc) == now)
        #expect(try ReplayTime.parse("2026-11-22 14:02", now: 0, zone: utc) == now)
        #expect(try ReplayTime.parse("2026-11-22", now: 0, zone: utc) == now - (14 * 60 + 2) * 60_000)
        #expect(try ReplayTime.parse("15:02", now: now, zone: berlin) == now)
        #expect(try ReplayTime.parse("-2h", now: now, zone: utc) == now - 7_200_000)
        #expect(try ReplayTime.parse("-1d12h", now: now, zone: utc) == now - 129_600_000)
        #expect(try ReplayTime.parse("90m ago", now: now, zone: utc) == now - 5_400_000)
        #expect(try ReplayTime.parse("now", now: now, zone: utc) == now)
        #expect(ReplayTime.format(now, zone: berlin) == "2026-11-22 15:02:00.000")
    }

    @Test func nonsenseIsRefusedWithAnExample() {
        for text in ["yesterday", "2026-13-01", "25:00", "-2x", "2026-11-22 14:00 Mars/Olympus", ""] {
            #expect(throws: ReplayTime.Invalid.self) { try ReplayTime.parse(text, now: now, zone: utc) }
        }
    }
}
