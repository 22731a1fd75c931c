/// The dispatcher's side of the screen: which pane has focus, what is selected, what is being
/// typed. Kept apart from `BoardState`, which only the server's data changes.
public struct BoardView: Sendable, Hashable {
    public enum Pane: Int, Sendable, CaseIterable {
        case workers, tasks, chat, alerts

        public var title: String {
            switch self {
            case .workers: "Workers"
            case .tasks: "Tasks"
            case .chat: "Chat"
            case .alerts: "Alerts"
            }
        }
    }

    public enum Mode: Sendable, Hashable {
        case browse
        /// Typing a command after `:` (or any letter).
        case command
        /// Typing a filter after `/`.
        case filter
        case help
        /// The selected row's details.
        case details
    }

    public var focus: Pane = .workers
    public var mode: Mode = .browse
    /// Selected row per pane.
    public var selection: [Pane: Int] = [:]
    /// Case-insensitive filter per pane.
    public var filters: [Pane: String] = [:]
    public var commandLine = ""
    /// Earlier commands, newest last (↑ recalls them).
    public var history: [String] = []
    /// A position older than this is shown as stale (ms).
    public var staleAfter: Int64 = 120_000
    /// `NO_COLOR`: styles still mark selection and errors, but with no color.
    public var monochrome = false

    public init() {}

    public var selectedRow: Int { selection[focus] ?? 0 }

    public mutating func moveSelection(by delta: Int, rows: Int) {
        guard rows > 0 else {
            selection[focus] = 0
            return
        }
        selection[focus] = min(max(0, selectedRow + delta), rows - 1)
    }

    public mutating func cycleFocus(backwards: Bool = false) {
        let all = Pane.allCases
        let index = all.firstIndex(of: focus)!
        focus = all[(index + (backwards ? all.count - 1 : 1)) % all.count]
    }
}
