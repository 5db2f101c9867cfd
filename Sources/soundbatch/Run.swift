import ArgumentParser
import Foundation
import SoundbatchCore

struct Run: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Record the rows of a CSV file as jobs, then submit every pending job of the batch.",
        discussion: """
            The file needs a header row with a prompt column; audio_length (1 to 600 seconds), \
            webhook_url and id are optional, and every other column is kept with the job. \
            Rows already in the batch are recognised and not added again, so the same file, \
            or a longer one, can be fed as often as needed.

            If any row is invalid, every problem is listed and nothing is recorded (exit 65), \
            unless --skip-invalid is given.

            The key comes from $MUSICGPT_API_KEY or --api-key-file; --sandbox needs none. \
            The batch remembers the options it is run with (never the key): a later \
            `resume` or `track` carries on the same way.

            Examples:
              soundbatch run jobs.csv --sandbox --wait --download sounds/
              soundbatch run jobs.csv --rate 120/min --max-credits 500
              soundbatch run jobs.csv --dry-run
            """)

    @Argument(help: ArgumentHelp("The CSV file of prompts.", valueName: "csv-file"))
    var csvFile: String

    @Option(help: "The batch to add the rows to (default: the file's name without its extension).")
    var batch: String?

    @Flag(help: "Record valid rows and set invalid ones aside in state 'invalid', instead of recording nothing.")
    var skipInvalid = false

    @Flag(help: "Read, check and record the rows; send nothing.")
    var dryRun = false

    @OptionGroup var send: SendOptions
    @OptionGroup var wait: WaitOptions
    @OptionGroup var ledger: LedgerOption
    @OptionGroup var log: LogOptions

    var batchName: String {
        batch ?? URL(fileURLWithPath: csvFile).deletingPathExtension().lastPathComponent
    }

    func validate() throws {
        if let batch, batch.trimmed.isEmpty {
            throw ValidationError("--batch needs a name.")
        }
    }

    func run() async throws {
        log.bootstrap()
        let code = try await reportingErrors { () async throws -> ExitCode in
            let csv = try CSVReader(path: csvFile)
            let ledger = try ledger.open()
            let summary = try ledger.ingest(csv, batch: batchName, skipInvalid: skipInvalid)
            if !log.quiet {
                var line =
                    "\(csvFile) -> batch \"\(summary.batch)\": \(grouped(summary.newJobs)) new, "
                    + "\(grouped(summary.knownJobs)) already in the ledger"
                if summary.invalidJobs > 0 {
                    line += " (\(grouped(summary.invalidJobs)) of the new ones invalid, set aside)"
                }
                print(line + " [\(ledger.location)]")
            }
            if dryRun {
                if !log.quiet, let batch = try await ledger.status(batch: summary.batch).first,
                    let forecast = Status.forecast(batch)
                {
                    print("  " + forecast)
                }
                return summary.invalidJobs > 0 ? Exit.someFailed : Exit.done
            }
            return try await send.send(batch: summary.batch, ledger: ledger, log: log, wait: wait)
        }
        if code != Exit.done { throw code }
    }
}

struct Resume: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Carry on sending a batch from the ledger alone; the CSV file is not needed.",
        discussion: """
            Jobs that were in flight when soundbatch last stopped are held as ambiguous: the \
            service may have created and charged for them. They are sent again only with \
            --resend-ambiguous.

            Every option not given comes from how the batch was run before: the same service \
            (a batch with tasks at one is never sent elsewhere), the same pace, waiting and \
            saving the audio where it did. An option given again is kept for next time.

            Examples:
              soundbatch resume --batch jobs
              soundbatch resume --batch jobs --max-credits 800
              soundbatch resume --batch jobs --resend-ambiguous
            """)

    @Option(help: "The batch to carry on with.")
    var batch: String

    @Flag(help: "Send the batch's ambiguous jobs again. They may then be paid for twice: check your account first.")
    var resendAmbiguous = false

    @OptionGroup var send: SendOptions
    @OptionGroup var wait: WaitOptions
    @OptionGroup var ledger: LedgerOption
    @OptionGroup var log: LogOptions

    func run() async throws {
        log.bootstrap()
        let code = try await reportingErrors {
            try await send.send(
                batch: batch, ledger: ledger.open(create: false), log: log,
                resendAmbiguous: resendAmbiguous, wait: wait)
        }
        if code != Exit.done { throw code }
    }
}
