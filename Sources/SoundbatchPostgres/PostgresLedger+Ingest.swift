import Foundation
import PostgresNIO
import SoundbatchCore

extension PostgresLedger {
    public func record(_ feed: Feed, batch: String, sourceFile: String, now: Date) async throws {
        let stamp = Timestamp.string(now)
        try await transaction(once: true) { connection in
            let logger = self.logger
            // Two feeds creating one batch at once: the second waits for the first, then finds it.
            try await connection.query(
                """
                INSERT INTO batches (name, source_file, created_at) VALUES (\(batch), \(sourceFile), \(stamp))
                ON CONFLICT (name) DO NOTHING
                """, logger: logger)
            let batchID = try await connection.query(
                "SELECT id FROM batches WHERE name = \(batch)", logger: logger
            ).collect()[0].decode(Int64.self)
            let ingestID = try await connection.query(
                """
                INSERT INTO ingests (batch_id, source_file, started_at) VALUES (\(batchID), \(sourceFile), \(stamp))
                RETURNING id
                """, logger: logger
            ).collect()[0].decode(Int64.self)
            // The planner knows the jobs table as it was before this feed (its statistics are
            // of what was committed): nearly empty, so that scanning it looks cheapest. The
            // feed's lookups go to the index of keys whatever the table's size (`find`).
            try await connection.query("SET LOCAL enable_seqscan = off", logger: logger)
            let wasEmpty = try await connection.query(
                "SELECT NOT EXISTS (SELECT 1 FROM jobs WHERE batch_id = \(batchID))", logger: logger
            ).collect()[0].decode(Bool.self)
            let writer = FeedWriter(
                connection: connection, logger: logger, batchID: batchID, ingestID: ingestID, batchWasEmpty: wasEmpty)
            if wasEmpty {
                try await writer.copy(feed, stamp: stamp)
            } else {
                // The rows come from a thread of their own (`RowPipeline`), a batch at a time.
                while let rows = feed.nextRows() {
                    try await writer.record(rows, stamp: stamp) { feed.took($0, problem: $1, $2) }
                }
            }
            let counts = try feed.verdict()
            try await writer.finish()
            try await connection.query(
                "UPDATE ingests SET new_jobs = \(counts.newJobs), known_jobs = \(counts.knownJobs) WHERE id = \(ingestID)",
                logger: logger)
            if let takes = feed.takes {
                let variations = LedgerSQL.addVariations(
                    batch: batchID, ingest: ingestID, now: stamp, takes: takes, dialect: .postgres)
                feed.addedVariations = try await connection.query(variations.postgres, logger: logger).collect().count
            }
        }
    }
}

/// Writes one feed's rows inside its transaction, a batch of rows per round trip: the rows
/// already in the ledger are found with one query and the new ones inserted with one; at
/// the end, the rows the file held are written as runs of ids. Rows are known by their key, as on SQLite
/// (`SoundbatchSQLite/SQLiteLedger+Ingest.swift`): an id, or a hash of the content and its
/// occurrence among identical rows.
private final class FeedWriter {
    private let connection: PostgresConnection
    private let logger: Logger
    private let batchID: Int64
    private let ingestID: Int64
    /// The jobs this feed has recorded or claimed: a second row with the key of one is a
    /// duplicate in the file, and at the end they are the rows its file held (`ingest_rows`).
    private var claimed = IDSet()
    /// The keys of rows without an id given so far.
    private var contentKeys = ContentKeys()
    /// The batch had no jobs before this feed: a key is in the ledger only if this feed put
    /// it there (`added`), and none is looked up. A fresh feed of 200,000 rows spent a
    /// second looking up keys that could not be there.
    private let batchWasEmpty: Bool
    private var added: [String: Int64] = [:]

    init(connection: PostgresConnection, logger: Logger, batchID: Int64, ingestID: Int64, batchWasEmpty: Bool) {
        self.connection = connection
        self.logger = logger
        self.batchID = batchID
        self.ingestID = ingestID
        self.batchWasEmpty = batchWasEmpty
    }

    /// Feeds a batch that had no jobs: every row is new but the file's own repeats, told
    /// apart here (`CopyRows`), so nothing is looked up; the rows go by COPY into a table of
    /// the transaction as they are read, then into jobs in one statement. A round trip a
    /// batch of 512 rows, each side waiting for the other, took 3.8 s for 200,000 rows (the
    /// insert alone 1.3 s of it); this, 2.6 s. (Copied and inserted 50,000 rows at a time,
    /// the rows made into text on a task of their own meanwhile: 3.0 s.)
    func copy(_ feed: Feed, stamp: String) async throws {
        try await connection.query(
            """
            CREATE TEMPORARY TABLE feed_rows (key text, by_content bigint, line bigint, prompt text, length bigint,
                webhook text, metadata text, state text, problem text) ON COMMIT DROP
            """, logger: logger)
        var rows = CopyRows()
        try await connection.copyFrom(table: "feed_rows", logger: logger) { writer in
            while let batch = feed.nextRows() { try await writer.write(rows.text(of: batch, telling: feed)) }
        }
        let inserted = try await connection.query(
            """
            INSERT INTO jobs (\(unescaped: LedgerSQL.feedColumns))
            SELECT key, by_content, line, prompt, length, webhook, metadata, state, problem, \(batchID), \(stamp),
                   \(stamp), \(ingestID)
            FROM feed_rows ORDER BY line
            RETURNING id
            """, logger: logger)
        for try await id in inserted.decode(Int64.self) { claimed.insert(id...id) }
    }

    /// Writes the rows the file held, as runs of ids, in one statement.
    func finish() async throws {
        let runs = claimed.runs
        guard !runs.isEmpty else { return }
        try await connection.query(
            """
            INSERT INTO ingest_rows (ingest_id, first_job_id, last_job_id)
            SELECT \(ingestID), first, last FROM unnest(\(runs.map(\.lowerBound))::bigint[], \(runs.map(\.upperBound))::bigint[]) AS r(first, last)
            """, logger: logger)
    }

    /// What the ledger holds under a key.
    private struct Existing {
        var id: Int64
        var state: JobState?
        var prompt: String
        var audioLength: Int?
        var webhookURL: String?
        var metadata: String?
    }

    /// A row of the file, as strings.
    private struct Row {
        var row: RowBatch.Row
        var prompt: String
        var webhookURL: String?
        var metadata: String?
        var problem: String?
        var stem: String?
        var key: String
        var outcome: FeedOutcome = .new
    }

    func record(
        _ batch: RowBatch, stamp: String, each: (RowBatch.Row, String?, FeedOutcome) -> Void
    ) async throws {
        var rows = batch.text.withUnsafeBufferPointer { text in
            batch.rows.map { row in
                let key = String(text, row.key)
                return Row(
                    row: row, prompt: String(text, row.prompt), webhookURL: row.webhookURL.map { String(text, $0) },
                    metadata: row.metadata.map { String(text, $0) }, problem: row.problem.map { String(text, $0) },
                    stem: row.contentStemCount.map { String(decoding: key.utf8.prefix($0), as: UTF8.self) }, key: key)
            }
        }
        var existing = try await find(rows.map(\.key))
        /// Keys given to new rows of this batch, not yet inserted.
        var adding = Set<String>()
        var replaced: [(id: Int64, row: Int)] = []
        var recolumned: [(key: String, row: Int)] = []
        for index in rows.indices {
            var row = rows[index]
            var place = row.stem.map(contentKeys.firstPlace) ?? 1
            if let stem = row.stem { row.key = ContentKeys.key(stem, place) }
            while true {
                if !adding.contains(row.key) {
                    if existing[row.key] == nil, row.stem != nil, row.key != rows[index].key {
                        existing.merge(try await find([row.key])) { old, _ in old }
                    }
                    guard let found = existing[row.key] else {
                        adding.insert(row.key)
                        row.outcome = .new
                        break
                    }
                    if !claimed.contains(found.id) {
                        claimed.insert(found.id...found.id)
                        let sameContent =
                            found.prompt == row.prompt && found.audioLength == row.row.audioLength
                            // A row that names no webhook matches a job whose webhook an earlier soundbatch
                            // filled in from --webhook-url.
                            && (row.webhookURL == nil || found.webhookURL == row.webhookURL)
                        let replaces: Bool
                        (row.outcome, replaces) = FeedOutcome.ofKnownRow(
                            key: row.key, sameContent: sameContent, setAside: found.state == .invalid,
                            rowIsValid: row.problem == nil)
                        if replaces {
                            replaced.append((found.id, index))
                        } else if found.metadata != row.metadata {
                            recolumned.append((row.key, index))
                        }
                        break
                    }
                }
                // Taken by an earlier row of this file.
                guard let stem = row.stem else {
                    row.outcome = .duplicate(id: row.key)
                    break
                }
                place += 1
                row.key = ContentKeys.key(stem, place)
            }
            if let stem = row.stem { contentKeys.took(stem, place) }
            rows[index] = row
        }
        try await insert(rows.filter { if case .new = $0.outcome { true } else { false } }, stamp: stamp)
        try await rewrite(rows, replaced: replaced, recolumned: recolumned, stamp: stamp)
        for row in rows { each(row.row, row.problem, row.outcome) }
    }

    /// Writes what the file says now of rows the ledger has: a row set aside as invalid (never
    /// sent) replaced by its correction; the sheet's own columns of another (a changed takes
    /// count, or category, counts).
    private func rewrite(
        _ rows: [Row], replaced: [(id: Int64, row: Int)], recolumned: [(key: String, row: Int)], stamp: String
    ) async throws {
        for (id, index) in replaced {
            let row = rows[index]
            try await connection.query(
                """
                UPDATE jobs SET source_line = \(row.row.line), prompt = \(row.prompt),
                    audio_length = \(row.row.audioLength), webhook_url = \(row.webhookURL), metadata = \(row.metadata),
                    state = \(row.row.state.rawValue), last_error = \(row.problem), updated_at = \(stamp)
                WHERE id = \(id)
                """, logger: logger)
        }
        for (key, index) in recolumned {
            try await connection.query(
                LedgerSQL.updateRowColumns(batch: batchID, rowKey: key, to: rows[index].metadata).postgres,
                logger: logger)
        }
    }

    /// The jobs of the batch under these keys, each looked up in the batch's index of keys
    /// (`OFFSET 0` keeps the lookup apart, so that it is made once a key). Planned on the
    /// statistics of a nearly empty table, `row_key = ANY(keys)` read the batch's whole
    /// index for each lookup, and a join of the keys with the table did the same for each
    /// key: a 200,000-row feed took 18 s and 30 s, psql's \copy of the file 0.7 s.
    private func find(_ keys: [String]) async throws -> [String: Existing] {
        var found: [String: Existing] = [:]
        if batchWasEmpty {
            // Rows this feed added are claimed: a row with one of their keys is a duplicate.
            for key in keys { if let id = added[key] { found[key] = Existing(id: id, prompt: "") } }
            return found
        }
        let rows = try await connection.query(
            """
            SELECT job.id, job.row_key, job.state, job.prompt, job.audio_length, job.webhook_url, job.metadata
            FROM unnest(\(keys)::text[]) AS wanted(key), LATERAL (
                SELECT * FROM jobs WHERE batch_id = \(batchID) AND row_key = wanted.key AND variation = 1 OFFSET 0
            ) AS job
            """, logger: logger)
        for try await (id, key, state, prompt, audioLength, webhookURL, metadata) in rows.decode(
            (Int64, String, String, String, Int?, String?, String?).self)
        {
            found[key] = Existing(
                id: id, state: JobState(rawValue: state), prompt: prompt, audioLength: audioLength,
                webhookURL: webhookURL, metadata: metadata)
        }
        return found
    }

    /// Inserts new rows in one statement, each column bound as one array: PostgreSQL plans a
    /// statement of ten parameters once, where a VALUES list of 512 rows had 4,608 of them.
    /// (Arrays hold no NULLs here: a mask says which of the four columns that may be empty are.)
    private func insert(_ rows: [Row], stamp: String) async throws {
        guard !rows.isEmpty else { return }
        let empty = rows.map { row in
            (row.row.audioLength == nil ? 1 : 0) | (row.webhookURL == nil ? 2 : 0) | (row.metadata == nil ? 4 : 0)
                | (row.problem == nil ? 8 : 0)
        }
        let inserted = try await connection.query(
            """
            INSERT INTO jobs (\(unescaped: LedgerSQL.feedColumns))
            SELECT key, by_content, line, prompt, CASE WHEN empty & 1 = 0 THEN length END,
                CASE WHEN empty & 2 = 0 THEN webhook END, CASE WHEN empty & 4 = 0 THEN metadata END, state,
                CASE WHEN empty & 8 = 0 THEN problem END, \(batchID), \(stamp), \(stamp), \(ingestID)
            FROM unnest(
                \(rows.map(\.key))::text[], \(rows.map { $0.stem == nil ? 0 : 1 })::bigint[],
                \(rows.map(\.row.line))::bigint[], \(rows.map(\.prompt))::text[],
                \(rows.map { $0.row.audioLength ?? 0 })::bigint[], \(rows.map { $0.webhookURL ?? "" })::text[],
                \(rows.map { $0.metadata ?? "" })::text[], \(rows.map(\.row.state.rawValue))::text[],
                \(rows.map { $0.problem ?? "" })::text[], \(empty)::bigint[]
            ) AS r(key, by_content, line, prompt, length, webhook, metadata, state, problem, empty)
            ON CONFLICT (batch_id, row_key) WHERE variation = 1 DO NOTHING
            RETURNING id, row_key
            """, logger: logger
        ).collect()
        guard inserted.count == rows.count else {
            throw LedgerError.failed(
                reason: "another feed into this batch ran at the same time; nothing of this one was kept: run it again")
        }
        for row in inserted {
            let (id, key) = try row.decode((Int64, String).self)
            claimed.insert(id...id)
            if batchWasEmpty { added[key] = id }
        }
    }
}

/// A new batch's rows as COPY's text, each told to the feed as it goes: a row whose id an
/// earlier row had is a duplicate, left out; identical rows without ids are numbered in the
/// file's order (`ContentKeys`).
struct CopyRows {
    private var keys = Set<String>()
    private var contentKeys = ContentKeys()

    mutating func text(of batch: RowBatch, telling feed: Feed) -> ByteBuffer {
        var out = ByteBuffer()
        batch.text.withUnsafeBufferPointer { text in
            for row in batch.rows {
                var key = String(text, row.key)
                if let count = row.contentStemCount {
                    let stem = String(decoding: key.utf8.prefix(count), as: UTF8.self)
                    var place = contentKeys.firstPlace(stem)
                    while keys.contains(ContentKeys.key(stem, place)) { place += 1 }
                    key = ContentKeys.key(stem, place)
                    contentKeys.took(stem, place)
                } else if keys.contains(key) {
                    feed.took(row, problem: row.problem.map { String(text, $0) }, .duplicate(id: key))
                    continue
                }
                keys.insert(key)
                CopyText.row(
                    [
                        .text(Array(key.utf8)), .number(row.contentStemCount == nil ? 0 : 1), .number(row.line),
                        .range(row.prompt), row.audioLength.map { .number($0) } ?? .null,
                        row.webhookURL.map { .range($0) } ?? .null, row.metadata.map { .range($0) } ?? .null,
                        .text(Array(row.state.rawValue.utf8)), row.problem.map { .range($0) } ?? .null
                    ], of: text, to: &out)
                feed.took(row, problem: row.problem.map { String(text, $0) }, .new)
            }
        }
        return out
    }
}

/// Rows in COPY's text format: fields split by tabs, a row ended by a newline, `\N` for a
/// null, and a backslash, tab, newline or carriage return in a value escaped.
enum CopyText {
    enum Field {
        case null
        case number(Int)
        case text([UInt8])
        /// A field of the row batch's text.
        case range(Range<Int>)
    }

    static func row(_ fields: [Field], of text: UnsafeBufferPointer<UInt8>, to out: inout ByteBuffer) {
        for (index, field) in fields.enumerated() {
            if index > 0 { out.writeInteger(UInt8(ascii: "\t")) }
            switch field {
            case .null: out.writeStaticString("\\N")
            case let .number(number): out.writeString(String(number))
            case let .text(bytes): escaped(bytes[...], to: &out)
            case let .range(range): escaped(text[range], to: &out)
            }
        }
        out.writeInteger(UInt8(ascii: "\n"))
    }

    private static func escaped<Bytes: Collection<UInt8>>(_ bytes: Bytes, to out: inout ByteBuffer) {
        for byte in bytes {
            switch byte {
            case UInt8(ascii: "\\"): out.writeStaticString("\\\\")
            case UInt8(ascii: "\t"): out.writeStaticString("\\t")
            case UInt8(ascii: "\n"): out.writeStaticString("\\n")
            case UInt8(ascii: "\r"): out.writeStaticString("\\r")
            default: out.writeInteger(byte)
            }
        }
    }
}
