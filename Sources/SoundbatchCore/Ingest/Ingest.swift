import Foundation

/// A problem with one line of the input file.
public struct LineProblem: Sendable, Equatable {
    public var line: Int
    /// What is wrong, and the fix.
    public var message: String
    /// A problem of the file as a whole (its header, its quoting, a duplicate or changed id):
    /// --skip-invalid cannot set it aside.
    public var stopsFeed: Bool
}

public enum IngestError: Error, CustomStringConvertible {
    /// The file is not acceptable; nothing was recorded. `problems` holds the first few
    /// of `problemCount`; `skipInvalid`: --skip-invalid was given, and did not help.
    case invalidFile(path: String, problems: [LineProblem], problemCount: Int, skipInvalid: Bool)

    public static let shownProblems = 50

    public var description: String {
        switch self {
        case let .invalidFile(path, problems, problemCount, skipInvalid):
            var lines = problems.map { "\(path):\($0.line): \($0.message)" }
            if problemCount > problems.count {
                lines.append("... and \(problemCount - problems.count) more problems")
            }
            // Setting rows aside helps with a few bad rows, not with a file in another encoding.
            let skippable =
                !skipInvalid && problems.contains { !$0.stopsFeed && !$0.message.contains(CSVReader.notUTF8) }
            lines.append(
                "\(path): nothing was recorded; fix the file and run again"
                    + (skippable ? " (or record the valid rows with --skip-invalid)" : ""))
            return lines.joined(separator: "\n")
        }
    }
}

/// What one feed of a CSV file into the ledger did.
public struct IngestSummary: Sendable, Equatable {
    public var batch: String
    public var rows: Int
    public var newJobs: Int
    public var knownJobs: Int
    /// Rows recorded in state `invalid` (only with --skip-invalid).
    public var invalidJobs: Int
    /// Jobs added for further sounds of rows (`--takes`, a `takes` column), new rows' and known ones'.
    public var addedVariations = 0
    /// The batch was made by this feed: its jobs are the new ones, all pending or invalid.
    public var newBatch: Bool
    /// A column kept as metadata that holds lengths, as the file names it: most likely
    /// meant for `--length-column`.
    public var unmappedLengthColumn: String?
    /// New rows whose prompt a pending job from an earlier feed of the batch has already:
    /// when all new rows do, the feed most likely repeated the batch under changed columns.
    public var repeatedPrompts = 0

    /// Every row the feed added repeats a prompt the batch holds pending already.
    public var repeatsPendingRows: Bool { newJobs > 0 && repeatedPrompts == newJobs }

    /// Jobs this feed made pending: its valid new rows and their variations.
    public var newPending: Int { newJobs - invalidJobs + addedVariations }

    /// What the batch's pending jobs may cost, when the feed alone can tell (a new batch:
    /// nothing estimated yet); nil when the ledger must be asked.
    public var forecast: PendingForecast? {
        newBatch ? PendingForecast(pending: newPending, averageEstimate: nil) : nil
    }
}

extension IngestLedger {
    /// Feeds a CSV file into a batch, all or nothing: if any row is invalid nothing is
    /// recorded, unless `skipInvalid`, which records such rows in state `invalid`.
    /// Rows already in the batch are recognised by their key and not added again.
    /// `columns` names the prompt and id columns when the file calls them otherwise.
    /// Each row asks for `takes` sounds, or as many as its `takes` column says: a job for
    /// each, the ones it has already not added again.
    public func ingest(
        _ reader: CSVReader, batch: String, skipInvalid: Bool, columns: ColumnNames = ColumnNames(),
        takes: Int = 1, now: Date = Date()
    ) async throws -> IngestSummary {
        let csvPath = reader.path
        var problems = ProblemList()
        let fail = { (problems: ProblemList) in
            IngestError.invalidFile(
                path: csvPath, problems: problems.shown, problemCount: problems.count, skipInvalid: skipInvalid)
        }

        let header: Header
        do {
            guard let record = try reader.next() else {
                problems.add(
                    1, fatal: "the file is empty; the first line must be a header naming at least a prompt column")
                throw fail(problems)
            }
            switch Header.parse(record, columns: columns) {
            case let .success(parsed): header = parsed
            case let .failure(problem):
                problems.add(record.line, fatal: problem.text)
                throw fail(problems)
            }
        } catch let error as CSVError {
            problems.add(error.line ?? 1, fatal: "\(error)".droppingLinePrefix)
            throw fail(problems)
        }

        let newBatch: Bool
        do {
            _ = try await batchID(named: batch)
            newBatch = false
        } catch LedgerError.noSuchBatch {
            newBatch = true
        }
        let absolutePath = URL(fileURLWithPath: csvPath).standardizedFileURL.path
        let feed = Feed(
            pipeline: RowPipeline(reader: reader, header: header), skipInvalid: skipInvalid,
            takes: takes > 1 || header.takes != nil ? takes : nil)
        defer { feed.pipeline.drain() }
        try await record(feed, batch: batch, sourceFile: absolutePath, now: now)
        var summary = IngestSummary(
            batch: batch, rows: feed.rows, newJobs: feed.newJobs, knownJobs: feed.knownJobs,
            invalidJobs: feed.invalidJobs, newBatch: newBatch, unmappedLengthColumn: feed.pipeline.unmappedLengthColumn)
        summary.addedVariations = feed.addedVariations
        // Mostly new rows into a batch that has rows: a sheet whose columns were renamed
        // keys its rows anew. (Only then: the check groups the batch by prompt, and a sheet
        // grown longer, mostly known, need not pay for it.)
        if !newBatch, feed.newJobs > feed.knownJobs {
            summary.repeatedPrompts = try await repeatedPrompts(batchID: try await batchID(named: batch))
        }
        return summary
    }
}

/// One file on its way into the ledger: the rows in file order, and the rules for what
/// may be kept. A backend takes the rows and reports what became of each (see
/// `IngestLedger.record`); the verdict says whether the feed is kept.
///
/// Used by one task at a time, from the feed's start to its end.
public final class Feed: @unchecked Sendable {
    fileprivate let pipeline: RowPipeline
    private var problems = ProblemList()
    private let skipInvalid: Bool
    fileprivate private(set) var rows = 0
    fileprivate private(set) var newJobs = 0
    fileprivate private(set) var knownJobs = 0
    fileprivate private(set) var invalidJobs = 0
    /// How many sounds a row asks for when its `takes` column does not say; nil when no
    /// row asks for more than one, and nothing is added after the rows.
    public let takes: Int?
    /// Jobs added after the rows for their further sounds (`IngestLedger.record` tells).
    public var addedVariations = 0

    fileprivate init(pipeline: RowPipeline, skipInvalid: Bool, takes: Int?) {
        self.pipeline = pipeline
        self.skipInvalid = skipInvalid
        self.takes = takes
    }

    /// The next rows of the file, checked; nil at its end (or where it cannot be read,
    /// which the verdict reports).
    public func nextRows() -> RowBatch? {
        while let next = pipeline.next() {
            switch next {
            case let .failed(error): problems.add(error.line ?? 1, fatal: "\(error)".droppingLinePrefix)
            case let .rows(rows): return rows
            }
        }
        return nil
    }

    /// What became of one row, with its problem if it has one.
    public func took(_ row: RowBatch.Row, problem: String?, _ outcome: FeedOutcome) {
        rows += 1
        if let problem { problems.add(row.line, row: problem) }
        switch outcome {
        case .new:
            newJobs += 1
            if problem != nil { invalidJobs += 1 }
        case .known:
            knownJobs += 1
        case let .conflict(problem):
            problems.add(row.line, fatal: problem)
        }
    }

    /// The counts to keep with the feed; throws `IngestError` when the feed must not be kept.
    public func verdict() throws -> (newJobs: Int, knownJobs: Int) {
        if rows == 0 {
            problems.add(2, fatal: "the file has a header but no rows; add one row per sound below the header")
        }
        if problems.fatalCount > 0 || (problems.count > 0 && !skipInvalid) {
            throw IngestError.invalidFile(
                path: pipeline.path, problems: problems.shown, problemCount: problems.count, skipInvalid: skipInvalid)
        }
        return (newJobs, knownJobs)
    }
}

private extension String {
    /// CSVError descriptions start with "LINE: "; a LineProblem carries the line itself.
    var droppingLinePrefix: String {
        guard let colon = firstIndex(of: ":"), self[..<colon].allSatisfy(\.isNumber) else { return self }
        return String(self[index(after: colon)...]).trimmed
    }

}

/// Problems in file order; keeps the first few and counts the rest so memory stays flat.
struct ProblemList {
    private(set) var shown: [LineProblem] = []
    private(set) var count = 0
    private(set) var fatalCount = 0

    mutating func add(_ line: Int, row message: String) {
        count += 1
        if shown.count < IngestError.shownProblems {
            shown.append(LineProblem(line: line, message: message, stopsFeed: false))
        }
    }

    mutating func add(_ line: Int, fatal message: String) {
        fatalCount += 1
        count += 1
        let problem = LineProblem(line: line, message: message, stopsFeed: true)
        if shown.count < IngestError.shownProblems {
            shown.append(problem)
        } else if let index = shown.lastIndex(where: { !$0.stopsFeed }) {
            // A problem that stops the feed must be seen even behind many row problems.
            shown.remove(at: index)
            shown.append(problem)
        }
    }
}
