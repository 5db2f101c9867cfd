import Foundation
import GRDB
import SoundbatchCore

extension ReportQuery {
    /// The WHERE clause shared by every report query over `jobs j`, with its arguments.
    /// Resolves the batch's name first, so the scan needs no join.
    func filter(
        _ db: Database, submittedAt: String = "j.submitted_at"
    ) throws
        -> (sql: String, arguments: StatementArguments)
    {
        let (sql, batchID) = try resolvedFilter(db, submittedAt: submittedAt)
        return (sql, [batchID, since, until])
    }

    /// The same, with the arguments for a FastStatement.
    func fastFilter(_ db: Database) throws -> (sql: String, values: [FastStatement.Value]) {
        let (sql, batchID) = try resolvedFilter(db)
        return (
            sql,
            [batchID.map { .integer($0) } ?? .null, since.map { .text($0) } ?? .null, until.map { .text($0) } ?? .null]
        )
    }

    private func resolvedFilter(_ db: Database, submittedAt: String = "j.submitted_at") throws -> (String, Int64?) {
        let batchID = try batch.map { try SQLiteLedger.batchID(db, named: $0) }
        return (
            """
            (?1 IS NULL OR j.batch_id = ?1) AND (?2 IS NULL OR \(submittedAt) >= ?2) \
            AND (?3 IS NULL OR \(submittedAt) < ?3)
            """, batchID
        )
    }
}

extension SQLiteLedger {
    /// Totals per group and overall, summed here in one scan of the jobs (see FastStatement).
    public func spendReport(_ query: ReportQuery) async throws -> SpendReport {
        try await read { db in
            let (filter, values) = try query.fastFilter(db)
            let names = try Dictionary(
                uniqueKeysWithValues: Row.fetchAll(db, sql: "SELECT id, name FROM batches")
                    .map { ($0["id"] as Int64, $0["name"] as String) })
            let scan = try FastStatement(
                db,
                sql: """
                    SELECT j.batch_id, j.state, j.credit_estimate, j.conversion_cost, j.audio_length, j.submitted_at,
                           j.request_in_doubt, j.settled_by_callback
                    FROM jobs j WHERE \(filter)
                    """)
            let states = JobState.allCases.map { Array($0.rawValue.utf8) }
            var groups: [String: SpendTotals] = [:]
            var batchKeys: [Int64: String] = [:]
            try scan.forEachRow(values) { row in
                let stateBytes = row.bytes(1)
                guard let stateIndex = states.firstIndex(where: { $0.elementsEqual(stateBytes) }) else { return }
                let state = JobState.allCases[stateIndex]
                let submitted = row.bytes(5)
                let key: String
                switch query.grouping {
                case .batch:
                    let id = row.int64(0)
                    if let known = batchKeys[id] {
                        key = known
                    } else {
                        key = names[id] ?? "?"
                        batchKeys[id] = key
                    }
                case .day:
                    key =
                        submitted.count >= 10
                        ? String(decoding: UnsafeBufferPointer(rebasing: submitted[0..<10]), as: UTF8.self)
                        : "not submitted"
                case .state: key = state.rawValue
                }
                groups[key, default: SpendTotals.empty(key)].count(
                    state: state,
                    estimate: row.isNull(2) ? nil : row.double(2),
                    cost: row.isNull(3) ? nil : row.double(3),
                    seconds: row.isNull(4) ? nil : Double(row.int64(4)),
                    submitted: submitted,
                    inDoubt: row.int64(6) != 0, settledByCallback: row.int64(7) != 0)
            }
            // Earlier takes of retried jobs: what they were estimated at and charged still counts.
            let (takesFilter, takesArguments) = try query.filter(db, submittedAt: "t.submitted_at")
            let takes = try Row.fetchCursor(
                db,
                sql: """
                    SELECT j.batch_id, t.state, t.credit_estimate, t.conversion_cost, t.submitted_at, t.request_in_doubt,
                           t.paid_twice
                    FROM takes t JOIN jobs j ON j.id = t.job_id WHERE \(takesFilter)
                    """, arguments: takesArguments)
            while let take = try takes.next() {
                let submitted: String? = take["submitted_at"]
                let key: String =
                    switch query.grouping {
                    case .batch: names[take["batch_id"]] ?? "?"
                    case .day: submitted.map { String($0.prefix(10)) } ?? "not submitted"
                    case .state: take["state"]
                    }
                groups[key, default: SpendTotals.empty(key)].countEarlierTake(
                    estimate: take["credit_estimate"], cost: take["conversion_cost"], inDoubt: take["request_in_doubt"],
                    paidTwice: take["paid_twice"])
            }
            return SpendReport(grouping: query.grouping, groups: groups.values)
        }
    }

    public func creditsBySecond(_ query: ReportQuery) async throws -> [CreditPoint] {
        try await read { db in
            let (filter, arguments) = try query.filter(db)
            let (takesFilter, _) = try query.filter(db, submittedAt: "t.submitted_at")
            return try Row.fetchAll(
                db,
                sql: """
                    SELECT t, TOTAL(e) AS e, TOTAL(c) AS c FROM (\(LedgerSQL.creditEvents(filter: filter, takesFilter: takesFilter)))
                    GROUP BY t ORDER BY t
                    """, arguments: arguments
            ).map { CreditPoint(time: $0["t"], estimated: $0["e"], charged: $0["c"]) }
        }
    }

    public func failedJobs(_ query: ReportQuery, limit: Int) async throws -> [FailedJob] {
        try await read { db in
            let (filter, arguments) = try query.filter(db)
            return try Row.fetchAll(
                db,
                sql: LedgerSQL.failedJobs(filter: filter, limit: limit), arguments: arguments
            ).map { row in
                FailedJob(ledgerRow: (0..<row.count).map { LedgerValue(row[$0]) })
            }
        }
    }

    /// The metadata keys (extra CSV columns) of the jobs a report covers, in order of first use.
    public func metadataKeys(_ query: ReportQuery) async throws -> [String] {
        try await read { db in
            let (filter, arguments) = try query.filter(db)
            return try String.fetchAll(
                db,
                sql: """
                    SELECT m.key FROM jobs j, json_each(j.metadata) m
                    WHERE \(filter) AND j.metadata IS NOT NULL
                    GROUP BY m.key ORDER BY MIN(j.id), MIN(m.id)
                    """, arguments: arguments)
        }
    }

    public func forEachReportJob(
        _ query: ReportQuery, metadataKeys: [String], _ body: (ReportJob) throws -> Void
    ) throws {
        try readNow { db in
            let (filter, arguments) = try query.filter(db)
            let (extracts, keys) = Self.metadataExtracts(metadataKeys, from: 4)  // after the filter's ?1 to ?3
            let lines = try FastStatement(
                db,
                sql: """
                    SELECT \(LedgerSQL.reportLine(earlierTake: false))\(extracts)
                    FROM jobs j JOIN batches b ON b.id = j.batch_id
                    WHERE \(filter) ORDER BY j.batch_id, j.id
                    """, arguments: arguments + keys)
            try lines.forEachRow([]) { try body(ReportJob(ledgerRow: $0.ledgerValues)) }
        }
    }

    public func earlierTakes(_ query: ReportQuery, metadataKeys: [String]) async throws -> [ReportJob] {
        try await read { db in
            let (filter, arguments) = try query.filter(db, submittedAt: "t.submitted_at")
            let (extracts, keys) = Self.metadataExtracts(metadataKeys, from: 4)  // after the filter's ?1 to ?3
            return try Row.fetchAll(
                db,
                sql: """
                    SELECT \(LedgerSQL.reportLine(earlierTake: true))\(extracts) FROM \(LedgerSQL.earlierTakes)
                    WHERE \(filter) ORDER BY j.batch_id, j.id, t.take
                    """, arguments: arguments + keys
            ).map(ReportJob.init)
        }
    }

    /// The metadata values of `j`, in the order of `keys`, as columns of a SELECT whose
    /// arguments go on from `first`. The values come out of SQLite already.
    private static func metadataExtracts(_ keys: [String], from first: Int) -> (String, StatementArguments) {
        var arguments: StatementArguments = []
        var extracts = ""
        for (index, key) in keys.enumerated() {
            // A JSON path cannot name a key holding a quote, a backslash or a control
            // character; json_each can, more slowly, so only those take it.
            if key.unicodeScalars.contains(where: { $0 == "\"" || $0 == "\\" || $0.value < 0x20 }) {
                arguments += [key]
                extracts += ", (SELECT value FROM json_each(j.metadata) WHERE key = ?\(index + first))"
            } else {
                arguments += ["$.\"" + key + "\""]
                extracts += ", json_extract(j.metadata, ?\(index + first))"
            }
        }
        return (extracts, arguments)
    }
}

extension SQLiteLedger {
    public func pendingForecast(batchID: Int64) async throws -> PendingForecast {
        try await read { db in
            // Only a job the service accepted has an estimate, and a task: the index of tasks
            // finds those without reading the rest of the batch.
            let average = try Double.fetchOne(db, sql: LedgerSQL.averageEstimate("?1", indexOfTasks: "INDEXED BY jobs_by_task"), arguments: [batchID])
            let pending = try Int.fetchOne(
                db, sql: "SELECT COUNT(*) FROM jobs WHERE batch_id = ? AND state = ?",
                arguments: [batchID, JobState.pending])
            return PendingForecast(pending: pending ?? 0, averageEstimate: average)
        }
    }

    public func batchSettings(batch: String?) async throws -> [(name: String, settings: BatchSettings?)] {
        try await read { db in
            if let batch { _ = try SQLiteLedger.batchID(db, named: batch) }
            return try Row.fetchAll(
                db, sql: "SELECT name, settings FROM batches WHERE ?1 IS NULL OR name = ?1", arguments: [batch]
            ).map { ($0["name"], ($0["settings"] as String?).flatMap(BatchSettings.init(json:))) }
        }
    }

    public func failureReasons(batch: String?) async throws -> [(batch: String, failure: BatchStatus.Failure)] {
        try await read { db in
            try Row.fetchAll(
                db, sql: LedgerSQL.failureReasons(batchFilter: "(?1 IS NULL OR b.name = ?1)"), arguments: [batch]
            ).map { ($0[0], BatchStatus.Failure(state: $0[1], reason: $0[2] ?? "", jobs: $0[3])) }
        }
    }
}

extension ReportJob {
    init(_ row: Row) { self.init(ledgerRow: (0..<row.count).map { LedgerValue(row[$0]) }) }
}
