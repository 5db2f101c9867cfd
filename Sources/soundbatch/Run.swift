import ArgumentParser
import Foundation
import Logging
import SoundbatchCore

struct Run: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Record the rows of a CSV file as jobs, then submit every pending job of the batch.",
        discussion: """
            The file needs a header row with a prompt column; audio_length (1 to 600 seconds), \
            webhook_url and id are optional, and every other column is kept with the job. \
            Commas, semicolons or tabs separate the fields (whichever the header holds most of); \
            the file is UTF-8, or UTF-16 with a byte-order mark. \
            Rows already in the batch are recognised and not added again, so the same file, \
            or a longer one, can be fed as often as needed.

            --takes N asks for N sounds of every row (variations: five footsteps, so a game \
            does not repeat itself), and a takes column for some rows only (1 to 20); each is \
            its own job, task, file and verdict, numbered 1..N within its row. Feeding the file \
            again adds nothing; with a larger N it adds only the missing takes.

            If any row is invalid, every problem is listed and nothing is recorded (exit 65), \
            unless --skip-invalid is given.

            The key comes from $MUSICGPT_API_KEY or --api-key-file; --sandbox needs none. \
            The batch remembers the options it is run with (never the key): a later \
            `resume` or `track` carries on the same way.

            Examples:
              soundbatch run jobs.csv --sandbox --wait --download sounds/
              soundbatch run jobs.csv --rate 120/min --max-credits 500
              soundbatch run jobs.csv --dry-run
              soundbatch run export.csv --prompt-column "Description" --delimiter tab
              soundbatch run sheet.csv --length-column "Duration (s)"
              soundbatch run footsteps.csv --takes 5 --sandbox --wait --download sounds/
            """)

    @Argument(help: ArgumentHelp("The CSV file of prompts.", valueName: "csv-file"))
    var csvFile: String

    @Option(help: "The batch to add the rows to (default: the file's name without its extension).")
    var batch: String?

    @Flag(help: "Record valid rows and set invalid ones aside in state 'invalid', instead of recording nothing.")
    var skipInvalid = false

    @Option(
        help: ArgumentHelp(
            "The field separator: comma, semicolon or tab (default: whichever the header line holds most of).",
            valueName: "separator"))
    var delimiter: DelimiterArgument?

    @Option(help: ArgumentHelp("The column holding the prompts, when it is not called prompt.", valueName: "name"))
    var promptColumn: String?

    @Option(help: ArgumentHelp("The column holding the row ids, when it is not called id.", valueName: "name"))
    var idColumn: String?

    @Option(
        help: ArgumentHelp(
            "The column holding each sound's length in seconds, when it is not called audio_length.",
            valueName: "name"))
    var lengthColumn: String?

    @Option(
        help: ArgumentHelp(
            "Sounds to make of each row, 1 to 20 (a takes column says it for its own rows).", valueName: "n"))
    var takes = 1

    @Flag(help: "Read, check and record the rows; send nothing.")
    var dryRun = false

    @OptionGroup var send: SendOptions
    @OptionGroup var wait: WaitOptions
    @OptionGroup var ledger: LedgerOption
    @OptionGroup var log: LogOptions

    /// What the feed may have got wrong, with how to put it right.
    static func notes(_ summary: IngestSummary, file: String) -> [String] {
        let batch = summary.batch.contains(" ") ? "\"\(summary.batch)\"" : summary.batch
        var notes: [String] = []
        if summary.repeatsPendingRows {
            notes.append(
                "every row added repeats a prompt already pending in batch \(batch) from an earlier feed: "
                    + "if the file's columns were renamed or read otherwise (--prompt-column, --length-column), this feed doubled the batch. Nothing has been sent; "
                    + "to take this feed back: soundbatch drop --batch \(batch) --last-feed")
        }
        if let column = summary.unmappedLengthColumn {
            notes.append(
                "the column \"\(column)\" holds lengths in seconds, and was kept as a column, not sent as audio_length: "
                    + "to send it, drop the rows never sent (soundbatch drop --batch \(batch)"
                    + (summary.newJobs > 0 ? " --last-feed" : "") + ") and feed the file again with "
                    + "--length-column \"\(column)\"")
        }
        return notes
    }

    var batchName: String {
        batch ?? URL(fileURLWithPath: csvFile).deletingPathExtension().lastPathComponent
    }

    func validate() throws {
        if let batch, batch.trimmed.isEmpty {
            throw ValidationError("--batch needs a name.")
        }
        guard RowTakes.allowed.contains(takes) else {
            throw ValidationError("--takes must be from 1 to \(RowTakes.allowed.upperBound).")
        }
    }

    func run() async throws {
        log.bootstrap()
        let code = try await reportingErrors { () async throws -> ExitCode in
            let csv = try CSVReader(path: csvFile, delimiter: delimiter?.byte)
            return try await ledger.withOpen { ledger in
                let summary = try await ledger.ingest(
                    csv, batch: batchName, skipInvalid: skipInvalid,
                    columns: ColumnNames(prompt: promptColumn, id: idColumn, length: lengthColumn), takes: takes)
                if !log.quiet {
                    var line =
                        "\(csvFile) -> batch \"\(summary.batch)\": \(grouped(summary.newJobs)) new, "
                        + "\(grouped(summary.knownJobs)) already in the ledger"
                    if summary.invalidJobs > 0 {
                        line += " (\(grouped(summary.invalidJobs)) of the new ones invalid, set aside)"
                    }
                    if summary.addedVariations > 0 {
                        line +=
                            "; \(counted(summary.addedVariations, "further take", "further takes")) of its rows added"
                    }
                    print(line + " [\(ledger.location)]")
                    for note in Self.notes(summary, file: csvFile) { print("  " + note) }
                }
                if dryRun {
                    if !log.quiet {
                        // Never a read of the whole batch: that was half the feed's time at 1M rows.
                        var forecast = summary.forecast
                        if forecast == nil {
                            forecast = try await ledger.pendingForecast(
                                batchID: ledger.batchID(named: summary.batch))
                        }
                        if let forecast, let line = Status.forecast(forecast) { print("  " + line) }
                    }
                    return summary.invalidJobs > 0 ? Exit.someFailed : Exit.done
                }
                return try await send.send(batch: summary.batch, ledger: ledger, log: log, wait: wait)
            }
        }
        if code != Exit.done { throw code }
    }
}
