/// What the ledger holds for one batch.
public struct BatchStatus: Sendable, Equatable, Encodable {
    public var name: String
    public var jobs: Int
    /// The count in every state, zeros included, so scripts can rely on each key.
    public var states: [String: Int]
    public var creditEstimateTotal: Double
    public var conversionCostTotal: Double
    /// Jobs the service gave an estimate for.
    public var estimatedJobs: Int
    /// How the batch is run, once it has been.
    public var settings: BatchSettings?
    /// Why its failed jobs failed: each reason with its count, the commonest first.
    public var failures: [Failure] = []

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

    public func count(_ state: JobState) -> Int { states[state.rawValue] ?? 0 }

    /// A batch with no jobs yet.
    public init(name: String) {
        self.name = name
        jobs = 0
        states = Dictionary(uniqueKeysWithValues: JobState.allCases.map { ($0.rawValue, 0) })
        creditEstimateTotal = 0
        conversionCostTotal = 0
        estimatedJobs = 0
    }

    /// What the pending jobs are forecast to cost.
    public var pendingForecast: PendingForecast {
        PendingForecast(
            pending: count(.pending),
            averageEstimate: estimatedJobs > 0 ? creditEstimateTotal / Double(estimatedJobs) : nil)
    }

    /// The names `report --format json` uses; credits in cents, as the ledger's sums carry
    /// float noise (22.029999999999994).
    enum CodingKeys: String, CodingKey {
        case jobs, states, settings, failures
        case name = "batch"
        case creditEstimateTotal = "credits_estimated"
        case conversionCostTotal = "credits_charged"
        case estimatedJobs = "estimated_jobs"
    }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(name, forKey: .name)
        try c.encode(jobs, forKey: .jobs)
        try c.encode(states, forKey: .states)
        try c.encode(creditEstimateTotal.cents, forKey: .creditEstimateTotal)
        try c.encode(conversionCostTotal.cents, forKey: .conversionCostTotal)
        try c.encode(estimatedJobs, forKey: .estimatedJobs)
        try c.encodeIfPresent(settings, forKey: .settings)
        try c.encode(failures, forKey: .failures)
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
