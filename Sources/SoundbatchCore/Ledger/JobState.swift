/// Where a job stands. The ledger stores the raw value.
public enum JobState: String, CaseIterable, Codable, Sendable {
    /// Recorded from the CSV, not sent yet.
    case pending
    /// About to be sent, or being sent; durably marked before the request leaves.
    case submitting
    /// Accepted by the service: task_id, eta and credit_estimate are known.
    case submitted
    /// Sent, but no answer came back: the service may or may not have created a task.
    case inDoubt = "in_doubt"
    /// Refused by the service for good, or out of attempts; last_error says why.
    case failed
    /// The CSV row broke a rule (recorded only with --skip-invalid); last_error says which.
    case invalid
    /// The service finished the task: audio_url and conversion_cost are known.
    case completed
    /// The service reports the generation itself failed.
    case generationFailed = "generation_failed"
    /// The service does not know the task: its status answered 404, again and again, for
    /// at least a minute.
    case remoteMissing = "remote_missing"

    /// The states of a job that failed for good: what `retry` takes by default, what reports
    /// give a reason for.
    public static let failedForGood: [JobState] = [.failed, .generationFailed, .remoteMissing]

    /// The states a job ends in: what `retry` may send again.
    public static let finished: Set<JobState> = Set(failedForGood + [.completed])

    /// The state as a person reads it: "generation failed".
    public var words: String { rawValue.replacingOccurrences(of: "_", with: " ") }
}
