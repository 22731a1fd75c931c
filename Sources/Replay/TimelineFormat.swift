import DocumentStore
import Domain
import Foundation
import Streams

/// The timeline as people read it, or as JSON Lines for tools. Nothing in either depends on
/// when or where it was produced (beyond the zone asked for), so one window always prints the
/// same bytes.
public struct TimelineFormat: Sendable {
    public enum Style: String, Sendable, CaseIterable {
        case text, jsonl
    }

    public let style: Style
    public let zone: TimeZone
    /// Times without the date when the whole window falls on one day.
    let timeOnly: Bool

    public init(style: Style, zone: TimeZone, from: Int64, to: Int64) {
        self.style = style
        self.zone = zone
        self.timeOnly = ReplayTime.format(from, zone: zone).prefix(10) == ReplayTime.format(to, zone: zone).prefix(10)
    }

    /// What comes before the events: the window, the streams, and plainly, what is missing.
    public func header(tenant: String, from: Int64, to: Int64, coverage: [StreamCoverage], filter: ReplayFilter) -> [String] {
        let gaps = coverage.filter { $0.missingUntil != nil }
        let late = coverage.filter { coverage in coverage.createdAt.map { $0 > from } ?? false }
        switch style {
        case .jsonl:
            let header: JSONValue = [
                "kind": "replay",
                "tenant": .string(tenant),
                "from": .string(ISOTime.string(milliseconds: from)),
                "to": .string(ISOTime.string(milliseconds: to)),
                "streams": .array(coverage.map { .string($0.stream) }),
                "complete": .bool(gaps.isEmpty),
                "gaps": .array(gaps.map { gap in
                    ["stream": .string(gap.stream), "missingUntil": .string(ISOTime.string(milliseconds: gap.missingUntil!)), "reason": "entries were trimmed or deleted"]
                }),
                "createdInWindow": .array(late.map { ["stream": .string($0.stream), "createdAt": .string(ISOTime.string(milliseconds: $0.createdAt!))] }),
            ]
            return [header.jsonText]
        case .text:
            var lines = [
                "FieldOps replay · tenant \(tenant) · \(ReplayTime.format(from, zone: zone)) → \(ReplayTime.format(to, zone: zone)) \(ReplayTime.name(of: zone))",
                "streams: " + (coverage.isEmpty ? "none" : coverage.map(\.stream).joined(separator: ", ")) + describe(filter),
            ]
            for gap in gaps {
                lines.append("! INCOMPLETE \(gap.stream): entries up to \(ReplayTime.format(gap.missingUntil!, zone: zone)) were trimmed or deleted, after this window began; what that stream held before then is not shown.")
            }
            for stream in late {
                lines.append("· \(stream.stream) begins at \(ReplayTime.format(stream.createdAt!, zone: zone)) (created then): nothing earlier of it is in Redis.")
            }
            lines.append("")
            return lines
        }
    }

    public func line(_ entry: TimelineEntry) -> String {
        let event = entry.event
        switch style {
        case .jsonl:
            var routing: [(String, JSONValue)] = []
            for field in event.routing { routing.append((field.name, .string(field.value))) }
            let object: JSONValue = [
                "kind": "event",
                "id": .string(event.id),
                "stream": .string(event.stream),
                "time": .string(ISOTime.string(milliseconds: entry.time)),
                "eventType": .string(event.eventType),
                "actor": entry.actor.map(JSONValue.string) ?? .null,
                "payload": entry.payload,
                "routing": JSONValue(dictionaryElements: routing),
            ]
            return object.jsonText
        case .text:
            let time = ReplayTime.format(entry.time, zone: zone)
            return (timeOnly ? String(time.dropFirst(11)) : time) + "  " + Self.pad(event.stream, 16) + "  " + Self.pad(event.eventType, 20)
                + "  " + Self.pad(entry.actor ?? "—", 10) + "  " + Self.describe(entry)
        }
    }

    /// The state at an instant. `coverage` is of the whole history (the fold starts at the beginning).
    public func state(_ snapshot: TenantSnapshot, tenant: String, coverage: [StreamCoverage], refused: Int) -> [String] {
        let gaps = coverage.filter { $0.missingUntil != nil }
        switch style {
        case .jsonl:
            var object: [(String, JSONValue)] = [
                ("kind", "state"), ("tenant", .string(tenant)), ("at", .string(ISOTime.string(milliseconds: snapshot.at))),
                ("eventsFolded", .number(Double(snapshot.folded))), ("eventsRefused", .number(Double(refused))),
                ("complete", .bool(gaps.isEmpty)), ("gaps", .array(gaps.map { ["stream": .string($0.stream), "missingUntil": .string(ISOTime.string(milliseconds: $0.missingUntil!))] })),
            ]
            for kind in TenantSnapshot.Kind.allCases {
                object.append((kind.rawValue, .array((snapshot.rows[kind] ?? []).map { row in
                    JSONValue(dictionaryElements: [("id", .string(row.id))] + row.fields.map { ($0.name, .string($0.value)) })
                })))
            }
            return [JSONValue(dictionaryElements: object).jsonText]
        case .text:
            var lines = ["FieldOps state · tenant \(tenant) · at \(ReplayTime.format(snapshot.at, zone: zone)) \(ReplayTime.name(of: zone)) · \(snapshot.folded) events folded"
                + (refused > 0 ? " (\(refused) refused by the projection rules, as live)" : "")]
            for gap in gaps {
                lines.append("! INCOMPLETE \(gap.stream): entries up to \(ReplayTime.format(gap.missingUntil!, zone: zone)) were trimmed or deleted; what they changed is missing from this state.")
            }
            for kind in TenantSnapshot.Kind.allCases {
                let rows = snapshot.rows[kind] ?? []
                lines.append("")
                lines.append("\(kind.title) (\(rows.count))")
                for row in rows {
                    lines.append("  " + Self.pad(row.id, 12) + "  " + row.fields.map { field in
                        field.name == "fix" ? "fix " + (ISOTime.milliseconds(field.value).map { ReplayTime.format($0, zone: zone) } ?? field.value) : "\(field.name) \(field.value)"
                    }.joined(separator: " · "))
                }
            }
            return lines
        }
    }

    /// What changed between two instants.
    public func changes(_ changes: [(kind: TenantSnapshot.Kind, id: String, change: String)], tenant: String, from: Int64, to: Int64, coverage: [StreamCoverage]) -> [String] {
        let gaps = coverage.filter { $0.missingUntil != nil }
        switch style {
        case .jsonl:
            let header: JSONValue = [
                "kind": "diff", "tenant": .string(tenant), "from": .string(ISOTime.string(milliseconds: from)), "to": .string(ISOTime.string(milliseconds: to)),
                "complete": .bool(gaps.isEmpty), "gaps": .array(gaps.map { ["stream": .string($0.stream), "missingUntil": .string(ISOTime.string(milliseconds: $0.missingUntil!))] }),
            ]
            return [header.jsonText] + changes.map { change in
                (["kind": "change", "of": .string(change.kind.rawValue), "id": .string(change.id), "change": .string(change.change)] as JSONValue).jsonText
            }
        case .text:
            var lines = ["FieldOps changes · tenant \(tenant) · \(ReplayTime.format(from, zone: zone)) → \(ReplayTime.format(to, zone: zone)) \(ReplayTime.name(of: zone))"]
            for gap in gaps {
                lines.append("! INCOMPLETE \(gap.stream): entries up to \(ReplayTime.format(gap.missingUntil!, zone: zone)) were trimmed or deleted; the states compared may miss what they changed.")
            }
            lines.append("")
            lines += changes.map { Self.pad($0.kind.rawValue, 8) + "  " + Self.pad($0.id, 12) + "  " + $0.change }
            lines.append("")
            lines.append(changes.isEmpty ? "No changes." : "\(changes.count) changes.")
            return lines
        }
    }

    public func footer(matched: Int, read: Int) -> [String] {
        switch style {
        case .jsonl: return []
        case .text: return ["", "\(matched) events shown of \(read) read."]
        }
    }

    private func describe(_ filter: ReplayFilter) -> String {
        var parts: [String] = []
        if !filter.workers.isEmpty { parts.append("worker " + filter.workers.sorted().joined(separator: "|")) }
        if !filter.rooms.isEmpty { parts.append("room " + filter.rooms.sorted().joined(separator: "|")) }
        if !filter.tasks.isEmpty { parts.append("task " + filter.tasks.sorted().joined(separator: "|")) }
        if !filter.eventTypes.isEmpty { parts.append("event type " + filter.eventTypes.sorted().joined(separator: "|")) }
        if let box = filter.box { parts.append("within \(box.minLat),\(box.minLon) – \(box.maxLat),\(box.maxLon)") }
        return parts.isEmpty ? "" : "   filters: " + parts.joined(separator: ", ")
    }

    /// What happened, in a few words.
    static func describe(_ entry: TimelineEntry) -> String {
        let p = entry.payload
        func s(_ key: String) -> String { p[key]?.stringValue ?? "?" }
        func number(_ key: String) -> String? {
            p[key]?.doubleValue.map { $0.rounded() == $0 && abs($0) < 1e15 ? String(Int64($0)) : String(format: "%.1f", $0) }
        }
        let note = p["note"]?.stringValue.map { " — \"\($0)\"" } ?? ""
        switch entry.event.eventType {
        case EventType.messageCreated: return "#\(s("roomId")) \(s("senderId")): \"\(s("text"))\""
        case EventType.messageEdited: return "message \(s("messageId")) edited: \"\(s("text"))\""
        case EventType.messageDeleted: return "message \(s("messageId")) deleted"
        case EventType.roomCreated: return "room #\(s("roomId")) \"\(s("name"))\""
        case EventType.locationReported:
            var text = String(format: "%@ at %.5f,%.5f", s("workerId"), p["lat"]?.doubleValue ?? 0, p["lon"]?.doubleValue ?? 0)
            if let speed = number("speed") { text += " \(speed) m/s" }
            if let battery = number("battery") { text += " battery \(battery)%" }
            return text
        case EventType.taskCreated:
            return "\(s("taskId")) \"\(s("title"))\"" + (number("priority").map { " priority \($0)" } ?? "") + (p["assigneeId"]?.stringValue.map { " → \($0)" } ?? "")
        case EventType.taskAssigned: return "\(s("taskId")) → \(s("assigneeId"))" + note
        case EventType.taskAccepted, EventType.taskStarted, EventType.taskCompleted, EventType.taskCancelled:
            return "\(s("taskId")) \(entry.event.eventType.dropFirst(5))" + note
        case EventType.resourceAdjusted:
            return "\(s("resourceId")) \(number("delta").map { $0.hasPrefix("-") ? $0 : "+" + $0 } ?? "?")" + (p["reason"]?.stringValue.map { " (\($0))" } ?? "")
        case EventType.notificationCreated:
            return "to \(p["userId"]?.stringValue ?? p["role"]?.stringValue ?? "?"): \(s("title"))" + (p["body"]?.stringValue.map { " — \($0)" } ?? "")
        case EventType.workerRegistered: return "\(s("workerId")) \"\(s("name"))\""
        default: return entry.event.payload
        }
    }

    static func pad(_ text: String, _ width: Int) -> String {
        text.count >= width ? text : text + String(repeating: " ", count: width - text.count)
    }
}

extension JSONValue {
    /// An object from pairs in any order (keys are kept sorted, as everywhere).
    init(dictionaryElements pairs: [(String, JSONValue)]) {
        var object: [String: JSONValue] = [:]
        for (key, value) in pairs { object[key] = value }
        self = .object(JSONObject(object))
    }
}
