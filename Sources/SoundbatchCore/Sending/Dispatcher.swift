import Foundation
import Logging
import Synchronization

/// Anything that can send a submission: the MusicGPT client.
public protocol Submitter: Sendable {
    func submit(_ job: SubmitRequest) async -> SubmitOutcome
}

extension MusicGPTClient: Submitter {}

/// How the dispatcher paces and retries.
public struct DispatchSettings: Sendable {
    public var rate = Rate(count: 60, per: .seconds(60))
    public var burst = 1
    public var concurrency = 8
    public var maxAttempts = 5
    public var maxCredits: Double?
    /// The webhook for jobs whose row has none.
    public var webhookURL: String?
    /// `webhookURL` is a receiver of this ledger: each request sent to it carries a token of
    /// its own (`CallbackToken`), so that its callback settles its job even when the request
    /// got no answer.
    public var callbackTokens = false
    public var backoff = Backoff()
    /// How long the service may be out (not answering, or 5xx for every job) before the
    /// run stops, its jobs still pending.
    public var outageLimit = Self.defaultOutageLimit
    public static let defaultOutageLimit: Duration = .seconds(15 * 60)
    /// Other runners send the batch too (a shared ledger): what is left is counted as the
    /// run goes (`DispatchCounters.leftInBatch`).
    public var sharedQueue = false

    public init() {}
}

/// Counts kept while a run goes on, for the progress line and the summary.
public struct DispatchCounters: Sendable, Equatable {
    /// Jobs pending when the run began.
    public var total = 0
    public var submitted = 0
    public var failed = 0
    public var inDoubt = 0
    public var rateLimited = 0
    public var retries = 0
    public var creditsEstimated = 0.0
    /// Jobs whose first request has left.
    public var started = 0
    /// Requests sent, and when the first and the last left.
    public var sent = 0
    public var firstSentAt: Date?
    public var lastSentAt: Date?
    /// The pace the service's 429s have pushed the run down to, per minute, while below the rate.
    public var allowedPerMinute: Double?
    /// On a shared ledger: the batch's jobs still pending, for any runner, counted every few seconds.
    public var leftInBatch: Int?
    public var finished: Int { submitted + failed + inDoubt }

    /// What is left to send, at the pace in force: the rate, or the pace achieved when the
    /// service (or the concurrency) holds it lower.
    public func outlook(rate: Rate) -> TimeLeft.Sending {
        let perMinute = min(rate.perMinute, allowedPerMinute ?? .infinity, perMinute ?? .infinity)
        return TimeLeft.Sending(left: max(total - started, 0), interval: 60 / perMinute, lastSentAt: lastSentAt)
    }

    /// The pace achieved, per minute, from the first request to the last.
    public var perMinute: Double? {
        guard sent > 1, let first = firstSentAt, let last = lastSentAt, last > first else { return nil }
        return Double(sent - 1) * 60 / last.timeIntervalSince(first)
    }
}

/// How a run ended.
public struct DispatchResult: Sendable, Equatable {
    public var counters: DispatchCounters
    /// Why sending stopped early, if it did.
    public var stopReason: StopReason?
    /// Set when --max-credits held the remaining jobs back.
    public var budget: BudgetStop?
}

/// Takes a batch's pending jobs from the ledger and submits each to the service, at the
/// configured rate and concurrency and never faster, recording every attempt and answer.
///
/// Before a request leaves, its job is durably `submitting`; an answer moves it to
/// `submitted`, `failed` or back to `pending` (to retry); no answer holds it `in_doubt`.
public final class Dispatcher<C: Clock>: Sendable where C.Duration == Duration {
    private let ledger: any SubmissionLedger
    private let submitter: any Submitter
    private let settings: DispatchSettings
    private let clock: C
    private let limiter: RateLimiter<C>
    /// Shared with the tracker of the same run: an outage holds every request.
    private let health: ServiceHealth<C>
    private let stop: StopSignal
    private let logger: Logger
    private let counters = Mutex(DispatchCounters())
    /// Told of each job the service accepts (for tracking while sending goes on).
    private let onSubmitted: @Sendable (TrackedJob) -> Void
    /// The budget's view: estimates recorded plus forecasts for requests in flight.
    private let budget = Mutex(BudgetTracker())

    public init(
        ledger: any SubmissionLedger, submitter: any Submitter, settings: DispatchSettings, clock: C,
        stop: StopSignal, logger: Logger, health: ServiceHealth<C>? = nil, sharedPace: (any SharedPace)? = nil,
        onSubmitted: @escaping @Sendable (TrackedJob) -> Void = { _ in }
    ) {
        self.health = health ?? ServiceHealth(limit: settings.outageLimit, clock: clock, logger: logger)
        self.onSubmitted = onSubmitted
        self.ledger = ledger
        self.submitter = submitter
        self.settings = settings
        self.clock = clock
        self.stop = stop
        self.logger = logger
        limiter = RateLimiter(rate: settings.rate, burst: settings.burst, clock: clock, shared: sharedPace)
    }

    /// A snapshot of the counts so far.
    public var progress: DispatchCounters { counters.withLock { $0 } }

    /// Submits every pending job of the batch, or until stopped.
    public func run(batchID: Int64) async throws -> DispatchResult {
        let total = try await ledger.countPending(batchID: batchID)
        counters.withLock { $0.total = total }
        if let limit = settings.maxCredits {
            let credit = try await ledger.creditState(batchID: batchID)
            budget.withLock { $0 = BudgetTracker(limit: limit, state: credit) }
        }
        var budgetStop: BudgetStop?

        try await withThrowingTaskGroup(of: Void.self) { inFlight in
            var running = 0
            var cursor: Int64 = 0
            var queue: ArraySlice<PendingJob> = []
            /// When the batch's pending jobs were last counted (on a shared ledger).
            var countedAt: C.Instant?
            while !stop.isStopped {
                if queue.isEmpty {
                    queue = ArraySlice(try await ledger.pendingJobs(batchID: batchID, afterID: cursor, limit: 512))
                    // Counted every few seconds, not at each claim: a count of a large batch
                    // at each claim of four added about 0.5 ms of server CPU a job (1.27 to 1.77 ms,
                    // scripts/bench-team.sh).
                    if settings.sharedQueue, countedAt.map({ $0.duration(to: clock.now) >= .seconds(2) }) ?? true {
                        countedAt = clock.now
                        let left = try await ledger.countPending(batchID: batchID)
                        counters.withLock { $0.leftInBatch = left }
                    }
                    guard let last = queue.last else { break }
                    cursor = last.id
                }
                let withinBudget = settings.maxCredits == nil || budget.withLock { $0.mayStart(inFlight: running) }
                if running >= settings.concurrency || (!withinBudget && running > 0) {
                    // Wait for an answer: it frees a slot, and may tell a smaller forecast.
                    try await inFlight.next()
                    running -= 1
                    continue
                }
                if !withinBudget {
                    let left = try await ledger.countPending(batchID: batchID)
                    budgetStop = budget.withLock {
                        BudgetStop(estimated: $0.estimated, limit: $0.limit, jobsLeft: left)
                    }
                    break
                }
                guard let slot = try await stop.unlessStopped({ try await self.limiter.acquire() }), !stop.isStopped
                else { break }
                let job = queue.removeFirst()
                running += 1
                inFlight.addTask { try await self.submit(job, slot: slot) }
            }
            try await inFlight.waitForAll()
        }
        return DispatchResult(counters: progress, stopReason: stop.reason, budget: budgetStop)
    }

    /// Sends one job in the limiter's `slot`, retrying what may be retried, and records every attempt.
    private func submit(_ job: PendingJob, slot: C.Instant) async throws {
        var slot = slot
        var request = job.request
        if request.webhookURL == nil { request.webhookURL = settings.webhookURL }
        var random = SystemRandomNumberGenerator()
        /// Attempts that count toward --max-attempts: not those made while the service was out.
        var attempt = 0
        var attemptsMade = 0
        while true {
            let admission: ServiceAdmission
            do {
                guard let admitted = try await health.admit(unless: stop) else { return }
                admission = admitted
            } catch let down as ServiceDown {
                stop.stop(.serviceDown(since: down.since, reason: down.reason))
                return  // the job stays pending for the next run
            }
            guard !stop.isStopped else {
                await health.withdraw(admission)
                return
            }
            let token =
                settings.callbackTokens && request.webhookURL == settings.webhookURL ? CallbackToken.make() : nil
            guard let (attemptID, fresh) = try await mark(job, token: token, admission: admission, slot: slot) else {
                return
            }
            slot = fresh
            let first = attemptsMade == 0
            attemptsMade += 1
            counters.withLock {
                if first { $0.started += 1 }
                $0.sent += 1
                $0.lastSentAt = Date()
                if $0.firstSentAt == nil { $0.firstSentAt = $0.lastSentAt }
            }
            let started = clock.now
            var sent = request
            if let token, let url = request.webhookURL { sent.webhookURL = CallbackToken.url(url, token: token) }
            let outcome = await submitter.submit(sent)
            let latency = started.duration(to: clock.now)
            let jobsFault =
                await health.record(outcome.signal, jobID: job.id, sentAt: started) && !outcome.isRateLimited
            if jobsFault { attempt += 1 }
            let state = try await record(outcome, of: job, attemptID: attemptID, attempt: attempt, latency: latency)
            await pace(after: outcome, slot: slot, latency: latency)

            guard case let .retryable(_, error, retryAfter) = outcome, state == .pending else { return }
            // A 429 is the run's pace, not the job's fault: the limiter's pause holds it back.
            // During an outage the breaker paces the retries; otherwise back off.
            let wait = jobsFault ? retryAfter ?? settings.backoff.delay(afterAttempt: attempt, using: &random) : .zero
            if jobsFault { logger.debug("\(job.row): \(error); retrying in \(Self.format(wait))") }
            let next = try await stop.unlessStopped {
                try await self.clock.sleep(for: wait)
                return try await self.limiter.acquire()
            }
            guard let next, !stop.isStopped else { return }  // the job stays pending for the next run
            slot = next
        }
    }

    /// Marks the job as being sent, durably, before its request leaves; returns the attempt
    /// and the slot it goes in, or nil when it does not go now (another runner has it, or the
    /// run stopped while a stale slot was taken again).
    private func mark(
        _ job: PendingJob, token: String?, admission: ServiceAdmission, slot: C.Instant
    ) async throws -> (attemptID: Int64, slot: C.Instant)? {
        let attemptID: Int64
        do {
            attemptID = try await ledger.markSubmitting(jobID: job.id, callbackToken: token, now: Date())
        } catch LedgerError.notPending {
            // Another runner of a shared ledger has it (this one's lease ran out): theirs to send.
            logger.debug("\(job.row): taken by another runner; leaving it to them")
            await health.withdraw(admission)
            return nil
        }
        // A slot is good for a moment: when marking the job took longer than half an
        // interval (the ledger's disk or server stalled), requests that waited together
        // would leave together and overrun the limit. Such a request waits for a fresh slot.
        guard await slot.duration(to: clock.now) > limiter.interval / 2 else { return (attemptID, slot) }
        guard let fresh = try await stop.unlessStopped({ try await self.limiter.acquire() }), !stop.isStopped else {
            try await ledger.recordSubmission(
                jobID: job.id, attemptID: attemptID,
                outcome: .retryable(status: nil, error: "stopped before the request left", retryAfter: nil),
                state: .pending, latency: .zero, now: Date())
            await health.withdraw(admission)
            return nil  // pending again, for the next run
        }
        return (attemptID, fresh)
    }

    /// Records the answer to an attempt and counts it; an accepted job goes to the tracker.
    /// Returns the job's state now.
    private func record(
        _ outcome: SubmitOutcome, of job: PendingJob, attemptID: Int64, attempt: Int, latency: Duration
    ) async throws -> JobState {
        stopIfNothingElseWillGo(after: outcome)
        let state = nextState(after: outcome, attempt: attempt)
        try await ledger.recordSubmission(
            jobID: job.id, attemptID: attemptID, outcome: outcome, state: state, latency: latency, now: Date())
        count(outcome, state: state)
        if case let .accepted(answer) = outcome {
            onSubmitted(
                TrackedJob(
                    id: job.id, row: job.row, taskID: answer.taskID, submittedAt: Date(), eta: answer.eta,
                    audioLength: job.request.audioLength))
        }
        return state
    }

    /// What an answer teaches the pace: a 429 pauses every request and slows them.
    private func pace(after outcome: SubmitOutcome, slot: C.Instant, latency: Duration) async {
        let retryAfter: Duration? = if case let .retryable(_, _, wish) = outcome { wish } else { nil }
        let change = await limiter.record(
            httpStatus: outcome.httpStatus, sentAt: slot, latency: latency, retryAfter: retryAfter)
        if let change { await tell(change, retryAfter: retryAfter) }
        let allowed = await limiter.loweredPace
        counters.withLock { $0.allowedPerMinute = allowed }
    }

    /// What a 429 changed, said once per pause, and the first time the pace comes down.
    private func tell(_ change: RateLimiter<C>.Slowdown, retryAfter: Duration?) async {
        if let retryAfter, change.paused {
            logger.notice(
                "the service is rate limiting (HTTP 429); pausing all submissions for \(Self.format(retryAfter))")
        }
        if change.first {
            let pace = await limiter.pacePerMinute
            logger.notice("the service allows about \(Int(pace.rounded()))/min; pacing at that")
        }
    }

    /// The job's state after `outcome`, at its `attempt`th attempt that counts.
    private func nextState(after outcome: SubmitOutcome, attempt: Int) -> JobState {
        switch outcome {
        case .accepted: .submitted
        case .rejected: .failed
        case .noAnswer: .inDoubt
        case .keyRejected, .outOfCredits: .pending
        case .retryable: attempt < settings.maxAttempts ? .pending : .failed
        }
    }

    /// Stops the whole run on an answer that says nothing else will go through: a refused
    /// key, or an account out of credits.
    private func stopIfNothingElseWillGo(after outcome: SubmitOutcome) {
        switch outcome {
        case let .keyRejected(_, error): stop.stop(.keyRejected(error))
        case let .outOfCredits(error): stop.stop(.outOfCredits(error))
        default: break
        }
    }

    private func count(_ outcome: SubmitOutcome, state: JobState) {
        counters.withLock { counters in
            switch state {
            case .submitted: counters.submitted += 1
            case .failed: counters.failed += 1
            case .inDoubt: counters.inDoubt += 1
            default: break
            }
            if case let .retryable(status, _, _) = outcome {
                if status == 429 { counters.rateLimited += 1 }
                if state == .pending { counters.retries += 1 }
            }
            if case let .accepted(answer) = outcome {
                counters.creditsEstimated += answer.creditEstimate ?? 0
            }
        }
        budget.withLock { $0.record(outcome, state: state) }
    }

    static func format(_ duration: Duration) -> String {
        String(format: "%.1f s", duration.seconds)
    }
}

extension SubmitOutcome {
    /// A 429: the service wants the run slower.
    var isRateLimited: Bool { httpStatus == 429 }
}
