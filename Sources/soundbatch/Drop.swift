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
        let code = try await reportingErrors { () async throws -> ExitCode in
            try await ledger.withOpen(create: false) { ledger in
                let batchID = try await ledger.batchID(named: batch)
                let all = try await ledger.dropCandidates(
                    batchID: batchID, states: state?.states ?? [.pending, .invalid], lastFeed: lastFeed)
                let candidates = jobs.isEmpty ? all : all.filter { job in jobs.contains(where: job.isNamed) }
                let unknown = jobs.filter { name in !all.contains { $0.isNamed(name) } }
                if !unknown.isEmpty {
                    throw CommandFailure(
                        .usage,
                        "no \((state?.states ?? [.pending, .invalid]).map(\.rawValue).sorted().joined(separator: " or ")) "
                            + "job of batch \"\(batch)\"\(lastFeed ? " from its latest feed" : "") has the id or CSV line "
                            + unknown.joined(separator: ", ") + "; nothing removed")
                }
                let going = candidates.filter(\.neverSent)
                let kept = candidates.filter { !$0.neverSent }
                if !kept.isEmpty {
                    print(
                        "\(batch): keeping \(counted(kept.count, "job", "jobs")) that may have a task at the service "
                            + "(sent before, or with a request in doubt): "
                            + kept.prefix(5).map(\.row).joined(separator: ", ") + (kept.count > 5 ? ", ..." : ""))
                }
                guard !going.isEmpty else {
                    print("\(batch): no job never sent matches; nothing removed")
                    return Exit.done
                }
                let byState = Dictionary(grouping: going, by: \.state).sorted { $0.key.rawValue < $1.key.rawValue }
                print(
                    "\(batch): \(counted(going.count, "job", "jobs")) never sent to remove ("
                        + byState.map { "\($0.value.count) \($0.key.rawValue)" }.joined(separator: ", ") + "): "
                        + going.prefix(5).map(\.row).joined(separator: ", ") + (going.count > 5 ? ", ..." : ""))
                guard try confirmed("Remove them?", yes: yes, because: "drop removes these jobs from the ledger") else {
                    print("nothing removed")
                    return Exit.done
                }
                let dropped = try await ledger.drop(jobIDs: going.map(\.id))
                print("\(batch): removed \(counted(dropped, "job", "jobs"))")
                return Exit.done
            }
        }
        if code != Exit.done { throw code }
    }
}
