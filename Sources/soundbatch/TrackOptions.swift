import ArgumentParser
import Foundation
import Logging
import SoundbatchCore

/// Options for following tasks to their end: `track`, and `run --wait`.
struct TrackOptions: ParsableArguments {
    @Option(help: ArgumentHelp("Save each completed job's audio in this folder.", valueName: "folder"))
    var download: String?

    @Option(
        help: ArgumentHelp(
            "Status looks allowed, as N/min or N/s (the documented limit is 200/min).", valueName: "rate"))
    var pollRate: Rate = Rate(count: 200, per: .seconds(60))

    @Option(
        help: ArgumentHelp(
            "Give up on a task still running this long after it was submitted, such as 30m or 2h; "
                + "`track` later carries on.",
            valueName: "duration"))
    var timeoutAfter: DurationArgument = DurationArgument(.seconds(30 * 60))

    @Option(help: ArgumentHelp("The largest audio file to accept, such as 100MB.", valueName: "size"))
    var maxDownloadSize: ByteCount = ByteCount(100_000_000)

    @Option(help: "Downloads at once (separate from the API's rate limits).")
    var downloadConcurrency = 4

    func validate() throws {
        guard (1...64).contains(downloadConcurrency) else {
            throw ValidationError("--download-concurrency must be from 1 to 64.")
        }
    }

    func followSettings(once: Bool) -> FollowSettings {
        var settings = FollowSettings()
        settings.tracking.pollRate = pollRate
        settings.tracking.giveUpAfter = timeoutAfter.duration
        settings.tracking.once = once
        settings.download = download.map { folder in
            var download = DownloadSettings(directory: folder)
            download.maxBytes = maxDownloadSize.bytes
            download.concurrency = downloadConcurrency
            return download
        }
        return settings
    }
}

/// `--wait` and how to follow the tasks then: `run` and `resume`.
struct WaitOptions: ParsableArguments {
    @Flag(help: "After submitting, follow the tasks to their end (tracking starts while submitting goes on).")
    var wait = false

    @OptionGroup var track: TrackOptions

    func validate() throws {
        if track.download != nil && !wait {
            throw ValidationError("--download goes with --wait (or use `soundbatch track --download` later).")
        }
    }

    /// How to track after sending, when --wait asks for it.
    var tracking: TrackOptions? { wait ? track : nil }
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
            Each task is first looked at when its eta has passed (10 s after submission when \
            the service gave none), then less and less often, up to once a minute.
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
            let ledger = try ledger.open(create: false)
            let service = RemoteService(
                baseURL: self.service.resolvedBaseURL, key: try self.service.apiKey(logger: logger))
            let stop = StopSignal()
            let signals = SignalWatcher(stop: stop)
            defer { signals.cancel() }
            let report = try await BatchRun(ledger: ledger, batch: batch, stop: stop, logger: logger)
                .track(track.followSettings(once: once), at: service)
            return Summary.print(report, quiet: log.quiet)
        }
        if code != Exit.done { throw code }
    }
}
