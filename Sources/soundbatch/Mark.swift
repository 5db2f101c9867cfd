import ArgumentParser
import Foundation
import SoundbatchCore

struct Mark: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Keep or reject a sound of a batch, or clear its verdict: what `review` does with P, X and U.",
        discussion: """
            A verdict belongs to one take of a row: by default its latest; --take names an \
            earlier one. Only a sound (a completed take) can be kept or rejected. Rejected \
            rows go again with `soundbatch retry --batch NAME --rejected`.

            Examples:
              soundbatch mark keep --batch jobs --job door-creak
              soundbatch mark reject --batch jobs --job 14 --take 2
              soundbatch mark clear --batch jobs --job door-creak
            """)

    enum Action: String, ExpressibleByArgument, CaseIterable {
        case keep, reject, clear

        var verdict: Verdict? {
            switch self {
            case .keep: .kept
            case .reject: .rejected
            case .clear: nil
            }
        }
    }

    @Argument(help: "keep, reject or clear.")
    var action: Action

    @Option(help: "The batch the row is in.")
    var batch: String

    @Option(name: .customLong("job"), help: ArgumentHelp("The row, by its id or CSV line.", valueName: "row"))
    var row: String

    @Option(help: ArgumentHelp("Which take of the row (1 for the first; default: its latest).", valueName: "n"))
    var take: Int?

    @OptionGroup var ledger: LedgerOption

    func validate() throws {
        if let take, take < 1 { throw ValidationError("--take counts from 1.") }
    }

    func run() async throws {
        try await reportingErrors {
            try await ledger.withOpen(create: false) { ledger in
                let batchID = try await ledger.batchID(named: batch)
                let jobs = try await ledger.jobIDs(batchID: batchID, row: row)
                guard jobs.count == 1, let job = jobs.first else {
                    throw CommandFailure(
                        .usage,
                        jobs.isEmpty
                            ? "no row of batch \"\(batch)\" has the id or CSV line \(row)"
                            : "\(jobs.count) rows of batch \"\(batch)\" answer to \(row); name one by its id")
                }
                let takes = try await ledger.reviewRows(batchID: batchID, ReviewQuery(jobIDs: [job])).rows.first?.takes ?? []
                let chosen = take ?? takes.map(\.take).max() ?? 1
                switch try await ledger.setVerdict(action.verdict, jobID: job, take: chosen) {
                case .recorded:
                    print("\(batch): \(row) take \(chosen) " + (action.verdict.map { "\($0.rawValue)" } ?? "cleared"))
                case .noSuchTake:
                    throw CommandFailure(
                        .usage,
                        "\(row) has no take \(chosen) (it has \(takes.map { String($0.take) }.joined(separator: ", ")))")
                case let .notASound(state):
                    throw CommandFailure(
                        .usage, "\(row) take \(chosen) is \(state.words), not a sound: there is nothing to keep or reject")
                }
            }
        }
    }
}
