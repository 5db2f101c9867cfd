/// --max-credits: never start a submission that could take the batch's estimated total
/// over the limit, forecasting each job at the largest estimate seen in the batch.
struct BudgetTracker {
    var limit = Double.infinity
    var estimated = 0.0
    var largest: Double?
    /// Jobs in doubt may have been charged: each counts at the forecast.
    var inDoubt = 0

    init() {}

    init(limit: Double, state: CreditState) {
        self.limit = limit
        estimated = state.estimated
        largest = state.largest
        inDoubt = state.inDoubt
    }

    /// With no estimate seen yet there is no forecast: one request at a time until there is.
    func mayStart(inFlight: Int) -> Bool {
        guard let largest else { return inFlight == 0 && estimated < limit }
        return estimated + Double(inDoubt + inFlight + 1) * largest <= limit
    }

    mutating func record(_ outcome: SubmitOutcome, state: JobState) {
        if case let .accepted(answer) = outcome, let estimate = answer.creditEstimate {
            estimated += estimate
            largest = max(largest ?? estimate, estimate)
        }
        if state == .inDoubt { inDoubt += 1 }
    }
}
public struct BudgetStop: Sendable, Equatable {
    public var estimated: Double
    public var limit: Double
    public var jobsLeft: Int
}
