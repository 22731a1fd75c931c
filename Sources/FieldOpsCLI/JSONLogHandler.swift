import Domain
import Foundation
import Logging
import Synchronization

/// One JSON object per line on standard error (`fieldops serve --log-format json`), for log
/// shippers: `{"time","level","label","message","source", …metadata}`.
struct JSONLogHandler: LogHandler {
    let label: String
    var logLevel: Logger.Level = .info
    var metadata: Logger.Metadata = [:]
    private let write: @Sendable (Data) -> Void
    private static let standardError = Mutex(FileHandle.standardError)

    init(label: String, write: @escaping @Sendable (Data) -> Void = { line in standardError.withLock { $0.write(line) } }) {
        self.label = label
        self.write = write
    }

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(event: LogEvent) {
        var fields: [String: Any] = [
            "time": ISOTime.string(milliseconds: Int64((Date().timeIntervalSince1970 * 1000).rounded())), "level": event.level.rawValue, "label": label,
            "message": event.message.description, "source": event.source,
        ]
        for (key, value) in metadata.merging(event.metadata ?? [:], uniquingKeysWith: { $1 }) {
            fields[key] = Self.plain(value)
        }
        guard var line = try? JSONSerialization.data(withJSONObject: fields, options: [.sortedKeys, .withoutEscapingSlashes]) else { return }
        line.append(0x0A)
        write(line)
    }

    static func plain(_ value: Logger.Metadata.Value) -> Any {
        switch value {
        case .string(let text): return text
        case .stringConvertible(let value): return value.description
        case .array(let values): return values.map(plain)
        case .dictionary(let values): return values.mapValues(plain)
        }
    }
}
