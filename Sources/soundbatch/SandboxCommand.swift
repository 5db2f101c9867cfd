import ArgumentParser
import Foundation
import Logging
import SoundbatchCore
import SoundbatchSandbox

struct SandboxCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sandbox",
        abstract: "Run a local stand-in for the MusicGPT API in the foreground, for trying soundbatch out.",
        discussion: """
            Point soundbatch at it with --base-url http://127.0.0.1:PORT and any key \
            (MUSICGPT_API_KEY=anything), or one given with --api-key. \
            GET /_sandbox/tasks lists every task it accepted; GET /_sandbox/keys what each key \
            asked and how often it was refused (429).

            Examples:
              soundbatch sandbox --port 8080
              soundbatch sandbox --limiter strict --retry-after none --latency 300ms --network-jitter 200ms
              soundbatch sandbox --generation-time 5s --eta true --failure-rate 0.05
              soundbatch sandbox --api-key key-a,key-b --per-key
            """)

    @Option(help: "The address to listen on (loopback by default).")
    var host = "127.0.0.1"

    @Option(help: "The port to listen on (0 picks a free one).")
    var port = 8080

    @Option(help: ArgumentHelp("Submissions allowed, as N/min or N/s, or 'none'.", valueName: "rate"))
    var rate = "60/min"

    @Option(
        help: ArgumentHelp(
            "How the limits are enforced: bucket (a request may come one interval early), window (at most the "
                + "count in any 60 s) or strict (never sooner than one interval after the last).",
            valueName: "shape"))
    var limiter = "bucket"

    @Option(help: ArgumentHelp("Status looks allowed, as N/min or N/s, or 'none'.", valueName: "rate"))
    var lookRate = "200/min"

    @Option(
        help: ArgumentHelp(
            "The service's time on each request, such as 300ms, after its limits have counted it.",
            valueName: "duration"))
    var latency: DurationArgument = DurationArgument(.zero)

    @Option(
        help: ArgumentHelp("Up to this much more service time, at random, for each request.", valueName: "duration"))
    var latencyJitter: DurationArgument = DurationArgument(.zero)

    @Option(
        help: ArgumentHelp(
            "Up to this much network delay, at random, before a request reaches the limits: arrival times "
                + "spread as over a long link.", valueName: "duration"))
    var networkJitter: DurationArgument = DurationArgument(.zero)

    @Option(
        help: ArgumentHelp(
            "How long a generation takes, the median: each task's time is spread around it (lognormal), so "
                + "tasks finish out of order.", valueName: "duration"))
    var generationTime = DurationArgument(.seconds(25))

    @Option(
        help: ArgumentHelp(
            "How widely generation times spread: the standard deviation of their logarithm (0: all alike).",
            valueName: "sigma"))
    var generationSpread = 0.3

    @Option(
        help: ArgumentHelp(
            "The eta submit answers carry: unknown (-1, as the documented example), true, or rough (within 30%).",
            valueName: "kind"))
    var eta = "unknown"

    @Option(help: "The share of tasks whose generation fails (status FAILED), 0 to 1.")
    var generationFailureRate = 0.05

    @Option(
        help: ArgumentHelp(
            "The share of sounds that come out wrong, 0 to 1: silent, clipped, short, with a DC offset, or a copy of "
                + "an earlier take of the prompt (what `soundbatch check` finds).",
            valueName: "share"))
    var defects = 0.0

    @Option(
        help: ArgumentHelp(
            "Which defects, comma-separated: silent, clipped, short, dc_offset, duplicate (default: all).",
            valueName: "kinds"))
    var defectKinds: String?

    @Option(help: "How finished sounds are sent: wav, or mp3 as the real service's audio_url is.")
    var audioFormat: SandboxConfiguration.AudioFormat = .wav

    @Option(
        help: "The share of submissions that fail, 0 to 1 (500s, 502 HTML pages, success:false, connection resets).")
    var failureRate = 0.0

    @Option(
        help: ArgumentHelp(
            "Which failures to inject, comma-separated: \(SandboxConfiguration.FailureKind.allCases.map(\.rawValue).joined(separator: ",")).",
            valueName: "kinds"))
    var failures: String?

    @Option(
        help: ArgumentHelp(
            "Go down on purpose this long after starting, such as 30s: refuse connections for --down-for, "
                + "then answer 503 pages for --error-pages-for.", valueName: "duration"))
    var outageAfter: DurationArgument?

    @Option(help: ArgumentHelp("How long the outage refuses connections.", valueName: "duration"))
    var downFor = DurationArgument(.seconds(60))

    @Option(help: ArgumentHelp("How long after that it answers 503 pages.", valueName: "duration"))
    var errorPagesFor = DurationArgument(.seconds(30))

    @Option(help: "Credits on the account; once spent, submissions answer 402.")
    var credits: Double?

    @Option(
        help: ArgumentHelp(
            "A key accepted (403 for any other); give several, or a comma-separated list. By default any key is.",
            valueName: "key"))
    var apiKey: [String] = []

    @Flag(help: "Give each key its own limits, as the API does; by default all keys share them.")
    var perKey = false

    @Option(help: "How 429 answers give Retry-After: seconds, http-date or none.")
    var retryAfter = "seconds"

    @Option(help: "Seed for the injected failures and task timings, to replay a run.")
    var seed: UInt64 = 1

    func validate() throws {
        _ = try configuration()
    }

    func configuration() throws -> SandboxConfiguration {
        guard (0...65535).contains(port) else {
            throw ValidationError("--port must be 0 to 65535 (0 picks a free one).")
        }
        var configuration = SandboxConfiguration()
        configuration.host = host
        configuration.port = port
        configuration.submitsPerMinute = try Self.perMinute(rate, option: "--rate")
        configuration.looksPerMinute = try Self.perMinute(lookRate, option: "--look-rate")
        configuration.generationTime = generationTime.duration
        guard generationSpread >= 0, generationSpread <= 3 else {
            throw ValidationError("--generation-spread must be from 0 to 3 (0.3 is typical).")
        }
        configuration.generationSpread = generationSpread
        guard let eta = SandboxConfiguration.ETAStyle(rawValue: eta) else {
            throw ValidationError("--eta must be unknown, true or rough.")
        }
        configuration.eta = eta
        guard (0...1).contains(generationFailureRate) else {
            throw ValidationError("--generation-failure-rate must be from 0 to 1.")
        }
        configuration.generationFailureRate = generationFailureRate
        configuration.audioFormat = audioFormat
        guard (0...1).contains(defects) else { throw ValidationError("--defects must be from 0 to 1.") }
        configuration.defectShare = defects
        if let defectKinds { configuration.defectKinds = try Self.kinds(defectKinds, option: "--defect-kinds") }
        configuration.latency = latency.duration
        configuration.latencyJitter = latencyJitter.duration
        configuration.networkJitter = networkJitter.duration
        guard (0...1).contains(failureRate) else { throw ValidationError("--failure-rate must be from 0 to 1.") }
        configuration.failureRate = failureRate
        configuration.outage = outageAfter.map {
            .init(after: $0.duration, down: downFor.duration, errorPages: errorPagesFor.duration)
        }
        if let failures { configuration.failureKinds = try Self.kinds(failures, option: "--failures") }
        configuration.credits = credits
        configuration.apiKeys = apiKey.flatMap { $0.split(separator: ",").map { String($0).trimmed } }
        configuration.perKey = perKey
        guard let style = SandboxConfiguration.RetryAfterStyle(rawValue: retryAfter) else {
            throw ValidationError("--retry-after must be seconds, http-date or none.")
        }
        configuration.retryAfter = style
        guard let shape = LimiterShape(rawValue: limiter) else {
            throw ValidationError("--limiter must be bucket, window or strict.")
        }
        configuration.limiter = shape
        configuration.seed = seed
        return configuration
    }

    /// A comma-separated list of kinds (`--failures 500,502`), each one known.
    static func kinds<Kind: RawRepresentable & CaseIterable>(_ text: String, option: String) throws -> [Kind]
    where Kind.RawValue == String {
        try text.split(separator: ",").map { name in
            guard let kind = Kind(rawValue: String(name).trimmed) else {
                throw ValidationError(
                    "\(option): unknown kind \"\(name)\"; use \(Kind.allCases.map(\.rawValue).joined(separator: ", "))."
                )
            }
            return kind
        }
    }

    static func perMinute(_ text: String, option: String) throws -> Double? {
        if text.lowercased() == "none" { return nil }
        guard let rate = Rate(text) else {
            throw ValidationError("\(option) must look like 60/min or 2/s, or be none.")
        }
        return rate.perMinute
    }

    func run() async throws {
        LoggingSystem.bootstrap(StreamLogHandler.standardError)
        let sandbox = Sandbox(configuration: try configuration())
        try await reportingErrors {
            try await servingUntilInterrupted { announceAndWait in
                try await sandbox.serve { url in
                    await announceAndWait(
                        "sandbox listening at \(url) (Ctrl-C stops it)\n"
                            + "try: MUSICGPT_API_KEY=test soundbatch run jobs.example.csv --base-url \(url)")
                }
            }
        }
    }
}

/// A duration written as 300ms, 2s, 1.5s, 30m or 2h.

extension SandboxConfiguration.AudioFormat: ExpressibleByArgument {}
