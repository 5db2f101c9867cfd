import Foundation

/// How a run ended, and so what the user should do next. The command line turns it into
/// a message and an exit code; the rules that choose it live here.
public enum RunOutcome: Sendable, Equatable {
    /// Every job is finished.
    case done
    /// Finished, but some jobs failed for good (failed, invalid, generation_failed,
    /// remote_missing, or their audio could not be saved).
    case someFailed
    /// Stopped early; the batch can carry on.
    case resumable(Resumable)
    /// The service refused the API key: nothing else will go through.
    case keyRejected(String)

    public enum Resumable: Sendable, Equatable {
        /// Ctrl-C or SIGTERM.
        case interrupted
        /// The service answered 402.
        case outOfCredits(String)
        /// --max-credits held the remaining jobs back.
        case budgetReached(BudgetStop)
        /// Jobs sent without an answer: never sent again unless the user says so; those the user
        /// asked to send again wait for callbacks that may settle them until the doubt window ends.
        case inDoubtHeld(Int, callbacksUntil: Date?)
        /// Jobs not sent yet.
        case pendingLeft(Int)
        /// Tasks still running at the service when tracking stopped.
        case tasksRunning(Int)
        /// The service stayed out past --outage-limit; what it answered last.
        case serviceDown(since: Date, reason: String)
    }

    /// After sending: why it stopped, else what the batch holds now; `callbacksUntil`, when
    /// jobs in doubt were held for their callbacks, ends the doubt window.
    public static func afterSending(
        _ result: DispatchResult, batch: BatchStatus, callbacksUntil: Date? = nil
    ) -> RunOutcome {
        switch result.stopReason {
        case let .keyRejected(error)?: return .keyRejected(error)
        case let .outOfCredits(error)?: return .resumable(.outOfCredits(error))
        case .interrupted?: return .resumable(.interrupted)
        case let .serviceDown(since, reason)?: return .resumable(.serviceDown(since: since, reason: reason))
        case nil: break
        }
        if let budget = result.budget { return .resumable(.budgetReached(budget)) }
        if batch.count(.inDoubt) > 0 {
            return .resumable(.inDoubtHeld(batch.count(.inDoubt), callbacksUntil: callbacksUntil))
        }
        if batch.count(.pending) > 0 { return .resumable(.pendingLeft(batch.count(.pending))) }
        if (JobState.failedForGood + [.invalid]).contains(where: { batch.count($0) > 0 }) { return .someFailed }
        return .done
    }

    /// After following tasks: why it stopped, else what became of them.
    public static func afterTracking(_ counters: TrackCounters, stopReason: StopReason?) -> RunOutcome {
        switch stopReason {
        case let .keyRejected(error)?: return .keyRejected(error)
        case .interrupted?: return .resumable(.interrupted)
        case let .serviceDown(since, reason)?: return .resumable(.serviceDown(since: since, reason: reason))
        case .outOfCredits?, nil: break
        }
        let unfinished = counters.timedOut + counters.stillRunning
        if unfinished > 0 { return .resumable(.tasksRunning(unfinished)) }
        if counters.downloadsFailed > 0 || counters.generationFailed > 0 || counters.remoteMissing > 0 {
            return .someFailed
        }
        return .done
    }

    /// Whether the jobs were all sent (some may have failed): tracking's outcome then counts.
    public var finishedSending: Bool { self == .done || self == .someFailed }
}
