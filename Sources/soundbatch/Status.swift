import ArgumentParser
import Foundation
import SoundbatchCore

struct Status: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Show what the ledger holds: jobs per state and credits, per batch.")

    @Option(help: "Show only this batch.")
    var batch: String?

    @Flag(help: "Print one JSON object instead of text.")
    var json = false

    @OptionGroup var ledger: LedgerOption

    func run() async throws {
        let batches = try await reportingErrors { try await ledger.open(create: false).status(batch: batch) }
        if json {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys]
            let data = try encoder.encode(["batches": batches])
            print(String(decoding: data, as: UTF8.self))
            return
        }
        if batches.isEmpty {
            print("The ledger holds no batches yet. Feed it a CSV file: soundbatch run FILE.csv --dry-run")
            return
        }
        for batch in batches {
            print(
                "\(batch.name): \(grouped(batch.jobs)) jobs, "
                    + String(
                        format: "%.2f credits estimated, %.2f charged", batch.creditEstimateTotal,
                        batch.conversionCostTotal))
            let counts = JobState.allCases.filter { batch.count($0) > 0 }.map {
                "\($0.rawValue) \(grouped(batch.count($0)))"
            }
            if !counts.isEmpty { print("  " + counts.joined(separator: ", ")) }
            if batch.count(.ambiguous) > 0 {
                print(
                    "  \(batch.count(.ambiguous)) ambiguous: the service may have created and charged for them; "
                        + "check your account, then `soundbatch resume --batch \(batch.name) --resend-ambiguous` to send them again"
                )
            }
        }
    }
}
