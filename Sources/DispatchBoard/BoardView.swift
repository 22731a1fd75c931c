import Foundation

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
    /// How times are shown and where "today" starts.
    public var clock = BoardClock.utc
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

/// Wall-clock times in one zone: a fixed offset taken when the board starts (a board open across
/// a daylight-saving change shows the old offset until restarted).
public struct BoardClock: Hashable, Sendable {
    /// Milliseconds east of UTC.
    public var offset: Int64
    /// Shown after the time in the title bar: `UTC`, `CET`, `+0530`.
    public var zone: String

    public static let utc = BoardClock(offset: 0, zone: "UTC")

    public init(offset: Int64, zone: String) {
        self.offset = offset
        self.zone = zone
    }

    /// `HH:MM:SS` of an instant (ms since 1970).
    public func time(_ milliseconds: Int64) -> String {
        let seconds = ((milliseconds + offset) / 1_000 % 86_400 + 86_400) % 86_400
        return String(format: "%02d:%02d:%02d", seconds / 3_600, (seconds / 60) % 60, seconds % 60)
    }

    /// The instant the day containing `milliseconds` began, in this zone.
    public func startOfDay(_ milliseconds: Int64) -> Int64 {
        let local = milliseconds + offset
        return local - ((local % 86_400_000) + 86_400_000) % 86_400_000 - offset
    }
}
