import Foundation
import Logging

/// How a batch is sent.
public struct SendSettings: Sendable {
    public var dispatch = DispatchSettings()
    /// How long to wait for an answer before a request counts as in doubt.
    public var requestTimeout: Duration = .seconds(60)
    /// Follow the tasks to their end while sending (`--wait`).
    public var follow: FollowSettings?

    public init() {}
}

/// How a batch's tasks are followed to their end.
public struct FollowSettings: Sendable {
    public var tracking = TrackSettings()
    /// Where to save the audio, if anywhere.
    public var download: DownloadSettings?

    public init() {}
}

/// What a run did, and how it ended.
public struct RunReport: Sendable {
    public var batch: String
    /// What sending did, when the run sent.
    public var sent: DispatchResult?
    /// What following the tasks did, when the run followed them.
    public var tracked: TrackCounters?
    /// The batch in the ledger at the end.
    public var status: BatchStatus
    /// How sending ended, when the run sent.
    public var sendOutcome: RunOutcome?
    /// How the run as a whole ended.
    public var outcome: RunOutcome
    /// Takes a check found wrong that the run sent again (`--reroll-flagged`).
    public var rerolled = 0
}

/// Where a whole run stands: sending, generating, saving.
public struct RunProgress: Sendable {
    /// While the run sends.
    public var sending: DispatchCounters?
    /// While it follows the tasks.
    public var following: TrackCounters?
    public var saved = 0
    public var saveFailed = 0
    /// When the service stopped answering, while it is out.
    public var outageSince: Date?
    /// When the run will likely end (`TimeLeft`); nil when no time can be guessed (other
    /// runners share the queue at a pace this one does not know).
    public var likelyEnd: Date?
}

/// Shows a run's progress: called once, with a way to read where the run stands, and
/// cancelled when the run ends.
public typealias ProgressDisplay = @Sendable (_ progress: @escaping @Sendable () -> RunProgress) async -> Void

/// What a retry would send again.
public struct RetryPlan: Sendable {
    public var jobs: [RetryCandidate]
    /// Credits the new takes may cost: each job's earlier estimate, else the batch's
    /// largest; nil while the batch has no estimate at all.
    public var forecast: Double?
    /// Jobs the service refused as invalid (400, 422): the same request will likely fail again.
    public var likelyToFailAgain: [RetryCandidate]
    /// Rows asked for that name no finished job of the batch.
    public var unknownRows: [String]
    /// Edited prompts for the new takes of these jobs; the others are sent with their own.
    public var prompts: [Int64: String] = [:]
}

extension RetryCandidate {
    /// Refused for what the request said (400, 422): sending it again will likely fail again.
    public var refusedAsInvalid: Bool { state == .failed && [400, 422].contains(lastHTTPStatus ?? 0) }

    /// Its latest take is a sound a check found one of `kinds` in (any, when `kinds` is empty).
    public func isFlagged(_ kinds: Set<Finding>) -> Bool {
        state == .completed && !findings.isEmpty && (kinds.isEmpty || !findings.isDisjoint(with: kinds))
    }
}

/// Where the API key comes from, asked only when a run goes to the API.
public typealias KeySource = @Sendable () throws -> APIKey

/// Starts the built-in sandbox for a run. The command line hands one in, so that the core
/// holds no server code.
public protocol SandboxLauncher: Sendable {
    /// Runs `body` with a sandbox on loopback at `port` (0: any free one) whose tasks are
    /// kept in `stateFile`; `body` gets its base URL, its port and a key it takes.
    func withSandbox<T: Sendable>(
        port: Int, stateFile: String, _ body: (_ baseURL: String, _ port: Int, _ key: APIKey) async throws -> T
    ) async throws -> T
}

/// Why a run would not start.
public enum BatchRunError: Error, Equatable, CustomStringConvertible {
    /// The batch's tasks are at one service and the run was pointed at another.
    case boundElsewhere(batch: String, boundTo: ServiceAddress, asked: ServiceAddress)
    /// The batch was run against the built-in sandbox, and this command cannot start one.
    case noSandbox(batch: String)

    public var description: String {
        switch self {
        case let .boundElsewhere(batch, bound, asked):
            "batch \"\(batch)\" has tasks at \(bound); they can only be tracked, and must only be resent, "
                + "there, not at \(asked). Leave out --base-url and --sandbox to carry on where the batch runs, "
                + "or feed the rows into a new batch with --batch"
        case let .noSandbox(batch):
            "batch \"\(batch)\" runs against the built-in sandbox, which this command cannot start"
        }
    }
}
