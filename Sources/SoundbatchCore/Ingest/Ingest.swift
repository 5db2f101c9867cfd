import Foundation
import GRDB

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
    /// of `problemCount`.
    case invalidFile(path: String, problems: [LineProblem], problemCount: Int)

    public static let shownProblems = 50

    public var description: String {
        switch self {
        case let .invalidFile(path, problems, problemCount):
            var lines = problems.map { "\(path):\($0.line): \($0.message)" }
            if problemCount > problems.count {
                lines.append("... and \(problemCount - problems.count) more problems")
            }
            lines.append("\(path): nothing was recorded; fix the file and run again"
                + (problems.contains { !$0.stopsFeed } ? " (or record the valid rows with --skip-invalid)" : ""))
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
}

extension Ledger {
    /// Feeds a CSV file into a batch, all or nothing: if any row is invalid nothing is
    /// recorded, unless `skipInvalid`, which records such rows in state `invalid`.
    /// Rows already in the batch are recognised by their key and not added again.
    public func ingest(_ reader: CSVReader, batch: String, skipInvalid: Bool, now: Date = Date()) throws -> IngestSummary {
        let csvPath = reader.path
        var problems = ProblemList()
        let fail = { (problems: ProblemList) in
            IngestError.invalidFile(path: csvPath, problems: problems.shown, problemCount: problems.count)
        }

        let header: Header
        do {
            guard let record = try reader.next() else {
                problems.add(1, fatal: "the file is empty; the first line must be a header naming at least a prompt column")
                throw fail(problems)
            }
            switch Header.parse(record) {
            case let .success(parsed): header = parsed
            case let .failure(problem):
                problems.add(record.line, fatal: problem.text)
                throw fail(problems)
            }
        } catch let error as CSVError {
            problems.add(error.line ?? 1, fatal: "\(error)".droppingLinePrefix)
            throw fail(problems)
        }

        let stamp = Timestamp.string(now)
        let absolutePath = URL(fileURLWithPath: csvPath).standardizedFileURL.path

        /// Records the rows within the feed's transaction; throws (and so rolls back) when
        /// the file may not be recorded.
        func feed(_ db: Database) throws -> IngestSummary {
            let batchID = try Self.batchID(db, name: batch, sourceFile: absolutePath, stamp: stamp)
            try db.execute(
                sql: "INSERT INTO ingests (batch_id, source_file, started_at) VALUES (?, ?, ?)",
                arguments: [batchID, absolutePath, stamp])
            let ingestID = db.lastInsertedRowID
            var writer = try JobWriter(db: db, batchID: batchID, ingestID: ingestID, stamp: stamp)
            var summary = IngestSummary(batch: batch, rows: 0, newJobs: 0, knownJobs: 0, invalidJobs: 0)

            let pipeline = RowPipeline(reader: reader, header: header)
            defer { pipeline.drain() }
            while let next = pipeline.next() {
                switch next {
                case let .failed(error):
                    problems.add(error.line ?? 1, fatal: "\(error)".droppingLinePrefix)
                case let .rows(rows):
                    try writer.record(rows) { row, problem, outcome in
                        summary.rows += 1
                        if let problem { problems.add(row.line, row: problem) }
                        switch outcome {
                        case .new:
                            summary.newJobs += 1
                            if problem != nil { summary.invalidJobs += 1 }
                        case .known:
                            summary.knownJobs += 1
                        case let .conflict(problem):
                            problems.add(row.line, fatal: problem)
                        }
                    }
                }
            }
            if summary.rows == 0 {
                problems.add(2, fatal: "the file has a header but no rows; add one row per sound below the header")
            }
            if problems.fatalCount > 0 || (problems.count > 0 && !skipInvalid) {
                throw fail(problems)  // rolls the whole feed back
            }
            try db.execute(
                sql: "UPDATE ingests SET new_jobs = ?, known_jobs = ? WHERE id = ?",
                arguments: [summary.newJobs, summary.knownJobs, ingestID])
            return summary
        }

        return try database.writeWithoutTransaction { db -> IngestSummary in
            // Every row points at the batch and the feed written just before it in the same
            // transaction: checking those references for each of a million rows cost a tenth
            // of the feed. SQLite switches the checks only outside a transaction.
            try db.execute(sql: "PRAGMA foreign_keys = OFF")
            defer { try? db.execute(sql: "PRAGMA foreign_keys = ON") }
            // Keys made from content land all over the index, and a page pushed out of
            // SQLite's 2 MiB cache is written out and read back: with 16 MiB a file without
            // ids went a fifth faster (100,000 and 1,000,000 rows), peak memory 54 MB.
            let cacheSize = try Int.fetchOne(db, sql: "PRAGMA cache_size") ?? -2000
            try db.execute(sql: "PRAGMA cache_size = -16384")
            defer { try? db.execute(sql: "PRAGMA cache_size = \(cacheSize)") }
            var recorded = IngestSummary(batch: batch, rows: 0, newJobs: 0, knownJobs: 0, invalidJobs: 0)
            try db.inTransaction {
                recorded = try feed(db)
                return .commit
            }
            return recorded
        }
    }

    private static func batchID(_ db: Database, name: String, sourceFile: String, stamp: String) throws -> Int64 {
        if let id = try Int64.fetchOne(db, sql: "SELECT id FROM batches WHERE name = ?", arguments: [name]) {
            return id
        }
        try db.execute(
            sql: "INSERT INTO batches (name, source_file, created_at) VALUES (?, ?, ?)",
            arguments: [name, sourceFile, stamp])
        return db.lastInsertedRowID
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
