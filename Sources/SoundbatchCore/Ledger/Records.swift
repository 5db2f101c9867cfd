import Foundation

// The rows each stage reads from the ledger, as plain values: a backend makes them from
// its own rows (the SQLite one as GRDB records).

/// How a person finds a job's row in their file: its `id` when the file had that column,
/// else the file and line and how the prompt begins (`jobs.csv:14 "rain on a tin roof"`).
/// Messages name jobs by it, never by the ledger's own number.
public enum RowName {
    /// A row's further variations (`run --takes`) are named apart: `door (variation 2)`.
    public static func of(
        rowKey: String, keyedByContent: Bool, sourceFile: String?, line: Int, prompt: String, variation: Int = 1
    )
        -> String
    {
        let suffix = variation > 1 ? " (variation \(variation))" : ""
        guard keyedByContent else { return rowKey + suffix }
        let file = sourceFile.map { URL(fileURLWithPath: $0).lastPathComponent } ?? "line"
        let start = prompt.count > 32 ? String(prompt.prefix(32)).trimmed + "…" : prompt
        return "\(file):\(line) \"\(start)\"" + suffix
    }
}

/// A job waiting to be sent.
public struct PendingJob: Sendable, Equatable {
    public var id: Int64
    /// The row, as a person finds it (`RowName`).
    public var row: String
    public var request: SubmitRequest

    public init(id: Int64, row: String, request: SubmitRequest) {
        self.id = id
        self.row = row
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
    public var inDoubt: Int

    public init(estimated: Double, largest: Double?, inDoubt: Int) {
        self.estimated = estimated
        self.largest = largest
        self.inDoubt = inDoubt
    }
}

/// A saved sound, summed up for a person to see it: its length, and its waveform as the
/// loudest sample of each of a few hundred stretches (0 to 255).
public struct SoundSummary: Sendable, Equatable {
    public var seconds: Double
    public var peaks: [UInt8]

    public init(seconds: Double, peaks: [UInt8]) {
        self.seconds = seconds
        self.peaks = peaks
    }

    /// The peaks as the ledger keeps them: base64, a few hundred characters.
    public var peaksText: String { Data(peaks).base64EncodedString() }

    public static func peaks(fromText text: String) -> [UInt8] { Data(base64Encoded: text).map(Array.init) ?? [] }
}

/// A submitted job the tracker follows.
public struct TrackedJob: Sendable, Equatable {
    public var id: Int64
    /// The row, as a person finds it (`RowName`).
    public var row: String
    public var taskID: String
    public var submittedAt: Date
    /// Seconds, when the service said.
    public var eta: Int?
    /// The seconds of sound asked for, if the row said: generation time may depend on it.
    public var audioLength: Int?

    public init(id: Int64, row: String, taskID: String, submittedAt: Date, eta: Int?, audioLength: Int? = nil) {
        self.id = id
        self.row = row
        self.taskID = taskID
        self.submittedAt = submittedAt
        self.eta = eta
        self.audioLength = audioLength
    }
}

/// A completed job whose audio should be on disk.
public struct AudioJob: Sendable, Equatable {
    public var id: Int64
    /// The row, as a person finds it (`RowName`).
    public var row: String
    public var rowKey: String
    public var prompt: String
    /// The key is a hash of the row's content, not its own `id` (which then names the file).
    public var keyedByContent: Bool
    /// Which of its row's sounds it is (1 unless the row asked for several), and its take.
    public var variation: Int
    public var take: Int
    /// The seconds of sound its row asked for, if it said.
    public var audioLength: Int?
    public var audioURL: String
    /// Where this machine saved the audio before, if it did (`LedgerSQL.pathHere`).
    public var downloadedPath: String?
    /// Where the machine that saved it first did: its name's extension is the sound's.
    public var savedAs: String?
    public var downloadedSize: Int?
    public var downloadedSHA256: String?

    public init(
        id: Int64, row: String, rowKey: String, prompt: String, keyedByContent: Bool, variation: Int = 1, take: Int = 1,
        audioLength: Int? = nil, audioURL: String, downloadedPath: String?, downloadedSize: Int?,
        downloadedSHA256: String?, savedAs: String? = nil
    ) {
        self.savedAs = savedAs ?? downloadedPath
        self.variation = variation
        self.take = take
        self.audioLength = audioLength
        self.id = id
        self.row = row
        self.rowKey = rowKey
        self.prompt = prompt
        self.keyedByContent = keyedByContent
        self.audioURL = audioURL
        self.downloadedPath = downloadedPath
        self.downloadedSize = downloadedSize
        self.downloadedSHA256 = downloadedSHA256
    }
}

/// What the ledger holds of a job's task, as news of it changes it (`StatusLedger.recordStatus`).
public struct TaskStanding: Sendable, Equatable {
    public var state: JobState
    public var remoteStatus: String?
    public var statusMessage: String?
    public var audioURL: String?
    public var conversionCost: Double?

    public init(
        state: JobState, remoteStatus: String?, statusMessage: String?, audioURL: String?, conversionCost: Double?
    ) {
        self.state = state
        self.remoteStatus = remoteStatus
        self.statusMessage = statusMessage
        self.audioURL = audioURL
        self.conversionCost = conversionCost
    }

    /// A task found by a callback, standing as its status look said.
    public static func found(_ news: RemoteStatus) -> TaskStanding {
        let submitted = TaskStanding(
            state: .submitted, remoteStatus: nil, statusMessage: nil, audioURL: nil, conversionCost: nil)
        return submitted.updated(by: news) ?? submitted
    }

    /// The standing after `news`, or nil when nothing changes: only a submitted job moves
    /// (a finished one takes no contrary or late news), and the same news twice changes nothing.
    public func updated(by news: RemoteStatus) -> TaskStanding? {
        let next: JobState =
            switch news.phase {
            case .completed: .completed
            case .failed: .generationFailed
            case .running: .submitted
            }
        if state != .submitted && next != state { return nil }
        let updated = TaskStanding(
            state: next, remoteStatus: news.status, statusMessage: news.statusMessage,
            audioURL: news.audioURL ?? audioURL, conversionCost: news.conversionCost ?? conversionCost)
        return updated == self ? nil : updated
    }
}

/// A job a retry may send again.
public struct RetryCandidate: Sendable, Equatable {
    public var id: Int64
    /// The row, as a person finds it (`RowName`).
    public var row: String
    public var rowKey: String
    public var line: Int
    public var state: JobState
    public var lastHTTPStatus: Int?
    public var lastError: String?
    public var creditEstimate: Double?
    public var downloadPath: String?
    /// What a person decided of its current take.
    public var verdict: Verdict?
    /// Its current take's number, within its row.
    public var take: Int
    /// What a check found of its current take, and how many of its earlier takes a check
    /// found something wrong with.
    public var findings: Set<Finding>
    public var flaggedEarlierTakes: Int

    public init(
        id: Int64, row: String, rowKey: String, line: Int, state: JobState, lastHTTPStatus: Int?, lastError: String?,
        creditEstimate: Double?, downloadPath: String?, verdict: Verdict? = nil, take: Int = 1,
        findings: Set<Finding> = [], flaggedEarlierTakes: Int = 0
    ) {
        self.take = take
        self.findings = findings
        self.flaggedEarlierTakes = flaggedEarlierTakes
        self.id = id
        self.row = row
        self.rowKey = rowKey
        self.line = line
        self.state = state
        self.lastHTTPStatus = lastHTTPStatus
        self.lastError = lastError
        self.creditEstimate = creditEstimate
        self.downloadPath = downloadPath
        self.verdict = verdict
    }
}

/// A job `drop` may remove.
public struct DropCandidate: Sendable, Equatable {
    public var id: Int64
    /// The row, as a person finds it (`RowName`), and as `--job` names it (key or line).
    public var row: String
    public var rowKey: String
    public var line: Int
    public var state: JobState
    /// It was never sent: nothing at the service can be its.
    public var neverSent: Bool

    public init(id: Int64, row: String, rowKey: String, line: Int, state: JobState, neverSent: Bool) {
        self.id = id
        self.row = row
        self.rowKey = rowKey
        self.line = line
        self.state = state
        self.neverSent = neverSent
    }
}
