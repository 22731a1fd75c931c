import Foundation
import Hummingbird
import Prometheus
import Redis
import Streams
import Synchronization

/// What `/metrics` reports, in the Prometheus text format: requests and latencies by route,
/// and, read from Redis at scrape time, stream lengths, consumer-group lag and pending
/// entries, and dead letters per tenant.
public final class ServerMetrics: Sendable {
    let registry = PrometheusCollectorRegistry()
    private static let buckets: [Duration] = [
        .microseconds(250), .microseconds(500), .milliseconds(1), .milliseconds(2), .milliseconds(5), .milliseconds(10),
        .milliseconds(25), .milliseconds(50), .milliseconds(100), .milliseconds(250), .milliseconds(500), .seconds(1), .seconds(5),
    ]

    public init() {}

    /// The metrics of each method, route and status, made once: every request records here.
    private let requestMetrics = Mutex<[String: (count: Counter, duration: DurationHistogram)]>([:])

    func recordRequest(method: String, route: String, status: Int, duration: Duration) {
        let key = method + " " + route + " " + String(status)
        let metrics = requestMetrics.withLock { cache in
            if let known = cache[key] { return known }
            let made = (
                count: registry.makeCounter(
                    name: "fieldops_http_requests_total", labels: [("method", method), ("route", route), ("status", String(status))], help: "HTTP requests answered"
                ),
                duration: registry.makeDurationHistogram(
                    name: "fieldops_http_request_duration_seconds", labels: [("method", method), ("route", route)], buckets: Self.buckets,
                    help: "Time to answer HTTP requests"
                )
            )
            cache[key] = made
            return made
        }
        metrics.count.increment()
        metrics.duration.recordNanoseconds(duration.nanoseconds)
    }

    /// Refreshes the stream gauges from Redis and renders everything.
    func render(_ pool: RedisConnectionPool, hub: RealtimeHub) async -> [UInt8] {
        registry.makeGauge(name: "fieldops_realtime_listeners", help: "WebSockets and event streams open on this node").set(to: Double(hub.listenerCount))
        registry.makeGauge(name: "fieldops_realtime_cut_off", help: "Sockets and streams closed for falling behind their 1 MiB queue, since start")
            .set(to: Double(hub.overflowCount))
        if let streams = try? await pool.withConnection({ try Self.streamFigures($0) }) {
            for figure in streams {
                let labels = [("tenant", figure.tenant), ("stream", figure.stream)]
                registry.makeGauge(name: "fieldops_stream_length", labels: labels, help: "Entries in the stream").set(to: Double(figure.length))
                for group in figure.groups {
                    let groupLabels = labels + [("group", group.name)]
                    registry.makeGauge(name: "fieldops_consumer_group_lag", labels: groupLabels, help: "Entries not yet delivered to the group").set(to: Double(group.lag))
                    registry.makeGauge(name: "fieldops_consumer_group_pending", labels: groupLabels, help: "Entries delivered but not acknowledged").set(to: Double(group.pending))
                }
            }
            registry.makeGauge(name: "fieldops_metrics_redis_up", help: "1 when the last scrape reached Redis").set(to: 1)
        } else {
            registry.makeGauge(name: "fieldops_metrics_redis_up", help: "1 when the last scrape reached Redis").set(to: 0)
        }
        return registry.emitToBuffer()
    }

    struct StreamFigure {
        struct Group {
            let name: String
            let lag: Int
            let pending: Int
        }
        let tenant: String
        let stream: String
        let length: Int
        let groups: [Group]
    }

    /// Every stream of every tenant (dead letters included), with its groups.
    static func streamFigures(_ connection: RedisConnection) throws -> [StreamFigure] {
        var keys: [String] = []
        var cursor = "0"
        repeat {
            let reply = try connection.command("SCAN", cursor, "MATCH", StreamKeys.allStreamsPattern, "COUNT", "1000", "TYPE", "stream").unwrapped()
            guard let parts = reply.array, parts.count == 2 else { break }
            cursor = parts[0].string ?? "0"
            keys += parts[1].array?.compactMap(\.string) ?? []
        } while cursor != "0" && keys.count < 10_000
        return try keys.sorted().compactMap { key in
            guard let (tenant, stream) = StreamKeys.parse(streamKey: key) else { return nil }
            let length = try connection.command("XLEN", key).unwrapped().int ?? 0
            let groups = (try connection.command("XINFO", "GROUPS", key).unwrapped().array ?? []).compactMap { group -> StreamFigure.Group? in
                guard let fields = group.pairs, let name = fields["name"]?.string else { return nil }
                return .init(name: name, lag: fields["lag"]?.int ?? 0, pending: fields["pending"]?.int ?? 0)
            }
            return StreamFigure(tenant: tenant, stream: stream, length: length, groups: groups)
        }
    }
}

extension Duration {
    var nanoseconds: Int64 {
        let (seconds, attoseconds) = components
        return seconds * 1_000_000_000 + attoseconds / 1_000_000_000
    }
}

/// Counts and times every request by method, route pattern (not raw path: ids would explode
/// the label set) and status.
struct MetricsMiddleware<Context: RequestContext>: RouterMiddleware {
    let metrics: ServerMetrics

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        let start = ContinuousClock.now
        do {
            let response = try await next(request, context)
            record(request, context, status: response.status.code, start)
            return response
        } catch let error as HTTPResponseError {
            record(request, context, status: error.status.code, start)
            throw error
        } catch {
            record(request, context, status: 500, start)
            throw error
        }
    }

    private func record(_ request: Request, _ context: Context, status: Int, _ start: ContinuousClock.Instant) {
        metrics.recordRequest(method: request.method.rawValue, route: context.endpointPath ?? "unmatched", status: status, duration: .now - start)
    }
}
