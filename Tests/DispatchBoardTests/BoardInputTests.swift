import DispatchBoard
import Testing

@Suite("Dispatch keyboard")
struct BoardInputTests {
    func type(_ text: String, _ view: inout BoardView, _ board: inout BoardState) -> [BoardAction] {
        text.map { BoardInput.handle(.character($0), view: &view, board: &board, now: BoardFixture.now, width: 80) }
    }

    func press(_ key: BoardKey, _ view: inout BoardView, _ board: inout BoardState) -> BoardAction {
        BoardInput.handle(key, view: &view, board: &board, now: BoardFixture.now, width: 80)
    }

    @Test func aTypedCommandIsCompletedAndRun() {
        var board = BoardFixture.board()
        var view = BoardView()
        _ = type("assign T-4", &view, &board)
        #expect(view.mode == .command)
        _ = press(.tab, &view, &board)
        #expect(board.status?.text == "T-41  T-42")
        _ = type("2 to w-", &view, &board)
        _ = press(.tab, &view, &board)
        _ = type("2", &view, &board)
        let action = press(.enter, &view, &board)
        #expect(action == .run(.request(method: "POST", path: "/v1/tasks/T-42/assign", body: ["assigneeId": "w-2"], summary: "T-42 assigned to w-2")))
        #expect(view.commandLine == "")
        #expect(view.mode == .browse)
        // ↑ brings it back.
        _ = type(":", &view, &board)
        _ = press(.up, &view, &board)
        #expect(view.commandLine == "assign T-42 to w-2")
    }

    @Test func aMistakeKeepsTheLineAndSaysWhy() {
        var board = BoardFixture.board()
        var view = BoardView()
        _ = type("say ops \"unclosed", &view, &board)
        #expect(press(.enter, &view, &board) == .none)
        #expect(view.commandLine == "say ops \"unclosed")
        #expect(board.status?.isError == true)
        // Esc leaves the line without losing it.
        _ = press(.escape, &view, &board)
        #expect(view.mode == .browse)
        _ = type(":", &view, &board)
        #expect(view.commandLine == "say ops \"unclosed")
    }

    @Test func browsingMovesFocusSelectsFiltersAndOpensRooms() {
        var board = BoardFixture.board()
        var view = BoardView()
        _ = press(.down, &view, &board)
        #expect(view.selection[.workers] == 1)
        _ = press(.down, &view, &board)
        _ = press(.down, &view, &board)
        #expect(view.selection[.workers] == 2)
        _ = press(.tab, &view, &board)
        _ = press(.tab, &view, &board)
        #expect(view.focus == .chat)
        // The rooms are listed by id: leads, ops.
        #expect(press(.enter, &view, &board) == .none)
        #expect(board.selectedRoom == "leads")
        #expect(board.rooms["leads"]?.unread == 0)
        _ = press(.backTab, &view, &board)
        _ = type("/", &view, &board)
        _ = type("valve", &view, &board)
        _ = press(.enter, &view, &board)
        #expect(view.filters[.tasks] == "valve")
        #expect(BoardRenderer.rows(.tasks, board, view, now: BoardFixture.now, width: 40).map(\.id) == ["T-42"])
        _ = press(.enter, &view, &board)
        #expect(view.mode == .details)
        _ = press(.escape, &view, &board)
        _ = type("?", &view, &board)
        #expect(view.mode == .help)
        _ = press(.escape, &view, &board)
        #expect(press(.character("q"), &view, &board) == .quit)
    }
}
