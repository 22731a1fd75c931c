import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// A small HTTP/1.1 load generator: keep-alive connections, one thread each, blocking sockets,
/// requests encoded once. Light enough to share two cores with the server it measures.
///
/// Closed loop (`rate == nil`): each connection sends its next request as soon as the last
/// answer arrives, giving the ceiling. Open loop: requests are due at a fixed rate and latency
/// counts from when each was due, so a stall shows in the percentiles instead of hiding
/// (no coordinated omission).
struct HTTPLoad {
    struct Result {
        var completed = 0
        var failed = 0
        var firstFailure: String?
        var latencies: [Double] = []
        /// Open loop: how late each request left the generator (ms), its own scheduling delay on
        /// a machine it shares with the server; already part of `latencies`.
        var sendDelays: [Double] = []
        /// From when each request actually left to its answer (ms): the server's share.
        var responseTimes: [Double] = []
        var seconds = 0.0

        var rate: Double { Double(completed) / seconds }

        func percentile(_ p: Double) -> Double {
            Self.percentile(latencies, p)
        }

        static func percentile(_ values: [Double], _ p: Double) -> Double {
            guard !values.isEmpty else { return 0 }
            let sorted = values.sorted()
            return sorted[min(sorted.count - 1, Int(Double(sorted.count) * p))]
        }
    }

    let host: String
    let port: Int

    /// An encoded request.
    static func request(_ method: String, _ path: String, host: String, token: String? = nil, json: String? = nil) -> [UInt8] {
        var text = "\(method) \(path) HTTP/1.1\r\nHost: \(host)\r\n"
        if let token { text += "Authorization: Bearer \(token)\r\n" }
        if let json {
            text += "Content-Type: application/json\r\nContent-Length: \(json.utf8.count)\r\n\r\n\(json)"
        } else {
            text += "\r\n"
        }
        return Array(text.utf8)
    }

    /// Runs `connections` connections for `duration`; `next(connection, n)` gives each request.
    ///
    /// The connections run on threads of their own and the caller awaits them: blocking one of
    /// the cooperative pool's threads (two on two cores) would take it from the server measured.
    func run(connections: Int, duration: Duration, rate: Double? = nil, next: @escaping @Sendable (Int, Int) -> [UInt8]) async -> Result {
        await withCheckedContinuation { continuation in
            Thread { continuation.resume(returning: runBlocking(connections: connections, duration: duration, rate: rate, next: next)) }.start()
        }
    }

    /// Runs `body`, which blocks on sockets, on a thread of its own.
    static func offThePool<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { continuation in
            Thread { continuation.resume(with: Swift.Result { try body() }) }.start()
        }
    }

    private func runBlocking(connections: Int, duration: Duration, rate: Double?, next: @escaping @Sendable (Int, Int) -> [UInt8]) -> Result {
        let results = (0..<connections).map { _ in ResultBox() }
        let start = ContinuousClock.now
        let end = start + duration
        let group = DispatchGroup()
        for index in 0..<connections {
            group.enter()
            let thread = Thread { [host, port] in
                defer { group.leave() }
                // Named so profiles tell the generator's threads from the server's.
                Thread.current.name = "fieldops-load"
                let interval = rate.map { Double(connections) / $0 }
                results[index].value = Self.loop(host: host, port: port, start: start, end: end, offset: Double(index) / Double(connections), interval: interval) { next(index, $0) }
            }
            thread.start()
        }
        group.wait()
        var total = Result()
        for result in results {
            total.completed += result.value.completed
            total.failed += result.value.failed
            total.firstFailure = total.firstFailure ?? result.value.firstFailure
            total.latencies += result.value.latencies
            total.sendDelays += result.value.sendDelays
            total.responseTimes += result.value.responseTimes
        }
        total.seconds = (ContinuousClock.now - start).secondsValue
        return total
    }

    private final class ResultBox: @unchecked Sendable {
        var value = Result()
    }

    private static func loop(host: String, port: Int, start: ContinuousClock.Instant, end: ContinuousClock.Instant, offset: Double, interval: Double?, next: (Int) -> [UInt8]) -> Result {
        var result = Result()
        guard let socket = try? Connection(host: host, port: port) else {
            result.failed = 1
            result.firstFailure = "cannot connect to \(host):\(port)"
            return result
        }
        defer { socket.close() }
        var n = 0
        while true {
            var sent = ContinuousClock.now
            if let interval {
                let due = start + .seconds(interval * (Double(n) + offset))
                if due >= end { break }
                if due > sent { Thread.sleep(forTimeInterval: (due - sent).secondsValue) }
                sent = due
            } else if sent >= end {
                break
            }
            let request = next(n)
            n += 1
            let left = ContinuousClock.now
            if interval != nil { result.sendDelays.append((left - sent).secondsValue * 1000) }
            do {
                let status = try socket.exchange(request)
                if (200..<300).contains(status) {
                    result.completed += 1
                    let now = ContinuousClock.now
                    result.latencies.append((now - sent).secondsValue * 1000)
                    result.responseTimes.append((now - left).secondsValue * 1000)
                } else {
                    result.failed += 1
                    if result.firstFailure == nil { result.firstFailure = "HTTP \(status)" }
                }
            } catch {
                result.failed += 1
                result.firstFailure = result.firstFailure ?? "\(error)"
                return result
            }
        }
        return result
    }

    struct LoadError: Error, CustomStringConvertible {
        let description: String
    }

    /// One keep-alive TCP connection.
    final class Connection {
        private let fd: Int32
        private var buffer = [UInt8](repeating: 0, count: 1 << 16)

        init(host: String, port: Int) throws {
            fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
            guard fd >= 0 else { throw LoadError(description: "socket: \(errno)") }
            var noDelay: Int32 = 1
            setsockopt(fd, Int32(IPPROTO_TCP), TCP_NODELAY, &noDelay, socklen_t(MemoryLayout<Int32>.size))
            var address = sockaddr_in()
            address.sin_family = sa_family_t(AF_INET)
            address.sin_port = in_port_t(UInt16(port).bigEndian)
            inet_pton(AF_INET, host == "localhost" ? "127.0.0.1" : host, &address.sin_addr)
            let connected = withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
            }
            guard connected == 0 else {
                Glibc.close(fd)
                throw LoadError(description: "connect: \(errno)")
            }
        }

        func close() {
            Glibc.close(fd)
        }

        /// Sends a request and reads its whole response; returns the status code.
        func exchange(_ request: [UInt8]) throws -> Int {
            var written = 0
            while written < request.count {
                let n = request.withUnsafeBytes { send(fd, $0.baseAddress! + written, request.count - written, Int32(MSG_NOSIGNAL)) }
                guard n > 0 else { throw LoadError(description: "send: \(errno)") }
                written += n
            }
            var filled = 0
            var headerEnd: Int?
            var status = 0
            var bodyLength = 0
            while true {
                if filled == buffer.count { buffer += [UInt8](repeating: 0, count: buffer.count) }
                let n = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress! + filled, $0.count - filled, 0) }
                guard n > 0 else { throw LoadError(description: "connection closed by the server") }
                filled += n
                if headerEnd == nil, let end = Self.headerEnd(buffer, filled) {
                    headerEnd = end
                    let head = String(decoding: buffer[0..<end], as: UTF8.self)
                    status = Int(head.split(separator: " ", maxSplits: 2).dropFirst().first ?? "") ?? 0
                    for line in head.split(separator: "\r\n") where line.lowercased().hasPrefix("content-length:") {
                        bodyLength = Int(line.dropFirst("content-length:".count).trimmingCharacters(in: .whitespaces)) ?? 0
                    }
                }
                if let headerEnd, filled >= headerEnd + bodyLength { return status }
            }
        }

        private static func headerEnd(_ buffer: [UInt8], _ count: Int) -> Int? {
            guard count >= 4 else { return nil }
            for index in 0...(count - 4) where buffer[index] == 13 && buffer[index + 1] == 10 && buffer[index + 2] == 13 && buffer[index + 3] == 10 {
                return index + 4
            }
            return nil
        }
    }
}
