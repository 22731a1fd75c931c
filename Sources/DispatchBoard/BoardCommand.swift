import DocumentStore

/// A command typed on the dispatcher's command line.
///
/// ```
/// assign T-42 to w-7
/// create task "Replace valve" --priority high --at 52.52,13.40 [--to w-7] [--id T-43]
/// accept|start|complete T-42 ["note"]      cancel T-42 "duplicate"
/// say ops "Storm front at 14:00"           adjust R-3 -2 "used on T-42"
/// notify w-7 "Call the depot"              room ops
/// ```
public enum BoardCommand: Sendable, Hashable {
    /// A request to the JSON API; `summary` says in plain words what it did when it succeeds.
    case request(method: String, path: String, body: JSONValue, summary: String)
    /// Opens a room in the chat pane.
    case openRoom(String)
    case help
    case quit

    public struct ParseError: Error, Sendable, Hashable, CustomStringConvertible {
        public let description: String
        init(_ description: String) { self.description = description }
    }

    static let verbs = ["assign", "create", "accept", "start", "complete", "cancel", "say", "adjust", "notify", "room", "help", "quit"]

    /// Parses a line; the error says what the command expects.
    public static func parse(_ line: String) throws(ParseError) -> BoardCommand {
        let words = try tokens(line)
        guard let verb = words.first?.lowercased() else { throw ParseError("type a command, e.g. assign T-42 to w-7 (? lists them all)") }
        let rest = Array(words.dropFirst())
        func id(_ text: String?, _ what: String, usage: String) throws(ParseError) -> String {
            guard let text, isIdentifier(text) else { throw ParseError("\(verb) needs \(what): \(usage)") }
            return text
        }
        switch verb {
        case "assign":
            let usage = "assign TASK to WORKER"
            let task = try id(rest.first?.lowercased() == "to" ? nil : rest.first, "a task id", usage: usage)
            let worker = try id(rest.count == 3 && rest[1].lowercased() == "to" ? rest[2] : rest.count == 2 ? rest[1] : nil, "a worker id", usage: usage)
            return .request(method: "POST", path: "/v1/tasks/\(task)/assign", body: ["assigneeId": .string(worker)], summary: "\(task) assigned to \(worker)")
        case "accept", "start", "complete", "cancel":
            let usage = "\(verb) TASK [\"note\"]"
            let task = try id(rest.first, "a task id", usage: usage)
            guard rest.count <= 2 else { throw ParseError("put the note in quotes: \(usage)") }
            var body: JSONObject = [:]
            if rest.count == 2 { body["note"] = .string(rest[1]) }
            let done = ["accept": "accepted", "start": "started", "complete": "completed", "cancel": "cancelled"][verb]!
            return .request(method: "POST", path: "/v1/tasks/\(task)/\(verb)", body: .object(body), summary: "\(task) \(done)")
        case "create":
            return try createTask(rest)
        case "say":
            let usage = "say ROOM \"message\""
            let room = try id(rest.first, "a room id", usage: usage)
            guard rest.count == 2, !rest[1].isEmpty else { throw ParseError("say needs the message in quotes: \(usage)") }
            return .request(method: "POST", path: "/v1/rooms/\(room)/messages", body: ["text": .string(rest[1])], summary: "said in #\(room)")
        case "adjust":
            let usage = "adjust RESOURCE DELTA [\"reason\"], e.g. adjust R-3 -2 \"used on T-42\""
            let resource = try id(rest.first, "a resource id", usage: usage)
            guard rest.count >= 2, let delta = Double(rest[1]), delta.isFinite, delta != 0, rest.count <= 3 else {
                throw ParseError("adjust needs a non-zero number: \(usage)")
            }
            var body: JSONObject = ["delta": .number(delta)]
            if rest.count == 3 { body["reason"] = .string(rest[2]) }
            return .request(method: "POST", path: "/v1/resources/\(resource)/adjust", body: .object(body), summary: "\(resource) adjusted by \(rest[1])")
        case "notify":
            let usage = "notify USER \"title\""
            let user = try id(rest.first, "a user id", usage: usage)
            guard rest.count == 2, !rest[1].isEmpty else { throw ParseError("notify needs the title in quotes: \(usage)") }
            return .request(method: "POST", path: "/v1/notifications", body: ["userId": .string(user), "title": .string(rest[1])], summary: "\(user) notified")
        case "room":
            return .openRoom(try id(rest.first, "a room id", usage: "room ROOM"))
        case "help", "?":
            return .help
        case "quit", "exit", "q":
            return .quit
        default:
            throw ParseError("unknown command '\(verb)'; commands: \(verbs.joined(separator: ", ")) (? shows examples)")
        }
    }

    static func createTask(_ rest: [String]) throws(ParseError) -> BoardCommand {
        let usage = "create task \"title\" [--priority low|normal|high|urgent] [--at LAT,LON] [--to WORKER] [--id TASK]"
        guard rest.first?.lowercased() == "task", rest.count >= 2, !rest[1].isEmpty, !rest[1].hasPrefix("--") else {
            throw ParseError("create needs a title in quotes: \(usage)")
        }
        var body: JSONObject = ["title": .string(rest[1])]
        var index = 2
        while index < rest.count {
            let option = rest[index]
            guard index + 1 < rest.count else { throw ParseError("\(option) needs a value: \(usage)") }
            let value = rest[index + 1]
            switch option {
            case "--priority", "-p":
                guard ["low", "normal", "high", "urgent"].contains(value.lowercased()) else { throw ParseError("--priority is low, normal, high or urgent") }
                body["priority"] = .string(value.lowercased())
            case "--at":
                let parts = value.split(separator: ",").compactMap { Double($0.trimmingCharacters(in: .whitespaces)) }
                guard parts.count == 2, (-90...90).contains(parts[0]), (-180...180).contains(parts[1]) else {
                    throw ParseError("--at takes LAT,LON in degrees, e.g. --at 52.52,13.40")
                }
                body["location"] = ["lat": .number(parts[0]), "lon": .number(parts[1])]
            case "--to":
                guard isIdentifier(value) else { throw ParseError("--to takes a worker id") }
                body["assigneeId"] = .string(value)
            case "--id":
                guard isIdentifier(value) else { throw ParseError("--id takes a task id of letters, digits, - and _") }
                body["taskId"] = .string(value)
            default:
                throw ParseError("unknown option \(option): \(usage)")
            }
            index += 2
        }
        return .request(method: "POST", path: "/v1/tasks", body: .object(body), summary: "task \"\(rest[1])\" created")
    }

    /// Words split on spaces; `"…"` keeps spaces (with `\"` for a quote).
    static func tokens(_ line: String) throws(ParseError) -> [String] {
        var words: [String] = []
        var current = ""
        var quoted = false
        var inWord = false
        var escape = false
        for character in line {
            if escape {
                current.append(character)
                escape = false
            } else if character == "\\", quoted {
                escape = true
            } else if character == "\"" {
                quoted.toggle()
                inWord = true
            } else if character == " ", !quoted {
                if inWord { words.append(current) }
                current = ""
                inWord = false
            } else {
                current.append(character)
                inWord = true
            }
        }
        guard !quoted else { throw ParseError("a quote is not closed") }
        if inWord { words.append(current) }
        return words
    }

    static func isIdentifier(_ text: String) -> Bool {
        !text.isEmpty && text.count <= 64 && text.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "-" || $0 == "_") }
    }

    /// Completes the last word of `line` with the ids the board knows: commands first, then
    /// tasks, workers, rooms or resources as the command expects. Returns the line extended by
    /// the longest common prefix of the matches, and the matches.
    public static func complete(_ line: String, board: BoardState) -> (line: String, matches: [String]) {
        let endsWithSpace = line.last == " "
        var words = line.split(separator: " ", omittingEmptySubsequences: true).map(String.init)
        let partial = endsWithSpace ? "" : (words.popLast() ?? "")
        let verb = words.first?.lowercased()
        let candidates: [String]
        switch (verb, words.count) {
        case (nil, _): candidates = verbs
        case ("assign", 1), ("accept", 1), ("start", 1), ("complete", 1), ("cancel", 1):
            candidates = board.tasks.values.filter { !$0.status.isTerminal }.map(\.id)
        case ("assign", 2): candidates = ["to"]
        case ("assign", 3), ("notify", 1), ("create", _):
            candidates = board.workers.values.filter(\.active).map(\.id)
        case ("say", 1), ("room", 1): candidates = Array(board.rooms.keys)
        case ("adjust", 1): candidates = Array(board.resources.keys)
        default: candidates = []
        }
        let matches = candidates.filter { $0.lowercased().hasPrefix(partial.lowercased()) }.sorted()
        guard let first = matches.first else { return (line, []) }
        var common = first
        for match in matches.dropFirst() {
            while !match.hasPrefix(common) { common.removeLast() }
        }
        let completed = common.count >= partial.count ? common : partial
        let prefix = words.isEmpty ? "" : words.joined(separator: " ") + " "
        return (prefix + completed + (matches.count == 1 ? " " : ""), matches)
    }
}
