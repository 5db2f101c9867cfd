import ArgumentParser
import Foundation
import Logging
import SoundbatchCore
import SoundbatchSandbox

/// Options shared by the commands that send jobs: `run` and `resume`. Each one not given
/// comes from how the batch was run before, else its default; each one given is kept
/// with the batch for next time.
struct SendOptions: ParsableArguments {
    @Option(
        help: ArgumentHelp(
            "Submissions allowed, as N/min or N/s (default: 60/min, the documented limit).", valueName: "rate"))
    var rate: Rate?

    @Option(
        help:
            "How many submissions may go at once after a quiet spell (default: 1, which never trips the service's window)."
    )
    var burst: Int?

    @Option(help: "Requests in flight at most (default: 8).")
    var concurrency: Int?

    @Option(
        help: ArgumentHelp(
            "Attempts per job for its own retryable errors (5xx, 408) before it is failed (default: 5); "
                + "429s and outages never count.", valueName: "n"))
    var maxAttempts: Int?

    @Option(help: ArgumentHelp("Stop before the batch's estimated credits could pass this.", valueName: "credits"))
    var maxCredits: Double?

    @Option(
        help: ArgumentHelp(
            "How long to wait for an answer before a request counts as in doubt (no answer), such as 60s (default: 60s).",
            valueName: "duration"))
    var timeout: DurationArgument?

    @Option(help: ArgumentHelp("The webhook for jobs whose row has no webhook_url.", valueName: "url"))
    var webhookURL: String?

    @Option(
        help: ArgumentHelp(
            "How long the service may be out before the run stops with its jobs pending, such as 15m (default: 15m).",
            valueName: "duration"))
    var outageLimit: DurationArgument?

    @OptionGroup var service: ServiceOptions

    @Flag(
        help:
            "Send to a sandbox soundbatch starts on loopback instead of the service; no key needed. Later commands on the batch start it again, with a receiver of its callbacks that settles requests left without an answer."
    )
    var sandbox = false

    func validate() throws {
        if let burst, burst < 1 { throw ValidationError("--burst must be at least 1.") }
        if let concurrency, !(1...256).contains(concurrency) {
            throw ValidationError("--concurrency must be from 1 to 256.")
        }
        if let maxAttempts, maxAttempts < 1 { throw ValidationError("--max-attempts must be at least 1.") }
        if let timeout, !(timeout.duration > .zero && timeout.duration <= .seconds(3600)) {
            throw ValidationError("--timeout must be more than 0 and at most 1h.")
        }
        if let maxCredits, !(maxCredits >= 0) {
            throw ValidationError("--max-credits must be a number of credits, 0 or more.")
        }
        if let webhookURL, URL(string: webhookURL)?.scheme.map({ ["http", "https"].contains($0.lowercased()) }) != true
        {
            throw ValidationError("--webhook-url must be an absolute http or https URL.")
        }
        if sandbox && (service.baseURL != nil || service.apiKeyFile != nil) {
            throw ValidationError("--sandbox picks its own URL and key; leave out --base-url and --api-key-file.")
        }
    }

    /// What this command line says of how the batch is run.
    var given: BatchSettings {
        var settings = BatchSettings()
        settings.service = sandbox ? .sandbox(port: 0, callbackPort: nil) : service.baseURL.map { .api(baseURL: $0) }
        settings.rate = rate?.description
        settings.burst = burst
        settings.concurrency = concurrency
        settings.maxAttempts = maxAttempts
        settings.maxCredits = maxCredits
        settings.timeout = timeout?.duration.seconds
        settings.webhookURL = webhookURL
        settings.outageLimit = outageLimit?.duration.seconds
        return settings
    }

    /// Sends the batch's pending jobs as the batch is run, and prints the summary.
    /// Returns the exit code.
    func send(
        batch: String, ledger: any LedgerStore, log: LogOptions, resendInDoubt: Bool = false,
        doubtWindow: Duration? = nil, wait: WaitOptions
    ) async throws -> ExitCode {
        let logger = Logger(label: "soundbatch")
        let stop = Interrupts.stop
        var run = BatchRun(service: service, ledger: ledger, batch: batch, stop: stop, logger: logger)
        run.doubtWindow = doubtWindow
        let report =
            try await run
            .send(
                given.overridden(by: wait.given), resendInDoubt: resendInDoubt,
                key: service.keySource(logger: logger),
                progress: log.quiet ? nil : ProgressReporter.display)
        Summary.print(report)
        return ExitCode(report.exitStatus)
    }
}

extension BatchRun {
    /// A run of the batch by this command line: unbound batches go to $MUSICGPT_BASE_URL,
    /// else the API, and batches run against the sandbox start it again.
    init(service: ServiceOptions, ledger: any LedgerStore, batch: String, stop: StopSignal, logger: Logger) {
        self.init(ledger: ledger, batch: batch, stop: stop, logger: logger)
        fallbackBaseURL = service.environmentBaseURL ?? MusicGPTClient.defaultBaseURL
        sandbox = BuiltInSandbox()
    }
}

/// Where the API is and the key for it: `run`, `resume` and `track`.
struct ServiceOptions: ParsableArguments {
    @Option(
        help: ArgumentHelp(
            "The API's base URL (default: where the batch runs; for a new batch $MUSICGPT_BASE_URL, else \(MusicGPTClient.defaultBaseURL)).",
            valueName: "url"
        ))
    var baseURL: String?

    @Option(help: ArgumentHelp("A file holding the API key (default: $MUSICGPT_API_KEY).", valueName: "path"))
    var apiKeyFile: String?

    /// `$MUSICGPT_BASE_URL`: where a batch not yet bound to a service goes when not told.
    var environmentBaseURL: String? {
        ProcessInfo.processInfo.environment["MUSICGPT_BASE_URL"].flatMap { $0.isEmpty ? nil : $0 }
    }

    /// The key, read when a run goes to the API (a sandbox batch needs none).
    func keySource(logger: Logger) -> KeySource {
        { [apiKeyFile] in try resolveAPIKey(file: apiKeyFile, logger: logger) }
    }
}

/// The key from the key file or $MUSICGPT_API_KEY; exits 64 with how to set one.
func resolveAPIKey(file: String?, logger: Logger) throws -> APIKey {
    if let file {
        var info = stat()
        guard stat(file, &info) == 0 else {
            throw CommandFailure(.usage, "cannot read the key file \(file): \(String(cString: strerror(errno)))")
        }
        guard (info.st_mode & S_IFMT) == S_IFREG else {
            throw CommandFailure(.usage, "the key file \(file) is not a regular file")
        }
        if info.st_mode & 0o077 != 0 {
            logger.warning("the key file \(file) can be read by other users; chmod 600 it")
        }
        guard let data = FileManager.default.contents(atPath: file),
            let key = APIKey(String(decoding: data, as: UTF8.self))
        else {
            throw CommandFailure(.usage, "the key file \(file) is empty or unreadable")
        }
        return key
    }
    if let text = ProcessInfo.processInfo.environment["MUSICGPT_API_KEY"], let key = APIKey(text) {
        return key
    }
    throw CommandFailure(
        .usage,
        """
        no API key: set MUSICGPT_API_KEY (export MUSICGPT_API_KEY=...) or pass --api-key-file PATH; \
        or try everything against a local sandbox with --sandbox
        """)
}

/// An error that already knows its message and exit code.
/// A command's own reason to stop, in words, and how it ends.
struct CommandFailure: CommandError {
    var exitStatus: ExitStatus
    var description: String
    init(_ exitStatus: ExitStatus, _ description: String) {
        self.exitStatus = exitStatus
        self.description = description
    }
}

extension Rate: ExpressibleByArgument {
    public init?(argument: String) { self.init(argument) }
}
