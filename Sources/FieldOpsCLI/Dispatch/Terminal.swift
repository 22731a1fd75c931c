import CNCurses
import DispatchBoard
import Foundation
import Synchronization

/// Set by SIGINT, SIGTERM or SIGHUP: the screen loop ends and the terminal is restored.
let terminalQuitRequested = Atomic<Bool>(false)

/// The terminal through ncursesw: terminfo, keys, resize, colors (none with `NO_COLOR`). It is
/// not thread-safe: one thread owns it. The terminal is restored on every exit, including a
/// crash (a fatal signal restores it before the default action runs).
final class Terminal {
    enum Key: Equatable {
        case character(Character)
        case up, down, left, right, pageUp, pageDown, home, end
        case tab, backTab, enter, escape, backspace, resize
    }

    private(set) var colors: Bool

    init(monochrome: Bool) {
        setlocale(LC_ALL, "")
        initscr()
        cbreak()
        noecho()
        nonl()
        keypad(fieldops_stdscr(), true)
        set_escdelay(25)
        curs_set(0)
        // Keys are polled: the loop also redraws for events while nobody types.
        timeout(50)
        colors = !monochrome && has_colors()
        if colors {
            start_color()
            use_default_colors()
            init_pair(1, Int16(COLOR_BLACK), Int16(COLOR_CYAN))    // title
            init_pair(2, Int16(COLOR_CYAN), -1)                    // header
            init_pair(3, Int16(COLOR_BLACK), Int16(COLOR_WHITE))   // selected
            init_pair(4, Int16(COLOR_YELLOW), -1)                  // stale, warning
            init_pair(5, Int16(COLOR_RED), -1)                     // error
            init_pair(6, Int16(COLOR_GREEN), -1)                   // ok
        }
        Self.installSignalHandlers()
    }

    /// Leaves the screen as it was before.
    func restore() {
        endwin()
    }

    var size: (width: Int, height: Int) { (Int(fieldops_cols()), Int(fieldops_lines())) }

    /// Draws the whole grid; ncurses sends only the cells that changed, so nothing flickers.
    func draw(_ grid: TextGrid) {
        for y in 0..<grid.height {
            var x = 0
            while x < grid.width {
                let style = grid[x, y].style
                var run = ""
                var end = x
                while end < grid.width, grid[end, y].style == style {
                    run.append(grid[end, y].character)
                    end += 1
                }
                attrset(attributes(style))
                // The bottom-right cell cannot be written without scrolling: stop one short.
                if y == grid.height - 1, end == grid.width { run.removeLast() }
                mvaddstr(Int32(y), Int32(x), run)
                x = end
            }
        }
        attrset(0)
        refresh()
    }

    private func attributes(_ style: TextGrid.Style) -> Int32 {
        let value: Int32
        if !colors {
            value = switch style {
            case .title, .selected: fieldops_a_reverse()
            case .header, .error, .warning: fieldops_a_bold()
            case .stale: fieldops_a_underline()
            case .dim: fieldops_a_dim()
            case .normal, .ok: 0
            }
            return value
        }
        value = switch style {
        case .normal: 0
        case .title: fieldops_color_pair(1) | fieldops_a_bold()
        case .header: fieldops_color_pair(2)
        case .selected: fieldops_color_pair(3)
        case .stale, .warning: fieldops_color_pair(4)
        case .error: fieldops_color_pair(5) | fieldops_a_bold()
        case .ok: fieldops_color_pair(6)
        case .dim: fieldops_a_dim()
        }
        return value
    }

    /// The next key, or nil after the 50 ms poll.
    func readKey() -> Key? {
        var value: wint_t = 0
        let result = fieldops_get_wch(&value)
        if result == ERR { return nil }
        if result == KEY_CODE_YES {
            switch Int32(value) {
            case KEY_UP: return .up
            case KEY_DOWN: return .down
            case KEY_LEFT: return .left
            case KEY_RIGHT: return .right
            case KEY_NPAGE: return .pageDown
            case KEY_PPAGE: return .pageUp
            case KEY_HOME: return .home
            case KEY_END: return .end
            case KEY_BTAB: return .backTab
            case KEY_ENTER: return .enter
            case KEY_BACKSPACE: return .backspace
            case KEY_RESIZE: return .resize
            default: return nil
            }
        }
        switch value {
        case 9: return .tab
        case 10, 13: return .enter
        case 27: return .escape
        case 8, 127: return .backspace
        default:
            guard value >= 32, let scalar = Unicode.Scalar(UInt32(value)) else { return nil }
            return .character(Character(scalar))
        }
    }

    private static func installSignalHandlers() {
        for signal in [SIGINT, SIGTERM, SIGHUP] {
            Glibc.signal(signal) { _ in terminalQuitRequested.store(true, ordering: .relaxed) }
        }
        // A crash: put the terminal back, then let the signal do what it would have done.
        for signal in [SIGSEGV, SIGBUS, SIGILL, SIGTRAP, SIGABRT, SIGFPE] {
            Glibc.signal(signal) { number in
                endwin()
                Glibc.signal(number, SIG_DFL)
                raise(number)
            }
        }
    }
}
