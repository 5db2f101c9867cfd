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

    public init() {}
}

/// Counts for the summary.
public struct TrackCounters: Sendable, Equatable {
    public var completed = 0
    public var generationFailed = 0
    /// Still running when tracking gave up on them (resumable).
    public var timedOut = 0
    public var stillRunning = 0
    public var looks = 0
    public var rateLimited = 0
    public var downloaded = 0
    public var downloadsSkipped = 0
    public var downloadsFailed = 0
}

/// Follows a batch's submitted tasks to their end through the status endpoint, records
/// what the service says, and hands completed jobs to the downloader.
public final class Tracker<C: Clock>: Sendable where C.Duration == Duration {
    private let ledger: Ledger
    private let checker: any StatusChecker
    private let settings: TrackSettings
    private let clock: C
    private let wallClock: @Sendable () -> Date
    private let limiter: RateLimiter<C>
    private let stop: StopSignal
    private let logger: Logger
    private let counters = Mutex(TrackCounters())
    /// Jobs submitted while tracking runs (`run --wait`), waiting to be scheduled.
    private let inbox = Mutex<(jobs: [TrackedJob], closed: Bool)>(([], true))

    public init(ledger: Ledger, checker: any StatusChecker, settings: TrackSettings, clock: C,
                wallClock: @escaping @Sendable () -> Date = { Date() }, stop: StopSignal, logger: Logger) {
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

    /// Keeps the tracker going until `finishIncoming` is called: jobs given to `add` are
    /// tracked too. Call before `run`.
    public func expectIncoming() { inbox.withLock { $0.closed = false } }

    /// A job just submitted, to track as well.
    public func add(_ job: TrackedJob) { inbox.withLock { $0.jobs.append(job) } }

    /// No more jobs will be added.
    public func finishIncoming() { inbox.withLock { $0.closed = true } }

    /// Tracks every submitted job of the batch until each has finished or been given up
    /// on; `completed` is called with each job that completes (for its download).
    public func run(batchID: Int64, completed: @escaping @Sendable (Int64) async -> Void = { _ in }) async throws -> TrackCounters {
        var queue = Heap<Due<C.Instant>>()
        for job in try await ledger.submittedJobs(batchID: batchID) { schedule(job, into: &queue) }

        while !stop.isStopped {
            let arrivals = inbox.withLock { state -> (jobs: [TrackedJob], closed: Bool) in
                defer { state.jobs = [] }
                return state
            }
            for job in arrivals.jobs { schedule(job, into: &queue) }
            guard let next = queue.min else {
                if arrivals.closed { break }
                try await idle(until: clock.now.advanced(by: .seconds(1)))
                continue
            }
            let now = clock.now
            if next.due > now && !settings.once {
                // Wake at the due time, or within a second to take in new arrivals.
                try await idle(until: min(next.due, now.advanced(by: .seconds(1))))
                continue
            }
            queue.removeMin()
            guard try await stop.unlessStopped({ try await self.limiter.acquire() }) else { break }
            try await look(at: next, into: &queue, completed: completed)
        }
        let left = queue.count
        counters.withLock { $0.stillRunning = left }
        return progress
    }

    private func idle(until instant: C.Instant) async throws {
        _ = try await stop.unlessStopped { try await self.clock.sleep(until: instant, tolerance: nil) }
    }

    private func schedule(_ job: TrackedJob, into queue: inout Heap<Due<C.Instant>>) {
        // The first look is due at submission + eta, in wall-clock time; translate to the clock.
        let firstLook = job.submittedAt.addingTimeInterval(settings.schedule.firstLook(eta: job.eta).seconds)
        let wait = max(0, firstLook.timeIntervalSince(wallClock()))
        queue.insert(Due(due: clock.now.advanced(by: .milliseconds(Int64(wait * 1000))), job: job, looks: 0))
    }

    private func look(at entry: Due<C.Instant>, into queue: inout Heap<Due<C.Instant>>,
                      completed: @escaping @Sendable (Int64) async -> Void) async throws {
        let job = entry.job
        let started = wallClock()
        let startInstant = clock.now
        let outcome = await checker.status(taskID: job.taskID)
        let latency = startInstant.duration(to: clock.now)
        counters.withLock { $0.looks += 1 }
        var reschedule = true
        switch outcome {
        case let .found(remote):
            try await ledger.recordAttempt(jobID: job.id, kind: "poll", startedAt: started, latency: latency, httpStatus: 200, error: nil)
            let (state, _) = try await ledger.recordStatus(jobID: job.id, remote)
            switch state {
            case .completed:
                counters.withLock { $0.completed += 1 }
                reschedule = false
                await completed(job.id)
            case .generationFailed:
                counters.withLock { $0.generationFailed += 1 }
                logger.warning("job \(job.id): the service could not generate it: \(remote.statusMessage ?? remote.status)")
                reschedule = false
            default:
                break
            }
        case let .retryable(status, error, retryAfter):
            try await ledger.recordAttempt(jobID: job.id, kind: "poll", startedAt: started, latency: latency, httpStatus: status, error: error)
            if status == 429 {
                counters.withLock { $0.rateLimited += 1 }
                let pause = retryAfter ?? settings.schedule.firstGap
                if await limiter.pause(for: pause) {
                    logger.notice("the status endpoint is rate limiting (HTTP 429); pausing looks for \(Dispatcher<C>.format(pause))")
                }
            } else {
                logger.info("job \(job.id): status look failed: \(error)")
            }
        case let .keyRejected(status, error):
            try await ledger.recordAttempt(jobID: job.id, kind: "poll", startedAt: started, latency: latency, httpStatus: status, error: error)
            stop.stop(.keyRejected(error))
            return
        }
        guard reschedule, !settings.once else { return }
        let age = wallClock().timeIntervalSince(job.submittedAt)
        if age >= settings.giveUpAfter.seconds {
            counters.withLock { $0.timedOut += 1 }
            logger.warning("job \(job.id): task \(job.taskID) still not finished after \(Int(age / 60)) minutes; giving up for now (run `soundbatch track` later)")
            return
        }
        let looks = entry.looks + 1
        queue.insert(Due(due: clock.now.advanced(by: settings.schedule.gap(afterLook: looks)), job: job, looks: looks))
    }
}

/// A job waiting for its next look, ordered by when it is due.
struct Due<Instant: Comparable>: Comparable {
    var due: Instant
    var job: TrackedJob
    var looks: Int

    static func < (a: Due, b: Due) -> Bool { a.due < b.due }
    static func == (a: Due, b: Due) -> Bool { a.due == b.due && a.job == b.job }
}
