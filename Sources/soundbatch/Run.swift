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
    var delimiter: String?

    @Option(help: ArgumentHelp("The column holding the prompts, when it is not called prompt.", valueName: "name"))
    var promptColumn: String?

    @Option(help: ArgumentHelp("The column holding the row ids, when it is not called id.", valueName: "name"))
    var idColumn: String?

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
        _ = try separator()
    }

    /// The byte --delimiter names, if given.
    func separator() throws -> UInt8? {
        guard let delimiter else { return nil }
        switch delimiter.lowercased() {
        case ",", "comma": return UInt8(ascii: ",")
        case ";", "semicolon": return UInt8(ascii: ";")
        case "\t", "\\t", "tab": return UInt8(ascii: "\t")
        default: throw ValidationError("--delimiter must be comma, semicolon or tab (or , ; \\t).")
        }
    }

    func run() async throws {
        log.bootstrap()
        let code = try await reportingErrors { () async throws -> ExitCode in
            let csv = try CSVReader(path: csvFile, delimiter: try separator())
            return try await ledger.withOpen { ledger in
                let summary = try await ledger.ingest(
                    csv, batch: batchName, skipInvalid: skipInvalid,
                    columns: ColumnNames(prompt: promptColumn, id: idColumn))
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
            return try await ledger.withOpen(create: false) { ledger in
                try await send.send(
                    batch: batch, ledger: ledger, log: log, resendAmbiguous: resendAmbiguous, wait: wait)
            }
        }
        if code != Exit.done { throw code }
    }
}

struct Retry: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Send finished jobs of a batch again: those that failed, or named rows (a new take of a sound).",
        discussion: """
            By default it takes the batch's generation_failed and remote_missing jobs, and its \
            failed ones except those refused as invalid (HTTP 400 or 422), which go again only \
            when named with --job or --state failed. --job names a row by its id or its line in \
            the CSV file, and may name a completed job for a new take: its earlier file is kept \
            as NAME.take1.wav. Nothing is forgotten: every earlier task ID, answer, charge and \
            file stays in the ledger, and the spend report counts what earlier takes cost.

            It says how many jobs and what they may cost before sending, and asks; without a \
            terminal it needs --yes. They go as `resume` would send them, as the batch was run.

            Examples:
              soundbatch retry --batch jobs
              soundbatch retry --batch jobs --job door-creak --yes
              soundbatch retry --batch jobs --state failed,generation_failed
            """)

    @Option(help: "The batch whose jobs to send again.")
    var batch: String

    @Option(
        help: ArgumentHelp(
            "Which finished states to take, comma-separated: failed, generation_failed, remote_missing, completed.",
            valueName: "states"))
    var state: String?

    @Option(
        name: .customLong("job"),
        help: ArgumentHelp("A row to send again, by its id or CSV line (repeatable).", valueName: "row"))
    var jobs: [String] = []

    @Flag(help: "Send without asking.")
    var yes = false

    @OptionGroup var send: SendOptions
    @OptionGroup var wait: WaitOptions
    @OptionGroup var ledger: LedgerOption
    @OptionGroup var log: LogOptions

    var states: Set<JobState>? {
        state.map { Set($0.split(separator: ",").compactMap { JobState(rawValue: String($0).trimmed) }) }
    }

    func validate() throws {
        if let state {
            for name in state.split(separator: ",")
            where JobState(rawValue: String(name).trimmed).map(JobState.finished.contains) != true {
                throw ValidationError(
                    "--state: \"\(name)\" is not one of failed, generation_failed, remote_missing, completed.")
            }
        }
    }

    func run() async throws {
        log.bootstrap()
        let logger = Logger(label: "soundbatch")
        let code = try await reportingErrors { () async throws -> ExitCode in
            return try await ledger.withOpen(create: false) { ledger in
                let stop = StopSignal()
                let run = BatchRun(service: send.service, ledger: ledger, batch: batch, stop: stop, logger: logger)
                let plan = try await run.planRetry(states: states, rows: jobs)
                if !plan.unknownRows.isEmpty {
                    throw CommandFailure(
                        Exit.usage,
                        "no finished job of batch \"\(batch)\" has the id or CSV line \(plan.unknownRows.joined(separator: ", "))"
                    )
                }
                if plan.jobs.isEmpty {
                    print("\(batch): nothing to retry")
                    return Exit.done
                }
                let byState = Dictionary(grouping: plan.jobs, by: \.state).sorted { $0.key.rawValue < $1.key.rawValue }
                let cost =
                    plan.forecast.map { String(format: "about %.2f credits", $0) }
                    ?? "a cost unknown until the first answer"
                print(
                    "\(batch): \(plan.jobs.count) job\(plan.jobs.count == 1 ? "" : "s") to send again ("
                        + byState.map { "\($0.value.count) \($0.key.rawValue)" }.joined(separator: ", ") + "), \(cost)")
                if !plan.likelyToFailAgain.isEmpty {
                    print(
                        "  \(plan.likelyToFailAgain.count) were refused as invalid and will likely fail again: "
                            + plan.likelyToFailAgain.prefix(10).map(\.row).joined(separator: ", "))
                }
                if !yes {
                    guard isatty(STDIN_FILENO) == 1 else {
                        throw CommandFailure(
                            Exit.usage, "retry sends these jobs again and may cost credits; add --yes to go on")
                    }
                    Swift.print("Send them again? [y/N] ", terminator: "")
                    fflush(nil)
                    guard let answer = readLine()?.trimmed.lowercased(), ["y", "yes"].contains(answer) else {
                        print("nothing sent")
                        return Exit.done
                    }
                }
                let signals = SignalWatcher(stop: stop)
                defer { signals.cancel() }
                let report = try await run.retry(
                    plan, given: send.given.overridden(by: wait.given),
                    key: send.service.keySource(logger: logger),
                    progress: log.quiet ? nil : ProgressReporter.display)
                return Summary.print(report)
            }
        }
        if code != Exit.done { throw code }
    }
}
