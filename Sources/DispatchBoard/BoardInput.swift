/// A key the board understands (the terminal maps its keys to these).
public enum BoardKey: Sendable, Hashable {
    case character(Character)
    case up, down, pageUp, pageDown, home, end
    case tab, backTab, enter, escape, backspace
}

/// What a key asks of the program around the board.
public enum BoardAction: Sendable, Hashable {
    case none
    /// Run a parsed command (an API request, opening a room).
    case run(BoardCommand)
    case quit
}

/// Keys to view changes and actions: browse the panes, filter, type commands with completion
/// and history. Pure, so the whole keyboard is tested without a terminal.
public enum BoardInput {
    public static func handle(_ key: BoardKey, view: inout BoardView, board: inout BoardState, now: Int64, width: Int) -> BoardAction {
        switch view.mode {
        case .command: return command(key, view: &view, board: &board)
        case .filter: return filter(key, view: &view)
        case .help, .details:
            if key == .escape || key == .enter || key == .character("q") || key == .character("?") { view.mode = .browse }
            return .none
        case .browse: return browse(key, view: &view, board: &board, now: now, width: width)
        }
    }

    static func browse(_ key: BoardKey, view: inout BoardView, board: inout BoardState, now: Int64, width: Int) -> BoardAction {
        let rows = BoardRenderer.rows(view.focus, board, view, now: now, width: width / 2)
        switch key {
        case .tab: view.cycleFocus()
        case .backTab: view.cycleFocus(backwards: true)
        case .up: view.moveSelection(by: -1, rows: rows.count)
        case .down: view.moveSelection(by: 1, rows: rows.count)
        case .pageUp: view.moveSelection(by: -10, rows: rows.count)
        case .pageDown: view.moveSelection(by: 10, rows: rows.count)
        case .home: view.moveSelection(by: -rows.count, rows: rows.count)
        case .end: view.moveSelection(by: rows.count, rows: rows.count)
        case .enter:
            guard rows.indices.contains(view.selectedRow) else { return .none }
            // In the chat pane Enter opens the room; elsewhere it shows details.
            if view.focus == .chat, board.rooms[rows[view.selectedRow].id] != nil {
                board.select(room: rows[view.selectedRow].id)
            } else {
                view.mode = .details
            }
        case .escape:
            board.status = nil
        case .character("q"): return .quit
        case .character("?"): view.mode = .help
        case .character("/"): view.mode = .filter
        case .character(":"):
            view.mode = .command
        case .character(let character) where character.isLetter:
            // Typing a command needs no ':' first.
            view.mode = .command
            view.commandLine.append(character)
        default: break
        }
        return .none
    }

    static func filter(_ key: BoardKey, view: inout BoardView) -> BoardAction {
        var text = view.filters[view.focus] ?? ""
        switch key {
        case .enter: view.mode = .browse
        case .escape:
            text = ""
            view.mode = .browse
        case .backspace: if !text.isEmpty { text.removeLast() }
        case .character(let character): text.append(character)
        default: break
        }
        view.filters[view.focus] = text.isEmpty ? nil : text
        view.selection[view.focus] = 0
        return .none
    }

    static func command(_ key: BoardKey, view: inout BoardView, board: inout BoardState) -> BoardAction {
        switch key {
        case .escape:
            // What was typed stays: Esc only leaves the line.
            view.mode = .browse
        case .backspace:
            if view.commandLine.isEmpty { view.mode = .browse } else { view.commandLine.removeLast() }
        case .tab:
            let (line, matches) = BoardCommand.complete(view.commandLine, board: board)
            view.commandLine = line
            if matches.count > 1 { board.status = (matches.prefix(12).joined(separator: "  "), false) }
        case .up:
            if let index = view.history.lastIndex(of: view.commandLine), index > 0 {
                view.commandLine = view.history[index - 1]
            } else if !view.history.contains(view.commandLine), let last = view.history.last {
                view.commandLine = last
            }
        case .down:
            if let index = view.history.lastIndex(of: view.commandLine) {
                view.commandLine = index + 1 < view.history.count ? view.history[index + 1] : ""
            }
        case .enter:
            let line = view.commandLine
            guard !line.trimmingCharacters(in: .whitespaces).isEmpty else {
                view.mode = .browse
                return .none
            }
            do {
                let parsed = try BoardCommand.parse(line)
                view.history.removeAll { $0 == line }
                view.history.append(line)
                if view.history.count > 100 { view.history.removeFirst() }
                view.commandLine = ""
                view.mode = .browse
                switch parsed {
                case .quit: return .quit
                case .help:
                    view.mode = .help
                    return .none
                default:
                    board.status = ("sending: \(line)", false)
                    return .run(parsed)
                }
            } catch {
                // The line stays as typed, to be fixed rather than typed again.
                board.status = ("\(error)", true)
            }
        case .character(let character):
            view.commandLine.append(character)
        default: break
        }
        return .none
    }
}

import Foundation
