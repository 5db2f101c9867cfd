import ArgumentParser
import Foundation
import SoundbatchCore

struct Run: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Record the rows of a CSV file as jobs in the ledger.",
        discussion: """
            The file needs a header row with a prompt column; audio_length (1 to 600 seconds), \
            webhook_url and id are optional, and every other column is kept with the job. \
            Rows already in the batch are recognised and not added again, so the same file, \
            or a longer one, can be fed as often as needed.

            If any row is invalid, every problem is listed and nothing is recorded (exit 65), \
            unless --skip-invalid is given.
            """)

    @Argument(help: ArgumentHelp("The CSV file of prompts.", valueName: "csv-file"))
    var csvFile: String

    @Option(help: "The batch to add the rows to (default: the file's name without its extension).")
    var batch: String?

    @Flag(help: "Record valid rows and set invalid ones aside in state 'invalid', instead of recording nothing.")
    var skipInvalid = false

    @Flag(help: "Read, check and record the rows; send nothing.")
    var dryRun = false

    @OptionGroup var ledger: LedgerOption
    @OptionGroup var log: LogOptions

    var batchName: String {
        batch ?? URL(fileURLWithPath: csvFile).deletingPathExtension().lastPathComponent
    }

    func validate() throws {
        if let batch, batch.trimmingCharacters(in: .whitespaces).isEmpty {
            throw ValidationError("--batch needs a name.")
        }
        if !dryRun {
            throw ValidationError("Submitting to the service is not available in this version yet; use --dry-run to check and record the file.")
        }
    }

    func run() throws {
        log.bootstrap()
        let summary = try reportingErrors {
            let csv = try CSVReader(path: csvFile)
            let ledger = try ledger.open()
            let summary = try ledger.ingest(csv, batch: batchName, skipInvalid: skipInvalid)
            if !log.quiet {
                var line = "\(csvFile) -> batch \"\(summary.batch)\": \(grouped(summary.newJobs)) new, "
                    + "\(grouped(summary.knownJobs)) already in the ledger"
                if summary.invalidJobs > 0 {
                    line += " (\(grouped(summary.invalidJobs)) of the new ones invalid, set aside)"
                }
                print(line + " [\(ledger.path)]")
            }
            return summary
        }
        if summary.invalidJobs > 0 { throw Exit.someFailed }
    }
}
