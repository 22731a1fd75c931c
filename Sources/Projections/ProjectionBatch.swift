import DocumentStore
import Streams

/// A batch applied in memory, ready to commit.
struct BatchPlan: Sendable {
    let report: BatchReport
    let changes: DocumentChanges
    let ledger: [LedgerEntry]
}

/// Entries of one stream of one tenant, in stream order.
public struct StreamSlice: Sendable {
    public let tenant: String
    public let stream: String
    public let records: [StreamRecord]

    public init(tenant: String, stream: String, records: [StreamRecord]) {
        self.tenant = tenant
        self.stream = stream
        self.records = records
    }
}

/// What a batch did.
public struct BatchReport: Sendable {
    public var applied = 0
    public var ignored = 0
    /// Already in the ledger or behind the checkpoint: redeliveries, skipped.
    public var duplicates = 0
    public var failures: [(tenant: String, stream: String, id: String, reason: String)] = []
    /// The checkpoint each stream reached.
    public var checkpoints: [StreamPosition: String] = [:]
}

/// A tenant's stream.
public struct StreamPosition: Sendable, Hashable, Codable {
    public let tenant: String
    public let stream: String

    public init(tenant: String, stream: String) {
        self.tenant = tenant
        self.stream = stream
    }
}

/// Applies batches of entries exactly once: each event's effect, its ledger row and the stream's
/// checkpoint are written in the same SQLite transaction, and an event the ledger already holds
/// is skipped. Used by the live projector and by rebuilds alike.
enum ProjectionBatch {
    /// Applies the slices and commits the result in one transaction.
    static func apply(_ slices: [StreamSlice], group: String, in transaction: DocumentTransaction) throws -> BatchReport {
        let plan = try prepare(slices, group: group, reading: transaction, after: nil)
        try commit(plan, group: group, in: transaction)
        return plan.report
    }

    /// Runs the appliers over the slices against `transaction` (a read snapshot is enough) and
    /// returns what to write. `previous`, a batch prepared earlier and perhaps still being
    /// committed, is overlaid on what the snapshot shows.
    static func prepare(_ slices: [StreamSlice], group: String, reading transaction: DocumentTransaction, after previous: BatchPlan?) throws -> BatchPlan {
        var report = BatchReport()
        // Documents changed by the batch are written once each, at the end.
        let workspace = DocumentWorkspace(transaction, overlay: previous?.changes)
        var ledger: [LedgerEntry] = []
        for slice in slices where !slice.records.isEmpty {
            let position = StreamPosition(tenant: slice.tenant, stream: slice.stream)
            var checkpoint = try transaction.checkpoint(group: group, tenant: slice.tenant, stream: slice.stream)
            if let carried = previous?.report.checkpoints[position], checkpoint.map({ streamID($0, isLessThan: carried) }) ?? true {
                checkpoint = carried
            }
            for record in slice.records {
                if let checkpoint, !streamID(checkpoint, isLessThan: record.id) {
                    report.duplicates += 1
                    continue
                }
                // Past the checkpoint means not yet applied: the checkpoint moves in the same
                // transaction as the ledger rows, in stream order.
                let (outcome, entry) = try applyOne(record, slice: slice, group: group, workspace: workspace)
                ledger.append(entry)
                switch outcome {
                case .applied: report.applied += 1
                case .ignored: report.ignored += 1
                case .failed(let reason): report.failures.append((slice.tenant, slice.stream, record.id, reason))
                }
            }
            if let last = slice.records.last {
                report.checkpoints[position] = last.id
            }
        }
        return BatchPlan(report: report, changes: try workspace.takeChanges(), ledger: ledger)
    }

    /// Writes a prepared batch: documents, ledger rows and checkpoints, in the caller's transaction.
    static func commit(_ plan: BatchPlan, group: String, in transaction: DocumentTransaction) throws {
        try transaction.write(plan.changes)
        try transaction.record(plan.ledger)
        for (position, id) in plan.report.checkpoints {
            try transaction.advanceCheckpoint(group: group, tenant: position.tenant, stream: position.stream, to: id)
        }
    }

    private enum Outcome {
        case applied, ignored
        case failed(String)
    }

    private static func applyOne(_ record: StreamRecord, slice: StreamSlice, group: String, workspace: DocumentWorkspace) throws -> (Outcome, LedgerEntry) {
        let outcome: Outcome
        var eventType = "?"
        if let fields = record.fields {
            do {
                let event = try StreamEvent(id: record.id, stream: slice.stream, tenant: slice.tenant, fields: fields)
                eventType = event.eventType
                switch try Appliers.apply(event, in: workspace) {
                case .applied: outcome = .applied
                case .ignored: outcome = .ignored
                }
            } catch let malformed as StreamEvent.Malformed {
                outcome = .failed("malformed entry: \(malformed)")
            } catch let failure as ApplyFailure {
                outcome = .failed(failure.description)
            } catch let error as DocumentStoreError where error.code != .storage {
                outcome = .failed(error.message)
            }
        } else {
            outcome = .failed("entry was deleted from the stream before it was applied")
        }
        let failure: String?
        if case .failed(let reason) = outcome { failure = reason } else { failure = nil }
        let entry = LedgerEntry(
            consumerGroup: group, tenant: slice.tenant, stream: slice.stream, eventID: record.id, eventType: eventType,
            status: failure == nil ? .processed : .failed, error: failure, processedAt: Appliers.time(ofID: record.id)
        )
        return (outcome, entry)
    }
}
