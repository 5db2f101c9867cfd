import Foundation

/// What the service said to one submission, sorted by what soundbatch must do next.
public enum SubmitOutcome: Sendable, Equatable {
    /// A task was created.
    case accepted(SubmitAnswer)
    /// The service refused this job for good (400, 404, 409, 422, a 200 with success false, a redirect).
    case rejected(status: Int, error: String)
    /// Worth trying again later (429, 5xx, 408, no connection). `retryAfter` is the
    /// service's own wish, when it said one.
    case retryable(status: Int?, error: String, retryAfter: Duration?)
    /// The key was refused (401, 403): nothing else will go through.
    case keyRejected(status: Int, error: String)
    /// Not enough credits (402).
    case outOfCredits(error: String)
    /// The request left, but no usable answer came back: a task may exist and be charged.
    case noAnswer(status: Int?, error: String)
}

/// A 200 answer of the submit endpoint.
public struct SubmitAnswer: Sendable, Equatable {
    public var taskID: String
    public var conversionID: String?
    /// Seconds; nil when the service said -1 (unknown) or nothing.
    public var eta: Int?
    public var creditEstimate: Double?
    public var message: String?

    public init(
        taskID: String, conversionID: String? = nil, eta: Int? = nil, creditEstimate: Double? = nil,
        message: String? = nil
    ) {
        self.taskID = taskID
        self.conversionID = conversionID
        self.eta = eta
        self.creditEstimate = creditEstimate
        self.message = message
    }
}

/// What one job asks of the sound generator.
public struct SubmitRequest: Sendable, Equatable {
    public var prompt: String
    public var audioLength: Int?
    public var webhookURL: String?

    public init(prompt: String, audioLength: Int? = nil, webhookURL: String? = nil) {
        self.prompt = prompt
        self.audioLength = audioLength
        self.webhookURL = webhookURL
    }
}

/// Where a task stands, as the status endpoint or a webhook tells it.
public struct RemoteStatus: Sendable, Equatable {
    public enum Phase: Sendable, Equatable { case running, completed, failed }

    public var taskID: String?
    public var status: String
    public var statusMessage: String?
    public var audioURL: String?
    public var conversionCost: Double?

    public init(
        taskID: String? = nil, status: String, statusMessage: String? = nil, audioURL: String? = nil,
        conversionCost: Double? = nil
    ) {
        self.taskID = taskID
        self.status = status
        self.statusMessage = statusMessage
        self.audioURL = audioURL
        self.conversionCost = conversionCost
    }

    /// COMPLETED and FAILED end a task, in any letter case; anything else is still running.
    public var phase: Phase {
        switch status.trimmed.uppercased() {
        case "COMPLETED": .completed
        case "FAILED": .failed
        default: .running
        }
    }
}

/// What one look at a task's status gave.
public enum StatusOutcome: Sendable, Equatable {
    case found(RemoteStatus)
    /// Worth looking again later (429, 5xx, 408, 404 while the service catches up, no answer).
    case retryable(status: Int?, error: String, retryAfter: Duration?)
    case keyRejected(status: Int, error: String)
}

extension SubmitOutcome {
    /// The answer's HTTP status; nil when no answer came.
    public var httpStatus: Int? {
        switch self {
        case .accepted: 200
        case let .rejected(status, _), let .keyRejected(status, _): status
        case let .retryable(status, _, _), let .noAnswer(status, _): status
        case .outOfCredits: 402
        }
    }
}

extension StatusOutcome {
    /// The answer's HTTP status; nil when no answer came.
    public var httpStatus: Int? {
        switch self {
        case .found: 200
        case let .retryable(status, _, _): status
        case let .keyRejected(status, _): status
        }
    }
}
