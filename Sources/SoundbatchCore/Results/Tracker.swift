import Foundation
import HeapModule
import Logging
import Synchronization

/// Anything that can look up a task: the MusicGPT client.
public protocol StatusChecker: Sendable {
    func status(taskID: String) async -> StatusOutcome
}

extension MusicGPTClient: StatusChecker {}

public struct TrackSettings: Sendable {
    public var pollRate = Rate(count: 200, per: .seconds(60))
    public var schedule = PollSchedule()
    /// A task still running this long after submission is left for a later `track`.
    public var giveUpAfter: Duration = .seconds(30 * 60)
    /// One look at each unfinished job, then stop.
    public var once = false
    /// A task whose looks answer 404 this many times in a row, over at least `missingAfter`,
    /// is one the service does not know: its job becomes `remote_missing`.
    public var missingAfterLooks = 3
    public var missingAfter: Duration = .seconds(60)

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

/// Follows a batch's submitted tasks to their end through the status endpoint, records
/// what the service says, and hands completed jobs to the downloader.
public final class Tracker<C: Clock>: Sendable where C.Duration == Duration {
    private let ledger: any StatusLedger
    private let checker: any StatusChecker
    private let settings: TrackSettings
    private let clock: C
    private let wallClock: @Sendable () -> Date
    private let limiter: RateLimiter<C>
    /// Shared with the dispatcher of the same run: an outage holds every request.
    private let health: ServiceHealth<C>
    private let stop: StopSignal
    private let logger: Logger
    private let counters = Mutex(TrackCounters())

    public init(
        ledger: any StatusLedger, checker: any StatusChecker, settings: TrackSettings, clock: C,
        wallClock: @escaping @Sendable () -> Date = { Date() }, stop: StopSignal, logger: Logger,
        health: ServiceHealth<C>? = nil
    ) {
        self.health =
            health
            ?? ServiceHealth(
                limit: DispatchSettings.defaultOutageLimit, clock: clock, wallClock: wallClock, logger: logger)
        self.ledger = ledger
        self.checker = checker
        self.settings = settings
        self.clock = clock
        self.wallClock = wallClock
        self.stop = stop
        self.logger = logger
        limiter = RateLimiter(rate: settings.pollRate, clock: clock)
    }

    public var progress: TrackCounters { counters.withLock { $0 } }

    /// What wakes the tracker when no look is due.
    private enum Wake: Sendable {
        case arrived(TrackedJob)
        case arrivalsEnded
        case lookDue
        case stopped
    }

    /// Tracks every submitted job of the batch, and the jobs `incoming` brings while it runs
    /// (`run --wait`), until each has finished or been given up on and `incoming` has
    /// ended; `completed` is called with each job that completes (for its download).
    public func run(
        batchID: Int64, incoming: AsyncStream<TrackedJob>? = nil,
        completed: @escaping @Sendable (Int64) async -> Void = { _ in }
    ) async throws -> TrackCounters {
        var queue = Heap<Due<C.Instant>>()
        for job in try await ledger.submittedJobs(batchID: batchID) { schedule(job, into: &queue) }

        let (wakes, wake) = AsyncStream.makeStream(of: Wake.self)
        try await withThrowingDiscardingTaskGroup { group in
            var arriving = incoming != nil
            if let incoming {
                group.addTask {
                    for await job in incoming { wake.yield(.arrived(job)) }
                    wake.yield(.arrivalsEnded)
                }
            }
            group.addTask {
                await self.stop.wait()
                wake.yield(.stopped)
            }
            /// The earliest time a wake-up is already set for.
            var alarm: C.Instant?
            var wakeUps = wakes.makeAsyncIterator()
            while !stop.isStopped {
                if let next = queue.min, next.due <= clock.now || settings.once {
                    queue.removeMin()
                    guard try await stop.unlessStopped({ try await self.limiter.acquire() }) else { break }
                    do {
                        try await health.admit()
                    } catch let down as ServiceDown {
                        stop.stop(.serviceDown(since: down.since, reason: down.reason))
                        queue.insert(next)  // still running, as far as anyone knows
                        break
                    }
                    try await look(at: next, into: &queue, completed: completed)
                    continue
                }
                guard let next = queue.min?.due else {
                    if !arriving { break }  // nothing left, and nothing more coming
                    guard let woken = await wakeUps.next() else { break }
                    take(woken, into: &queue, arriving: &arriving)
                    continue
                }
                // Sleep until the next look is due, unless a wake-up is set for then already.
                if alarm.map({ next < $0 }) ?? true {
                    alarm = next
                    group.addTask {
                        try? await self.clock.sleep(until: next, tolerance: nil)
                        wake.yield(.lookDue)
                    }
                }
                guard let woken = await wakeUps.next() else { break }
                if let set = alarm, clock.now >= set { alarm = nil }
                take(woken, into: &queue, arriving: &arriving)
            }
            group.cancelAll()
        }
        let left = queue.count
        counters.withLock { $0.stillRunning = left }
        return progress
    }

    private func take(_ wake: Wake, into queue: inout Heap<Due<C.Instant>>, arriving: inout Bool) {
        switch wake {
        case let .arrived(job): schedule(job, into: &queue)
        case .arrivalsEnded: arriving = false
        case .lookDue, .stopped: break
        }
    }

    private func schedule(_ job: TrackedJob, into queue: inout Heap<Due<C.Instant>>) {
        counters.withLock { $0.followed += 1 }
        // The first look is due at submission + eta, in wall-clock time; translate to the clock.
        let firstLook = job.submittedAt.addingTimeInterval(settings.schedule.firstLook(eta: job.eta).seconds)
        let wait = max(0, firstLook.timeIntervalSince(wallClock()))
        queue.insert(Due(due: clock.now.advanced(by: .milliseconds(Int64(wait * 1000))), job: job, looks: 0))
    }

    private func look(
        at entry: Due<C.Instant>, into queue: inout Heap<Due<C.Instant>>,
        completed: @escaping @Sendable (Int64) async -> Void
    ) async throws {
        let job = entry.job
        let started = wallClock()
        let startInstant = clock.now
        let outcome = await checker.status(taskID: job.taskID)
        let latency = startInstant.duration(to: clock.now)
        await health.record(outcome.signal, jobID: job.id)
        counters.withLock { $0.looks += 1 }
        var reschedule = true
        /// The 404s in a row so far, and when the first came.
        var notFound: (since: Date, count: Int)?
        switch outcome {
        case let .found(remote):
            try await ledger.recordAttempt(
                jobID: job.id, kind: .poll, outcome: outcome.attemptOutcome, startedAt: started, latency: latency,
                httpStatus: 200, error: nil)
            let (state, _) = try await ledger.recordStatus(jobID: job.id, remote, now: wallClock())
            switch state {
            case .completed:
                let took = wallClock().timeIntervalSince(job.submittedAt)
                counters.withLock {
                    $0.completed += 1
                    $0.generationSeconds += took
                }
                reschedule = false
                await completed(job.id)
            case .generationFailed:
                counters.withLock { $0.generationFailed += 1 }
                logger.warning(
                    "\(job.row): the service could not generate it: \(remote.statusMessage ?? remote.status)")
                reschedule = false
            default:
                break
            }
        case let .retryable(status, error, retryAfter):
            try await ledger.recordAttempt(
                jobID: job.id, kind: .poll, outcome: outcome.attemptOutcome, startedAt: started, latency: latency,
                httpStatus: status, error: error)
            if status == 404 {
                notFound = entry.notFound.map { ($0.since, $0.count + 1) } ?? (started, 1)
                if let notFound, notFound.count >= settings.missingAfterLooks,
                    wallClock().timeIntervalSince(notFound.since) >= settings.missingAfter.seconds
                {
                    let seconds = Int(wallClock().timeIntervalSince(notFound.since))
                    let reason =
                        "the service does not know task \(job.taskID): its status answered 404 "
                        + "\(notFound.count) times over \(seconds) s"
                    if try await ledger.recordMissing(jobID: job.id, reason: reason, now: wallClock()) {
                        counters.withLock { $0.remoteMissing += 1 }
                        logger.warning("\(job.row): \(reason)")
                    }
                    return
                }
            } else if status == 429 {
                counters.withLock { $0.rateLimited += 1 }
                let pause = retryAfter ?? settings.schedule.firstGap
                if await limiter.pause(for: pause) {
                    logger.notice(
                        """
                        the status endpoint is rate limiting (HTTP 429); \
                        pausing looks for \(Dispatcher<C>.format(pause))
                        """
                    )
                }
            } else {
                logger.debug("\(job.row): status look failed: \(error)")
            }
        case let .keyRejected(status, error):
            try await ledger.recordAttempt(
                jobID: job.id, kind: .poll, outcome: outcome.attemptOutcome, startedAt: started, latency: latency,
                httpStatus: status, error: error)
            stop.stop(.keyRejected(error))
            return
        }
        guard reschedule, !settings.once else { return }
        let age = wallClock().timeIntervalSince(job.submittedAt)
        if age >= settings.giveUpAfter.seconds {
            counters.withLock { $0.timedOut += 1 }
            logger.warning(
                """
                \(job.row): task \(job.taskID) still not finished after \(Int(age / 60)) minutes; \
                giving up for now (run `soundbatch track` later)
                """
            )
            return
        }
        let looks = entry.looks + 1
        queue.insert(
            Due(
                due: clock.now.advanced(by: settings.schedule.gap(afterLook: looks)), job: job, looks: looks,
                notFound: notFound))
    }
}

/// A job waiting for its next look, ordered by when it is due.
struct Due<Instant: Comparable>: Comparable {
    var due: Instant
    var job: TrackedJob
    var looks: Int
    /// The 404s in a row so far, and when the first came.
    var notFound: (since: Date, count: Int)? = nil

    static func < (a: Due, b: Due) -> Bool { a.due < b.due }
    static func == (a: Due, b: Due) -> Bool { a.due == b.due && a.job == b.job }
}
