import Foundation

/// Renders rows as aligned columns for people reading a terminal.
struct Table {
    let headers: [String]
    var rows: [[String]] = []

    init(_ headers: String...) {
        self.headers = headers
    }

    mutating func append(_ row: String...) {
        rows.append(row)
    }

    var rendered: String {
        let all = [headers] + rows
        let widths = headers.indices.map { column in all.map { $0[column].count }.max() ?? 0 }
        return all.map { row in
            row.enumerated().map { index, cell in
                index == row.count - 1 ? cell : cell.padding(toLength: widths[index], withPad: " ", startingAt: 0)
            }.joined(separator: "  ")
        }.joined(separator: "\n")
    }

    func write(empty: String) {
        say(rows.isEmpty ? empty : rendered)
    }
}

/// Prints an `Encodable` value as pretty, key-sorted JSON.
func printJSON<T: Encodable>(_ value: T) throws {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
    say(String(decoding: try encoder.encode(value), as: UTF8.self))
}

/// Milliseconds as a short human duration: `850ms`, `12s`, `5m3s`, `2h4m`.
func humanDuration(milliseconds: Int) -> String {
    if milliseconds < 1_000 { return "\(milliseconds)ms" }
    let seconds = milliseconds / 1_000
    if seconds < 60 { return "\(seconds)s" }
    if seconds < 3_600 { return "\(seconds / 60)m\(seconds % 60)s" }
    return "\(seconds / 3_600)h\((seconds % 3_600) / 60)m"
}
