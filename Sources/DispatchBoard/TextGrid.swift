/// A screen as rows of styled cells: the renderer draws into it, a terminal or `--once` prints it.
public struct TextGrid: Sendable, Hashable {
    public enum Style: Sendable, Hashable {
        case normal, title, header, selected, dim, stale, error, ok, warning
    }

    public struct Cell: Sendable, Hashable {
        public var character: Character
        public var style: Style
    }

    public let width: Int
    public let height: Int
    public private(set) var cells: [Cell]

    public init(width: Int, height: Int) {
        self.width = max(0, width)
        self.height = max(0, height)
        cells = Array(repeating: Cell(character: " ", style: .normal), count: self.width * self.height)
    }

    public subscript(x: Int, y: Int) -> Cell {
        cells[y * width + x]
    }

    /// Writes `text` from column `x` of row `y`, cut at `limit` columns (and the grid's edge).
    /// One character takes one column; wide characters are not expected in ids and names here.
    public mutating func put(_ text: String, x: Int, y: Int, style: Style = .normal, limit: Int? = nil) {
        guard y >= 0, y < height, x < width else { return }
        let end = min(width, x + (limit ?? width))
        var column = x
        for character in text where column < end {
            if column >= 0 {
                let visible: Character = character.isNewline || character.asciiValue.map({ $0 < 0x20 || $0 == 0x7F }) == true ? " " : character
                cells[y * width + column] = Cell(character: visible, style: style)
            }
            column += 1
        }
    }

    /// Fills a row segment with one style (a selection bar, a title band).
    public mutating func fill(y: Int, from x: Int, count: Int, style: Style) {
        guard y >= 0, y < height else { return }
        for column in max(0, x)..<min(width, x + count) {
            cells[y * width + column].style = style
        }
    }

    /// The rows as plain text, trailing spaces trimmed.
    public var lines: [String] {
        (0..<height).map { y in
            var line = String(cells[(y * width)..<((y + 1) * width)].map(\.character))
            while line.last == " " { line.removeLast() }
            return line
        }
    }

    public var text: String { lines.joined(separator: "\n") }
}
