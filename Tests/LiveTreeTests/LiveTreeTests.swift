import DocumentStore
import Foundation
import LiveTree
import Redis
import Streams
import Testing

@Suite("Live paths")
struct LivePathTests {
    @Test func parsesAndPrints() throws {
        #expect(try LivePath("/workers/w-7/location").segments == ["workers", "w-7", "location"])
        #expect(try LivePath("workers/w-7/").description == "/workers/w-7")
        #expect(try LivePath("/").isRoot)
        #expect(try LivePath("").isRoot)
        #expect(try LivePath("/a/b/c").ancestors.map(\.description) == ["/a", "/a/b"])
        #expect(try LivePath("/chat/Grüße ✓").segments.last == "Grüße ✓")
    }

    @Test(arguments: ["/a.b", "/a/$x", "/a#", "/a/[0]", "/a/b]", "/a//b", "/a/\u{1}b", "/a/\u{7F}"])
    func refusesForbiddenSegments(_ path: String) {
        #expect(throws: StreamError.self) { try LivePath(path) }
        do { _ = try LivePath(path) } catch { #expect(error.code == .invalidPath) }
    }

    @Test func refusesTooDeepOrTooLong() throws {
        _ = try LivePath(segments: Array(repeating: "x", count: 32))
        #expect(throws: StreamError.self) { try LivePath(segments: Array(repeating: "x", count: 33)) }
        _ = try LivePath("/" + String(repeating: "k", count: 767))
        #expect(throws: StreamError.self) { try LivePath("/" + String(repeating: "k", count: 768)) }
    }
}

@Suite("Live changes as a listener sees them")
struct LiveChangeTests {
    let change = LiveChange(.put, path: try! LivePath("/workers/w1"), data: ["status": "active", "location": ["lat": 52.5]])

    @Test func changeBelowTheListenerKeepsItsRelativePath() throws {
        let events = change.events(for: try LivePath("/workers"))
        #expect(events == [LiveChange(.put, path: try LivePath("/w1"), data: change.data)])
    }

    @Test func changeAboveTheListenerIsCutToTheListenersPart() throws {
        let events = change.events(for: try LivePath("/workers/w1/location/lat"))
        #expect(events == [LiveChange(.put, path: .root, data: 52.5)])
        #expect(change.events(for: try LivePath("/workers/w1/battery")) == [LiveChange(.put, path: .root, data: nil)])
    }

    @Test func changeElsewhereIsNotSeen() throws {
        #expect(change.events(for: try LivePath("/tasks")).isEmpty)
        #expect(change.events(for: try LivePath("/workers/w10")).isEmpty)
    }

    @Test func patchAboveTheListenerBecomesPutsOfWhatTouchesIt() throws {
        let patch = LiveChange(.patch, path: try LivePath("/tasks"), data: ["t1/status": "done", "t2/status": "open", "t1": nil])
        let events = patch.events(for: try LivePath("/tasks/t1"))
        #expect(events.contains(LiveChange(.put, path: try LivePath("/status"), data: "done")))
        #expect(events.contains(LiveChange(.put, path: .root, data: nil)))
        #expect(events.count == 2)
    }
}

@Suite("Live tree against Redis", .serialized)
final class LiveTreeTests: Sendable {
    let server: RedisServerProcess
    let tree: LiveTree

    init() throws {
        server = try RedisServerProcess()
        tree = try LiveTree(redisURL: server.url)
    }

    deinit {
        tree.close()
        server.destroy()
    }

    @Test func setThenReadLeavesSubtreesAndRoot() async throws {
        let value: JSONValue = ["name": "Crew 7", "skills": ["welding", "rigging"], "home": ["lat": 52.52, "lon": 13.4]]
        try await tree.set(tenant: "acme", path: LivePath("/teams/c7"), value: value)
        #expect(try await tree.get(tenant: "acme", path: LivePath("/teams/c7")) == value)
        #expect(try await tree.get(tenant: "acme", path: LivePath("/teams/c7/home/lat")) == 52.52)
        #expect(try await tree.get(tenant: "acme", path: LivePath("/teams/c7/skills/1")) == "rigging")
        #expect(try await tree.get(tenant: "acme", path: LivePath("/teams")) == ["c7": value])
        #expect(try await tree.get(tenant: "acme", path: LivePath("/")) == ["teams": ["c7": value]])
        #expect(try await tree.get(tenant: "acme", path: LivePath("/teams/c8")) == nil)
    }

    @Test func setReplacesTheWholeSubtreeAndNullDeletes() async throws {
        try await tree.set(tenant: "acme", path: LivePath("/a"), value: ["b": 1, "c": ["d": 2]])
        try await tree.set(tenant: "acme", path: LivePath("/a"), value: ["e": 3])
        #expect(try await tree.get(tenant: "acme", path: LivePath("/a")) == ["e": 3])
        try await tree.set(tenant: "acme", path: LivePath("/a/e/f"), value: "deeper")
        #expect(try await tree.get(tenant: "acme", path: LivePath("/a")) == ["e": ["f": "deeper"]])
        try await tree.set(tenant: "acme", path: LivePath("/a/e"), value: nil)
        #expect(try await tree.get(tenant: "acme", path: LivePath("/a")) == nil)
    }

    @Test func updateSetsSeveralPathsAndLeavesTheRest() async throws {
        try await tree.set(tenant: "acme", path: LivePath("/crew"), value: ["w1": ["status": "idle", "battery": 80], "w2": ["status": "idle"]])
        let stored = try await tree.update(tenant: "acme", path: LivePath("/crew"), values: ["w1/status": "busy", "w2": ["status": "off"]])
        #expect(stored == ["w1/status": "busy", "w2": ["status": "off"]])
        #expect(try await tree.get(tenant: "acme", path: LivePath("/crew")) == ["w1": ["status": "busy", "battery": 80], "w2": ["status": "off"]])
        await #expect(throws: StreamError.self) {
            try await self.tree.update(tenant: "acme", path: LivePath("/crew"), values: ["w1": ["status": "x"], "w1/battery": 1])
        }
    }

    @Test func serverTimestampAndConcurrentIncrements() async throws {
        let before = Int64(Date().timeIntervalSince1970 * 1000)
        let stored = try await tree.set(tenant: "acme", path: LivePath("/presence/u1"), value: ["online": true, "since": [".sv": "timestamp"]])
        let since = try #require(stored["since"]?.doubleValue)
        #expect(Int64(since) >= before - 1_000 && Int64(since) <= before + 10_000)
        #expect(try await tree.get(tenant: "acme", path: LivePath("/presence/u1/since")).doubleValue == since)

        try await withThrowingTaskGroup(of: Void.self) { group in
            for _ in 0..<40 {
                group.addTask { try await self.tree.set(tenant: "acme", path: LivePath("/counters/visits"), value: [".sv": ["increment": 1]]) }
            }
            try await group.waitForAll()
        }
        #expect(try await tree.get(tenant: "acme", path: LivePath("/counters/visits")) == 40)
        await #expect(throws: StreamError.self) {
            try await self.tree.set(tenant: "acme", path: LivePath("/x"), value: [".sv": "tomorrow"])
        }
    }

    @Test func pushedKeysSortInCreationOrder() async throws {
        var keys: [String] = []
        for n in 0..<50 { keys.append(try await tree.push(tenant: "acme", path: LivePath("/log"), value: ["n": .number(Double(n))]).key) }
        #expect(keys == keys.sorted())
        #expect(Set(keys).count == 50)
        let log = try #require(try await tree.get(tenant: "acme", path: LivePath("/log")).objectValue)
        #expect(log.keys == keys)
        #expect(log[keys[7]]?["n"] == 7)
    }

    @Test func deleteRemovesASubtreeOnly() async throws {
        try await tree.set(tenant: "acme", path: LivePath("/sites"), value: ["s1": ["pumps": 3], "s10": ["pumps": 4]])
        try await tree.delete(tenant: "acme", path: LivePath("/sites/s1"))
        #expect(try await tree.get(tenant: "acme", path: LivePath("/sites")) == ["s10": ["pumps": 4]])
    }

    @Test func readsIntoAValueStoredWholeByTheDomainServices() async throws {
        let connection = try RedisConnection(url: server.url)
        let keys = try StreamKeys(tenant: "acme")
        _ = try connection.command("HSET", keys.live, "/workers/w1/location", #"{"lat":52.5,"lon":13.4}"#)
        _ = try connection.command("ZADD", keys.livePaths, "0", "/workers/w1/location")
        #expect(try await tree.get(tenant: "acme", path: LivePath("/workers/w1/location/lat")) == 52.5)
        #expect(try await tree.get(tenant: "acme", path: LivePath("/workers/w1")) == ["location": ["lat": 52.5, "lon": 13.4]])
    }

    @Test func tenantsDoNotShareATree() async throws {
        try await tree.set(tenant: "acme", path: LivePath("/secret"), value: "acme's")
        #expect(try await tree.get(tenant: "globex", path: LivePath("/secret")) == nil)
        #expect(try await tree.get(tenant: "globex", path: LivePath("/")) == nil)
    }

    @Test func refusesValuesOverOneMebibyte() async throws {
        let big = JSONValue.string(String(repeating: "x", count: LiveTree.maxValueBytes))
        do {
            try await tree.set(tenant: "acme", path: LivePath("/big"), value: big)
            Issue.record("a value over 1 MiB was stored")
        } catch {
            #expect(error.code == .valueTooLarge)
        }
        #expect(try await tree.get(tenant: "acme", path: LivePath("/big")) == nil)
    }

    @Test func publishesEachWriteWithThePathsItTouched() async throws {
        let subscriber = RedisSubscriber(configuration: try RedisConfiguration(url: server.url))
        defer { subscriber.close() }
        await subscriber.subscribe([try LiveTree.changesChannel(tenant: "acme")])
        try await tree.set(tenant: "acme", path: LivePath("/presence/u2"), value: ["online": true, "at": [".sv": "timestamp"]])
        try await tree.update(tenant: "acme", path: LivePath("/presence"), values: ["u2/online": false])
        var messages: [[LiveChange]] = []
        for await event in subscriber.events {
            guard case .message(_, let payload) = event else { continue }
            messages.append(try #require(LiveChange.decode(message: String(decoding: payload, as: UTF8.self))))
            if messages.count == 2 { break }
        }
        let first = try #require(messages[0].first)
        #expect(first.operation == .put && first.path.description == "/presence/u2")
        #expect(first.data["online"] == true)
        #expect(first.data["at"]?.doubleValue != nil)
        #expect(messages[1] == [LiveChange(.patch, path: try LivePath("/presence"), data: ["u2/online": false])])
    }
}
