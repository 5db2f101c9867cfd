import Foundation

/// A job waiting to be sent.
public struct PendingJob: Sendable, Equatable {
    public var id: Int64
    public var request: SubmitRequest
}

/// What the batch has estimated so far, for --max-credits.
public struct CreditState: Sendable, Equatable {
    /// Sum of credit_estimate over the batch's jobs.
    public var estimated: Double
    /// The largest single estimate seen, the forecast for the next job.
    public var largest: Double?
    /// Jobs that may have been charged without an estimate on record.
    public var ambiguous: Int
}

/// A submitted job the tracker follows.
public struct TrackedJob: Sendable, Equatable {
    public var id: Int64
    public var taskID: String
    public var submittedAt: Date
    /// Seconds, when the service said.
    public var eta: Int?
}

/// A completed job whose audio should be on disk.
public struct AudioJob: Sendable, Equatable {
    public var id: Int64
    public var rowKey: String
    public var prompt: String
    public var hasIDColumnKey: Bool
    public var audioURL: String
    /// What the ledger says was downloaded before, if anything.
    public var downloadedPath: String?
    public var downloadedSize: Int?
    public var downloadedSHA256: String?
}
