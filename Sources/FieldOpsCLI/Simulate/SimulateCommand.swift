import ArgumentParser
import DocumentStore
import Domain
import Foundation
import Logging
import NIOHTTP1
import Synchronization

/// `fieldops simulate`: demo traffic for a tenant through the public API.
struct SimulateCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "simulate",
        abstract: "Send realistic field traffic to a tenant through the API, for demos and load.",
        discussion: """
            Workers walk or drive along routes around --center with GPS noise, \
            battery drain and dead spots (their positions arrive together when \
            the signal is back); tasks are created near workers, assigned, \
            accepted, worked and completed; the ops room chats; stock is used \
            and restocked; now and then an alert. The same --seed sends the same \
            events. Needs a dispatcher (or service) token. Use a fresh tenant or \
            another seed to run again: task ids are S{seed}-{n}.

            Examples:
              TOKEN=$(fieldops token create --tenant demo --sub sim \\
                  --role dispatcher)
              fieldops simulate --token $TOKEN     # 20 workers, 50 events/s
              fieldops simulate --token $TOKEN --workers 200 --rate 2000 \\
                  --duration 10m --seed 7
            """
    )

    @Option(help: ArgumentHelp("Server base URL. Defaults to $FIELDOPS_SERVER, then http://127.0.0.1:8080.", valueName: "url"))
    var server: String?
    @Option(help: ArgumentHelp("Dispatcher or service token. Defaults to $FIELDOPS_TOKEN.", valueName: "jwt"))
    var token: String?
    @Option(help: "Simulated workers.") var workers = 20
    @Option(help: "Events per second to aim for (mostly positions).") var rate = 50.0
    @Option(help: ArgumentHelp("How long to run: 90s, 10m, 1h; until Ctrl-C without it.", valueName: "time")) var duration: String?
    @Option(help: "Seed: the same seed sends the same traffic.") var seed: UInt64 = 1
    @Option(help: ArgumentHelp("Center of the area, LAT,LON.", valueName: "lat,lon")) var center = "52.52,13.405"
    @Option(name: .customLong("radius-km"), help: "Radius of the area in km.") var radiusKm = 5.0
    @Option(help: "Requests in flight at most.") var concurrency = 64

    func validate() throws {
        guard (1...10_000).contains(workers) else { throw ValidationError("--workers is 1-10000") }
        guard rate > 0, rate <= 100_000 else { throw ValidationError("--rate is above 0 and at most 100000") }
        guard parsedCenter != nil else { throw ValidationError("--center is LAT,LON, e.g. 52.52,13.405") }
        guard radiusKm > 0, radiusKm <= 500 else { throw ValidationError("--radius-km is above 0 and at most 500") }
        if let duration, durationSeconds(duration) == nil { throw ValidationError("--duration takes 90s, 10m, 1h") }
        guard (1...1_024).contains(concurrency) else { throw ValidationError("--concurrency is 1-1024") }
    }

    var parsedCenter: (lat: Double, lon: Double)? {
        let parts = center.split(separator: ",").compactMap { Double($0.trimmingCharacters(in: .whitespaces)) }
        guard parts.count == 2, (-90...90).contains(parts[0]), (-180...180).contains(parts[1]) else { return nil }
        return (parts[0], parts[1])
    }

    func run() async throws {
        let environment = ProcessInfo.processInfo.environment
        guard let token = token ?? environment["FIELDOPS_TOKEN"], !token.isEmpty else {
            throw ValidationError("give a dispatcher token: --token or $FIELDOPS_TOKEN (fieldops token create --role dispatcher …)")
        }
        let session = DispatchSession(server: server ?? environment["FIELDOPS_SERVER"] ?? "http://127.0.0.1:8080", token: token, logger: Logger(label: "fieldops.simulate"))
        var simulation = Simulation(
            .init(workers: workers, center: parsedCenter!, radiusKm: radiusKm, rate: rate, seed: seed),
            start: DispatchSession.now
        )
        let sender = ActionSender(session: session, concurrency: concurrency)
        let me = try await session.call(.GET, "/v1/me")
        say("simulating \(workers) workers at ~\(Int(rate)) events/s for tenant \(me["tenant"]?.stringValue ?? "?") (seed \(seed))")
        for action in simulation.setup() {
            await sender.send(action, allowConflict: true)
        }
        let end = duration.flatMap(durationSeconds).map { simulation.start + $0 * 1_000 }
        let step: Int64 = 100
        var now = simulation.start
        var lastReport = ContinuousClock.now
        let progress = isatty(STDERR_FILENO) == 1
        signal(SIGINT) { _ in simulationStopRequested.store(true, ordering: .relaxed) }
        while !simulationStopRequested.load(ordering: .relaxed), end.map({ now < $0 }) ?? true {
            now += step
            // Simulated time follows the wall clock; when the server is slow the lag shows.
            let wait = now - DispatchSession.now
            if wait > 0 { try await Task.sleep(for: .milliseconds(wait)) }
            for action in simulation.advance(to: now, step: step) {
                await sender.send(action)
            }
            if progress, ContinuousClock.now - lastReport >= .seconds(5) {
                lastReport = ContinuousClock.now
                let stats = sender.stats
                FileHandle.standardError.write(Data(String(format: "\r%8d events sent, %5.0f/s, %d failed, %.1f s behind   ", stats.events, stats.rate, stats.failed, Double(max(0, DispatchSession.now - now)) / 1_000).utf8))
            }
        }
        await sender.drain()
        let stats = sender.stats
        if progress { FileHandle.standardError.write(Data("\n".utf8)) }
        say("sent \(stats.events) events in \(String(format: "%.1f", stats.seconds)) s (\(Int(stats.rate))/s), \(stats.failed) requests failed" + (stats.lastError.map { "; last error: \($0)" } ?? ""))
    }
}

/// Set by Ctrl-C: the simulation stops after the requests in flight.
let simulationStopRequested = Atomic<Bool>(false)

/// Sends actions with a bounded number of requests in flight, counting events and failures.
final class ActionSender: Sendable {
    let session: DispatchSession
    private let slots: AsyncSemaphore
    private let counters = Mutex<(events: Int, failed: Int, lastError: String?)>((0, 0, nil))
    private let started = ContinuousClock.now

    init(session: DispatchSession, concurrency: Int) {
        self.session = session
        self.slots = AsyncSemaphore(concurrency)
    }

    var stats: (events: Int, failed: Int, lastError: String?, seconds: Double, rate: Double) {
        let (events, failed, lastError) = counters.withLock { $0 }
        let seconds = (ContinuousClock.now - started).secondsValue
        return (events, failed, lastError, seconds, seconds > 0 ? Double(events) / seconds : 0)
    }

    /// Waits for a free slot, then sends in the background (setup waits for each answer).
    func send(_ action: Simulation.Action, allowConflict: Bool = false) async {
        await slots.acquire()
        let task = Task {
            defer { slots.release() }
            do {
                let (method, path, body) = Self.request(action)
                _ = try await session.call(method, path, body: body)
                counters.withLock { $0.events += action.events }
            } catch let error as DispatchSession.Failure where allowConflict && error.description.hasPrefix("409") {
                // Already there from an earlier run.
            } catch {
                counters.withLock {
                    $0.failed += 1
                    $0.lastError = "\(error)"
                }
            }
        }
        if allowConflict { await task.value }
    }

    func drain() async {
        await slots.waitUntilIdle()
    }

    static func request(_ action: Simulation.Action) -> (HTTPMethod, String, JSONValue) {
        switch action {
        case .registerWorker(let id, let name):
            return (.POST, "/v1/workers", ["workerId": .string(id), "name": .string(name), "team": "simulated"])
        case .createRoom(let id, let name, let members):
            return (.POST, "/v1/rooms", ["roomId": .string(id), "name": .string(name), "members": .array(members.map(JSONValue.string))])
        case .createResource(let id, let name, let quantity, let unit):
            return (.POST, "/v1/resources", ["resourceId": .string(id), "name": .string(name), "quantity": .number(quantity), "unit": .string(unit), "site": "Depot"])
        case .report(let workerID, let fixes):
            let positions: [JSONValue] = fixes.map { fix in
                ["lat": .number(fix.lat), "lon": .number(fix.lon), "speed": .number((fix.speed * 10).rounded() / 10), "battery": .number(fix.battery), "accuracy": 5, "recordedAt": .string(ISOTime.string(milliseconds: fix.recordedAt))]
            }
            return (.POST, "/v1/workers/\(workerID)/locations", positions.count == 1 ? positions[0] : ["locations": .array(positions)])
        case .createTask(let id, let title, let priority, let lat, let lon, let assigneeID):
            return (.POST, "/v1/tasks", ["taskId": .string(id), "title": .string(title), "priority": .string(priority), "location": ["lat": .number(lat), "lon": .number(lon)], "assigneeId": .string(assigneeID)])
        case .transition(let taskID, let verb):
            return (.POST, "/v1/tasks/\(taskID)/\(verb)", [:])
        case .say(let room, let text):
            return (.POST, "/v1/rooms/\(room)/messages", ["text": .string(text)])
        case .adjust(let resourceID, let delta, let reason):
            return (.POST, "/v1/resources/\(resourceID)/adjust", ["delta": .number(delta), "reason": .string(reason)])
        case .notify(let title, let body):
            return (.POST, "/v1/notifications", ["role": "dispatcher", "title": .string(title), "body": .string(body)])
        }
    }
}

/// A counting semaphore for tasks.
final class AsyncSemaphore: Sendable {
    private let state: Mutex<(available: Int, waiters: [CheckedContinuation<Void, Never>], idle: [CheckedContinuation<Void, Never>])>
    private let capacity: Int

    init(_ capacity: Int) {
        self.capacity = capacity
        state = Mutex((capacity, [], []))
    }

    func acquire() async {
        await withCheckedContinuation { continuation in
            let granted = state.withLock { state -> Bool in
                guard state.available > 0 else {
                    state.waiters.append(continuation)
                    return false
                }
                state.available -= 1
                return true
            }
            if granted { continuation.resume() }
        }
    }

    func release() {
        let (next, idle) = state.withLock { state -> (CheckedContinuation<Void, Never>?, [CheckedContinuation<Void, Never>]) in
            if !state.waiters.isEmpty { return (state.waiters.removeFirst(), []) }
            state.available += 1
            guard state.available == capacity else { return (nil, []) }
            defer { state.idle = [] }
            return (nil, state.idle)
        }
        next?.resume()
        idle.forEach { $0.resume() }
    }

    /// Returns once every acquired slot is released.
    func waitUntilIdle() async {
        await withCheckedContinuation { continuation in
            let done = state.withLock { state -> Bool in
                guard state.available < capacity else { return true }
                state.idle.append(continuation)
                return false
            }
            if done { continuation.resume() }
        }
    }
}
