import Foundation

/// Instants as investigators type them.
public enum ReplayTime {
    public struct Invalid: Error, CustomStringConvertible {
        public let description: String
    }

    /// Milliseconds since 1970 for `text`:
    /// - ISO 8601 with `Z` or an offset: `2026-11-22T14:00:00Z`, `2026-11-22T15:00+01:00`;
    /// - a date and time in `zone`, or in a zone named after it: `2026-11-22 14:00`,
    ///   `2026-11-22 14:00 Europe/Berlin`, `2026-11-22 14:00:30.250 CET`; a date alone is its midnight;
    /// - a time today in `zone`: `14:00`, `14:00:30`;
    /// - relative to `now`: `-2h`, `-90m`, `-1d12h`, `-30s`, `+5m`, `2h ago`; or `now`.
    public static func parse(_ text: String, now: Int64, zone: TimeZone) throws(Invalid) -> Int64 {
        let trimmed = text.trimmingCharacters(in: .whitespaces)
        if trimmed == "now" { return now }
        if trimmed.hasSuffix(" ago") {
            guard let offset = relative(trimmed.dropLast(4).filter { $0 != " " }[...]) else { throw invalid(text) }
            return now - offset
        }
        if let first = trimmed.first, first == "-" || first == "+" {
            guard let offset = relative(trimmed.dropFirst()) else { throw invalid(text) }
            return first == "-" ? now - offset : now + offset
        }
        var rest = Substring(trimmed)
        let date = take(&rest, pattern: #"^(\d{4})-(\d{2})-(\d{2})"#)
        if date != nil, let separator = rest.first, separator == "T" || separator == " " { rest = rest.dropFirst() }
        let clock = take(&rest, pattern: #"^(\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,3}))?)?"#)
        guard date != nil || clock != nil else { throw invalid(text) }
        let zoneText = rest.trimmingCharacters(in: .whitespaces)
        let timeZone: TimeZone
        if zoneText.isEmpty {
            timeZone = zone
        } else if let parsed = Self.zoneNamed(zoneText) {
            timeZone = parsed
        } else {
            throw Invalid(description: "unknown time zone \"\(zoneText)\" in \"\(text)\" (use Z, +01:00, Europe/Berlin or CET)")
        }
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = timeZone
        var components: DateComponents
        if let date {
            components = DateComponents(year: date[0], month: date[1], day: date[2])
        } else {
            components = calendar.dateComponents([.year, .month, .day], from: Date(timeIntervalSince1970: Double(now) / 1_000))
        }
        components.hour = clock?[0] ?? 0
        components.minute = clock?[1] ?? 0
        components.second = clock?[2] ?? 0
        guard (1...12).contains(components.month ?? 0), (1...31).contains(components.day ?? 0),
              (0...23).contains(components.hour!), (0...59).contains(components.minute!), (0...60).contains(components.second!),
              let instant = calendar.date(from: components) else { throw invalid(text) }
        let milliseconds = clock.map { $0[3] } ?? 0
        return Int64((instant.timeIntervalSince1970 * 1_000).rounded()) + Int64(milliseconds)
    }

    /// `2h`, `90m`, `1d12h`, `30s`, `250ms` in milliseconds.
    static func relative(_ text: Substring) -> Int64? {
        let units: [(String, Int64)] = [("ms", 1), ("d", 86_400_000), ("h", 3_600_000), ("m", 60_000), ("s", 1_000)]
        var rest = text
        var total: Int64 = 0
        guard !rest.isEmpty else { return nil }
        while !rest.isEmpty {
            let digits = rest.prefix { $0.isASCII && $0.isNumber }
            guard !digits.isEmpty, let value = Int64(digits), value < 1_000_000 else { return nil }
            rest = rest.dropFirst(digits.count)
            guard let (unit, scale) = units.first(where: { rest.hasPrefix($0.0) }) else { return nil }
            rest = rest.dropFirst(unit.count)
            total += value * scale
        }
        return total
    }

    /// `Z`, `UTC`, `+01:00`, `+0100`, `-05`, an IANA name or a common abbreviation.
    public static func zoneNamed(_ text: String) -> TimeZone? {
        if text == "Z" || text == "UTC" || text == "GMT" { return TimeZone(secondsFromGMT: 0) }
        var rest = Substring(text)
        if let parts = take(&rest, pattern: #"^([+-])(\d{2}):?(\d{2})?$"#) {
            let seconds = (parts[1] * 3_600 + parts[2] * 60) * (text.hasPrefix("-") ? -1 : 1)
            return TimeZone(secondsFromGMT: seconds)
        }
        return TimeZone(identifier: text) ?? TimeZone(abbreviation: text)
    }

    /// Removes a leading match of `pattern` from `text`; its numeric groups (0 when absent;
    /// a sign group counts as 0, fractions as milliseconds).
    private static func take(_ text: inout Substring, pattern: String) -> [Int]? {
        guard let regex = try? Regex(pattern), let match = try? regex.prefixMatch(in: text) else { return nil }
        var numbers: [Int] = []
        for index in 1..<match.output.count {
            guard let group = match.output[index].substring else {
                numbers.append(0)
                continue
            }
            // Fractions of a second: "25" is 250 ms.
            if pattern.contains(#"\.(\d{1,3})"#), index == match.output.count - 1 {
                numbers.append(Int(group.padding(toLength: 3, withPad: "0", startingAt: 0)) ?? 0)
            } else {
                numbers.append(Int(group) ?? 0)
            }
        }
        text = text[match.range.upperBound...]
        return numbers
    }

    private static func invalid(_ text: String) -> Invalid {
        Invalid(description: "\"\(text)\" is not a time: use 2026-11-22T14:00:00Z, 2026-11-22 14:00 (local, or with a zone like Europe/Berlin), 14:00 (today), \"2h ago\" or --from=-2h, now")
    }

    /// `2026-11-22 14:02:07.123` in `zone`.
    public static func format(_ milliseconds: Int64, zone: TimeZone) -> String {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = zone
        let date = Date(timeIntervalSince1970: Double(milliseconds) / 1_000)
        let parts = calendar.dateComponents([.year, .month, .day, .hour, .minute, .second], from: date)
        let fraction = ((milliseconds % 1_000) + 1_000) % 1_000
        return String(format: "%04d-%02d-%02d %02d:%02d:%02d.%03d", parts.year!, parts.month!, parts.day!, parts.hour!, parts.minute!, parts.second!, Int(fraction))
    }

    /// A zone's name as shown in headers: its identifier, or `UTC`.
    public static func name(of zone: TimeZone) -> String {
        zone.secondsFromGMT() == 0 && ["GMT", "UTC", "Etc/UTC", "Etc/GMT", "Universal", "Zulu"].contains(zone.identifier) ? "UTC" : zone.identifier
    }
}
