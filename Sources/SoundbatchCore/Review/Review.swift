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
    /// These jobs only.
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
        search: String? = nil, state: JobState? = nil, verdict: VerdictFilter? = nil, jobIDs: [Int64]? = nil,
        offset: Int = 0, limit: Int = 50
    ) {
        self.search = search
        self.state = state
        self.verdict = verdict
        self.jobIDs = jobIDs
        self.offset = offset
        self.limit = limit
    }

    /// The search as a LIKE pattern, lower case, its own % and _ escaped with \.
    public var pattern: String? {
        guard let search = search?.trimmed, !search.isEmpty else { return nil }
        let escaped = search.lowercased().replacingOccurrences(of: "\\", with: "\\\\")
            .replacingOccurrences(of: "%", with: "\\%").replacingOccurrences(of: "_", with: "\\_")
        return "%" + escaped + "%"
    }
}

/// One row of a batch as a review shows it: what names it, its prompt and own columns, where
/// it stands, and every take of it, earlier ones included.
public struct ReviewRow: Sendable, Equatable, Encodable {
    public var jobID: Int64
    /// Its id, else "line N".
    public var name: String
    public var line: Int
    public var prompt: String
    /// The row's own columns, as the sheet had them (a JSON object's text), if any.
    public var columns: String?
    public var state: JobState
    /// Why it failed, or is not done.
    public var reason: String?
    public var takes: [ReviewTake]

    enum CodingKeys: String, CodingKey {
        case name, line, prompt, columns, state, reason, takes
        case jobID = "job"
    }
}

/// One take of a row: one sound, or the attempt at one.
public struct ReviewTake: Sendable, Equatable, Encodable {
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
    func sound(jobID: Int64, take: Int) async throws -> (path: String, summary: SoundSummary?)?

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
        return ReviewPage(rows: rows, matching: matching, counts: try await verdictCounts(batch: batch)[batch] ?? VerdictCounts())
    }
}

extension ReviewRow {
    /// A row of `LedgerSQL.reviewRows`, with its takes (rows of `LedgerSQL.reviewTakes`)
    /// and its current take (the job's own columns, after the row's).
    public init(ledgerRow values: [LedgerValue], earlierTakes: [[LedgerValue]]) {
        let row = LedgerValues(values)
        let keyedByContent = row.integer(2) != 0
        let line = Int(row.integer(3) ?? 0)
        jobID = row.integer(0) ?? 0
        name = keyedByContent ? "line \(line)" : row.text(1) ?? ""
        self.line = line
        prompt = row.text(4) ?? ""
        columns = row.text(5)
        state = JobState(rawValue: row.text(6) ?? "") ?? .pending
        reason = row.text(7)
        // The current take's columns follow the row's, as an earlier take's do.
        takes = (earlierTakes + [Array(values.dropFirst(8))]).map(ReviewTake.init(ledgerRow:))
    }
}

extension ReviewTake {
    /// A take's columns (`LedgerSQL.reviewTakeColumns`).
    public init(ledgerRow values: [LedgerValue]) {
        let take = LedgerValues(values)
        self.take = Int(take.integer(0) ?? 1)
        state = JobState(rawValue: take.text(1) ?? "") ?? .pending
        prompt = take.text(2) ?? ""
        verdict = take.text(3).flatMap(Verdict.init(rawValue:))
        let cost = take.real(4)
        credits = cost ?? take.real(5)
        charged = cost != nil
        seconds = take.real(6)
        peaks = take.text(7)
        saved = take.text(8) != nil
        reason = take.text(9)
    }
}

/// Reads a row of ledger values by position.
struct LedgerValues {
    let values: [LedgerValue]
    init(_ values: [LedgerValue]) { self.values = values }

    func text(_ index: Int) -> String? {
        guard index < values.count else { return nil }
        switch values[index] {
        case let .text(text): return text
        case let .integer(number): return String(number)
        case let .real(number): return String(number)
        case .null: return nil
        }
    }

    func integer(_ index: Int) -> Int64? {
        guard index < values.count else { return nil }
        switch values[index] {
        case let .integer(number): return number
        case let .real(number): return Int64(number)
        case let .text(text): return Int64(text)
        case .null: return nil
        }
    }

    func real(_ index: Int) -> Double? {
        guard index < values.count else { return nil }
        switch values[index] {
        case let .real(number): return number
        case let .integer(number): return Double(number)
        case let .text(text): return Double(text)
        case .null: return nil
        }
    }
}
