import Foundation

/// Anything that can look up a task: the MusicGPT client.
public protocol StatusChecker: Sendable {
    func status(taskID: String) async -> StatusOutcome
}

extension MusicGPTClient: StatusChecker {}

public struct TrackSettings: Sendable {
    public var lookRate = Rate(count: 200, per: .seconds(60))
    public var schedule = LookSchedule()
    /// Looks under way at once, at most: enough that latency never holds the look rate back.
    public var concurrentLooks = 16
    /// A task still running this long after submission is left for a later `track`.
    public var giveUpAfter: Duration = .seconds(30 * 60)
    /// One look at each unfinished job, then stop.
    public var once = false
    /// A task whose looks answer 404 this many times in a row, over at least `missingAfter`,
    /// is one the service does not know: its job becomes `remote_missing`.
    public var missingAfterLooks = 3
    public var missingAfter: Duration = .seconds(60)
    /// On a ledger several runners share: how often to ask it for tasks no live runner
    /// follows (their runner died), and take them on.
    public var takeOnEvery: Duration?

    public init() {}
}

/// Counts for the summary.
public struct TrackCounters: Sendable, Equatable {
    public var completed = 0
    public var generationFailed = 0
    /// Tasks the service does not know (`remote_missing`).
    public var remoteMissing = 0
    /// Still running when tracking gave up on them (resumable).
    public var timedOut = 0
    public var stillRunning = 0
    public var looks = 0
    public var rateLimited = 0
    /// Tasks taken in to follow, and the seconds the completed ones took from submission.
    public var followed = 0
    public var generationSeconds = 0.0
    public var downloaded = 0
    public var downloadsSkipped = 0
    public var downloadsFailed = 0
}

/// A task the tracker follows, and what its looks have found so far.
struct Followed: Sendable {
    var job: TrackedJob
    var looks = 0
    /// Its age at the last look that found it running.
    var runningAt: Double?
    /// The 404s in a row so far, and when the first came.
    var notFound: NotFound?
}

struct NotFound: Sendable {
    var since: Date
    var count: Int
}

/// A task waiting for its next look, ordered by when it is due.
struct Due<Instant: Comparable>: Comparable {
    var due: Instant
    var entry: Followed

    static func < (a: Due, b: Due) -> Bool { a.due < b.due }
    static func == (a: Due, b: Due) -> Bool { a.due == b.due && a.entry.job == b.entry.job }
}
