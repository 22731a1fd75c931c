import DocumentStore
import Domain
import Foundation

/// Exports of a replay window: GeoJSON (a track per worker, task places), CSV (one row per
/// event) and a self-contained HTML page (an SVG map with a time slider and the timeline).
/// Everything is ordered and formatted deterministically.
public struct TimelineExport {
    public enum Kind: String, Sendable, CaseIterable {
        case geojson, csv, html
    }

    struct Fix {
        let time: Int64
        let lat: Double
        let lon: Double
    }

    struct TaskPlace {
        let id: String
        let title: String
        let time: Int64
        let lat: Double
        let lon: Double
        var status: String
    }

    /// Rows kept for the HTML timeline; a longer window is summarized past this.
    static let htmlRowLimit = 20_000

    let tenant: String
    let from: Int64
    let to: Int64
    let zone: TimeZone
    private(set) var tracks: [String: [Fix]] = [:]
    private(set) var tasks: [String: TaskPlace] = [:]
    private(set) var rows: [(time: Int64, stream: String, type: String, actor: String, text: String)] = []
    private(set) var events = 0

    public init(tenant: String, from: Int64, to: Int64, zone: TimeZone) {
        self.tenant = tenant
        self.from = from
        self.to = to
        self.zone = zone
    }

    /// Takes in one event of the window (for GeoJSON and HTML; CSV streams with `csvLine`).
    public mutating func add(_ entry: TimelineEntry) {
        events += 1
        let payload = entry.payload
        switch entry.event.eventType {
        case EventType.locationReported:
            if let worker = payload["workerId"]?.stringValue, let (lat, lon) = entry.position {
                // The fix's own time when it has one (a backlog flushed after a dead spot).
                let time = payload["recordedAt"]?.stringValue.flatMap(ISOTime.milliseconds) ?? entry.time
                tracks[worker, default: []].append(Fix(time: time, lat: lat, lon: lon))
            }
        case EventType.taskCreated:
            if let id = payload["taskId"]?.stringValue, let (lat, lon) = entry.position {
                tasks[id] = TaskPlace(id: id, title: payload["title"]?.stringValue ?? "", time: entry.time, lat: lat, lon: lon, status: payload["assigneeId"] == nil ? "open" : "assigned")
            }
        case EventType.taskAssigned, EventType.taskAccepted, EventType.taskStarted, EventType.taskCompleted, EventType.taskCancelled:
            if let id = payload["taskId"]?.stringValue { tasks[id]?.status = String(entry.event.eventType.dropFirst(5)) }
        default:
            break
        }
        if rows.count < Self.htmlRowLimit {
            rows.append((entry.time, entry.event.stream, entry.event.eventType, entry.actor ?? "", TimelineFormat.describe(entry)))
        }
    }

    // MARK: - GeoJSON

    /// A FeatureCollection: per worker a LineString of its fixes in time order (a Point when it
    /// has one fix) with the fix times in `times`, and a Point per task created in the window.
    public func geojson() -> String {
        var features: [JSONValue] = []
        for worker in tracks.keys.sorted() {
            let fixes = Self.ordered(tracks[worker]!)
            let coordinates: [JSONValue] = fixes.map { [.number(Self.round($0.lon)), .number(Self.round($0.lat))] }
            features.append([
                "type": "Feature",
                "geometry": fixes.count == 1 ? ["type": "Point", "coordinates": coordinates[0]] : ["type": "LineString", "coordinates": .array(coordinates)],
                "properties": [
                    "kind": "track", "workerId": .string(worker), "fixes": .number(Double(fixes.count)),
                    "times": .array(fixes.map { .string(ISOTime.string(milliseconds: $0.time)) }),
                    "start": .string(ISOTime.string(milliseconds: fixes.first!.time)), "end": .string(ISOTime.string(milliseconds: fixes.last!.time)),
                ],
            ])
        }
        for task in tasks.values.sorted(by: { $0.id < $1.id }) {
            features.append([
                "type": "Feature",
                "geometry": ["type": "Point", "coordinates": [.number(Self.round(task.lon)), .number(Self.round(task.lat))]],
                "properties": [
                    "kind": "task", "taskId": .string(task.id), "title": .string(task.title),
                    "createdAt": .string(ISOTime.string(milliseconds: task.time)), "status": .string(task.status),
                ],
            ])
        }
        let collection: JSONValue = [
            "type": "FeatureCollection",
            "properties": ["tenant": .string(tenant), "from": .string(ISOTime.string(milliseconds: from)), "to": .string(ISOTime.string(milliseconds: to))],
            "features": .array(features),
        ]
        return collection.jsonText
    }

    // MARK: - CSV

    public static let csvHeader = "time,stream,id,event_type,actor,worker,task,room,lat,lon,summary"

    /// One RFC 4180 row.
    public static func csvLine(_ entry: TimelineEntry) -> String {
        let payload = entry.payload
        let position = entry.position
        let fields = [
            ISOTime.string(milliseconds: entry.time), entry.event.stream, entry.event.id, entry.event.eventType, entry.actor ?? "",
            payload["workerId"]?.stringValue ?? payload["assigneeId"]?.stringValue ?? "", payload["taskId"]?.stringValue ?? "",
            payload["roomId"]?.stringValue ?? "", position.map { String(round($0.lat)) } ?? "", position.map { String(round($0.lon)) } ?? "",
            TimelineFormat.describe(entry),
        ]
        return fields.map(csvField).joined(separator: ",")
    }

    static func csvField(_ text: String) -> String {
        // Quoted when needed; a leading = + - @ is prefixed so spreadsheets do not run it as a formula.
        var value = text
        if let first = value.first, "=+-@".contains(first), Double(value) == nil { value = "'" + value }
        guard value.contains(where: { $0 == "," || $0 == "\"" || $0 == "\n" || $0 == "\r" }) else { return value }
        return "\"" + value.replacingOccurrences(of: "\"", with: "\"\"") + "\""
    }

    // MARK: - HTML

    /// One file, no network: an SVG map of the tracks and task places, a slider (and a play
    /// button) that shows the picture up to a moment, and the timeline below.
    public func html() -> String {
        var points: [(Double, Double)] = tracks.values.flatMap { $0.map { ($0.lat, $0.lon) } } + tasks.values.map { ($0.lat, $0.lon) }
        if points.isEmpty { points = [(0, 0)] }
        let minLat = points.map(\.0).min()!, maxLat = points.map(\.0).max()!
        let minLon = points.map(\.1).min()!, maxLon = points.map(\.1).max()!
        // Equirectangular with the longitude scaled at the middle latitude; 5% margins.
        let scale = cos((minLat + maxLat) / 2 * .pi / 180)
        let spanX = max((maxLon - minLon) * scale, 1e-6), spanY = max(maxLat - minLat, 1e-6)
        let width = 1_000.0, height = max(200, min(700, width * spanY / spanX))
        func x(_ lon: Double) -> String { String(format: "%.1f", 50 + (lon - minLon) * scale / spanX * (width - 100)) }
        func y(_ lat: Double) -> String { String(format: "%.1f", height - 50 - (lat - minLat) / spanY * (height - 100)) }
        let palette = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#17becf", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22"]

        var svg = ""
        var data: [JSONValue] = []
        for (index, worker) in tracks.keys.sorted().enumerated() {
            let fixes = Self.ordered(tracks[worker]!)
            let color = palette[index % palette.count]
            svg += "<polyline class=\"track\" data-worker=\"\(Self.escape(worker))\" fill=\"none\" stroke=\"\(color)\" stroke-width=\"2\" points=\"\(fixes.map { x($0.lon) + "," + y($0.lat) }.joined(separator: " "))\"><title>\(Self.escape(worker))</title></polyline>\n"
            svg += "<circle class=\"head\" data-worker=\"\(Self.escape(worker))\" r=\"4\" fill=\"\(color)\" cx=\"\(x(fixes.last!.lon))\" cy=\"\(y(fixes.last!.lat))\"><title>\(Self.escape(worker))</title></circle>\n"
            data.append(["worker": .string(worker), "t": .array(fixes.map { .number(Double($0.time)) }), "x": .array(fixes.map { .number(Double(x($0.lon))!) }), "y": .array(fixes.map { .number(Double(y($0.lat))!) })])
        }
        for task in tasks.values.sorted(by: { $0.id < $1.id }) {
            svg += "<rect class=\"task\" data-t=\"\(task.time)\" x=\"\(String(format: "%.1f", Double(x(task.lon))! - 5))\" y=\"\(String(format: "%.1f", Double(y(task.lat))! - 5))\" width=\"10\" height=\"10\" fill=\"#fff\" stroke=\"#000\"><title>\(Self.escape(task.id)) \(Self.escape(task.title)) (\(task.status))</title></rect>\n"
        }
        var table = ""
        for row in rows {
            let time = ReplayTime.format(row.time, zone: zone)
            table += "<tr data-t=\"\(row.time)\"><td>\(time)</td><td>\(Self.escape(row.stream))</td><td>\(Self.escape(row.type))</td><td>\(Self.escape(row.actor))</td><td>\(Self.escape(row.text))</td></tr>\n"
        }
        let omitted = events - rows.count
        let title = "FieldOps replay · \(tenant) · \(ReplayTime.format(from, zone: zone)) → \(ReplayTime.format(to, zone: zone)) \(ReplayTime.name(of: zone))"
        return """
        <!DOCTYPE html>
        <html lang="en"><head><meta charset="utf-8"><title>\(Self.escape(title))</title>
        <style>
        body{font:14px system-ui,sans-serif;margin:16px;color:#222}
        svg{border:1px solid #ccc;background:#f8f8f4;max-width:100%;height:auto}
        #controls{margin:8px 0;display:flex;gap:12px;align-items:center}
        #slider{flex:1}
        table{border-collapse:collapse;width:100%;font:12px ui-monospace,monospace}
        td{padding:2px 6px;border-bottom:1px solid #eee;white-space:nowrap}
        td:last-child{white-space:normal}
        tr.later{display:none}
        </style></head><body>
        <h1 style="font-size:18px">\(Self.escape(title))</h1>
        <p>\(tracks.count) worker tracks, \(tasks.count) task places, \(events) events.\(omitted > 0 ? " The table shows the first \(rows.count); the map shows all." : "")</p>
        <svg id="map" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 \(Int(width)) \(Int(height))" width="\(Int(width))" height="\(Int(height))">
        \(svg)</svg>
        <div id="controls"><button id="play" type="button">▶ play</button>
        <input id="slider" type="range" min="\(from)" max="\(to)" step="1" value="\(to)"><span id="now"></span></div>
        <table><tbody id="rows">
        \(table)</tbody></table>
        <script type="application/json" id="tracks">\(JSONValue.array(data).jsonText.replacingOccurrences(of: "</", with: "<\\/"))</script>
        <script>
        (function () {
          var tracks = JSON.parse(document.getElementById('tracks').textContent);
          var slider = document.getElementById('slider'), label = document.getElementById('now');
          var lines = {}, heads = {};
          document.querySelectorAll('polyline.track').forEach(function (p) { lines[p.dataset.worker] = p; });
          document.querySelectorAll('circle.head').forEach(function (c) { heads[c.dataset.worker] = c; });
          function show(t) {
            label.textContent = new Date(t).toISOString().replace('T', ' ').replace('Z', ' UTC');
            tracks.forEach(function (track) {
              var pts = [], last = -1;
              for (var i = 0; i < track.t.length && track.t[i] <= t; i++) { pts.push(track.x[i] + ',' + track.y[i]); last = i; }
              lines[track.worker].setAttribute('points', pts.join(' '));
              var head = heads[track.worker];
              head.style.display = last < 0 ? 'none' : '';
              if (last >= 0) { head.setAttribute('cx', track.x[last]); head.setAttribute('cy', track.y[last]); }
            });
            document.querySelectorAll('rect.task').forEach(function (r) { r.style.display = +r.dataset.t <= t ? '' : 'none'; });
            document.querySelectorAll('#rows tr').forEach(function (r) { r.className = +r.dataset.t <= t ? '' : 'later'; });
          }
          slider.addEventListener('input', function () { show(+slider.value); });
          var timer = null;
          document.getElementById('play').addEventListener('click', function () {
            if (timer) { clearInterval(timer); timer = null; return; }
            if (+slider.value >= +slider.max) slider.value = slider.min;
            timer = setInterval(function () {
              var next = Math.min(+slider.max, +slider.value + Math.max(1, (slider.max - slider.min) / 200));
              slider.value = next; show(next);
              if (next >= +slider.max) { clearInterval(timer); timer = null; }
            }, 50);
          });
          show(+slider.value);
        })();
        </script>
        </body></html>

        """
    }

    // MARK: - Helpers

    /// Fixes by their own time (a backlog arrives late), stable for equal times.
    static func ordered(_ fixes: [Fix]) -> [Fix] {
        fixes.enumerated().sorted { ($0.element.time, $0.offset) < ($1.element.time, $1.offset) }.map(\.element)
    }

    /// Six decimals (about 10 cm): steady output, no float noise.
    static func round(_ value: Double) -> Double {
        (value * 1_000_000).rounded() / 1_000_000
    }

    static func escape(_ text: String) -> String {
        text.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;")
            .replacingOccurrences(of: ">", with: "&gt;").replacingOccurrences(of: "\"", with: "&quot;")
    }
}
