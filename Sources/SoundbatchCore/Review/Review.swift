import Foundation

/// What a person decided of a sound: keep it, or reject it (and likely re-roll it).
public enum Verdict: String, Sendable, Codable, CaseIterable {
    case kept, rejected
}

/// Which rows a review page lists: a page of them, found by text, state and verdict.
public struct ReviewQuery: Sendable, Equatable {
    /// Text in the row's id, prompt (or a take's) or own columns, without regard to case.
    public var search: String?
    public var state: JobState?
    public var verdict: VerdictFilter?
    /// Rows whose latest take a check found something wrong with (true), or nothing (false).
    public var flagged: Bool?
    /// The rows of these jobs only.
    public var jobIDs: [Int64]?
    public var offset = 0
    public var limit = 50

    public enum VerdictFilter: String, Sendable, CaseIterable {
        /// A take of the row is kept.
        case kept
        /// Its latest take is rejected.
        case rejected
        /// Its latest take is a sound nobody has judged.
        case unreviewed
    }

    public init(
        search: String? = nil, state: JobState? = nil, verdict: VerdictFilter? = nil, flagged: Bool? = nil,
        jobIDs: [Int64]? = nil, offset: Int = 0, limit: Int = 50
    ) {
        self.flagged = flagged
        self.search = search
        self.state = state
        self.verdict = verdict
        self.jobIDs = jobIDs
        self.offset = offset
        self.limit = limit
    }
}

/// One row of the sheet as a review shows it, a contact sheet of its sounds: what names it,
/// its prompt and own columns, its jobs (one a variation, `run --takes`) and where each
/// stands, and every take of each side by side, earlier ones included, in take order.
public struct ReviewRow: Sendable, Equatable, Encodable {
    /// Its first job: what the page knows the row by.
    public var jobID: Int64
    /// Its id, else "line N".
    public var name: String
    public var line: Int
    public var prompt: String
    /// The row's own columns, as the sheet had them (a JSON object's text), if any.
    public var columns: String?
    /// Where it stands: completed when every job is, else the first job's that is not.
    public var state: JobState
    /// Why that job failed, or is not done.
    public var reason: String?
    public var jobs: [ReviewJob]
    public var takes: [ReviewTake]

    enum CodingKeys: String, CodingKey {
        case name, line, prompt, columns, state, reason, jobs, takes
        case jobID = "job"
    }
}

/// One job of a row (one variation): where it stands.
public struct ReviewJob: Sendable, Equatable, Encodable {
    public var jobID: Int64
    public var variation: Int
    public var state: JobState
    public var reason: String?

    enum CodingKeys: String, CodingKey {
        case variation, state, reason
        case jobID = "job"
    }
}

/// One take of a row: one sound, or the attempt at one, of one of its jobs.
public struct ReviewTake: Sendable, Equatable, Encodable {
    public var jobID: Int64
    public var take: Int
    public var state: JobState
    /// The prompt that made it.
    public var prompt: String
    public var verdict: Verdict?
    /// Charged, else estimated.
    public var credits: Double?
    public var charged: Bool
    public var seconds: Double?
    /// The waveform (`SoundSummary.peaksText`), once its sound is saved and measured.
    public var peaks: String?
    /// Its sound is saved, and can be played.
    public var saved: Bool
    public var reason: String?
    /// What its check found, in words ("clipped at +3.7 dBTP"); empty when it found nothing
    /// or has not checked it (`checked`).
    public var findings: [String]
    public var checked: Bool
    /// Integrated loudness, LUFS, and true peak, dBTP, when measured; its sample peak, dBFS,
    /// when checked (said beside its waveform, which is drawn to its own peak).
    public var loudness: Double?
    public var truePeak: Double?
    public var samplePeak: Double?
    /// The length its row asked for, seconds, if it asked.
    public var asked: Double?

    enum CodingKeys: String, CodingKey {
        case take, state, prompt, verdict, credits, charged, seconds, peaks, saved, reason, findings, checked, loudness
        case truePeak, samplePeak, asked
        case jobID = "job"
    }
}

/// A page of rows, with how many match in all and what the batch's sounds were judged.
public struct ReviewPage: Sendable, Equatable, Encodable {
    public var rows: [ReviewRow]
    public var matching: Int
    public var counts: VerdictCounts
}

/// The batch's sounds (completed takes, earlier ones included) by verdict.
public struct VerdictCounts: Sendable, Equatable, Codable {
    public var kept = 0
    public var rejected = 0
    public var unreviewed = 0

    public init(kept: Int = 0, rejected: Int = 0, unreviewed: Int = 0) {
        self.kept = kept
        self.rejected = rejected
        self.unreviewed = unreviewed
    }

    /// Counts in `sounds` sounds given `verdict` (a verdict's text, or nil for none).
    public mutating func count(_ verdict: String?, _ sounds: Int) {
        switch verdict.flatMap(Verdict.init(rawValue:)) {
        case .kept?: kept += sounds
        case .rejected?: rejected += sounds
        case nil: unreviewed += sounds
        }
    }
}

/// What became of a verdict given.
public enum VerdictChange: Sendable, Equatable {
    case recorded
    /// The row has no such take.
    case noSuchTake
    /// The take is no sound (it failed, or is not done): there is nothing to judge.
    case notASound(JobState)
}

/// What the review needs of the ledger: the batch's rows and their takes, verdicts, and
/// where each take's sound is.
public protocol ReviewLedger: BatchDirectory {
    /// The rows `query` finds, in the sheet's order, each with its takes; how many match.
    func reviewRows(batchID: Int64, _ query: ReviewQuery) async throws -> (rows: [ReviewRow], matching: Int)

    /// Records (or, with nil, clears) the verdict on take `take` of a job, in one statement.
    func setVerdict(_ verdict: Verdict?, jobID: Int64, take: Int) async throws -> VerdictChange

    /// Where take `take` of a job saved its sound, and what is known of it; nil when it saved none.
    func sound(jobID: Int64, take: Int) async throws -> (sound: SavedSound, summary: SoundSummary?)?

    /// Keeps what was measured of a take's sound saved before soundbatch measured them.
    func recordSound(_ summary: SoundSummary, jobID: Int64, take: Int) async throws

    /// The jobs of the batch a person names `row`: by its id, or its line in the sheet.
    func jobIDs(batchID: Int64, row: String) async throws -> [Int64]
}

extension LedgerStore {
    /// A page of the batch's rows, and the batch's verdicts.
    public func reviewPage(batch: String, _ query: ReviewQuery) async throws -> ReviewPage {
        let batchID = try await batchID(named: batch)
        let (rows, matching) = try await reviewRows(batchID: batchID, query)
        return ReviewPage(
            rows: rows, matching: matching, counts: try await verdictCounts(batch: batch)[batch] ?? VerdictCounts())
    }
}

extension ReviewRow {
    /// The row of `jobs`, the query's rows of one sheet row in the sheet's order, each with its
    /// earlier takes; a job's current take's columns follow the job's.
    init(jobs: [(row: LedgerRow, earlierTakes: [ReviewTake])]) throws {
        let first = jobs[0].row
        jobID = try first["id"]
        let keyedByContent: Bool = try first["keyed_by_content"]
        line = try first["source_line"]
        name = keyedByContent ? "line \(line)" : try first["row_key"]
        prompt = try first["prompt"]
        columns = try first["metadata"]
        self.jobs = try jobs.map {
            ReviewJob(
                jobID: try $0.row["id"], variation: try $0.row["variation"], state: try $0.row["state"],
                reason: try $0.row["reason"])
        }
        let standing = self.jobs.first { $0.state != .completed } ?? self.jobs[0]
        state = standing.state
        reason = standing.reason
        takes = try jobs.flatMap { job in job.earlierTakes + [try ReviewTake(row: job.row)] }.sorted {
            $0.take < $1.take
        }
    }
}

extension ReviewTake {
    /// A take's columns (`reviewTakeColumns`).
    init(row: LedgerRow) throws {
        jobID = try row["job_id"]
        take = try row["take"]
        state = try row["take_state"]
        prompt = try row["take_prompt"]
        verdict = try row["verdict"]
        let cost: Double? = try row["conversion_cost"]
        let estimate: Double? = try row["credit_estimate"]
        credits = cost ?? estimate
        charged = cost != nil
        seconds = try row["audio_seconds"]
        peaks = try row["peaks"]
        let path: String? = try row["download_path"]
        saved = path != nil
        reason = try row["take_reason"]
        let findings: String? = try row["findings"]
        checked = findings != nil
        loudness = try row["loudness_lufs"]
        truePeak = try row["true_peak_dbtp"]
        samplePeak = try row["sample_peak_dbfs"]
        let asked: Int? = try row["asked_seconds"]
        self.asked = asked.map(Double.init)
        self.findings =
            FindingWords(
                findings: Finding.set(fromText: findings), seconds: try row["checked_seconds"],
                asked: try row["asked_seconds"], truePeak: truePeak, samplePeak: try row["sample_peak_dbfs"],
                dcOffset: try row["dc_offset_dbfs"], gap: try row["longest_gap"], duplicateOf: try row["duplicate_of"],
                problem: try row["problem"]
            ).words
    }
}

extension Verdict {
    /// What giving `verdict` (nil: clearing it) to a take in `state` comes to: only a sound
    /// (a completed take) can be kept or rejected; any verdict can be cleared.
    public static func change(_ verdict: Verdict?, on state: JobState) -> VerdictChange {
        verdict == nil || state == .completed ? .recorded : .notASound(state)
    }
}
