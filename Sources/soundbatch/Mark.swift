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
                let chosen = try await ledger.mark(action.verdict, row: row, batch: batch, take: take)
                print("\(batch): \(row) take \(chosen) " + (action.verdict.map { "\($0.rawValue)" } ?? "cleared"))
            }
        }
    }
}
