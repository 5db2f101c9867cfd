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

    /// What the pending jobs are forecast to cost: each at the average estimate so far;
    /// nil until the service has estimated one.
    public var pendingForecast: Double? {
        estimatedJobs > 0 ? Double(count(.pending)) * creditEstimateTotal / Double(estimatedJobs) : nil
    }

    enum CodingKeys: String, CodingKey {
        case name, jobs, states
        case creditEstimateTotal = "credit_estimate_total"
        case conversionCostTotal = "conversion_cost_total"
        case estimatedJobs = "estimated_jobs"
        case settings
    }
}
