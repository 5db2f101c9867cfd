import Foundation
import SoundbatchCore

/// How the sandbox behaves. The defaults match the documented service: 60 submissions
/// and 200 status looks a minute per key.
public struct SandboxConfiguration: Sendable {
    public var host = "127.0.0.1"
    /// 0 picks a free port.
    public var port = 0
    /// Submissions allowed per minute; nil for no limit.
    public var submitsPerMinute: Double? = 60
    /// Status looks allowed per minute; nil for no limit.
    public var looksPerMinute: Double? = 200
    /// How 429 answers give Retry-After.
    public var retryAfter = RetryAfterStyle.seconds
    /// How the limits are enforced.
    public var limiter = LimiterShape.bucket
    /// The service's own time on each request, plus up to `latencyJitter` more: spent after
    /// its rate limit has counted the request, as a real service's processing is.
    public var latency: Duration = .zero
    public var latencyJitter: Duration = .zero
    /// The network's delay before a request reaches the service and its rate limit: up to
    /// this much, at random, so that arrival times spread as they do over a long link.
    public var networkJitter: Duration = .zero
    /// The share of submissions that fail, spread over the kinds in `failureKinds`.
    public var failureRate = 0.0
    public var failureKinds = FailureKind.allCases
    /// Credits on the account; nil for unlimited. Below a task's estimate: 402.
    public var credits: Double?
    /// The keys accepted (403 for another); none: any key is.
    public var apiKeys: [String] = []
    /// Each key has its own limits, as the API's are (per key); else all keys share one.
    public var perKey = false
    public var seed: UInt64 = 1
    /// A file the sandbox keeps its tasks in, one JSON line each, so that a sandbox started
    /// later with the same file answers for them (a batch run with `--sandbox` can be
    /// resumed and tracked by a later command).
    public var stateFile: String?
    /// Submissions whose prompt contains this always answer 500: one job's own trouble
    /// while the service answers the rest.
    public var failingPrompt: String?
    /// An outage on purpose: up for `after`, then nothing listens for `down` (connections
    /// are refused), then it listens again but answers 503 pages for `errorPages`.
    public var outage: Outage?

    public struct Outage: Sendable {
        public var after: Duration
        public var down: Duration
        public var errorPages: Duration

        public init(after: Duration, down: Duration, errorPages: Duration) {
            self.after = after
            self.down = down
            self.errorPages = errorPages
        }
    }
    /// How long generation takes: lognormal around this median, with `generationSpread` the
    /// standard deviation of its logarithm (0.3 puts nine tasks in ten between 0.6 and 1.6
    /// times the median), so tasks finish out of the order they came in.
    public var generationTime: Duration = .seconds(25)
    public var generationSpread = 0.3
    /// How finished tasks' audio is sent: WAV, or MP3 as the real service's `audio_url` is.
    public var audioFormat = AudioFormat.wav

    public enum AudioFormat: String, Sendable, CaseIterable {
        case wav, mp3
    }
    /// What eta the submit answer carries.
    public var eta = ETAStyle.unknown
    /// The share of tasks whose generation fails.
    public var generationFailureRate = 0.05
    /// The share of tasks whose sound comes out wrong, spread over the defects of
    /// `defectKinds` that can befall it (`short` needs a length asked, `duplicate` an
    /// earlier task of the prompt).
    public var defectShare = 0.0
    public var defectKinds = Defect.allCases

    /// What is wrong with a sound: what `soundbatch check` finds, by the same names.
    public enum Defect: String, Sendable, Codable, CaseIterable {
        /// Digital silence.
        case silent
        /// Driven 18 dB past full scale and cut there.
        case clipped
        /// A fifth of the length asked.
        case short
        /// Off zero by -20 dBFS.
        case dcOffset = "dc_offset"
        /// The very sound of an earlier task of the same prompt (paid for twice).
        case duplicate
    }

    public enum ETAStyle: String, Sendable, CaseIterable {
        /// -1, as the documented example: the client must find out.
        case unknown
        /// The seconds the task will take, rounded up.
        case `true`
        /// Within 30% of the truth either way.
        case rough
    }

    public enum RetryAfterStyle: String, Sendable, CaseIterable {
        case seconds
        case httpDate = "http-date"
        case none
    }

    public enum FailureKind: String, Sendable, CaseIterable {
        /// 500 with a JSON error.
        case serverError = "500"
        /// 502 with an HTML page, as a proxy would answer.
        case badGateway = "502"
        /// 200 with success: false.
        case successFalse = "success-false"
        /// The connection is dropped before the request is taken: no task.
        case resetBefore = "reset-before"
        /// The task is created and charged, then the connection is dropped.
        case resetAfter = "reset-after"
    }

    public init() {}
}
