import DispatchBoard
import Foundation
import Testing

@Suite("Dispatch board layout")
struct BoardRendererTests {
    static let golden = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Golden")

    /// Compares with `Golden/NAME.txt`; `FIELDOPS_RECORD_GOLDEN=1` writes it instead (then review the diff).
    func expectMatches(_ grid: TextGrid, _ name: String, sourceLocation: SourceLocation = #_sourceLocation) throws {
        let file = Self.golden.appendingPathComponent(name + ".txt")
        if ProcessInfo.processInfo.environment["FIELDOPS_RECORD_GOLDEN"] == "1" {
            try FileManager.default.createDirectory(at: Self.golden, withIntermediateDirectories: true)
            try (grid.text + "\n").write(to: file, atomically: true, encoding: .utf8)
        }
        let expected = try String(contentsOf: file, encoding: .utf8)
        #expect(grid.text + "\n" == expected, "\n\(grid.text)", sourceLocation: sourceLocation)
    }

    @Test func theBoardAt80x24() throws {
        let grid = BoardRenderer.render(BoardFixture.board(), BoardView(), now: BoardFixture.now, width: 80, height: 24)
        #expect(grid.lines.allSatisfy { $0.count <= 80 })
        try expectMatches(grid, "board-80x24")
    }

    @Test func theBoardAt200x60() throws {
        var view = BoardView()
        view.focus = .tasks
        view.selection[.tasks] = 1
        let grid = BoardRenderer.render(BoardFixture.board(), view, now: BoardFixture.now, width: 200, height: 60)
        try expectMatches(grid, "board-200x60")
    }

    @Test func aSmallTerminalIsToldWhatItNeeds() {
        let grid = BoardRenderer.render(BoardFixture.board(), BoardView(), now: BoardFixture.now, width: 60, height: 20)
        #expect(grid.lines[0].contains("needs 80×24"))
    }

    @Test func stalePositionsAndTheSelectionAreMarked() {
        var view = BoardView()
        view.staleAfter = 5 * 60_000
        let grid = BoardRenderer.render(BoardFixture.board(), view, now: BoardFixture.now, width: 80, height: 24)
        let rows = grid.lines
        let ana = try! #require(rows.firstIndex { $0.contains("Ana Lima") })
        let bo = try! #require(rows.firstIndex { $0.contains("Bo Chen") })
        // Ana's row is the selection; Bo's fix is 9 minutes old.
        #expect(grid[2, ana].style == .selected)
        #expect(grid[2, bo].style == .stale)
    }

    @Test func filtersHelpAndDetailsShowWhatWasAskedFor() {
        var view = BoardView()
        view.filters[.workers] = "bo"
        var grid = BoardRenderer.render(BoardFixture.board(), view, now: BoardFixture.now, width: 80, height: 24)
        #expect(grid.text.contains("Bo Chen"))
        #expect(!grid.text.contains("Ana Lima"))
        view = BoardView()
        view.mode = .help
        grid = BoardRenderer.render(BoardFixture.board(), view, now: BoardFixture.now, width: 80, height: 24)
        #expect(grid.text.contains("assign T-42 to w-7"))
        view.mode = .details
        view.focus = .tasks
        view.selection[.tasks] = 1
        grid = BoardRenderer.render(BoardFixture.board(), view, now: BoardFixture.now, width: 80, height: 24)
        #expect(grid.text.contains("title     Replace valve"))
    }

    @Test func timesAndTodayFollowTheDispatchersZone() {
        var view = BoardView()
        var grid = BoardRenderer.render(BoardFixture.board(), view, now: BoardFixture.now, width: 200, height: 60)
        #expect(grid.text.contains("14:02:00 UTC"))
        #expect(grid.text.contains("done today 1"))
        // Ten hours east it is already tomorrow: the meter reading done at 23:02 was yesterday.
        view.clock = BoardClock(offset: 10 * 3_600_000, zone: "AEST")
        grid = BoardRenderer.render(BoardFixture.board(), view, now: BoardFixture.now, width: 200, height: 60)
        #expect(grid.text.contains("00:02:00 AEST"))
        #expect(grid.text.contains("done today 0"))
        let west = BoardClock(offset: -5 * 3_600_000, zone: "EST")
        #expect(west.time(BoardFixture.now) == "09:02:00")
        #expect(west.startOfDay(BoardFixture.now) == BoardFixture.now - (9 * 60 + 2) * 60_000)
    }

    @Test func longAssigneeIdsAreShownWholeAt80Columns() {
        var board = BoardFixture.board()
        let now = BoardFixture.now
        board.apply(BoardFixture.event("task.created", ["taskId": "S7-3", "title": "Clear drain", "assigneeId": "sim-w-012", "priority": 3], at: now - 60_000), receivedAt: now)
        let grid = BoardRenderer.render(board, BoardView(), now: now, width: 80, height: 24)
        #expect(grid.text.contains("sim-w-012"))
        #expect(grid.text.contains("Clear"))
    }
}
