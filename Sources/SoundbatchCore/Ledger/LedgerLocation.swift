import Foundation

/// Where the ledger is: `--ledger`, else `$SOUNDBATCH_LEDGER`, else `./soundbatch.sqlite`.
public enum LedgerLocation {
    public static func resolve(
        option: String?, environment: [String: String] = ProcessInfo.processInfo.environment
    )
        -> String
    {
        if let option, !option.isEmpty { return option }
        if let fromEnvironment = environment["SOUNDBATCH_LEDGER"], !fromEnvironment.isEmpty { return fromEnvironment }
        return "soundbatch.sqlite"
    }
}

/// Notes the ledger adds to a job's `last_error`, for the person reconciling an account.
public enum LedgerNote {
    /// The error of a job whose request was in flight when its sender stopped.
    public static let interrupted =
        "soundbatch stopped while this request was in flight; the service may have created the task"

    /// Added to the error of a job that fails for good after a request of it went unanswered.
    public static let unansweredBefore =
        "; an earlier request got no answer, so the service may hold a task (and a charge) for this job"
}
