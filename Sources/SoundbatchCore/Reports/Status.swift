/// What the ledger holds for one batch: its totals as the spend report counts them (one
/// rule for both), how it is run, and why its jobs failed.
public struct BatchStatus: Sendable, Equatable, Encodable {
    public var name: String
    /// Its jobs per state, credits, and requests in doubt.
    public var totals: SpendTotals
    /// How the batch is run, once it has been.
    public var settings: BatchSettings?
    /// Why its failed jobs failed: each reason with its count, the commonest first.
    public var failures: [Failure] = []
    /// Its sounds (completed takes, earlier ones included) kept, rejected and unreviewed.
    public var sounds = VerdictCounts()
    /// What checks found of its jobs' latest takes: how many of each finding.
    public var findings: [Finding: Int] = [:]
    /// How many of its jobs' latest takes were checked.
    public var checked = 0

    public struct Failure: Sendable, Equatable, Encodable {
        public var state: String
        public var reason: String
        public var jobs: Int

        public init(state: String, reason: String, jobs: Int) {
            self.state = state
            self.reason = reason
            self.jobs = jobs
        }
    }

    public var jobs: Int { totals.jobs }
    public var states: [String: Int] { totals.states }
    public var creditEstimateTotal: Double { totals.creditsEstimated }
    public var conversionCostTotal: Double { totals.creditsCharged }

    public func count(_ state: JobState) -> Int { states[state.rawValue] ?? 0 }

    /// A batch with no jobs yet.
    public init(name: String, totals: SpendTotals? = nil) {
        self.name = name
        self.totals = totals ?? SpendTotals.empty(name)
    }

    /// What the pending jobs are forecast to cost.
    public var pendingForecast: PendingForecast {
        PendingForecast(pending: count(.pending), averageEstimate: totals.averageEstimate)
    }

    /// The names `report --format json` uses; credits in cents, as the ledger's sums carry
    /// float noise (22.029999999999994).
    enum CodingKeys: String, CodingKey {
        case jobs, states, settings, failures, sounds, findings, checked
        case name = "batch"
        case creditEstimateTotal = "credits_estimated"
        case conversionCostTotal = "credits_charged"
        case estimatedJobs = "estimated_jobs"
        case inDoubt = "requests_in_doubt"
        case inDoubtMayCost = "requests_in_doubt_may_cost"
        case settledByCallback = "settled_by_callback"
        case paidTwice = "paid_twice"
    }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(name, forKey: .name)
        try c.encode(jobs, forKey: .jobs)
        try c.encode(states, forKey: .states)
        try c.encode(creditEstimateTotal.cents, forKey: .creditEstimateTotal)
        try c.encode(conversionCostTotal.cents, forKey: .conversionCostTotal)
        try c.encode(totals.estimates, forKey: .estimatedJobs)
        try c.encode(totals.inDoubt, forKey: .inDoubt)
        try c.encode(totals.inDoubtMayCost.map(\.cents), forKey: .inDoubtMayCost)
        try c.encode(totals.settledByCallback, forKey: .settledByCallback)
        try c.encode(totals.paidTwice, forKey: .paidTwice)
        try c.encodeIfPresent(settings, forKey: .settings)
        try c.encode(failures, forKey: .failures)
        try c.encode(sounds, forKey: .sounds)
        try c.encode(
            Dictionary(uniqueKeysWithValues: findings.map { ($0.key.rawValue, $0.value) }), forKey: .findings)
        try c.encode(checked, forKey: .checked)
    }
}

extension ReportLedger {
    /// Each batch (or the one named) in name order: its totals from the spend report, so
    /// that `status` and every report say the same, its settings, and why its jobs failed.
    public func status(batch: String? = nil) async throws -> [BatchStatus] {
        let spend = try await spendReport(ReportQuery(batch: batch, grouping: .batch))
        let totals = Dictionary(uniqueKeysWithValues: spend.groups.map { ($0.group, $0) })
        let failures = Dictionary(grouping: try await failureReasons(batch: batch), by: \.batch)
        let sounds = try await verdictCounts(batch: batch)
        let findings = try await findingCounts(batch: batch)
        return try await batchSettings(batch: batch).sorted { $0.name < $1.name }.map { name, settings in
            var status = BatchStatus(name: name, totals: totals[name])
            status.settings = settings
            status.sounds = sounds[name] ?? VerdictCounts()
            status.findings = findings[name]?.findings ?? [:]
            status.checked = findings[name]?.checked ?? 0
            status.failures = (failures[name] ?? [])
                .sorted { ($0.failure.jobs, $1.failure.reason) > ($1.failure.jobs, $0.failure.reason) }
                .map(\.failure)
            return status
        }
    }
}

/// What a batch's pending jobs may cost: each at the average estimate of its jobs so far.
public struct PendingForecast: Sendable, Equatable {
    public var pending: Int
    /// nil until the service has estimated a job of the batch.
    public var averageEstimate: Double?

    public init(pending: Int, averageEstimate: Double?) {
        self.pending = pending
        self.averageEstimate = averageEstimate
    }

    public var credits: Double? { averageEstimate.map { Double(pending) * $0 } }
}
