import Foundation
import HeapModule
import Logging
import Synchronization

/// Follows a batch's submitted tasks to their end through the status endpoint, records
/// what the service says, and hands completed jobs to the downloader.
///
/// Looks go out concurrently at the look rate, each when its task is likely to have
/// finished (`LookSchedule`, learned from the batch); when more are due than the rate
/// allows, the tasks most likely finished go first. A task a callback has settled in the
/// ledger meanwhile is not looked at again.
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
    private let outlook: Mutex<GenerationOutlook>

    public init(
        ledger: any StatusLedger, checker: any StatusChecker, settings: TrackSettings, clock: C,
        wallClock: @escaping @Sendable () -> Date = { Date() }, stop: StopSignal, logger: Logger,
        health: ServiceHealth<C>? = nil, sharedPace: (any SharedPace)? = nil
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
        limiter = RateLimiter(rate: settings.lookRate, clock: clock, shared: sharedPace)
        outlook = Mutex(GenerationOutlook(schedule: settings.schedule))
    }

    public var progress: TrackCounters { counters.withLock { $0 } }

    /// The tasks still generating, for the time left.
    public var generation: GenerationOutlook { outlook.withLock { $0 } }

    /// What wakes the tracker when no look can go.
    private enum Wake: Sendable {
        case arrived(TrackedJob)
        /// Settled by its callback: looked at now (the look reads the ledger first).
        case joined(TrackedJob)
        case arrivalsEnded
        /// The batch's running jobs, asked of the ledger while callbacks may come.
        case settledByCallbacks([TrackedJob])
        case looked(Followed, After)
        case lookDue
        case stopped
    }

    /// What a look leaves to do.
    private enum After: Sendable {
        /// Look again: the look, at age `lookedAt`, found the task running, or told nothing.
        case again(lookedAt: Double, running: Bool, notFound: NotFound?)
        /// It completed, seen at this age.
        case completed(seenAt: Double)
        /// Nothing more to do (failed, unknown to the service, given up, settled by a callback).
        case over
    }

    /// Tracks every submitted job of the batch, and the jobs `incoming` brings while it runs
    /// (`run --wait`), until each has finished or been given up on and `incoming` has
    /// ended; `completed` is called with each job that completes (for its download). Jobs
    /// `joining` brings (settled by their callbacks) are tracked too while it runs, but it
    /// does not wait for more of them, unless `callbacksMayCome` says until when callbacks of
    /// jobs in doubt may still come: until then it asks the ledger every second for the jobs
    /// they settled, and follows those.
    public func run(
        batchID: Int64, incoming: AsyncStream<TrackedJob>? = nil, joining: AsyncStream<TrackedJob>? = nil,
        callbacksMayCome: (@Sendable () async throws -> Date?)? = nil,
        completed: @escaping @Sendable (Int64) async -> Void = { _ in }
    ) async throws -> TrackCounters {
        var schedule = settings.schedule
        /// Not yet due, by when they are.
        var waiting = Heap<Due<C.Instant>>()
        /// Due, waiting for a look.
        var ready: [Followed] = []
        var looking = 0
        /// Every job taken in, once: the ledger and the dispatcher may both bring one.
        var known = Set<Int64>()
        for job in try await ledger.submittedJobs(batchID: batchID) where known.insert(job.id).inserted {
            follow(Followed(job: job), schedule: schedule, into: &waiting)
        }

        let (wakes, wake) = AsyncStream.makeStream(of: Wake.self)
        try await withThrowingDiscardingTaskGroup { group in
            var arriving = incoming != nil
            if let incoming {
                group.addTask {
                    for await job in incoming { wake.yield(.arrived(job)) }
                    wake.yield(.arrivalsEnded)
                }
            }
            if let joining {
                group.addTask {
                    for await job in joining { wake.yield(.joined(job)) }
                }
            }
            group.addTask {
                await self.stop.wait()
                wake.yield(.stopped)
            }
            if let every = settings.takeOnEvery {
                group.addTask {
                    while (try? await self.clock.sleep(for: every)) != nil {
                        for job in (try? await self.ledger.submittedJobs(batchID: batchID)) ?? [] {
                            wake.yield(.arrived(job))
                        }
                    }
                }
            }
            /// The earliest time a wake-up is already set for.
            var alarm: C.Instant?
            /// Whether the ledger is being asked for jobs callbacks settled, and until when they may come.
            var askingLedger = false
            var callbacksUntil: Date?
            var wakeUps = wakes.makeAsyncIterator()
            func promote() {
                while let next = waiting.min, next.due <= clock.now || settings.once {
                    ready.append(waiting.removeMin().entry)
                }
            }
            while !stop.isStopped {
                promote()
                if !ready.isEmpty, looking < settings.concurrentLooks {
                    guard let slot = try await stop.unlessStopped({ try await self.limiter.acquire() }) else { break }
                    let admission: ServiceAdmission
                    do {
                        guard let admitted = try await health.admit(unless: stop) else { break }
                        admission = admitted
                    } catch let down as ServiceDown {
                        stop.stop(.serviceDown(since: down.since, reason: down.reason))
                        break
                    }
                    promote()
                    let entry = ready.remove(at: mostLikelyFinished(ready, schedule: schedule))
                    looking += 1
                    group.addTask {
                        let after: After
                        do {
                            after = try await self.look(
                                at: entry, slot: slot, admission: admission, completed: completed)
                        } catch  where Task.isCancelled {
                            return  // cut short by a stop: a look is safe to make again, and tells nothing
                        }
                        wake.yield(.looked(entry, after))
                    }
                    continue
                }
                if ready.isEmpty, waiting.isEmpty, looking == 0, !arriving, !askingLedger {
                    // Nothing left, nor coming, unless callbacks of requests in doubt may still come.
                    guard let until = try await callbacksMayCome?(), until > wallClock() else { break }
                    if callbacksUntil != until {
                        callbacksUntil = until
                        logger.notice(
                            "waiting until \(until.formatted(date: .omitted, time: .standard)) for the callbacks of requests that got no answer"
                        )
                    }
                    askingLedger = true
                    let pause = min(until.timeIntervalSince(wallClock()), 1)
                    group.addTask {
                        try? await self.clock.sleep(for: .seconds(pause))
                        wake.yield(.settledByCallbacks((try? await self.ledger.submittedJobs(batchID: batchID)) ?? []))
                    }
                }
                // Sleep until the next look is due, unless a wake-up is set for then already.
                if ready.isEmpty, let next = waiting.min?.due, alarm.map({ next < $0 }) ?? true {
                    alarm = next
                    group.addTask {
                        try? await self.clock.sleep(until: next, tolerance: nil)
                        wake.yield(.lookDue)
                    }
                }
                guard let woken = await wakeUps.next() else { break }
                if let set = alarm, clock.now >= set { alarm = nil }
                switch woken {
                case let .arrived(job) where known.insert(job.id).inserted:
                    follow(Followed(job: job), schedule: schedule, into: &waiting)
                case .arrived: break
                case let .joined(job) where known.insert(job.id).inserted:
                    ready.append(Followed(job: job))
                case .joined: break
                case .arrivalsEnded: arriving = false
                case let .settledByCallbacks(jobs):
                    askingLedger = false
                    for job in jobs where known.insert(job.id).inserted { ready.append(Followed(job: job)) }
                case let .looked(entry, after):
                    looking -= 1
                    switch after {
                    case let .again(lookedAt, running, notFound) where !settings.once:
                        var next = entry
                        next.looks += 1
                        if running {
                            next.runningAt = lookedAt
                            outlook.withLock { $0.seenRunning(entry.job.id, atAge: lookedAt) }
                        }
                        next.notFound = notFound
                        let followed = waiting.count + ready.count + looking + 1
                        follow(
                            next, lookedAt: lookedAt, fairShare: Double(followed) * lookInterval, schedule: schedule,
                            into: &waiting)
                    case let .completed(seenAt):
                        schedule.learn(seenAt: seenAt, runningAt: entry.runningAt, audioLength: entry.job.audioLength)
                        outlook.withLock { [schedule] in
                            $0.schedule = schedule
                            $0.ended(entry.job.id)
                        }
                    case .again, .over: outlook.withLock { $0.ended(entry.job.id) }
                    }
                case .lookDue, .stopped: break
                }
            }
            group.cancelAll()
        }
        let left = waiting.count + ready.count
        counters.withLock { $0.stillRunning = left }
        return progress
    }

    /// The task's age now, in seconds.
    private func age(of job: TrackedJob) -> Double { wallClock().timeIntervalSince(job.submittedAt) }

    /// Seconds between two looks at the look rate.
    private var lookInterval: Double { settings.lookRate.interval.seconds }

    /// Puts a task in line for its next look, or gives up on it when it has run too long.
    /// `lookedAt` is its age at the look just made; `fairShare` its even share of the look rate.
    private func follow(
        _ entry: Followed, lookedAt: Double? = nil, fairShare: Double = .infinity, schedule: LookSchedule,
        into waiting: inout Heap<Due<C.Instant>>
    ) {
        let job = entry.job
        let now = age(of: job)
        if entry.looks == 0 {
            counters.withLock { $0.followed += 1 }
            outlook.withLock { $0.taken(job) }
        } else if now >= settings.giveUpAfter.seconds {
            counters.withLock { $0.timedOut += 1 }
            outlook.withLock { $0.ended(job.id) }
            logger.warning(
                """
                \(job.row): task \(job.taskID) still not finished after \(Int(now / 60)) minutes; \
                giving up for now (run `soundbatch track` later)
                """
            )
            return
        }
        let lookAt =
            entry.looks == 0
            ? schedule.firstLook(eta: job.eta, audioLength: job.audioLength)
            : schedule.nextLook(after: lookedAt ?? now, audioLength: job.audioLength, fairShare: fairShare)
        let wait = max(0, lookAt - now)
        waiting.insert(Due(due: clock.now.advanced(by: .seconds(wait)), entry: entry))
    }

    /// Of the tasks due, the one most likely to have finished since it was last seen running;
    /// among equals, the one due longest.
    private func mostLikelyFinished(_ ready: [Followed], schedule: LookSchedule) -> Int {
        guard ready.count > 1 else { return 0 }
        let chances = ready.map {
            schedule.chance(
                finishedBy: age(of: $0.job), runningAt: $0.runningAt, eta: $0.job.eta, audioLength: $0.job.audioLength)
        }
        return chances.indices.max { chances[$0] < chances[$1] || (chances[$0] == chances[$1] && $0 > $1) } ?? 0
    }

    /// Looks at one task in the limiter's `slot`, records what the service says, and tells
    /// what is left to do.
    private func look(
        at entry: Followed, slot: C.Instant, admission: ServiceAdmission,
        completed: @escaping @Sendable (Int64) async -> Void
    ) async throws -> After {
        let job = entry.job
        // A callback may have settled it since: no request goes.
        let standing = try await ledger.state(jobID: job.id)
        if standing != .submitted { await health.withdraw(admission) }
        switch standing {
        case .submitted?: break
        case .completed?:
            counters.withLock { $0.completed += 1 }
            await completed(job.id)
            return .over
        case .generationFailed?:
            counters.withLock { $0.generationFailed += 1 }
            return .over
        default: return .over
        }
        let started = wallClock()
        let startInstant = clock.now
        let outcome = await checker.status(taskID: job.taskID)
        // A look cut short by a stop is no news of the service, nor of the task.
        if Task.isCancelled { throw CancellationError() }
        let latency = startInstant.duration(to: clock.now)
        let seenAt = age(of: job)
        await health.record(outcome.signal, jobID: job.id, sentAt: startInstant)
        counters.withLock { $0.looks += 1 }
        await pace(after: outcome, slot: slot, latency: latency)
        let state = try await ledger.recordLook(
            jobID: job.id, outcome, startedAt: started, latency: latency, now: wallClock())
        switch outcome {
        case let .found(remote):
            return await found(remote, state: state, job: job, seenAt: seenAt, completed: completed)
        case .retryable(404, _, _):
            return try await notFound(entry, lookedAt: started, seenAt: seenAt)
        case let .retryable(_, error, _):
            logger.debug("\(job.row): status look failed: \(error)")
            return .again(lookedAt: seenAt, running: false, notFound: nil)
        case let .keyRejected(_, error):
            stop.stop(.keyRejected(error))
            return .over
        }
    }

    /// What a look's answer teaches the pace of looks: a 429 pauses and slows them.
    private func pace(after outcome: StatusOutcome, slot: C.Instant, latency: Duration) async {
        let retryAfter: Duration? = if case let .retryable(_, _, wish) = outcome { wish } else { nil }
        guard
            let change = await limiter.record(
                httpStatus: outcome.httpStatus, sentAt: slot, latency: latency, retryAfter: retryAfter)
        else { return }
        counters.withLock { $0.rateLimited += 1 }
        if change.paused, let retryAfter {
            logger.notice(
                "the status endpoint is rate limiting (HTTP 429); pausing looks for \(Dispatcher<C>.format(retryAfter))"
            )
        }
    }

    /// A look found the task, and the ledger has it in `state` now.
    private func found(
        _ remote: RemoteStatus, state: JobState?, job: TrackedJob, seenAt: Double,
        completed: @Sendable (Int64) async -> Void
    ) async -> After {
        switch state {
        case .completed:
            counters.withLock {
                $0.completed += 1
                $0.generationSeconds += seenAt
            }
            await completed(job.id)
            return .completed(seenAt: seenAt)
        case .generationFailed:
            counters.withLock { $0.generationFailed += 1 }
            logger.warning("\(job.row): the service could not generate it: \(remote.statusMessage ?? remote.status)")
            return .over
        case .submitted:
            return .again(lookedAt: seenAt, running: true, notFound: nil)
        default:
            return .over
        }
    }

    /// A look answered 404: the service does not know the task, yet or at all. After
    /// `missingAfterLooks` of them over `missingAfter`, the job is `remote_missing`.
    private func notFound(_ entry: Followed, lookedAt started: Date, seenAt: Double) async throws -> After {
        let job = entry.job
        let notFound =
            entry.notFound.map { NotFound(since: $0.since, count: $0.count + 1) } ?? NotFound(since: started, count: 1)
        let seconds = wallClock().timeIntervalSince(notFound.since)
        guard notFound.count >= settings.missingAfterLooks, seconds >= settings.missingAfter.seconds else {
            return .again(lookedAt: seenAt, running: false, notFound: notFound)
        }
        let reason =
            "the service does not know task \(job.taskID): its status answered 404 "
            + "\(notFound.count) times over \(Int(seconds)) s"
        if try await ledger.recordMissing(jobID: job.id, reason: reason, now: wallClock()) {
            counters.withLock { $0.remoteMissing += 1 }
            logger.warning("\(job.row): \(reason)")
        }
        return .over
    }
}
