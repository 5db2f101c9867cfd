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

/// The columns soundbatch reads itself; every other column is metadata.
enum KnownColumn: String {
    case id, prompt, audioLength = "audio_length", webhookURL = "webhook_url"
}

/// What one CSV row says, once checked.
struct JobRow {
    var key: String?           // the row's `id`, when the file has that column
    var prompt: String
    var audioLengthText: String
    var audioLength: Int?
    var webhookURL: String?
    var metadata: String?
    var problem: String?

    /// What makes two rows the same job when the file has no `id` column.
    var content: String {
        [prompt, audioLength.map(String.init) ?? audioLengthText, webhookURL ?? ""].joined(separator: "\u{1F}")
    }
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

    /// The text of `range` in `bytes`.
    init(_ bytes: UnsafeBufferPointer<UInt8>, _ range: Range<Int>) {
        self.init(decoding: UnsafeBufferPointer(rebasing: bytes[range]), as: UTF8.self)
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

/// The header row: which column holds what.
struct Header {
    var names: [String]
    var id: Int?
    var prompt: Int
    var audioLength: Int?
    var webhookURL: Int?
    /// Indices and names of the columns kept as metadata.
    var extra: [(index: Int, name: String)]

    static func parse(_ record: CSVRecord) -> Result<Header, HeaderProblem> {
        if let problem = record.problem { return .failure(HeaderProblem("the header: \(problem)")) }
        let names = record.fields.map { $0.trimmed.lowercased() }
        var seen: [String: Int] = [:]
        for (index, name) in names.enumerated() {
            if name.isEmpty {
                return .failure(HeaderProblem("column \(index + 1) of the header has no name; name every column, or delete the empty column"))
            }
            if let first = seen[name] {
                return .failure(HeaderProblem("the header names \"\(name)\" twice (columns \(first + 1) and \(index + 1)); column names must be unique"))
            }
            seen[name] = index
        }
        guard let prompt = seen[KnownColumn.prompt.rawValue] else {
            return .failure(HeaderProblem("the header has no prompt column (found: \(names.joined(separator: ", "))); the first line must name the columns, one of them \"prompt\""))
        }
        let known = Set([KnownColumn.id, .prompt, .audioLength, .webhookURL].map(\.rawValue))
        return .success(Header(
            names: names,
            id: seen[KnownColumn.id.rawValue],
            prompt: prompt,
            audioLength: seen[KnownColumn.audioLength.rawValue],
            webhookURL: seen[KnownColumn.webhookURL.rawValue],
            extra: names.enumerated().filter { !known.contains($0.element) }.map { ($0.offset, $0.element) }))
    }

    struct HeaderProblem: Error { var text: String; init(_ text: String) { self.text = text } }

    /// Reads and checks one row. A row with a problem still yields its values, so that
    /// --skip-invalid can record it.
    func row(from record: CSVRecord) -> JobRow {
        let fields = record.fields
        func field(_ index: Int?) -> String {
            guard let index, index < fields.count else { return "" }
            return fields[index]
        }
        var problem = record.problem
        func flag(_ text: String) { if problem == nil { problem = text } }

        if fields.count > names.count {
            flag("this row has \(fields.count) fields but the header has \(names.count); enclose fields that contain commas in quotes")
        }
        let prompt = field(self.prompt).trimmed
        if prompt.isEmpty { flag("the prompt is empty; describe the sound to generate") }

        let audioLengthText = field(audioLength).trimmed
        var audioLength: Int?
        if !audioLengthText.isEmpty {
            if let seconds = Int(audioLengthText), (1...600).contains(seconds) {
                audioLength = seconds
            } else {
                flag("audio_length \"\(audioLengthText)\" is not a whole number of seconds from 1 to 600; write one, or leave it empty for the service's default")
            }
        }

        let webhookText = field(webhookURL).trimmed
        if !webhookText.isEmpty && !Self.isWebURL(webhookText) {
            flag("webhook_url \"\(webhookText)\" is not an absolute http or https URL; write one like https://example.com/hook, or leave it empty")
        }

        var key: String?
        if let id {
            let text = field(id).trimmed
            if text.isEmpty { flag("the id is empty; give every row an id, unique in the file") } else { key = text }
        }

        return JobRow(
            key: key,
            prompt: prompt,
            audioLengthText: audioLengthText,
            audioLength: audioLength,
            webhookURL: webhookText.isEmpty ? nil : webhookText,
            metadata: metadata(fields),
            problem: problem)
    }

    static func isWebURL(_ text: String) -> Bool {
        guard let url = URL(string: text), let scheme = url.scheme?.lowercased(),
              scheme == "http" || scheme == "https", let host = url.host, !host.isEmpty
        else { return false }
        return true
    }

    /// The extra columns as a JSON object, in header order; nil when there are none.
    private func metadata(_ fields: [String]) -> String? {
        guard !extra.isEmpty else { return nil }
        var json = "{"
        for (position, column) in extra.enumerated() {
            if position > 0 { json += "," }
            JSON.appendString(column.name, to: &json)
            json += ":"
            JSON.appendString(column.index < fields.count ? fields[column.index] : "", to: &json)
        }
        json += "}"
        return json
    }
}

/// Writes rows into the jobs table within the feed's transaction.
struct JobWriter {
    enum Outcome { case new, known, conflict(String) }

    private let db: Database
    private let batchID: Int64
    private let ingestID: Int64
    private let stamp: String
    /// Inserts one row, and `chunkSize` rows in one go: SQLite's cost of running a statement
    /// is then paid once per chunk, not per row (15% fewer instructions in SQLite, measured
    /// with callgrind on a C program doing the same inserts).
    private let insertOne: FastStatement
    private let insertChunk: FastStatement
    private static let chunkSize = 32
    /// The values bound for each row; the batch, time and feed are bound once.
    private static let rowValues = 8
    /// Content stems seen more than once in this file, and the highest occurrence given.
    /// Only duplicates land here, so memory stays flat for ordinary files.
    private var occurrences: [String: Int] = [:]

    init(db: Database, batchID: Int64, ingestID: Int64, stamp: String) throws {
        self.db = db
        self.batchID = batchID
        self.ingestID = ingestID
        self.stamp = stamp
        func insert(rows: Int) throws -> FastStatement {
            let fixed = rows * Self.rowValues
            let values = (0..<rows).map { row in
                let first = row * Self.rowValues
                let own = (1...Self.rowValues).map { "?\(first + $0)" }.joined(separator: ", ")
                return "(\(own), ?\(fixed + 1), ?\(fixed + 2), ?\(fixed + 2), ?\(fixed + 3), ?\(fixed + 3))"
            }
            // Several rows: OR IGNORE, since a statement that could fail halfway (on a NOT
            // NULL column) makes SQLite copy each page it touches aside to undo it: that was
            // most of the feed's writes. A row it ignored goes again through `insertOne`,
            // which would fail on such a column.
            let statement = try FastStatement(db, sql: """
                INSERT \(rows > 1 ? "OR IGNORE " : "")INTO jobs (
                    row_key, source_line, prompt, audio_length, webhook_url, metadata, state, last_error,
                    batch_id, created_at, updated_at, ingest_id, seen_ingest_id)
                VALUES \(values.joined(separator: ",\n"))
                \(rows > 1 ? "" : "ON CONFLICT (batch_id, row_key) DO NOTHING")
                """)
            statement.bindOnce(from: Int32(fixed + 1), [.integer(batchID), .text(stamp), .integer(ingestID)])
            return statement
        }
        insertOne = try insert(rows: 1)
        insertChunk = try insert(rows: Self.chunkSize)
    }

    /// Records the batch's rows and tells `each` what became of each row, in file order,
    /// with the row's problem if it has one.
    mutating func record(_ batch: RowBatch, each: (RowBatch.Row, String?, Outcome) throws -> Void) throws {
        try batch.text.withUnsafeBufferPointer { text in
            var start = batch.rows.startIndex
            while start < batch.rows.endIndex {
                let chunk = batch.rows[start..<min(start + Self.chunkSize, batch.rows.endIndex)]
                start = chunk.endIndex
                let leftOver = chunk.count == Self.chunkSize ? try insert(chunk, text: text) : Set(chunk.map(\.line))
                for row in chunk {
                    // A row the chunk could not insert is in the ledger already, or its key
                    // was taken by an earlier row of this file: it goes on its own.
                    let outcome = leftOver.contains(row.line) ? try record(row, text: text) : .new
                    try each(row, row.problem.map { String(text, $0) }, outcome)
                }
            }
        }
    }

    /// Inserts the chunk's rows under their first keys; returns the lines of the rows it
    /// could not insert.
    private func insert(_ chunk: ArraySlice<RowBatch.Row>, text: UnsafeBufferPointer<UInt8>) throws -> Set<Int> {
        var values: [FastStatement.Value] = []
        values.reserveCapacity(chunk.count * Self.rowValues)
        for row in chunk { Self.append(row, key: UnsafeBufferPointer(rebasing: text[row.key]), text: text, to: &values) }
        try insertChunk.run(values)
        let inserted = db.changesCount
        if inserted == chunk.count { return [] }
        let lines = Set(chunk.map(\.line))
        if inserted == 0 { return lines }
        // A statement's new rows take consecutive ids, after the largest one before it.
        let last = db.lastInsertedRowID
        let insertedLines = try Int.fetchSet(db, sql: "SELECT source_line FROM jobs WHERE id BETWEEN ? AND ?",
                                             arguments: [last - Int64(inserted) + 1, last])
        guard insertedLines.count == inserted, insertedLines.isSubset(of: lines) else {
            throw DatabaseError(message: "the ledger did not number a feed's new jobs in order")
        }
        return lines.subtracting(insertedLines)
    }

    /// Appends the row's own values for an insert, in the order of its columns.
    private static func append(_ row: RowBatch.Row, key: UnsafeBufferPointer<UInt8>, text: UnsafeBufferPointer<UInt8>,
                               to values: inout [FastStatement.Value]) {
        func bytes(_ range: Range<Int>?) -> FastStatement.Value {
            range.map { .bytes(UnsafeBufferPointer(rebasing: text[$0])) } ?? .null
        }
        values += [.bytes(key), .integer(Int64(row.line)), bytes(row.prompt), row.audioLength.map { .integer(Int64($0)) } ?? .null,
                   bytes(row.webhookURL), bytes(row.metadata), .text(row.state.rawValue), bytes(row.problem)]
    }

    /// Records one row; `text` holds the bytes that the row's ranges point into.
    private mutating func record(_ row: RowBatch.Row, text: UnsafeBufferPointer<UInt8>) throws -> Outcome {
        let firstKey = UnsafeBufferPointer(rebasing: text[row.key])
        guard let stemCount = row.contentStemCount else {
            return try record(row, key: firstKey, text: text)
                ?? .conflict("the id \"\(String(decoding: firstKey, as: UTF8.self))\" is used by an earlier row of this file; ids must be unique")
        }
        // No id column: the content names the row, and identical rows are told apart
        // by their order among themselves.
        let stem = String(decoding: firstKey.prefix(stemCount), as: UTF8.self)
        var occurrence = occurrences[stem] ?? 1
        while true {
            var key = "\(stem)-\(occurrence)"
            if let outcome = try key.withUTF8({ try record(row, key: $0, text: text) }) {
                if occurrence > 1 { occurrences[stem] = occurrence }
                return outcome
            }
            occurrence += 1
        }
    }

    /// Inserts the row under `key`, or claims the job already there for this feed.
    /// Returns nil when an earlier row of this feed has the key already.
    private func record(_ row: RowBatch.Row, key: UnsafeBufferPointer<UInt8>, text: UnsafeBufferPointer<UInt8>) throws -> Outcome? {
        var values: [FastStatement.Value] = []
        Self.append(row, key: key, text: text, to: &values)
        try insertOne.run(values)
        if db.changesCount == 1 { return .new }

        // The key is in the ledger already: the rare path, where strings are made.
        let keyText = String(decoding: key, as: UTF8.self)
        guard let existing = try Row.fetchOne(db, sql: """
            UPDATE jobs SET seen_ingest_id = ? WHERE batch_id = ? AND row_key = ? AND seen_ingest_id <> ?
            RETURNING id, state, prompt, audio_length, webhook_url
            """, arguments: [ingestID, batchID, keyText, ingestID])
        else { return nil }

        let prompt = String(text, row.prompt)
        let webhookURL = row.webhookURL.map { String(text, $0) }

        let sameContent = existing["prompt"] == prompt
            && existing["audio_length"] as Int? == row.audioLength
            && existing["webhook_url"] as String? == webhookURL
        if existing["state"] == JobState.invalid.rawValue && (!sameContent || row.problem == nil) {
            // A row set aside as invalid was never sent: take the corrected one in its place.
            try db.execute(sql: """
                UPDATE jobs SET source_line = ?, prompt = ?, audio_length = ?, webhook_url = ?, metadata = ?,
                                state = ?, last_error = ?, updated_at = ?
                WHERE id = ?
                """, arguments: [row.line, prompt, row.audioLength, webhookURL, row.metadata.map { String(text, $0) },
                                 row.state.rawValue, row.problem.map { String(text, $0) }, stamp, existing["id"] as Int64])
            return .known
        }
        if !sameContent {
            return .conflict("the id \"\(keyText)\" is already in the ledger with a different prompt, audio_length or webhook_url; "
                + "give the changed row a new id, or feed it into another batch with --batch")
        }
        return .known
    }
}
