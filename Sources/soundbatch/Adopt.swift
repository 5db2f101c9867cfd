import ArgumentParser
import Foundation
import Logging
import SoundbatchCore

struct Adopt: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Settle a job in doubt with a task found in your account.",
        discussion: """
            A job whose request got no answer (ambiguous, or failed after it) may have made a \
            task the ledger never heard of. Found in your account, its task ID settles the job: \
            once a status look at the service the batch runs at confirms the task, the job is \
            submitted with it (completed, when it is done) and never sent again. A task the \
            ledger holds already, or a job not in doubt, is refused, and nothing changes.

            Examples:
              soundbatch adopt --batch jobs --job door-creak --task 3f0c2a9e-1b7d
              soundbatch adopt --batch jobs --job 14 --task 3f0c2a9e --api-key-file key.txt
            """)

    @Option(help: "The batch the row is in.")
    var batch: String

    @Option(name: .customLong("job"), help: ArgumentHelp("The row, by its id or CSV line.", valueName: "row"))
    var row: String

    @Option(help: ArgumentHelp("The task ID, as your account shows it.", valueName: "task-id"))
    var task: String

    @Option(help: ArgumentHelp("A file holding the API key (default: $MUSICGPT_API_KEY).", valueName: "path"))
    var apiKeyFile: String?

    @OptionGroup var ledger: LedgerOption

    func validate() throws {
        if task.trimmed.isEmpty { throw ValidationError("--task needs the task's ID.") }
    }

    func run() async throws {
        let logger = Logger(label: "soundbatch.adopt")
        let taskID = task.trimmed
        try await reportingErrors {
            try await ledger.withOpen(create: false) { ledger in
                let batchID = try await ledger.batchID(named: batch)
                // A row's variations are several jobs: the one in doubt.
                var inDoubt: [Int64] = []
                let jobs = try await ledger.jobIDs(batchID: batchID, row: row)
                for job in jobs where [.ambiguous, .failed, .pending].contains(try await ledger.state(jobID: job)) {
                    inDoubt.append(job)
                }
                guard !jobs.isEmpty else {
                    throw CommandFailure(.usage, "no row of batch \"\(batch)\" has the id or CSV line \(row)")
                }
                guard inDoubt.count <= 1, let job = inDoubt.first ?? jobs.first else {
                    throw CommandFailure(
                        .usage, "\(inDoubt.count) jobs of batch \"\(batch)\" answer to \(row) and may be in doubt; name one by its id")
                }
                let key: KeySource = { [apiKeyFile] in try resolveAPIKey(file: apiKeyFile, logger: logger) }
                let found = try await BoundServiceLookups.with(ledger: ledger, key: key) { lookups in
                    await lookups.lookUp(taskID: taskID, batchID: batchID)
                }
                let status: RemoteStatus
                switch found {
                case let .found(answer) where answer.taskID == nil || answer.taskID == taskID:
                    status = answer
                case .retryable(404, _, _), .found:
                    throw CommandFailure(
                        .usage, "the service does not know task \(taskID); check the ID in your account. Nothing changed")
                case let .retryable(_, error, _), let .keyRejected(_, error):
                    throw CommandFailure(
                        .resumable, "could not ask the service about task \(taskID): \(error). Nothing changed; try again")
                }
                switch try await ledger.adopt(jobID: job, taskID: taskID, now: Date()) {
                case .adopted:
                    let (state, _) = try await ledger.recordStatus(jobID: job, status, now: Date())
                    print("\(batch): \(row) settled with task \(taskID) (\(state.words)); it will not be sent again")
                case .taskKnown:
                    throw CommandFailure(.usage, "task \(taskID) is in the ledger already; nothing changed")
                case .notInDoubt:
                    throw CommandFailure(
                        .usage,
                        "\(row) is not in doubt (it has a task, or no request of it went unanswered); nothing changed")
                }
            }
        }
    }
}
