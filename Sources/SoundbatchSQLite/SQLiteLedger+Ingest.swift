import Foundation
import GRDB
import SoundbatchCore

extension SQLiteLedger {
    /// Runs on the caller's thread, as SQLite works: the feed's rows come from a thread of
    /// their own (`RowPipeline`), so the two cores both work.
    public func record(_ feed: Feed, batch: String, sourceFile: String, now: Date) async throws {
        let stamp = Timestamp.string(now)
        try await exclusively {
            try translatingErrorsNow {
                try database.writeWithoutTransaction { db in
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
                    // A ledger with no jobs yet takes its first feed straight into its file, under a
                    // rollback journal that has nothing to save, and goes back to WAL after: through
                    // the WAL every page was written twice (once there, once by the checkpoint), and
                    // a 200,000-row feed ran 18% faster without (hyperfine, 12 runs each). Another
                    // process holding the file open keeps it in WAL, and the feed runs as before.
                    if try Int.fetchOne(db, sql: "SELECT NOT EXISTS (SELECT 1 FROM jobs)") == 1,
                        (try? String.fetchOne(db, sql: "PRAGMA journal_mode = DELETE")) == "delete"
                    {
                        defer { _ = try? String.fetchOne(db, sql: "PRAGMA journal_mode = WAL") }
                        return try feedRows(feed, db: db, batch: batch, sourceFile: sourceFile, stamp: stamp)
                    }
                    try feedRows(feed, db: db, batch: batch, sourceFile: sourceFile, stamp: stamp)
                }
            }
        }
    }

    /// The feed's one transaction: the batch, the feed, its rows and the variations they ask for.
    private func feedRows(_ feed: Feed, db: Database, batch: String, sourceFile: String, stamp: String) throws {
        try db.inTransaction {
            let batchID = try Self.feedBatchID(db, name: batch, sourceFile: sourceFile, stamp: stamp)
            try db.execute(
                sql: "INSERT INTO ingests (batch_id, source_file, started_at) VALUES (?, ?, ?)",
                arguments: [batchID, sourceFile, stamp])
            let writer = try JobWriter(db: db, batchID: batchID, ingestID: db.lastInsertedRowID, stamp: stamp)
            while let rows = feed.nextRows() {
                try writer.record(rows) { feed.took($0, problem: $1, $2) }
            }
            let counts = try feed.verdict()
            try writer.finish(newJobs: counts.newJobs, knownJobs: counts.knownJobs)
            if let takes = feed.takes {
                feed.addedVariations = try db.rows(
                    LedgerSQL.addVariations(
                        batch: batchID, ingest: writer.ingestID, now: stamp, takes: takes, dialect: .sqlite)
                ).count
            }
            return .commit
        }
    }

    /// The batch's id, for a feed: a new batch is made.
    private static func feedBatchID(_ db: Database, name: String, sourceFile: String, stamp: String) throws -> Int64 {
        if let id = try Int64.fetchOne(db, sql: "SELECT id FROM batches WHERE name = ?", arguments: [name]) {
            return id
        }
        try db.execute(
            sql: "INSERT INTO batches (name, source_file, created_at) VALUES (?, ?, ?)",
            arguments: [name, sourceFile, stamp])
        return db.lastInsertedRowID
    }
}

/// Writes rows into the jobs table within the feed's transaction.
final class JobWriter {
    typealias Outcome = FeedOutcome

    private let db: Database
    private let batchID: Int64
    let ingestID: Int64
    private let stamp: String
    /// Inserts one row, and `chunkSize` rows in one go: SQLite's cost of running a statement
    /// is then paid once per chunk, not per row (15% fewer instructions in SQLite, measured
    /// with callgrind on a C program doing the same inserts).
    private let insertOne: FastStatement
    private let insertChunk: FastStatement
    /// Finds a job already in the ledger by its key, and what it holds.
    private let findKnown: FastStatement
    /// The jobs this feed has recorded or claimed, by id: a second row with the key of one
    /// is a duplicate in the file, and at the end they are the rows its file held
    /// (`ingest_rows`). A bit per job: 125 KB for a million.
    private var claimed = IDSet()
    /// The last chunk's rows were all in the ledger already: a file fed again. Its rows go
    /// straight to `claimKnown`, without first trying (and failing) to insert them.
    private var refeeding = false
    private static let chunkSize = 32
    /// The values bound for each row; the batch, time and feed are bound once.
    private static let rowValues = LedgerSQL.rowValueCount
    /// The keys of rows without an id given so far.
    private var contentKeys = ContentKeys()

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
                return "(\(own), ?\(fixed + 1), ?\(fixed + 2), ?\(fixed + 2), ?\(fixed + 3))"
            }
            // Several rows: OR IGNORE, since a statement that could fail halfway (on a NOT
            // NULL column) makes SQLite copy each page it touches aside to undo it: that was
            // most of the feed's writes. A row it ignored goes again through `insertOne`,
            // which would fail on such a column.
            let statement = try FastStatement(
                db,
                text: """
                    INSERT \(rows > 1 ? "OR IGNORE " : "")INTO jobs (\(LedgerSQL.feedColumns))
                    VALUES \(values.joined(separator: ",\n"))
                    \(rows > 1 ? "" : "ON CONFLICT (batch_id, row_key) WHERE variation = 1 DO NOTHING")
                    """)
            statement.bindOnce(from: Int32(fixed + 1), [.integer(batchID), .text(stamp), .integer(ingestID)])
            return statement
        }
        insertOne = try insert(rows: 1)
        insertChunk = try insert(rows: Self.chunkSize)
        findKnown = try FastStatement(
            db,
            text: """
                SELECT id, state, prompt, audio_length, webhook_url, metadata FROM jobs
                WHERE batch_id = ?1 AND row_key = ?2 AND variation = 1
                """)
        findKnown.bindOnce(from: 1, [.integer(batchID)])
    }

    /// Writes the rows the file held as runs of ids, and the feed's counts. A mark on each
    /// job instead rewrote the whole table when a sheet was fed again: nearly half the time
    /// of feeding 200,000 known rows (hyperfine, 8 runs each).
    func finish(newJobs: Int, knownJobs: Int) throws {
        let held = try db.makeStatement(
            sql: "INSERT INTO ingest_rows (ingest_id, first_job_id, last_job_id) VALUES (?, ?, ?)")
        for run in claimed.runs {
            try held.execute(arguments: [ingestID, run.lowerBound, run.upperBound])
        }
        try db.execute(
            sql: "UPDATE ingests SET new_jobs = ?, known_jobs = ? WHERE id = ?",
            arguments: [newJobs, knownJobs, ingestID])
    }

    /// Records the batch's rows and tells `each` what became of each row, in file order,
    /// with the row's problem if it has one.
    func record(_ batch: RowBatch, each: (RowBatch.Row, String?, Outcome) throws -> Void) throws {
        try batch.text.withUnsafeBufferPointer { text in
            var start = batch.rows.startIndex
            while start < batch.rows.endIndex {
                let chunk = batch.rows[start..<min(start + Self.chunkSize, batch.rows.endIndex)]
                start = chunk.endIndex
                let inChunk = chunk.count == Self.chunkSize && !refeeding
                let leftOver = inChunk ? try insert(chunk, text: text) : Set(chunk.map(\.line))
                var known = 0
                for row in chunk {
                    // A row the chunk could not insert is in the ledger already, or its key
                    // was taken by an earlier row of this file: it goes on its own.
                    let outcome = leftOver.contains(row.line) ? try record(row, text: text) : .new
                    if case .known = outcome { known += 1 }
                    try each(row, row.problem.map { String(text, $0) }, outcome)
                }
                refeeding = known == chunk.count
            }
        }
    }

    /// Inserts the chunk's rows under their first keys; returns the lines of the rows it
    /// could not insert.
    private func insert(_ chunk: ArraySlice<RowBatch.Row>, text: UnsafeBufferPointer<UInt8>) throws -> Set<Int> {
        var values: [FastStatement.Value] = []
        values.reserveCapacity(chunk.count * Self.rowValues)
        for row in chunk {
            Self.append(row, key: UnsafeBufferPointer(rebasing: text[row.key]), text: text, to: &values)
        }
        try insertChunk.run(values)
        let inserted = db.changesCount
        // A statement's new rows take consecutive ids, after the largest one before it.
        let last = db.lastInsertedRowID
        if inserted > 0 { claimed.insert(last - Int64(inserted) + 1...last) }
        if inserted == chunk.count { return [] }
        let lines = Set(chunk.map(\.line))
        if inserted == 0 { return lines }
        let insertedLines = try Int.fetchSet(
            db, sql: "SELECT source_line FROM jobs WHERE id BETWEEN ? AND ?",
            arguments: [last - Int64(inserted) + 1, last])
        guard insertedLines.count == inserted, insertedLines.isSubset(of: lines) else {
            throw DatabaseError(message: "the ledger did not number a feed's new jobs in order")
        }
        return lines.subtracting(insertedLines)
    }

    /// Appends the row's own values for an insert, in the order of its columns.
    private static func append(
        _ row: RowBatch.Row, key: UnsafeBufferPointer<UInt8>, text: UnsafeBufferPointer<UInt8>,
        to values: inout [FastStatement.Value]
    ) {
        func bytes(_ range: Range<Int>?) -> FastStatement.Value {
            range.map { .bytes(UnsafeBufferPointer(rebasing: text[$0])) } ?? .null
        }
        values += [
            .bytes(key), .integer(row.contentStemCount == nil ? 0 : 1), .integer(Int64(row.line)), bytes(row.prompt),
            row.audioLength.map { .integer(Int64($0)) } ?? .null,
            bytes(row.webhookURL), bytes(row.metadata), .text(row.state.rawValue), bytes(row.problem)
        ]
    }

    /// Records one row; `text` holds the bytes that the row's ranges point into.
    private func record(_ row: RowBatch.Row, text: UnsafeBufferPointer<UInt8>) throws -> Outcome {
        let firstKey = UnsafeBufferPointer(rebasing: text[row.key])
        guard let stemCount = row.contentStemCount else {
            return try record(row, key: firstKey, text: text)
                ?? .duplicate(id: String(decoding: firstKey, as: UTF8.self))
        }
        // No id column: the content names the row, and identical rows are told apart
        // by their order among themselves.
        let stem = String(decoding: firstKey.prefix(stemCount), as: UTF8.self)
        var place = contentKeys.firstPlace(stem)
        while true {
            var key = ContentKeys.key(stem, place)
            if let outcome = try key.withUTF8({ try record(row, key: $0, text: text) }) {
                contentKeys.took(stem, place)
                return outcome
            }
            place += 1
        }
    }

    /// What a job already in the ledger holds, as far as a feed compares it.
    private struct Existing {
        var id: Int64
        var state: JobState?
        var sameContent: Bool
        /// The row's own columns are as the file has them (else they are written anew).
        var sameColumns: Bool
    }

    /// Claims the job under `key` for this feed, if the ledger has one this feed has not
    /// claimed yet, comparing its content with the row's bytes (no strings are made: a
    /// file fed again goes through here for every row). Nil also when this feed has it already.
    private func claim(
        key: UnsafeBufferPointer<UInt8>, _ row: RowBatch.Row, text: UnsafeBufferPointer<UInt8>
    ) throws
        -> Existing?
    {
        var existing: Existing?
        try findKnown.forEachRow([.bytes(key)], from: 2) { columns in
            func same(_ index: Int32, _ range: Range<Int>?) -> Bool {
                guard let range else { return columns.isNull(index) }
                return !columns.isNull(index) && columns.bytes(index).elementsEqual(text[range])
            }
            let audioLength = columns.isNull(3) ? nil : Int(columns.int64(3))
            existing = Existing(
                id: columns.int64(0),
                state: JobState(rawValue: String(decoding: columns.bytes(1), as: UTF8.self)),
                // A row that names no webhook matches a job whose webhook an earlier soundbatch
                // filled in from --webhook-url.
                sameContent: same(2, row.prompt) && audioLength == row.audioLength
                    && (row.webhookURL == nil || same(4, row.webhookURL)),
                sameColumns: same(5, row.metadata))
        }
        guard let found = existing, !claimed.contains(found.id) else { return nil }
        claimed.insert(found.id...found.id)
        return found
    }

    /// Inserts the row under `key`, or claims the job already there for this feed.
    /// Returns nil when an earlier row of this feed has the key already.
    private func record(
        _ row: RowBatch.Row, key: UnsafeBufferPointer<UInt8>, text: UnsafeBufferPointer<UInt8>
    ) throws -> Outcome? {
        var found = refeeding ? try claim(key: key, row, text: text) : nil
        if found == nil {
            var values: [FastStatement.Value] = []
            Self.append(row, key: key, text: text, to: &values)
            try insertOne.run(values)
            if db.changesCount == 1 {
                claimed.insert(db.lastInsertedRowID...db.lastInsertedRowID)
                return .new
            }
            found = try claim(key: key, row, text: text)
        }
        guard let existing = found else { return nil }
        let (outcome, replaces) = Outcome.ofKnownRow(
            key: String(decoding: key, as: UTF8.self), sameContent: existing.sameContent,
            setAside: existing.state == .invalid, rowIsValid: row.problem == nil)
        if replaces {
            // A row set aside as invalid was never sent: take the corrected one in its place.
            try db.execute(
                sql: """
                    UPDATE jobs SET source_line = ?, prompt = ?, audio_length = ?, webhook_url = ?, metadata = ?,
                                    state = ?, last_error = ?, updated_at = ?
                    WHERE id = ?
                    """,
                arguments: [
                    row.line, String(text, row.prompt), row.audioLength, row.webhookURL.map { String(text, $0) },
                    row.metadata.map { String(text, $0) }, row.state.rawValue, row.problem.map { String(text, $0) },
                    stamp, existing.id
                ])
        } else if !existing.sameColumns {
            // The sheet's own columns as it says them now: a changed takes count, or category, counts.
            _ = try db.rows(
                LedgerSQL.updateRowColumns(
                    batch: batchID, rowKey: String(decoding: key, as: UTF8.self),
                    to: row.metadata.map { String(text, $0) }))
        }
        return outcome
    }
}
