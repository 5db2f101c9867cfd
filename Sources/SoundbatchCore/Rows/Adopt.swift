import Foundation

/// Why `adopt` settled nothing.
public enum AdoptError: CommandError, Equatable {
    case severalInDoubt(batch: String, row: String, count: Int)
    /// The service does not know the task.
    case unknownTask(String)
    /// The service could not be asked; nothing changed, and it may be tried again.
    case serviceUnreachable(task: String, reason: String)
    case keyRejected(String)
    case taskKnown(String)
    case notInDoubt(row: String)

    public var description: String {
        switch self {
        case let .severalInDoubt(batch, row, count):
            "\(count) jobs of batch \"\(batch)\" answer to \(row) and may be in doubt; name one by its id"
        case let .unknownTask(task):
            "the service does not know task \(task); check the ID in your account. Nothing changed"
        case let .serviceUnreachable(task, reason):
            "could not ask the service about task \(task): \(reason). Nothing changed; try again"
        case let .keyRejected(reason): "the API key was refused: \(reason). Nothing changed"
        case let .taskKnown(task): "task \(task) is in the ledger already; nothing changed"
        case let .notInDoubt(row):
            "\(row) is not in doubt (it has a task, or no request of it went unanswered); nothing changed"
        }
    }

    public var exitStatus: ExitStatus {
        switch self {
        case .serviceUnreachable: .resumable
        case .keyRejected: .keyRejected
        case .severalInDoubt, .unknownTask, .taskKnown, .notInDoubt: .usage
        }
    }
}

extension LedgerStore {
    /// Settles the job in doubt of the row `row` names with task `taskID`, found in the
    /// account by hand, once a status look at the service the batch runs at (with `key`)
    /// confirms it; returns the job's state after (submitted, or completed when it is done).
    public func adopt(taskID: String, row: String, batch: String, key: @escaping KeySource) async throws -> JobState {
        let named = try await namedRow(row, batch: batch)
        // A row's variations are several jobs: the one that may be in doubt.
        let inDoubt = named.row.jobs.filter { [.inDoubt, .failed, .pending].contains($0.state) }
        guard inDoubt.count <= 1 else {
            throw AdoptError.severalInDoubt(batch: batch, row: row, count: inDoubt.count)
        }
        let job = (inDoubt.first ?? named.row.jobs[0]).jobID
        let found = try await BoundServiceLookups.with(ledger: self, key: key) { lookups in
            await lookups.lookUp(taskID: taskID, batchID: named.batchID)
        }
        let status: RemoteStatus
        switch found {
        case let .found(answer) where answer.taskID == nil || answer.taskID == taskID: status = answer
        case .retryable(404, _, _), .found: throw AdoptError.unknownTask(taskID)
        case let .keyRejected(_, reason): throw AdoptError.keyRejected(reason)
        case let .retryable(_, reason, _): throw AdoptError.serviceUnreachable(task: taskID, reason: reason)
        }
        switch try await adopt(jobID: job, taskID: taskID, now: Date()) {
        case .adopted: return try await recordStatus(jobID: job, status, now: Date()).0
        case .taskKnown: throw AdoptError.taskKnown(taskID)
        case .notInDoubt: throw AdoptError.notInDoubt(row: row)
        }
    }
}
