import ArgumentParser
import Foundation
import SoundbatchCore
import SoundbatchLedgers

struct LedgerCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ledger",
        abstract: "Work on a ledger as a whole.",
        subcommands: [Copy.self])

    struct Copy: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Copy a whole ledger into a new, empty one: SQLite to PostgreSQL, or back.",
            discussion: """
                Every batch, job, attempt, earlier take and setting is copied with its own \
                numbers, so the copy reads as the original does. A target that already holds \
                batches is refused, untouched; a copy that fails half-way is removed again. Stop \
                every run on the original first: what they record meanwhile is not copied.

                A ledger is a SQLite file or a postgres:// URL (the password may come from \
                PGPASSWORD or ~/.pgpass).

                Examples:
                  soundbatch ledger copy soundbatch.sqlite postgres://sound@db/soundbatch
                  soundbatch ledger copy postgres://sound@db/soundbatch backup.sqlite
                """)

        @Argument(help: ArgumentHelp("The ledger to copy.", valueName: "from"))
        var from: String

        @Argument(
            help: ArgumentHelp("The new ledger: a file that does not exist yet, or an empty database.", valueName: "to")
        )
        var to: String

        func validate() throws {
            if from == to { throw ValidationError("FROM and TO are the same ledger.") }
        }

        func run() async throws {
            try await reportingErrors {
                try await withLedger(at: from, create: false) { source in
                    try await withLedger(at: to, create: true) { target in
                        let copied = try await target.copy(from: source, location: target.location)
                        let counts = [
                            counted(copied[.batches] ?? 0, "batch", "batches"),
                            counted(copied[.jobs] ?? 0, "job", "jobs"),
                            counted(copied[.attempts] ?? 0, "attempt", "attempts"),
                            counted(copied[.takes] ?? 0, "earlier take", "earlier takes")
                        ]
                        print("copied \(counts.joined(separator: ", ")) from \(source.location) to \(target.location)")
                    }
                }
            }
        }
    }
}
