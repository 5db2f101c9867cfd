import Foundation

/// What a report covers.
public struct ReportQuery: Sendable {
    public enum Grouping: String, Sendable, CaseIterable { case batch, day, state }

    public var batch: String?
    public var grouping = Grouping.batch
    /// Submission time bounds, as ISO 8601 text (UTC): since is inclusive, until exclusive.
    public var since: String?
    public var until: String?

    public init(batch: String? = nil, grouping: Grouping = .batch, since: String? = nil, until: String? = nil) {
        self.batch = batch
        self.grouping = grouping
        self.since = since
        self.until = until
    }
}

/// The spend of one group of jobs (a batch, a day or a state), or of all of them.
public struct SpendTotals: Sendable, Equatable, Encodable {
    public var group: String
    public var jobs: Int
    public var states: [String: Int]
    /// Sum of credit_estimate over jobs the service accepted.
    public var creditsEstimated: Double
    /// Sum of conversion_cost over finished jobs.
    public var creditsCharged: Double
    /// Jobs with a charge, and what was estimated for those same jobs.
    public var chargedJobs: Int
    public var estimatedForCharged: Double
    /// Seconds of audio requested by the charged jobs that asked for a length, and their charge.
    public var secondsForCharged: Double
    public var chargedWithLength: Double
    /// Jobs still running, or sent without an answer (in doubt, or failed after an earlier
    /// request got none): no charge yet. What the running ones are estimated at.
    public var unchargedJobs: Int
    public var unchargedEstimate: Double
    public var firstSubmitted: String?
    public var lastSubmitted: String?
    /// Earlier takes of retried jobs, whose estimates and charges are in the sums above.
    public var earlierTakes = 0
    /// Estimates in `creditsEstimated` (of jobs and earlier takes), for their average.
    public var estimates = 0
    /// Jobs and earlier takes of which a request got no answer (`request_in_doubt`): the
    /// service may hold a task, and a charge, for that request besides any shown. What
    /// they were estimated at, and how many have no estimate of their own.
    public var inDoubt = 0
    public var inDoubtEstimated = 0.0
    public var inDoubtUnestimated = 0
    /// Jobs whose request got no answer, settled by that request's own callback: never sent
    /// again, never paid twice.
    public var settledByCallback = 0
    /// Earlier takes made by a request that got no answer and found by its callback after
    /// the job was sent again: each a second charge for one sound (charges in the sums above).
    public var paidTwice = 0

    /// Charged minus estimated, over the jobs charged: how far the estimates were off.
    public var difference: Double { creditsCharged - estimatedForCharged }
    public var averagePerJob: Double? { chargedJobs > 0 ? creditsCharged / Double(chargedJobs) : nil }
    public var averagePerSecond: Double? { secondsForCharged > 0 ? chargedWithLength / secondsForCharged : nil }
    /// The average estimate so far; nil before the service has given one.
    public var averageEstimate: Double? { estimates > 0 ? creditsEstimated / Double(estimates) : nil }
    /// What the requests in doubt may have cost on top of what is shown: each at its own
    /// estimate, else at the average one; nil when none can be told.
    public var inDoubtMayCost: Double? {
        inDoubtUnestimated == 0
            ? inDoubtEstimated : averageEstimate.map { inDoubtEstimated + Double(inDoubtUnestimated) * $0 }
    }

    enum CodingKeys: String, CodingKey {
        case group, jobs, states, difference
        case creditsEstimated = "credits_estimated"
        case creditsCharged = "credits_charged"
        case chargedJobs = "charged_jobs"
        case unchargedJobs = "uncharged_jobs"
        case unchargedEstimate = "uncharged_estimate"
        case averagePerJob = "average_per_job"
        case averagePerSecond = "average_per_second_of_audio"
        case firstSubmitted = "first_submitted"
        case lastSubmitted = "last_submitted"
        case earlierTakes = "earlier_takes"
        case inDoubt = "requests_in_doubt"
        case inDoubtMayCost = "requests_in_doubt_may_cost"
        case settledByCallback = "settled_by_callback"
        case paidTwice = "paid_twice"
    }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(group, forKey: .group)
        try c.encode(jobs, forKey: .jobs)
        try c.encode(states, forKey: .states)
        try c.encode(creditsEstimated.cents, forKey: .creditsEstimated)
        try c.encode(creditsCharged.cents, forKey: .creditsCharged)
        try c.encode(difference.cents, forKey: .difference)
        try c.encode(chargedJobs, forKey: .chargedJobs)
        try c.encode(unchargedJobs, forKey: .unchargedJobs)
        try c.encode(unchargedEstimate.cents, forKey: .unchargedEstimate)
        try c.encode(averagePerJob.map(\.cents), forKey: .averagePerJob)
        try c.encode(averagePerSecond.map { ($0 * 10_000).rounded() / 10_000 }, forKey: .averagePerSecond)
        try c.encode(firstSubmitted, forKey: .firstSubmitted)
        try c.encode(lastSubmitted, forKey: .lastSubmitted)
        try c.encode(earlierTakes, forKey: .earlierTakes)
        try c.encode(inDoubt, forKey: .inDoubt)
        try c.encode(inDoubtMayCost.map(\.cents), forKey: .inDoubtMayCost)
        try c.encode(settledByCallback, forKey: .settledByCallback)
        try c.encode(paidTwice, forKey: .paidTwice)
    }

    public static func empty(_ group: String) -> SpendTotals {
        SpendTotals(
            group: group, jobs: 0, states: Dictionary(uniqueKeysWithValues: JobState.allCases.map { ($0.rawValue, 0) }),
            creditsEstimated: 0, creditsCharged: 0, chargedJobs: 0, estimatedForCharged: 0, secondsForCharged: 0,
            chargedWithLength: 0, unchargedJobs: 0, unchargedEstimate: 0, firstSubmitted: nil, lastSubmitted: nil)
    }

    /// Counts one job in.
    /// `inDoubt`: a request of the job got no answer, so the service may hold a task for it;
    /// `settledByCallback`: one did, and its callback settled the job.
    public mutating func count(
        state: JobState, estimate: Double?, cost: Double?, seconds: Double?,
        submitted: UnsafeBufferPointer<UInt8>, inDoubt: Bool, settledByCallback: Bool
    ) {
        let charged = cost != nil
        count(
            JobsAlike(
                state: state, inDoubt: inDoubt, jobs: 1, estimates: estimate ?? 0,
                estimated: estimate != nil ? 1 : 0, chargedJobs: charged ? 1 : 0,
                costs: cost ?? 0, estimatedForCharged: charged ? estimate ?? 0 : 0,
                secondsForCharged: charged ? seconds ?? 0 : 0, chargedWithLength: charged && seconds != nil ? cost! : 0,
                settledByCallback: settledByCallback ? 1 : 0)
        )
        // Timestamps sort as text: compare bytes, and make a String only for a new extreme.
        if submitted.count > 0 {
            if firstSubmitted.map({ submitted.lexicographicallyPrecedes($0.utf8) }) ?? true {
                firstSubmitted = String(decoding: submitted, as: UTF8.self)
            }
            if lastSubmitted.map({ $0.utf8.lexicographicallyPrecedes(submitted) }) ?? true {
                lastSubmitted = String(decoding: submitted, as: UTF8.self)
            }
        }
    }

    /// Counts in jobs summed by a database (see `JobsAlike`), with the first and last
    /// submission among them.
    public mutating func count(_ alike: JobsAlike, firstSubmitted first: String?, lastSubmitted last: String?) {
        count(alike)
        firstSubmitted = [firstSubmitted, first].compactMap { $0 }.min()
        lastSubmitted = [lastSubmitted, last].compactMap { $0 }.max()
    }

    /// The one place that says what counts as charged and as "no charge yet".
    private mutating func count(_ alike: JobsAlike) {
        jobs += alike.jobs
        states[alike.state.rawValue, default: 0] += alike.jobs
        countInDoubt(alike)
        settledByCallback += alike.settledByCallback
        creditsEstimated += alike.estimates
        creditsCharged += alike.costs
        chargedJobs += alike.chargedJobs
        estimatedForCharged += alike.estimatedForCharged
        secondsForCharged += alike.secondsForCharged
        chargedWithLength += alike.chargedWithLength
        switch alike.state {
        case .submitted, .submitting:
            unchargedJobs += alike.jobs
            unchargedEstimate += alike.estimates
        case .inDoubt:
            unchargedJobs += alike.jobs
        case .failed where alike.inDoubt:
            unchargedJobs += alike.jobs  // the service may hold a task, and a charge, from that request
        default:
            break
        }
    }

    /// The estimates, and what is in doubt: the same for jobs and earlier takes.
    private mutating func countInDoubt(_ alike: JobsAlike) {
        estimates += alike.estimated
        guard alike.inDoubt else { return }
        inDoubt += alike.jobs
        inDoubtEstimated += alike.estimates
        inDoubtUnestimated += alike.jobs - alike.estimated
    }

    /// Counts in an earlier take of a retried job: what it was estimated at and charged.
    public mutating func countEarlierTake(estimate: Double?, cost: Double?, inDoubt: Bool, paidTwice: Bool) {
        countEarlierTakes(
            JobsAlike(
                state: .completed, inDoubt: inDoubt, jobs: 1, estimates: estimate ?? 0,
                estimated: estimate != nil ? 1 : 0, chargedJobs: cost != nil ? 1 : 0, costs: cost ?? 0,
                estimatedForCharged: cost == nil ? 0 : estimate ?? 0, secondsForCharged: 0, chargedWithLength: 0,
                paidTwice: paidTwice ? 1 : 0))
    }

    /// Counts in earlier takes from their sums (`jobs` is the takes; their state does not count).
    public mutating func countEarlierTakes(_ takes: JobsAlike) {
        earlierTakes += takes.jobs
        paidTwice += takes.paidTwice
        countInDoubt(takes)
        creditsEstimated += takes.estimates
        creditsCharged += takes.costs
        estimatedForCharged += takes.estimatedForCharged
    }

    /// Adds another group's figures into this one (for the grand total).
    public mutating func add(_ other: SpendTotals) {
        jobs += other.jobs
        earlierTakes += other.earlierTakes
        estimates += other.estimates
        inDoubt += other.inDoubt
        inDoubtEstimated += other.inDoubtEstimated
        inDoubtUnestimated += other.inDoubtUnestimated
        settledByCallback += other.settledByCallback
        paidTwice += other.paidTwice
        for (state, count) in other.states { states[state, default: 0] += count }
        creditsEstimated += other.creditsEstimated
        creditsCharged += other.creditsCharged
        chargedJobs += other.chargedJobs
        estimatedForCharged += other.estimatedForCharged
        secondsForCharged += other.secondsForCharged
        chargedWithLength += other.chargedWithLength
        unchargedJobs += other.unchargedJobs
        unchargedEstimate += other.unchargedEstimate
        firstSubmitted = [firstSubmitted, other.firstSubmitted].compactMap { $0 }.min()
        lastSubmitted = [lastSubmitted, other.lastSubmitted].compactMap { $0 }.max()
    }
}

/// Jobs of one group in one state and the same doubt, summed: what a database adds up for
/// `SpendTotals` when it is faster to sum there than to hand over every job.
public struct JobsAlike: Sendable {
    public var state: JobState
    /// A request of these jobs got no answer: the service may hold tasks for them.
    public var inDoubt: Bool
    public var jobs: Int
    /// Sum of credit_estimate, and the jobs that have one.
    public var estimates: Double
    public var estimated: Int
    /// Jobs with a conversion_cost, and its sum.
    public var chargedJobs: Int
    public var costs: Double
    /// Sum of credit_estimate over the charged jobs.
    public var estimatedForCharged: Double
    /// Sum of audio_length over the charged jobs that asked for one, and their cost.
    public var secondsForCharged: Double
    public var chargedWithLength: Double
    /// Jobs among them settled by a callback (`SpendTotals.settledByCallback`).
    public var settledByCallback: Int
    /// Earlier takes among them paid twice (`SpendTotals.paidTwice`).
    public var paidTwice: Int

    public init(
        state: JobState, inDoubt: Bool, jobs: Int, estimates: Double, estimated: Int, chargedJobs: Int, costs: Double,
        estimatedForCharged: Double, secondsForCharged: Double, chargedWithLength: Double, settledByCallback: Int = 0,
        paidTwice: Int = 0
    ) {
        self.state = state
        self.inDoubt = inDoubt
        self.jobs = jobs
        self.estimates = estimates
        self.estimated = estimated
        self.chargedJobs = chargedJobs
        self.costs = costs
        self.estimatedForCharged = estimatedForCharged
        self.secondsForCharged = secondsForCharged
        self.chargedWithLength = chargedWithLength
        self.settledByCallback = settledByCallback
        self.paidTwice = paidTwice
    }
}

/// A report's totals: one row per group, and the grand total.
public struct SpendReport: Sendable, Equatable, Encodable {
    public var grouping: String
    public var groups: [SpendTotals]
    public var total: SpendTotals

    /// The groups in order of their names, and their grand total.
    public init(grouping: ReportQuery.Grouping, groups: some Sequence<SpendTotals>) {
        self.grouping = grouping.rawValue
        self.groups = groups.sorted { $0.group < $1.group }
        total = SpendTotals.empty("total")
        for group in self.groups { total.add(group) }
    }
}

/// A job that failed for good, as the HTML report lists it.
public struct FailedJob: Sendable, Equatable {
    /// Its id, else "line N".
    public var row: String
    public var prompt: String
    public var state: JobState
    public var reason: String

    public init(row: String, prompt: String, state: JobState, reason: String) {
        self.row = row
        self.prompt = prompt
        self.state = state
        self.reason = reason
    }
}

/// A point of the cumulative credit chart.
public struct CreditPoint: Sendable, Equatable {
    public var time: String
    public var estimated: Double
    public var charged: Double

    public init(time: String, estimated: Double, charged: Double) {
        self.time = time
        self.estimated = estimated
        self.charged = charged
    }
}

extension ReportLedger {
    /// Cumulative credits estimated (by submission time) and charged (by completion time),
    /// thinned to at most `points` points, the last one always kept: it ends where the totals do.
    public func creditTimeline(_ query: ReportQuery, points: Int = 300) async throws -> [CreditPoint] {
        var estimated = 0.0
        var charged = 0.0
        let cumulative = try await creditsBySecond(query).map { second in
            estimated += second.estimated
            charged += second.charged
            return CreditPoint(time: second.time, estimated: estimated, charged: charged)
        }
        guard cumulative.count > points else { return cumulative }
        let step = Double(cumulative.count - 1) / Double(points - 1)
        return (0..<points).map { cumulative[Int((Double($0) * step).rounded())] }
    }
}

extension Double {
    /// Rounded to hundredths, the precision credits are shown in.
    var cents: Double { (self * 100).rounded() / 100 }
}
