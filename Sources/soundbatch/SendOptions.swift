import ArgumentParser
import Foundation
import Logging
import SoundbatchCore
import SoundbatchSandbox

/// Options shared by the commands that send jobs: `run` and `resume`.
struct SendOptions: ParsableArguments {
    @Option(
        help: ArgumentHelp("Submissions allowed, as N/min or N/s (the documented limit is 60/min).", valueName: "rate"))
    var rate: Rate = Rate(count: 60, per: .seconds(60))

    @Option(help: "How many submissions may go at once after a quiet spell (1 never trips the service's window).")
    var burst = 1

    @Option(help: "Requests in flight at most.")
    var concurrency = 8

    @Option(help: "Attempts per job for retryable errors (429, 5xx, 408, no connection) before it is failed.")
    var maxAttempts = 5

    @Option(help: ArgumentHelp("Stop before the batch's estimated credits could pass this.", valueName: "credits"))
    var maxCredits: Double?

    @Option(
        help: ArgumentHelp("Seconds to wait for an answer before a request counts as ambiguous.", valueName: "seconds"))
    var timeout: Double = 60

    @Option(help: ArgumentHelp("The webhook for jobs whose row has no webhook_url.", valueName: "url"))
    var webhookURL: String?

    @OptionGroup var service: ServiceOptions

    @Flag(help: "Send to a sandbox started in this process on loopback instead of the service; no key needed.")
    var sandbox = false

    func validate() throws {
        guard burst >= 1 else { throw ValidationError("--burst must be at least 1.") }
        guard (1...256).contains(concurrency) else { throw ValidationError("--concurrency must be from 1 to 256.") }
        guard maxAttempts >= 1 else { throw ValidationError("--max-attempts must be at least 1.") }
        guard timeout > 0 && timeout <= 3600 else { throw ValidationError("--timeout must be from 0 to 3600 seconds.") }
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

    var settings: SendSettings {
        var settings = SendSettings()
        settings.dispatch.rate = rate
        settings.dispatch.burst = burst
        settings.dispatch.concurrency = concurrency
        settings.dispatch.maxAttempts = maxAttempts
        settings.dispatch.maxCredits = maxCredits
        settings.dispatch.webhookURL = webhookURL
        settings.requestTimeout = .milliseconds(Int64(timeout * 1000))
        return settings
    }

    /// Sends the batch's pending jobs, to the service or to an in-process sandbox, and
    /// prints the summary. Returns the exit code.
    func send(
        batch: String, ledger: any LedgerStore, log: LogOptions, resendAmbiguous: Bool = false,
        wait: TrackOptions? = nil
    ) async throws -> ExitCode {
        let logger = Logger(label: "soundbatch")
        let service: any ServiceEndpoint =
            sandbox
            ? InProcessSandbox(logger: logger)
            : RemoteService(baseURL: self.service.resolvedBaseURL, key: try self.service.apiKey(logger: logger))
        var settings = self.settings
        settings.resendAmbiguous = resendAmbiguous
        settings.follow = wait?.followSettings(once: false)

        let stop = StopSignal()
        let signals = SignalWatcher(stop: stop)
        defer { signals.cancel() }
        let report = try await BatchRun(ledger: ledger, batch: batch, stop: stop, logger: logger)
            .send(settings, to: service, progress: log.quiet ? nil : ProgressReporter.display(rate: rate))
        return Summary.print(report, quiet: log.quiet)
    }
}

/// Where the API is and the key for it: `run`, `resume` and `track`.
struct ServiceOptions: ParsableArguments {
    @Option(
        help: ArgumentHelp(
            "The API's base URL (default: $MUSICGPT_BASE_URL, else \(MusicGPTClient.defaultBaseURL)).", valueName: "url"
        ))
    var baseURL: String?

    @Option(help: ArgumentHelp("A file holding the API key (default: $MUSICGPT_API_KEY).", valueName: "path"))
    var apiKeyFile: String?

    var resolvedBaseURL: String {
        baseURL ?? ProcessInfo.processInfo.environment["MUSICGPT_BASE_URL"] ?? MusicGPTClient.defaultBaseURL
    }

    func apiKey(logger: Logger) throws -> APIKey {
        try resolveAPIKey(file: apiKeyFile, logger: logger)
    }
}

/// The key from the key file or $MUSICGPT_API_KEY; exits 64 with how to set one.
func resolveAPIKey(file: String?, logger: Logger) throws -> APIKey {
    if let file {
        var info = stat()
        guard stat(file, &info) == 0 else {
            throw CommandFailure(Exit.usage, "cannot read the key file \(file): \(String(cString: strerror(errno)))")
        }
        guard (info.st_mode & S_IFMT) == S_IFREG else {
            throw CommandFailure(Exit.usage, "the key file \(file) is not a regular file")
        }
        if info.st_mode & 0o077 != 0 {
            logger.warning("the key file \(file) can be read by other users; chmod 600 it")
        }
        guard let data = FileManager.default.contents(atPath: file),
            let key = APIKey(String(decoding: data, as: UTF8.self))
        else {
            throw CommandFailure(Exit.usage, "the key file \(file) is empty or unreadable")
        }
        return key
    }
    if let text = ProcessInfo.processInfo.environment["MUSICGPT_API_KEY"], let key = APIKey(text) {
        return key
    }
    throw CommandFailure(
        Exit.usage,
        """
        no API key: set MUSICGPT_API_KEY (export MUSICGPT_API_KEY=...) or pass --api-key-file PATH; \
        or try everything against a local sandbox with --sandbox
        """)
}

/// An error that already knows its message and exit code.
struct CommandFailure: Error {
    var code: ExitCode
    var message: String
    init(_ code: ExitCode, _ message: String) {
        self.code = code
        self.message = message
    }
}

extension Rate: ExpressibleByArgument {
    public init?(argument: String) { self.init(argument) }
}
