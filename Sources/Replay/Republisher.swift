import DocumentStore
import Domain
import Foundation
import Streams

/// Plays a window of one tenant into another (a sandbox or training tenant) through the same
/// write path as the API: appended to the same-named streams, published live, projected. Entries
/// get new ids; the original tenant, stream, id and time travel in the metadata. The source
/// tenant is only ever read.
public struct Republisher {
    public struct Report: Sendable {
        public var published = 0
        /// Already published by an earlier run of the same replay (idempotency keys): skipped.
        public var repeated = 0
    }

    public let source: String
    public let target: String
    /// 10 plays ten times faster than it happened; nil as fast as possible.
    public let speed: Double?
    let writer: EventWriter

    public struct SameTenant: Error, CustomStringConvertible {
        public var description: String { "--into-tenant must differ from --tenant: a replay never writes into the tenant it reads" }
    }

    public init(redisURL: String, source: String, target: String, speed: Double?) throws {
        guard source != target else { throw SameTenant() }
        _ = try StreamKeys(tenant: target)
        self.source = source
        self.target = target
        self.speed = speed
        self.writer = try EventWriter(redisURL: redisURL)
    }

    /// Publishes what `reader` reads, paced by the original times.
    public func run(_ reader: TimelineReader, streams: [String], progress: @escaping (Report) -> Void = { _ in }) async throws -> Report {
        defer { writer.close() }
        var report = Report()
        let started = ContinuousClock.now
        var first: Int64?
        // Ids of different streams order events only to the millisecond: before switching
        // streams, wait until Redis' clock has left the millisecond of the last append, so the
        // sandbox's timeline keeps the original order even at full speed.
        var last: (stream: String, millisecond: Int64, clockOffset: Int64)?
        func localMilliseconds() -> Int64 { Int64(Date().timeIntervalSince1970 * 1_000) }
        try await reader.read(streams) { entry in
            if let speed {
                let origin = first ?? entry.time
                first = origin
                let due = started + .milliseconds(Int64(Double(entry.time - origin) / speed))
                if due > .now { try await Task.sleep(until: due) }
            }
            let event = entry.event
            var metadata: [String: String] = [:]
            if let original = (try? JSONValue(jsonText: event.metadata))?.objectValue {
                for (key, value) in original.fields { if let text = value.stringValue { metadata[key] = text } }
            }
            metadata["replayOf"] = "\(source)/\(event.stream)/\(event.id)"
            metadata["originalTime"] = ISOTime.string(milliseconds: entry.time)
            let append = EventWriter.Append(
                tenant: target, stream: event.stream,
                events: [.init(eventType: event.eventType, payload: event.payload, metadata: metadata, routing: event.routing.map { ($0.name, $0.value) })],
                idempotencyKey: "replay:\(source):\(event.stream):\(event.id)"
            )
            if let last, last.stream != event.stream {
                while localMilliseconds() + last.clockOffset <= last.millisecond { try await Task.sleep(for: .microseconds(200)) }
            }
            switch try await writer.append(append) {
            case .appended(let ids):
                report.published += 1
                if let id = ids.last {
                    let millisecond = Int64(streamIDParts(id).milliseconds)
                    last = (event.stream, millisecond, millisecond - localMilliseconds())
                }
            case .repeated: report.repeated += 1
            case .refused: break
            }
            if (report.published + report.repeated) % 500 == 0 { progress(report) }
        }
        return report
    }
}
