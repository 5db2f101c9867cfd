import ArgumentParser
import Foundation
import SoundbatchCore

struct Drop: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Remove jobs of a batch that were never sent: rows fed by mistake, or set aside as invalid.",
        discussion: """
            Only a job that was never sent can go: pending or invalid, with no task, no request \
            left without an answer and no earlier take. A job that has, or may have, a task at \
            the service is never removed; it is listed as kept.

            It says how many jobs it would remove and asks; without a terminal it needs --yes.

            Examples:
              soundbatch drop --batch jobs --last-feed        (take back the latest feed)
              soundbatch drop --batch jobs --state invalid --yes
              soundbatch drop --batch jobs --job door-creak --job 14
            """)

    @Option(help: "The batch to remove jobs from.")
    var batch: String

    @Option(
        help: ArgumentHelp(
            "Which states to take, comma-separated: pending, invalid (default: both).", valueName: "states"))
    var state: StatesArgument?

    @Option(
        name: .customLong("job"),
        help: ArgumentHelp("A row to remove, by its id or CSV line (repeatable).", valueName: "row"))
    var jobs: [String] = []

    @Flag(help: "Only the jobs the batch's latest feed added.")
    var lastFeed = false

    @Flag(help: "Remove without asking.")
    var yes = false

    @OptionGroup var ledger: LedgerOption

    func validate() throws {
        try state?.check("--state", allowed: [.pending, .invalid])
    }

    func run() async throws {
        try await reportingErrors {
            try await ledger.withOpen(create: false) { ledger in
                let plan = try await ledger.planDrop(
                    batch: batch, states: state?.states ?? [.pending, .invalid], rows: jobs, lastFeed: lastFeed)
                if !plan.kept.isEmpty {
                    print(
                        "\(batch): keeping \(counted(plan.kept.count, "job", "jobs")) that may have a task at the service "
                            + "(sent before, or with a request in doubt): " + listed(plan.kept))
                }
                guard !plan.going.isEmpty else { return print("\(batch): no job never sent matches; nothing removed") }
                let byState = Dictionary(grouping: plan.going, by: \.state).sorted { $0.key.rawValue < $1.key.rawValue }
                print(
                    "\(batch): \(counted(plan.going.count, "job", "jobs")) never sent to remove ("
                        + byState.map { "\($0.value.count) \($0.key.rawValue)" }.joined(separator: ", ") + "): "
                        + listed(plan.going))
                guard try confirmed("Remove them?", yes: yes, because: "drop removes these jobs from the ledger") else {
                    return print("nothing removed")
                }
                let dropped = try await ledger.drop(jobIDs: plan.going.map(\.id))
                print("\(batch): removed \(counted(dropped, "job", "jobs"))")
            }
        }
    }

    /// The first few rows, as a person finds them.
    private func listed(_ jobs: [DropCandidate]) -> String {
        jobs.prefix(5).map(\.row).joined(separator: ", ") + (jobs.count > 5 ? ", ..." : "")
    }
}
