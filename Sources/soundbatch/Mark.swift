import ArgumentParser
import Foundation
import SoundbatchCore

struct Mark: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Keep or reject a sound of a batch, or clear its verdict: what `review` does with P, X and U.",
        discussion: """
            A verdict belongs to one take of a row: --take names it when the row has several \
            (variations or re-rolls; the message lists them), and none is picked for you. Only a sound (a completed take) can be kept or rejected. Rejected \
            rows go again with `soundbatch retry --batch NAME --rejected`. --flagged, in place \
            of --job, rejects every latest sound a check found wrong (or those with the \
            findings named).

            Examples:
              soundbatch mark keep --batch jobs --job door-creak
              soundbatch mark reject --batch jobs --job 14 --take 2
              soundbatch mark clear --batch jobs --job door-creak
              soundbatch mark reject --batch jobs --flagged
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
    var row: String?

    @Option(
        name: .customLong("flagged"), defaultAsFlag: FindingsArgument.any,
        help: ArgumentHelp(
            "With reject: every latest sound a check found wrong, or with one of the findings named.",
            valueName: "findings"))
    var flagged: FindingsArgument? = nil

    @Option(
        help: ArgumentHelp("Which take of the row (1 for the first); needed when it has several.", valueName: "n"))
    var take: Int?

    @OptionGroup var ledger: LedgerOption

    func validate() throws {
        if let take, take < 1 { throw ValidationError("--take counts from 1.") }
        try flagged?.check("--flagged")
        switch (row, flagged) {
        case (nil, nil): throw ValidationError("Name the row with --job, or take the flagged sounds with --flagged.")
        case (_?, _?): throw ValidationError("--job and --flagged each choose the sounds: give one of them.")
        case (nil, _?) where action != .reject: throw ValidationError("--flagged goes with reject only.")
        case (nil, _?) where take != nil: throw ValidationError("--take goes with --job.")
        default: break
        }
    }

    func run() async throws {
        try await reportingErrors {
            try await ledger.withOpen(create: false) { ledger in
                if let flagged {
                    let rejected = try await ledger.rejectFlagged(batch: batch, kinds: flagged.kinds)
                    print("\(batch): \(counted(rejected, "flagged sound", "flagged sounds")) rejected")
                    if rejected > 0 { print("  send them again with: soundbatch retry --batch \(batch) --rejected") }
                } else if let row {
                    let chosen = try await ledger.mark(action.verdict, row: row, batch: batch, take: take)
                    print("\(batch): \(row) take \(chosen) " + (action.verdict.map { "\($0.rawValue)" } ?? "cleared"))
                }
            }
        }
    }
}
