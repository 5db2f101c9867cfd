import Foundation

/// What an attempt was.
public enum AttemptKind: String, Sendable {
    case submit, look
}

/// What came of an attempt, kept as a fact beside its status and error text: reports and
/// rules read this, never the wording of a message.
public enum AttemptOutcome: String, Sendable, CaseIterable {
    /// A task was created.
    case accepted
    /// Refused for good.
    case rejected
    /// Worth trying again: a 429, a 5xx, a 408, or a request that never left.
    case retryable
    case keyRejected = "key_rejected"
    case outOfCredits = "out_of_credits"
    /// The request left and no usable answer came back: the service may hold a task.
    case noAnswer = "no_answer"
    /// soundbatch stopped while the request was in flight: the same doubt as no answer.
    case interrupted
    /// A status look that found the task.
    case found
    /// A status look answered 404: the service does not know the task (yet, or at all).
    case notFound = "not_found"
}

extension SubmitOutcome {
    public var attemptOutcome: AttemptOutcome {
        switch self {
        case .accepted: .accepted
        case .rejected: .rejected
        case .retryable: .retryable
        case .keyRejected: .keyRejected
        case .outOfCredits: .outOfCredits
        case .noAnswer: .noAnswer
        }
    }
}

extension SubmitOutcome {
    /// The HTTP status and error text of an outcome that is not a success.
    public var statusAndError: (status: Int?, error: String?) {
        switch self {
        case .accepted: (httpStatus, nil)
        case let .rejected(_, error), let .retryable(_, error, _), let .noAnswer(_, error): (httpStatus, error)
        case let .keyRejected(status, error): (httpStatus, "the API key was refused (HTTP \(status)): \(error)")
        case let .outOfCredits(error): (httpStatus, "not enough credits (HTTP 402): \(error)")
        }
    }

    /// The job's error once this answer moves it to `state`: the answer's own, with a note
    /// when the job fails for good after an earlier request of it got no answer (that
    /// request may have made a task, and a charge).
    public func jobError(becoming state: JobState, inDoubtBefore: Bool) -> String? {
        let error = statusAndError.error
        guard state == .failed && inDoubtBefore else { return error }
        return (error ?? "refused") + LedgerNote.unansweredBefore
    }
}

extension StatusOutcome {
    /// The error text of a look that found nothing.
    public var error: String? {
        switch self {
        case .found: nil
        case let .retryable(_, error, _), let .keyRejected(_, error): error
        }
    }

    public var attemptOutcome: AttemptOutcome {
        switch self {
        case .found: .found
        case .retryable(404, _, _): .notFound
        case .retryable: .retryable
        case .keyRejected: .keyRejected
        }
    }
}
