import ArgumentParser
import Foundation
import Logging
import SoundbatchCore

struct Adopt: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Settle a job in doubt with a task found in your account.",
        discussion: """
            A job whose request got no answer (in doubt, or failed after it) may have made a \
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
                let key: KeySource = { [apiKeyFile] in try resolveAPIKey(file: apiKeyFile, logger: logger) }
                let state = try await ledger.adopt(taskID: taskID, row: row, batch: batch, key: key)
                print("\(batch): \(row) settled with task \(taskID) (\(state.words)); it will not be sent again")
            }
        }
    }
}
