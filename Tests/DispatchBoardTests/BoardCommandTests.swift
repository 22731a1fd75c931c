import DispatchBoard
import DocumentStore
import Testing

@Suite("Dispatch command line")
struct BoardCommandTests {
    @Test func commandsBecomeAPIRequests() throws {
        #expect(try BoardCommand.parse("assign T-42 to w-7") == .request(method: "POST", path: "/v1/tasks/T-42/assign", body: ["assigneeId": "w-7"], summary: "T-42 assigned to w-7"))
        #expect(try BoardCommand.parse("  say ops \"Storm front at 14:00\" ") == .request(method: "POST", path: "/v1/rooms/ops/messages", body: ["text": "Storm front at 14:00"], summary: "said in #ops"))
        #expect(try BoardCommand.parse("adjust R-3 -2 \"used on T-42\"") == .request(method: "POST", path: "/v1/resources/R-3/adjust", body: ["delta": -2, "reason": "used on T-42"], summary: "R-3 adjusted by -2"))
        #expect(try BoardCommand.parse("cancel T-42 \"duplicate\"") == .request(method: "POST", path: "/v1/tasks/T-42/cancel", body: ["note": "duplicate"], summary: "T-42 cancelled"))
        let create = try BoardCommand.parse("create task \"Replace valve\" --priority high --at 52.52,13.40 --to w-7")
        guard case .request(_, let path, let body, _) = create else { Issue.record("not a request"); return }
        #expect(path == "/v1/tasks")
        #expect(body == ["title": "Replace valve", "priority": "high", "location": ["lat": 52.52, "lon": 13.4], "assigneeId": "w-7"])
        #expect(try BoardCommand.parse("say ops \"a \\\"quoted\\\" word\"") == .request(method: "POST", path: "/v1/rooms/ops/messages", body: ["text": "a \"quoted\" word"], summary: "said in #ops"))
        #expect(try BoardCommand.parse("room leads") == .openRoom("leads"))
        #expect(try BoardCommand.parse("q") == .quit)
    }

    @Test(arguments: [
        ("assign T-42", "worker id"),
        ("assign to w-7", "task id"),
        ("say ops", "in quotes"),
        ("say ops \"unclosed", "not closed"),
        ("adjust R-3 lots", "non-zero number"),
        ("create task --priority high", "title in quotes"),
        ("create task \"x\" --priority extreme", "low, normal, high or urgent"),
        ("create task \"x\" --at 95,13", "LAT,LON"),
        ("teleport w-7", "unknown command"),
        ("assign ../x to w-7", "task id"),
    ])
    func mistakesAreExplained(line: String, hint: String) {
        #expect {
            try BoardCommand.parse(line)
        } throws: { error in
            "\(error)".contains(hint)
        }
    }

    @Test func tabCompletesIdsTheBoardKnows() {
        let board = BoardFixture.board()
        #expect(BoardCommand.complete("as", board: board).line == "assign ")
        #expect(BoardCommand.complete("assign T-4", board: board).matches == ["T-41", "T-42"])
        #expect(BoardCommand.complete("assign T-42 to w-", board: board).matches == ["w-1", "w-2"])
        #expect(BoardCommand.complete("say o", board: board).line == "say ops ")
        #expect(BoardCommand.complete("adjust R", board: board).line == "adjust R-3 ")
        #expect(BoardCommand.complete("say zzz", board: board).matches.isEmpty)
    }
}
