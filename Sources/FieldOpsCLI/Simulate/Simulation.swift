import Foundation

/// A deterministic random source (SplitMix64): the same seed gives the same demo.
struct SeededRandom: RandomNumberGenerator {
    private var state: UInt64

    init(seed: UInt64) {
        state = seed
    }

    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

/// Realistic field traffic for one tenant, as a pure model: workers walking or driving along
/// routes in a city area with GPS noise, battery drain and signal loss; tasks created, assigned,
/// accepted, worked and completed; chat; stock used and restocked; a few alerts. It only says
/// what to send; `fieldops simulate` sends it. Time is simulated, so a seed gives the same
/// actions however fast the server answers.
struct Simulation {
    struct Configuration {
        var workers = 20
        var center = (lat: 52.52, lon: 13.405)
        var radiusKm = 5.0
        /// Events per second to aim for, most of them positions.
        var rate = 50.0
        var seed: UInt64 = 1
    }

    struct Fix: Hashable {
        var lat: Double
        var lon: Double
        /// m/s.
        var speed: Double
        var battery: Double
        var recordedAt: Int64
    }

    enum Action: Hashable {
        case registerWorker(id: String, name: String)
        case createRoom(id: String, name: String, members: [String])
        case createResource(id: String, name: String, quantity: Double, unit: String)
        /// One fix, or a backlog after the signal came back.
        case report(workerID: String, fixes: [Fix])
        case createTask(id: String, title: String, priority: String, lat: Double, lon: Double, assigneeID: String)
        /// `accept`, `start` or `complete`.
        case transition(taskID: String, verb: String)
        case say(room: String, text: String)
        case adjust(resourceID: String, delta: Double, reason: String)
        case notify(title: String, body: String)

        /// Stream events the action appends.
        var events: Int {
            switch self {
            case .report(_, let fixes): fixes.count
            case .createTask: 2  // the task and the assignee's notification
            default: 1
            }
        }
    }

    struct Worker {
        var id: String
        var name: String
        var lat: Double
        var lon: Double
        var target: (lat: Double, lon: Double)
        var driving: Bool
        var battery: Double
        var lowBatteryAlerted = false
        var silentUntil: Int64 = 0
        var backlog: [Fix] = []
        var nextReport: Int64
        var task: WorkerTask?
    }

    struct WorkerTask {
        var id: String
        var location: (lat: Double, lon: Double)
        /// assigned → accepted → started; each step waits until `next`.
        var phase: String
        var next: Int64
    }

    static let firstNames = ["Ana", "Bo", "Cleo", "Dev", "Eli", "Fay", "Gus", "Hana", "Ivo", "Jun", "Kai", "Lea", "Milo", "Nia", "Oli", "Pia", "Rui", "Sam", "Tom", "Uma", "Vic", "Wes", "Yara", "Zoe"]
    static let lastNames = ["Lima", "Chen", "Park", "Novak", "Okafor", "Berg", "Haas", "Ito", "Kaya", "Moreau", "Silva", "Weber"]
    static let jobs = ["Replace valve", "Inspect pump", "Clear drain", "Repair hydrant", "Check transformer", "Sandbag levee", "Remove fallen tree", "Restore streetlight", "Read meters", "Fix leak"]
    static let chatter = ["On my way", "Arrived on site", "Need a second pair of hands", "Road closed, taking a detour", "Done here, heading back", "Traffic on the ring road", "Storm picking up", "Low on sandbags"]
    static let resources: [(id: String, name: String, unit: String)] = [("R-1", "Sandbags", "bag"), ("R-2", "Valves DN50", "piece"), ("R-3", "Pipe clamps", "piece"), ("R-4", "Cable", "m"), ("R-5", "Fuses", "piece")]

    let configuration: Configuration
    private(set) var random: SeededRandom
    private(set) var workers: [Worker] = []
    private(set) var stock: [String: Double] = [:]
    private var taskCounter = 0
    private var nextTaskAt: Int64 = 0
    private var nextChatAt: Int64 = 0
    private var nextWeatherAt: Int64 = 0
    let start: Int64
    /// Seconds between two positions of one worker, from the rate.
    let reportInterval: Double

    init(_ configuration: Configuration, start: Int64) {
        self.configuration = configuration
        self.random = SeededRandom(seed: configuration.seed)
        self.start = start
        self.reportInterval = max(0.001, Double(configuration.workers) / max(0.1, configuration.rate * 0.95))
    }

    private mutating func uniform(_ range: ClosedRange<Double>) -> Double { Double.random(in: range, using: &random) }
    private mutating func chance(_ probability: Double) -> Bool { uniform(0...1) < probability }

    /// A point in the area, uniformly over the disc.
    private mutating func point() -> (lat: Double, lon: Double) {
        let distance = configuration.radiusKm * 1_000 * sqrt(uniform(0...1))
        let bearing = uniform(0...(2 * .pi))
        return offset(configuration.center, north: distance * cos(bearing), east: distance * sin(bearing))
    }

    private func offset(_ from: (lat: Double, lon: Double), north: Double, east: Double) -> (lat: Double, lon: Double) {
        (from.lat + north / 111_320, from.lon + east / (111_320 * cos(from.lat * .pi / 180)))
    }

    private func meters(_ a: (lat: Double, lon: Double), _ b: (lat: Double, lon: Double)) -> (north: Double, east: Double) {
        ((b.lat - a.lat) * 111_320, (b.lon - a.lon) * 111_320 * cos(a.lat * .pi / 180))
    }

    /// Workers, the ops room and the stock.
    mutating func setup() -> [Action] {
        var actions: [Action] = []
        for index in 0..<configuration.workers {
            let id = String(format: "sim-w-%03d", index + 1)
            let name = Self.firstNames[index % Self.firstNames.count] + " " + Self.lastNames[(index / Self.firstNames.count + index) % Self.lastNames.count]
            let home = point()
            let driving = chance(0.4)
            workers.append(Worker(
                id: id, name: name, lat: home.lat, lon: home.lon, target: point(), driving: driving, battery: uniform(60...100),
                nextReport: start + Int64(uniform(0...reportInterval) * 1_000)
            ))
            actions.append(.registerWorker(id: id, name: name))
        }
        actions.append(.createRoom(id: "ops", name: "Operations", members: workers.map(\.id)))
        for resource in Self.resources {
            stock[resource.id] = 100
            actions.append(.createResource(id: resource.id, name: resource.name, quantity: 100, unit: resource.unit))
        }
        nextTaskAt = start + 5_000
        nextChatAt = start + 8_000
        nextWeatherAt = start + 60_000
        return actions
    }

    /// Advances to `now` (ms) by `step` milliseconds; what to send.
    mutating func advance(to now: Int64, step: Int64) -> [Action] {
        var actions: [Action] = []
        let seconds = Double(step) / 1_000
        for index in workers.indices {
            actions += advanceWorker(index, now: now, seconds: seconds)
        }
        if now >= nextTaskAt {
            actions += createTask(now: now)
            // About one task per worker every ten minutes, at least every 30 s.
            nextTaskAt = now + Int64(min(30, 600 / Double(max(1, configuration.workers))) * uniform(0.5...1.5) * 1_000)
        }
        if now >= nextChatAt {
            let worker = workers[Int.random(in: 0..<workers.count, using: &random)]
            actions.append(.say(room: "ops", text: "\(worker.name.split(separator: " ")[0]): \(Self.chatter.randomElement(using: &random)!)"))
            nextChatAt = now + Int64(uniform(10...40) * 1_000)
        }
        if now >= nextWeatherAt {
            actions.append(.notify(title: "Weather: " + ["gusts up to 80 km/h", "heavy rain from the west", "thunderstorm warning", "river level rising"].randomElement(using: &random)!, body: "issued by the simulator"))
            nextWeatherAt = now + Int64(uniform(300...900) * 1_000)
        }
        return actions
    }

    private mutating func advanceWorker(_ index: Int, now: Int64, seconds: Double) -> [Action] {
        var actions: [Action] = []
        var worker = workers[index]
        // Move toward the target: walking 1.2-1.6 m/s, driving 6-14 m/s.
        let speed = worker.driving ? uniform(6...14) : uniform(1.2...1.6)
        let (north, east) = meters((worker.lat, worker.lon), worker.target)
        let distance = (north * north + east * east).squareRoot()
        let travelled = min(distance, speed * seconds)
        if distance > 1 {
            let moved = offset((worker.lat, worker.lon), north: north / distance * travelled, east: east / distance * travelled)
            (worker.lat, worker.lon) = moved
        }
        let arrived = distance - travelled < 15
        worker.battery = max(1, worker.battery - seconds * (worker.driving ? 0.004 : 0.002))
        if worker.battery < 20, !worker.lowBatteryAlerted {
            worker.lowBatteryAlerted = true
            actions.append(.notify(title: "Battery low: \(worker.name)", body: "\(worker.id) at \(Int(worker.battery))%"))
        }
        // The task's steps: accept after a little while, start on arrival, complete after the work.
        if var task = worker.task {
            switch task.phase {
            case "assigned" where now >= task.next:
                actions.append(.transition(taskID: task.id, verb: "accept"))
                task.phase = "accepted"
                worker.target = task.location
            case "accepted" where arrived:
                actions.append(.transition(taskID: task.id, verb: "start"))
                task.phase = "started"
                task.next = now + Int64(uniform(20...90) * 1_000)
            case "started" where now >= task.next:
                actions.append(.transition(taskID: task.id, verb: "complete"))
                let resource = Self.resources.randomElement(using: &random)!
                let used = Double(Int(uniform(1...3)))
                actions.append(.adjust(resourceID: resource.id, delta: -used, reason: "used on \(task.id)"))
                stock[resource.id, default: 0] -= used
                if stock[resource.id, default: 0] < 10 {
                    actions.append(.adjust(resourceID: resource.id, delta: 100, reason: "restocked"))
                    stock[resource.id, default: 0] += 100
                }
                if chance(0.3) { actions.append(.say(room: "ops", text: "\(task.id) done")) }
                worker.task = nil
                worker.target = point()
            default:
                break
            }
            if worker.task != nil { worker.task = task }
        } else if arrived {
            worker.target = point()
            worker.driving = chance(0.4)
        }
        // Positions every interval, with about 5 m of GPS noise; in a dead spot they queue up
        // and arrive together when the signal is back.
        // The schedule keeps its own time, so the rate holds whatever the step.
        while now >= worker.nextReport {
            let at = worker.nextReport
            worker.nextReport += Int64(reportInterval * 1_000)
            let noisy = offset((worker.lat, worker.lon), north: uniform(-5...5), east: uniform(-5...5))
            let fix = Fix(lat: noisy.lat, lon: noisy.lon, speed: worker.task?.phase == "started" ? 0 : speed, battery: (worker.battery * 10).rounded() / 10, recordedAt: at)
            if now < worker.silentUntil {
                if worker.backlog.count < 100 { worker.backlog.append(fix) }
            } else {
                actions.append(.report(workerID: worker.id, fixes: worker.backlog + [fix]))
                worker.backlog = []
                // About one dead spot per worker every ten minutes.
                if chance(reportInterval / 600) { worker.silentUntil = now + Int64(uniform(20...120) * 1_000) }
            }
        }
        workers[index] = worker
        return actions
    }

    private mutating func createTask(now: Int64) -> [Action] {
        let place = point()
        // The nearest worker without a task takes it.
        let free = workers.indices.filter { workers[$0].task == nil }
        guard let nearest = free.min(by: { a, b in
            let (na, ea) = meters((workers[a].lat, workers[a].lon), place)
            let (nb, eb) = meters((workers[b].lat, workers[b].lon), place)
            return na * na + ea * ea < nb * nb + eb * eb
        }) else { return [] }
        taskCounter += 1
        let id = "S\(configuration.seed)-\(taskCounter)"
        workers[nearest].task = WorkerTask(id: id, location: place, phase: "assigned", next: now + Int64(uniform(3...15) * 1_000))
        let priority = ["low", "normal", "normal", "normal", "high", "urgent"].randomElement(using: &random)!
        return [.createTask(id: id, title: Self.jobs.randomElement(using: &random)!, priority: priority, lat: place.lat, lon: place.lon, assigneeID: workers[nearest].id)]
    }
}
