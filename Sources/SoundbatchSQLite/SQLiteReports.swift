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
                           j.request_in_doubt
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
                    inDoubt: row.int64(6) != 0)
            }
            // Earlier takes of retried jobs: what they were estimated at and charged still counts.
            let (takesFilter, takesArguments) = try query.filter(db, submittedAt: "t.submitted_at")
            let takes = try Row.fetchCursor(
                db,
                sql: """
                    SELECT j.batch_id, t.state, t.credit_estimate, t.conversion_cost, t.submitted_at
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
                    estimate: take["credit_estimate"], cost: take["conversion_cost"])
            }
            return SpendReport(grouping: query.grouping, groups: groups.values)
        }
    }

    /// Cumulative credits estimated (by submission time) and charged (by completion time),
    /// per second, thinned to at most `points` points.
    public func creditTimeline(_ query: ReportQuery, points: Int = 300) async throws -> [CreditPoint] {
        try await read { db in
            let (filter, arguments) = try query.filter(db)
            let seconds = try Row.fetchAll(
                db,
                sql: """
                    SELECT t, TOTAL(e) AS e, TOTAL(c) AS c FROM (
                        SELECT substr(j.submitted_at, 1, 19) AS t, j.credit_estimate AS e, NULL AS c
                        FROM jobs j WHERE \(filter) AND j.submitted_at IS NOT NULL
                        UNION ALL
                        SELECT substr(j.completed_at, 1, 19), NULL, j.conversion_cost
                        FROM jobs j WHERE \(filter) AND j.completed_at IS NOT NULL
                    ) GROUP BY t ORDER BY t
                    """, arguments: arguments)
            var estimated = 0.0
            var charged = 0.0
            let cumulative = seconds.map { row in
                estimated += row["e"]
                charged += row["c"]
                return CreditPoint(time: row["t"], estimated: estimated, charged: charged)
            }
            guard cumulative.count > points else { return cumulative }
            let step = Double(cumulative.count - 1) / Double(points - 1)
            return (0..<points).map { cumulative[Int((Double($0) * step).rounded())] }
        }
    }

    public func failedJobs(_ query: ReportQuery, limit: Int) async throws -> [FailedJob] {
        try await read { db in
            let (filter, arguments) = try query.filter(db)
            return try Row.fetchAll(
                db,
                sql: """
                    SELECT j.row_key, j.source_line, j.prompt, j.state, \(LedgerSQL.reason) AS reason FROM jobs j
                    WHERE \(filter) AND j.state IN (\(LedgerSQL.failedForGood)) ORDER BY j.batch_id, j.id LIMIT \(limit)
                    """, arguments: arguments
            ).map { row in
                let key: String = row["row_key"]
                return FailedJob(
                    row: key.hasPrefix("~") ? "line \(row["source_line"] as Int)" : key, prompt: row["prompt"],
                    state: JobState(rawValue: row["state"]) ?? .failed, reason: row["reason"] ?? "")
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

    /// Calls `body` with each job the report covers, in order, without holding them all.
    /// The metadata values come out of SQLite already, in the order of `metadataKeys`.
    public func forEachReportJob(
        _ query: ReportQuery, metadataKeys: [String], _ body: (ReportJob) throws -> Void
    ) throws {
        try readNow { db in
            let (filter, arguments) = try query.filter(db)
            var allArguments = arguments
            var extracts = ""
            for (index, key) in metadataKeys.enumerated() {
                // A JSON path cannot name a key holding a quote, a backslash or a control
                // character; json_each can, more slowly, so only those take it.
                if key.unicodeScalars.contains(where: { $0 == "\"" || $0 == "\\" || $0.value < 0x20 }) {
                    allArguments += [key]
                    extracts += ", (SELECT value FROM json_each(j.metadata) WHERE key = ?\(index + 4)) AS m\(index)"
                } else {
                    allArguments += ["$.\"" + key + "\""]
                    extracts += ", json_extract(j.metadata, ?\(index + 4)) AS m\(index)"
                }
            }
            let cursor = try ReportJob.fetchCursor(
                db,
                sql: """
                    SELECT b.name AS batch, j.row_key, j.source_line, j.prompt, j.audio_length, j.state, j.task_id,
                           j.conversion_id, j.eta, j.credit_estimate, j.conversion_cost, j.remote_status, j.audio_url,
                           j.download_path, j.submitted_at, j.completed_at, j.attempt_count, j.last_error,
                           \(LedgerSQL.reason) AS reason\(extracts)
                    FROM jobs j JOIN batches b ON b.id = j.batch_id
                    WHERE \(filter) ORDER BY j.batch_id, j.id
                    """, arguments: allArguments)
            while let job = try cursor.next() { try body(job) }
        }
    }
}

extension SQLiteLedger {
    public func pendingForecast(batchID: Int64) async throws -> PendingForecast {
        try await read { db in
            // Only a job the service accepted has an estimate, and a task: the index of tasks
            // finds those without reading the rest of the batch.
            let average = try Double.fetchOne(
                db,
                sql: """
                    SELECT AVG(credit_estimate) FROM jobs INDEXED BY jobs_by_task
                    WHERE task_id IS NOT NULL AND batch_id = ?
                    """, arguments: [batchID])
            let pending = try Int.fetchOne(
                db, sql: "SELECT COUNT(*) FROM jobs WHERE batch_id = ? AND state = ?",
                arguments: [batchID, JobState.pending])
            return PendingForecast(pending: pending ?? 0, averageEstimate: average)
        }
    }

    /// Counts per state and credit totals, per batch, in name order; `batch` narrows it to one.
    public func status(batch: String? = nil) throws -> [BatchStatus] {
        try readNow { db in
            if let batch { _ = try SQLiteLedger.batchID(db, named: batch) }
            let rows = try Row.fetchAll(
                db,
                sql: """
                    SELECT b.name, b.settings, j.state, COUNT(j.id) AS jobs,
                           TOTAL(j.credit_estimate) AS estimated, COUNT(j.credit_estimate) AS estimates,
                           TOTAL(j.conversion_cost) AS charged
                    FROM batches b LEFT JOIN jobs j ON j.batch_id = b.id
                    WHERE ?1 IS NULL OR b.name = ?1
                    GROUP BY b.id, j.state
                    ORDER BY b.name
                    """, arguments: [batch])
            var result: [BatchStatus] = []
            for row in rows {
                let name: String = row["name"]
                if result.last?.name != name {
                    var batch = BatchStatus(name: name)
                    batch.settings = (row["settings"] as String?).flatMap(BatchSettings.init(json:))
                    result.append(batch)
                }
                guard let state: String = row["state"] else { continue }  // a batch with no jobs
                let jobs: Int = row["jobs"]
                result[result.count - 1].jobs += jobs
                result[result.count - 1].states[state, default: 0] += jobs
                result[result.count - 1].creditEstimateTotal += row["estimated"]
                result[result.count - 1].conversionCostTotal += row["charged"]
                result[result.count - 1].estimatedJobs += row["estimates"]
            }
            // What earlier takes of retried jobs were estimated at and charged counts too.
            let takes = try Row.fetchAll(
                db,
                sql: """
                    SELECT b.name, TOTAL(t.credit_estimate) AS estimated, TOTAL(t.conversion_cost) AS charged
                    FROM takes t JOIN jobs j ON j.id = t.job_id JOIN batches b ON b.id = j.batch_id
                    WHERE ?1 IS NULL OR b.name = ?1
                    GROUP BY b.id
                    """, arguments: [batch])
            for take in takes {
                guard let index = result.firstIndex(where: { $0.name == take["name"] }) else { continue }
                result[index].creditEstimateTotal += take["estimated"]
                result[index].conversionCostTotal += take["charged"]
            }
            let failures = try Row.fetchAll(
                db,
                sql: """
                    SELECT b.name, j.state, \(LedgerSQL.reason) AS reason, COUNT(*) AS jobs
                    FROM jobs j JOIN batches b ON b.id = j.batch_id
                    WHERE (?1 IS NULL OR b.name = ?1) AND j.state IN (\(LedgerSQL.failedForGood))
                    GROUP BY b.id, j.state, reason
                    ORDER BY b.name, jobs DESC, reason
                    """,
                arguments: [batch])
            for failure in failures {
                guard let index = result.firstIndex(where: { $0.name == failure["name"] }) else { continue }
                result[index].failures.append(
                    BatchStatus.Failure(state: failure["state"], reason: failure["reason"] ?? "", jobs: failure["jobs"])
                )
            }
            return result
        }
    }
}

extension ReportJob: FetchableRecord {
    public init(row: Row) {
        self.init(values: (0..<row.count).map { ReportValue(LedgerValue(row[$0])) })
    }
}
