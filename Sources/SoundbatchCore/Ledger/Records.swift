import Foundation

// The rows each stage reads from the ledger, as plain values: a backend makes them from
// its own rows (the SQLite one as GRDB records).

/// A job waiting to be sent.
public struct PendingJob: Sendable, Equatable {
    public var id: Int64
    public var request: SubmitRequest

    public init(id: Int64, request: SubmitRequest) {
        self.id = id
        self.request = request
    }
}

/// What the batch has estimated so far, for --max-credits.
public struct CreditState: Sendable, Equatable {
    /// Sum of credit_estimate over the batch's jobs.
    public var estimated: Double
    /// The largest single estimate seen, the forecast for the next job.
    public var largest: Double?
    /// Jobs that may have been charged without an estimate on record.
    public var ambiguous: Int

    public init(estimated: Double, largest: Double?, ambiguous: Int) {
        self.estimated = estimated
        self.largest = largest
        self.ambiguous = ambiguous
    }
}

/// A submitted job the tracker follows.
public struct TrackedJob: Sendable, Equatable {
    public var id: Int64
    public var taskID: String
    public var submittedAt: Date
    /// Seconds, when the service said.
    public var eta: Int?

    public init(id: Int64, taskID: String, submittedAt: Date, eta: Int?) {
        self.id = id
        self.taskID = taskID
        self.submittedAt = submittedAt
        self.eta = eta
    }
}

/// A completed job whose audio should be on disk.
public struct AudioJob: Sendable, Equatable {
    public var id: Int64
    public var rowKey: String
    public var prompt: String
    /// The key is the row's own `id`, not a hash of its content: it names the file.
    public var hasIDColumnKey: Bool
    public var audioURL: String
    /// What the ledger says was downloaded before, if anything.
    public var downloadedPath: String?
    public var downloadedSize: Int?
    public var downloadedSHA256: String?

    public init(
        id: Int64, rowKey: String, prompt: String, hasIDColumnKey: Bool, audioURL: String,
        downloadedPath: String?, downloadedSize: Int?, downloadedSHA256: String?
    ) {
        self.id = id
        self.rowKey = rowKey
        self.prompt = prompt
        self.hasIDColumnKey = hasIDColumnKey
        self.audioURL = audioURL
        self.downloadedPath = downloadedPath
        self.downloadedSize = downloadedSize
        self.downloadedSHA256 = downloadedSHA256
    }
}
