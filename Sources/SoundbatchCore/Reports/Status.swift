/// What the ledger holds for one batch.
public struct BatchStatus: Sendable, Equatable, Encodable {
    public var name: String
    public var jobs: Int
    /// The count in every state, zeros included, so scripts can rely on each key.
    public var states: [String: Int]
    public var creditEstimateTotal: Double
    public var conversionCostTotal: Double
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
    }

    enum CodingKeys: String, CodingKey {
        case name, jobs, states
        case creditEstimateTotal = "credit_estimate_total"
        case conversionCostTotal = "conversion_cost_total"
        case settings
    }
}
