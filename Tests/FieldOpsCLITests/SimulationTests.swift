@testable import FieldOpsCLI
import Foundation
import Testing

@Suite("fieldops simulate: the traffic model")
struct SimulationTests {
    static let start: Int64 = 1_795_356_000_000

    /// `seconds` of simulated traffic in 100 ms steps.
    static func run(_ configuration: Simulation.Configuration, seconds: Int) -> (setup: [Simulation.Action], steps: [[Simulation.Action]], simulation: Simulation) {
        var simulation = Simulation(configuration, start: start)
        let setup = simulation.setup()
        var steps: [[Simulation.Action]] = []
        for tick in 1...(seconds * 10) {
            steps.append(simulation.advance(to: start + Int64(tick) * 100, step: 100))
        }
        return (setup, steps, simulation)
    }

    @Test func theSameSeedSendsTheSameTraffic() {
        let configuration = Simulation.Configuration(workers: 15, rate: 100, seed: 42)
        let first = Self.run(configuration, seconds: 120)
        let second = Self.run(configuration, seconds: 120)
        #expect(first.setup == second.setup)
        #expect(first.steps == second.steps)
        var other = configuration
        other.seed = 43
        #expect(Self.run(other, seconds: 120).steps != first.steps)
    }

    @Test func theRateIsMostlyPositionsAndHitsTheTarget() {
        let (_, steps, _) = Self.run(.init(workers: 50, rate: 500, seed: 7), seconds: 60)
        let actions = steps.flatMap { $0 }
        let events = actions.reduce(0) { $0 + $1.events }
        let rate = Double(events) / 60
        #expect(rate > 400 && rate < 600, "\(rate) events/s")
        let positions = actions.reduce(0) { total, action in
            if case .report(_, let fixes) = action { return total + fixes.count }
            return total
        }
        #expect(Double(positions) / Double(events) > 0.9)
    }

    @Test func workersStayInTheAreaMoveAtStreetSpeedsAndDrainTheirBatteries() {
        let configuration = Simulation.Configuration(workers: 10, center: (52.52, 13.405), radiusKm: 3, rate: 20, seed: 5)
        let (_, steps, simulation) = Self.run(configuration, seconds: 300)
        var last: [String: Simulation.Fix] = [:]
        for action in steps.flatMap({ $0 }) {
            guard case .report(let worker, let fixes) = action else { continue }
            for fix in fixes {
                let north = (fix.lat - 52.52) * 111_320, east = (fix.lon - 13.405) * 111_320 * cos(52.52 * .pi / 180)
                #expect((north * north + east * east).squareRoot() < 3_100, "\(worker) left the area")
                #expect(fix.speed <= 14)
                if let previous = last[worker] {
                    #expect(fix.recordedAt > previous.recordedAt)
                    #expect(fix.battery <= previous.battery)
                }
                last[worker] = fix
            }
        }
        #expect(last.count == 10)
        #expect(simulation.workers.allSatisfy { $0.battery < 100 })
    }

    @Test func tasksAreAssignedAcceptedStartedAndCompletedInOrder() {
        let (_, steps, _) = Self.run(.init(workers: 10, radiusKm: 1, rate: 20, seed: 9), seconds: 900)
        var phases: [String: [String]] = [:]
        var created: [String: String] = [:]
        for action in steps.flatMap({ $0 }) {
            switch action {
            case .createTask(let id, _, _, _, _, let assignee): created[id] = assignee
            case .transition(let id, let verb): phases[id, default: []].append(verb)
            default: break
            }
        }
        #expect(created.count > 10)
        #expect(phases.values.allSatisfy { ["accept"].starts(with: $0) || ["accept", "start"].starts(with: $0) || $0 == ["accept", "start", "complete"] || $0 == ["accept", "start"] })
        #expect(phases.values.filter { $0 == ["accept", "start", "complete"] }.count > 5)
        // No worker holds two tasks at once: every task went to a free worker.
        #expect(Set(created.values).count <= 10)
    }

    @Test func aDeadSpotDeliversItsPositionsTogetherLater() {
        let (_, steps, _) = Self.run(.init(workers: 30, rate: 300, seed: 11), seconds: 600)
        let backlogs = steps.flatMap { $0 }.compactMap { action -> Int? in
            guard case .report(_, let fixes) = action, fixes.count > 1 else { return nil }
            return fixes.count
        }
        #expect(!backlogs.isEmpty)
        #expect(backlogs.allSatisfy { $0 <= 101 })
    }
}
