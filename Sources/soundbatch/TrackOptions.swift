import ArgumentParser
import Foundation
import Logging
import SoundbatchCore

/// Options for following tasks to their end: `track`, and `run --wait`. Each one not
/// given comes from how the batch was run before, else its default.
struct TrackOptions: ParsableArguments {
    @Option(help: ArgumentHelp("Save each completed job's audio in this folder.", valueName: "folder"))
    var download: String?

    @Option(
        help: ArgumentHelp(
            "Status looks allowed, as N/min or N/s (default: 200/min, the documented limit).", valueName: "rate"))
    var lookRate: Rate?

    /// The option's name before 0.5, for scripts written then.
    @Option(name: .customLong("poll-rate"), help: .hidden)
    var pollRate: Rate?

    @Option(
        help: ArgumentHelp(
            "Give up on a task still running this long after it was submitted, such as 30m or 2h "
                + "(default: 30m); `track` later carries on.",
            valueName: "duration"))
    var timeoutAfter: DurationArgument?

    @Option(help: ArgumentHelp("The largest audio file to accept, such as 100MB (default: 100MB).", valueName: "size"))
    var maxDownloadSize: ByteCount?

    @Option(help: "Downloads at once, apart from the API's rate limits (default: 4).")
    var downloadConcurrency: Int?

    @Flag(
        inversion: .prefixedNo,
        help: "Check each sound as it is saved: silent, clipped, short, DC offset, duplicate (default: on).")
    var check: Bool?

    @OptionGroup(title: "Thresholds of the checks (see `soundbatch check --help`)") var thresholds: CheckOptions

    func validate() throws {
        if let downloadConcurrency, !(1...64).contains(downloadConcurrency) {
            throw ValidationError("--download-concurrency must be from 1 to 64.")
        }
    }

    /// What this command line says of how the batch's tasks are followed.
    var given: BatchSettings {
        var settings = BatchSettings()
        settings.lookRate = (lookRate ?? pollRate)?.description
        settings.timeoutAfter = timeoutAfter?.duration.seconds
        settings.download = download.map { URL(fileURLWithPath: $0).standardizedFileURL.path }
        settings.maxDownloadSize = maxDownloadSize?.bytes
        settings.downloadConcurrency = downloadConcurrency
        settings.checked = check
        let thresholds = thresholds.given
        settings.checks = thresholds == CheckChoices() ? nil : thresholds
        return settings
    }
}

/// `--wait` and how to follow the tasks then: `run` and `resume`.
struct WaitOptions: ParsableArguments {
    @Flag(
        inversion: .prefixedNo,
        help: "After submitting, follow the tasks to their end (tracking starts while submitting goes on).")
    var wait: Bool?

    @OptionGroup var track: TrackOptions

    @Option(
        help: ArgumentHelp(
            "Send a sound a check found wrong again, up to N times, within --max-credits (default: 0, never).",
            valueName: "n"))
    var rerollFlagged: Int?

    func validate() throws {
        if track.download != nil && wait == false {
            throw ValidationError("--download goes with --wait (or use `soundbatch track --download` later).")
        }
        if let rerollFlagged, !(0...10).contains(rerollFlagged) {
            throw ValidationError("--reroll-flagged must be from 0 to 10.")
        }
        if (rerollFlagged ?? 0) > 0 && track.check == false {
            throw ValidationError("--reroll-flagged needs the sounds checked: leave out --no-check.")
        }
    }

    /// What this command line says of waiting; `--download` means waiting for the audio.
    var given: BatchSettings {
        var settings = track.given
        settings.wait = wait ?? (track.download != nil ? true : nil)
        settings.rerollFlagged = rerollFlagged
        return settings
    }
}

/// A size written as 100MB, 512KB, 2GB or a plain number of bytes.
struct ByteCount: ExpressibleByArgument, Sendable {
    var bytes: Int

    init(_ bytes: Int) { self.bytes = bytes }

    init?(argument: String) {
        let text = argument.trimmed.uppercased()
        let units: [(String, Int)] = [("GB", 1_000_000_000), ("MB", 1_000_000), ("KB", 1_000), ("B", 1)]
        for (suffix, scale) in units where text.hasSuffix(suffix) {
            guard let number = Double(text.dropLast(suffix.count).trimmingCharacters(in: .whitespaces)), number > 0
            else { return nil }
            bytes = Int(number * Double(scale))
            return
        }
        guard let number = Int(text), number > 0 else { return nil }
        bytes = number
    }

    var defaultValueDescription: String { "\(bytes / 1_000_000)MB" }
}

struct Track: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Follow a batch's submitted tasks until each is finished, and fetch their audio.",
        discussion: """
            Each task is first looked at when its eta has passed, else when the tasks seen \
            finishing say it is likely done (10 s after submission until some have), then \
            often while it is likely done and seldom when it is not. The tasks \
            are looked up where the batch runs, and the audio saved where it saves it, unless \
            told otherwise.

            Examples:
              soundbatch track --batch jobs
              soundbatch track --batch jobs --download sounds/
              soundbatch track --batch jobs --once
            """)

    @Option(help: "The batch to follow.")
    var batch: String

    @Flag(help: "One look at each unfinished job, then stop.")
    var once = false

    @OptionGroup var track: TrackOptions

    @OptionGroup var service: ServiceOptions

    @OptionGroup var ledger: LedgerOption
    @OptionGroup var log: LogOptions

    func run() async throws {
        log.bootstrap()
        let logger = Logger(label: "soundbatch")
        let code = try await reportingErrors { () async throws -> ExitCode in
            return try await ledger.withOpen(create: false) { ledger in
                let stop = Interrupts.stop
                var given = track.given
                given.service = service.baseURL.map { .api(baseURL: $0) }
                let report = try await BatchRun(
                    service: service, ledger: ledger, batch: batch, stop: stop, logger: logger
                )
                .track(
                    given, once: once, key: service.keySource(logger: logger),
                    progress: log.quiet ? nil : ProgressReporter.display)
                Summary.print(report)
                return ExitCode(report.exitStatus)
            }
        }
        if code != Exit.done { throw code }
    }
}
