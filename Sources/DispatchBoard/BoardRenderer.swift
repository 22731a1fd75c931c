import Domain
import Foundation

/// Lays the board out on a grid of any size from 80×24 up: title bar, four panes (workers,
/// tasks, chat, alerts), a status line and the command line. Pure: the same state, view, time
/// and size give the same grid, so layouts are tested as text.
public enum BoardRenderer {
    public static let minimumWidth = 80
    public static let minimumHeight = 24

    /// One line of a pane, with the id the commands and details refer to.
    public struct Row: Sendable, Hashable {
        public var id: String
        public var text: String
        public var style: TextGrid.Style = .normal
    }

    public static func render(_ board: BoardState, _ view: BoardView, now: Int64, width: Int, height: Int) -> TextGrid {
        var grid = TextGrid(width: width, height: height)
        guard width >= minimumWidth, height >= minimumHeight else {
            grid.put("Terminal \(width)×\(height): fieldops dispatch needs 80×24 or more.", x: 0, y: 0, style: .warning)
            return grid
        }
        drawTitle(&grid, board, view.clock, now: now)
        let bodyTop = 1, bodyHeight = height - 3
        let topHeight = (bodyHeight + 1) / 2
        let leftWidth = width / 2
        let frames: [(BoardView.Pane, x: Int, y: Int, w: Int, h: Int)] = [
            (.workers, 0, bodyTop, leftWidth, topHeight),
            (.tasks, leftWidth, bodyTop, width - leftWidth, topHeight),
            (.chat, 0, bodyTop + topHeight, leftWidth, bodyHeight - topHeight),
            (.alerts, leftWidth, bodyTop + topHeight, width - leftWidth, bodyHeight - topHeight),
        ]
        for frame in frames {
            drawPane(&grid, frame.0, board, view, now: now, x: frame.x, y: frame.y, width: frame.w, height: frame.h)
        }
        drawStatus(&grid, board, y: height - 2)
        drawCommandLine(&grid, view, y: height - 1)
        switch view.mode {
        case .help: drawOverlay(&grid, title: "Keys and commands", lines: helpLines)
        case .details:
            let rows = self.rows(view.focus, board, view, now: now, width: width)
            if rows.indices.contains(view.selectedRow) {
                drawOverlay(&grid, title: "\(view.focus.title): \(rows[view.selectedRow].id)", lines: details(view.focus, id: rows[view.selectedRow].id, board, view.clock, now: now))
            }
        default: break
        }
        return grid
    }

    // MARK: - Bars

    static func drawTitle(_ grid: inout TextGrid, _ board: BoardState, _ clock: BoardClock, now: Int64) {
        grid.fill(y: 0, from: 0, count: grid.width, style: .title)
        let connection: String = switch board.connection {
        case .connecting: "connecting…"
        case .live: "● live"
        case .reconnecting(let attempt, let reason): "○ reconnecting (try \(attempt)): \(reason)"
        }
        let left = " FieldOps dispatch · \(board.tenant) · \(connection)"
        let right = "\(Int(board.eventsPerSecond(now: now).rounded())) ev/s · \(clock.time(now)) \(clock.zone) "
        grid.put(left, x: 0, y: 0, style: .title, limit: grid.width - right.count - 1)
        grid.put(right, x: grid.width - right.count, y: 0, style: .title)
    }

    static func drawStatus(_ grid: inout TextGrid, _ board: BoardState, y: Int) {
        guard let status = board.status else { return }
        grid.put(" " + status.text, x: 0, y: y, style: status.isError ? .error : .ok)
    }

    static func drawCommandLine(_ grid: inout TextGrid, _ view: BoardView, y: Int) {
        switch view.mode {
        case .command:
            grid.put("> " + view.commandLine, x: 0, y: y)
        case .filter:
            grid.put("/ " + (view.filters[view.focus] ?? "") + "   (filter \(view.focus.title.lowercased()); Enter keeps it, Esc clears)", x: 0, y: y)
        default:
            grid.put("Tab pane · ↑↓ select · Enter details · / filter · : command · ? help · q quit", x: 0, y: y, style: .dim)
        }
    }

    // MARK: - Panes

    static func drawPane(_ grid: inout TextGrid, _ pane: BoardView.Pane, _ board: BoardState, _ view: BoardView, now: Int64, x: Int, y: Int, width: Int, height: Int) {
        let focused = view.focus == pane
        var title = "─ \(pane.title) " + summary(pane, board, view.clock, now: now, wide: width >= 70)
        if let filter = view.filters[pane], !filter.isEmpty { title += " [/\(filter)]" }
        title += " " + String(repeating: "─", count: max(0, width))
        grid.put(title, x: x, y: y, style: focused ? .title : .header, limit: width - 1)
        let rows = self.rows(pane, board, view, now: now, width: width - 1)
        let visible = height - 1
        guard visible > 0 else { return }
        if rows.isEmpty {
            grid.put(emptyText(pane), x: x + 1, y: y + 1, style: .dim, limit: width - 2)
            return
        }
        let selected = min(view.selection[pane] ?? 0, rows.count - 1)
        // Scroll so the selection stays in sight.
        let first = max(0, min(selected - visible + 1, rows.count - visible))
        for (offset, row) in rows.dropFirst(first).prefix(visible).enumerated() {
            let isSelected = focused && first + offset == selected
            grid.put(row.text, x: x, y: y + 1 + offset, style: isSelected ? .selected : row.style, limit: width - 1)
            if isSelected { grid.fill(y: y + 1 + offset, from: x, count: width - 1, style: .selected) }
        }
    }

    static func emptyText(_ pane: BoardView.Pane) -> String {
        switch pane {
        case .workers: "no workers yet"
        case .tasks: "no tasks"
        case .chat: "no rooms"
        case .alerts: "no alerts"
        }
    }

    static func summary(_ pane: BoardView.Pane, _ board: BoardState, _ clock: BoardClock, now: Int64, wide: Bool) -> String {
        switch pane {
        case .workers:
            return "(\(board.workers.values.filter(\.active).count) active)"
        case .tasks:
            var counts: [TaskStatus: Int] = [:]
            let today = clock.startOfDay(now)
            for task in board.tasks.values where !task.status.isTerminal || task.updatedAt >= today { counts[task.status, default: 0] += 1 }
            let (open, assigned, active, done) = (counts[.open] ?? 0, (counts[.assigned] ?? 0) + (counts[.accepted] ?? 0), counts[.inProgress] ?? 0, counts[.completed] ?? 0)
            return wide
                ? "open \(open) · assigned \(assigned) · in progress \(active) · done today \(done)"
                : "\(open) open·\(assigned) asg·\(active) prog·\(done) done"
        case .chat:
            let unread = board.rooms.values.reduce(0) { $0 + $1.unread }
            return unread > 0 ? "(\(unread) unread)" : ""
        case .alerts:
            return "(\(board.alerts.count))"
        }
    }

    /// The rows of a pane after its filter, as drawn at `width` columns.
    public static func rows(_ pane: BoardView.Pane, _ board: BoardState, _ view: BoardView, now: Int64, width: Int) -> [Row] {
        let all: [Row] = switch pane {
        case .workers: workerRows(board, view, now: now, width: width)
        case .tasks: taskRows(board, view.clock, now: now, width: width)
        case .chat: chatRows(board, view.clock, width: width)
        case .alerts: board.alerts.map { Row(id: String($0.at), text: " \(view.clock.time($0.at)) \($0.title)" + ($0.body.map { " — \($0)" } ?? "")) }
        }
        guard let filter = view.filters[pane]?.lowercased(), !filter.isEmpty else { return all }
        return all.filter { $0.text.lowercased().contains(filter) || $0.id.lowercased().contains(filter) }
    }

    static func workerRows(_ board: BoardState, _ view: BoardView, now: Int64, width: Int) -> [Row] {
        var onTask: [String: BoardState.TaskItem] = [:]
        for task in board.tasks.values where !task.status.isTerminal {
            guard let assignee = task.assigneeId else { continue }
            if let known = onTask[assignee], known.updatedAt >= task.updatedAt { continue }
            onTask[assignee] = task
        }
        let wide = width >= 60
        let idWidth = min(12, max(3, board.workers.keys.map(\.count).max() ?? 3))
        // The fixed columns take 22 + the id (narrow) or 34 + the id (wide); the name gets the rest.
        let nameWidth = max(8, min(24, width - (wide ? 34 : 22) - idWidth))
        return board.workers.values.sorted { ($0.name, $0.id) < ($1.name, $1.id) }.map { worker in
            let age = worker.positionAt.map { now - $0 }
            var text = " " + pad(worker.name, nameWidth) + " " + pad(worker.id, idWidth)
            if wide { text += " " + pad(worker.active ? "on" : "off", 3) }
            text += " " + pad(age.map(duration) ?? "—", 5, right: true)
            if wide { text += " " + pad(worker.speed.map { "\(Int(($0 * 3.6).rounded()))km/h" } ?? "", 7, right: true) }
            text += " " + pad(worker.battery.map { "\(Int($0.rounded()))%" } ?? "", 4, right: true)
            text += " " + pad(onTask[worker.id]?.id ?? "", 8)
            let stale = worker.active && (age.map { $0 > view.staleAfter } ?? true)
            return Row(id: worker.id, text: text, style: !worker.active ? .dim : stale ? .stale : .normal)
        }
    }

    static let statusOrder: [TaskStatus] = [.open, .assigned, .accepted, .inProgress, .completed, .cancelled]

    static func taskRows(_ board: BoardState, _ clock: BoardClock, now: Int64, width: Int) -> [Row] {
        let today = clock.startOfDay(now)
        let shown = board.tasks.values.filter { !$0.status.isTerminal || $0.updatedAt >= today }
        let sorted = shown.sorted { a, b in
            let (ia, ib) = (statusOrder.firstIndex(of: a.status)!, statusOrder.firstIndex(of: b.status)!)
            if ia != ib { return ia < ib }
            if a.priority != b.priority { return a.priority > b.priority }
            return (a.createdAt, a.id) < (b.createdAt, b.id)
        }
        let wide = width >= 60
        // The assignee column fits the longest assignee shown, within bounds, so ids like
        // sim-w-012 are not cut to "sim-w" when there is room.
        let longest = sorted.lazy.compactMap(\.assigneeId).map(\.count).max() ?? 1
        let assigneeWidth = wide ? min(max(longest, 8), 14) : min(max(longest, 5), width >= 36 ? 9 : 7)
        return sorted.map { task in
            let text: String
            if wide {
                let label = task.status == .inProgress ? "in progress" : task.status.rawValue
                text = " " + pad(task.id, 8) + " " + priorityMark(task.priority) + " " + pad(label, 11) + " " + pad(task.assigneeId ?? "—", assigneeWidth)
                    + " " + pad(duration(now - task.createdAt), 5, right: true) + " " + task.title
            } else {
                text = " " + pad(task.id, 6) + " " + priorityMark(task.priority) + " " + pad(shortLabel(task.status), 4) + " " + pad(task.assigneeId ?? "—", assigneeWidth)
                    + " " + pad(duration(now - task.createdAt), 3, right: true) + " " + task.title
            }
            let style: TextGrid.Style = task.status.isTerminal ? .dim : task.priority >= 4 ? .warning : .normal
            return Row(id: task.id, text: text, style: style)
        }
    }

    static func shortLabel(_ status: TaskStatus) -> String {
        switch status {
        case .open: "open"
        case .assigned: "asgd"
        case .accepted: "acpt"
        case .inProgress: "prog"
        case .completed: "done"
        case .cancelled: "cncl"
        }
    }

    static func chatRows(_ board: BoardState, _ clock: BoardClock, width: Int) -> [Row] {
        let rooms = board.rooms.values.sorted { $0.id < $1.id }
        let listWidth = min(18, width / 3)
        var lines: [Row] = rooms.map { room in
            let marker = room.id == board.selectedRoom ? "▸" : " "
            return Row(id: room.id, text: marker + pad("#" + room.id + (room.unread > 0 ? " (\(room.unread))" : ""), listWidth - 1), style: room.unread > 0 ? .warning : .normal)
        }
        // The selected room's newest messages beside the room list.
        let messages = board.selectedRoom.flatMap { board.rooms[$0]?.messages } ?? []
        let count = max(lines.count, min(messages.count, 200))
        let tail = Array(messages.suffix(count))
        while lines.count < count { lines.append(Row(id: "", text: String(repeating: " ", count: listWidth))) }
        for (index, message) in tail.enumerated() {
            lines[index].text = pad(lines[index].text, listWidth) + "│ " + clock.time(message.at) + " " + message.senderId + ": " + message.text
        }
        return lines
    }

    static func details(_ pane: BoardView.Pane, id: String, _ board: BoardState, _ clock: BoardClock, now: Int64) -> [String] {
        switch pane {
        case .workers:
            guard let worker = board.workers[id] else { return [] }
            var lines = ["name      \(worker.name)", "id        \(worker.id)", "active    \(worker.active ? "yes" : "no")"]
            if let lat = worker.lat, let lon = worker.lon { lines.append(String(format: "position  %.5f, %.5f", lat, lon)) }
            if let at = worker.positionAt { lines.append("fix       \(clock.time(at)) (\(duration(now - at)) ago)") }
            if let speed = worker.speed { lines.append(String(format: "speed     %.1f km/h", speed * 3.6)) }
            if let battery = worker.battery { lines.append("battery   \(Int(battery))%") }
            if let task = board.tasks.values.first(where: { $0.assigneeId == id && !$0.status.isTerminal }) { lines.append("task      \(task.id) \(task.title)") }
            return lines
        case .tasks:
            guard let task = board.tasks[id] else { return [] }
            return [
                "task      \(task.id)", "title     \(task.title)", "status    \(task.status.rawValue)", "priority  \(task.priority)",
                "assignee  \(task.assigneeId ?? "—")", "created   \(clock.time(task.createdAt)) (\(duration(now - task.createdAt)) ago)",
                "changed   \(clock.time(task.updatedAt))",
            ]
        case .chat:
            guard let room = board.rooms[id] else { return [] }
            return ["room      #\(room.id) \(room.name)", "messages  \(room.messages.count) kept", "say       :say \(room.id) \"…\""]
        case .alerts:
            return board.alerts.filter { String($0.at) == id }.flatMap { ["\(clock.time($0.at)) \($0.title)", $0.body ?? ""] }
        }
    }

    public static let helpLines = [
        "Tab / Shift-Tab   next / previous pane        ↑ ↓ PgUp PgDn   select",
        "Enter             details of the selection   Esc             close, clear",
        "/                 filter the pane            ?               this help",
        ":                 command line (Tab completes ids, ↑ recalls)   q  quit",
        "",
        "assign T-42 to w-7                 create task \"Replace valve\" --priority high --at 52.52,13.40",
        "accept|start|complete T-42 [\"note\"] cancel T-42 \"duplicate\"",
        "say ops \"Storm front at 14:00\"     adjust R-3 -2 \"used on T-42\"",
        "room ops                           notify w-7 \"Call the depot\"",
    ]

    static func drawOverlay(_ grid: inout TextGrid, title: String, lines: [String]) {
        let width = min(grid.width - 4, max(title.count + 4, (lines.map(\.count).max() ?? 0) + 4))
        let height = min(grid.height - 4, lines.count + 3)
        let x = (grid.width - width) / 2, y = (grid.height - height) / 2
        for row in y..<(y + height) {
            grid.put(String(repeating: " ", count: width), x: x, y: row)
            grid.fill(y: row, from: x, count: width, style: .header)
        }
        grid.put("┌─ " + title + " " + String(repeating: "─", count: max(0, width - title.count - 5)) + "┐", x: x, y: y, style: .title, limit: width)
        for (index, line) in lines.prefix(height - 3).enumerated() {
            grid.put("│ " + line, x: x, y: y + 1 + index, style: .header, limit: width - 1)
            grid.put("│", x: x + width - 1, y: y + 1 + index, style: .header)
        }
        grid.put("└ Esc closes " + String(repeating: "─", count: max(0, width - 14)) + "┘", x: x, y: y + height - 1, style: .title, limit: width)
    }

    // MARK: - Formatting

    static func pad(_ text: String, _ width: Int, right: Bool = false) -> String {
        if text.count >= width { return String(text.prefix(width)) }
        let space = String(repeating: " ", count: width - text.count)
        return right ? space + text : text + space
    }

    static func priorityMark(_ priority: Int) -> String {
        switch priority {
        case 4...: "!"
        case 3: "▲"
        case 1: "▽"
        default: "·"
        }
    }

    /// `12s`, `5m`, `3h`, `2d`.
    static func duration(_ milliseconds: Int64) -> String {
        let seconds = max(0, milliseconds / 1_000)
        if seconds < 60 { return "\(seconds)s" }
        if seconds < 3_600 { return "\(seconds / 60)m" }
        if seconds < 86_400 { return "\(seconds / 3_600)h" }
        return "\(seconds / 86_400)d"
    }

    /// `HH:mm:ss` UTC.
}
