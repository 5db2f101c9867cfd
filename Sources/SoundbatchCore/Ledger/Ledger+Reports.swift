import Foundation

// `ReportLedger`, written once over `LedgerBackend`; SQLite's ledger scans its jobs for the
// totals in a loop of its own (`SQLiteLedger.spendReport`), where the shared GROUP BY is slower.
extension LedgerBackend {
    /// The WHERE clause of a report's query over `jobs j`: the batch's name resolved first,
    /// so that a scan needs no join; the time bounds apply to `submittedAt`.
    public func reportFilter(_ query: ReportQuery, submittedAt: String = "j.submitted_at") async throws -> SQL {
        var tests: [SQL] = ["TRUE"]
        if let batch = query.batch { tests.append("j.batch_id = \(try await batchID(named: batch))") }
        if let since = query.since { tests.append("\(raw: submittedAt) >= \(since)") }
        if let until = query.until { tests.append("\(raw: submittedAt) < \(until)") }
        return SQL.joined(tests, separator: " AND ")
    }

    public func pendingForecast(batchID: Int64) async throws -> PendingForecast {
        // Only a job the service accepted has an estimate, and a task: the index of tasks
        // finds those without reading the rest of the batch.
        let row = try await rows(
            """
            SELECT (SELECT COUNT(*) FROM jobs WHERE batch_id = \(batchID) AND state = \(JobState.pending)) AS pending,
                   (SELECT CAST(SUM(e) AS DOUBLE PRECISION) / NULLIF(COUNT(e), 0) FROM (
                        SELECT credit_estimate AS e FROM \(dialect.jobsByTask)
                        WHERE task_id IS NOT NULL AND batch_id = \(batchID)
                        UNION ALL
                        SELECT t.credit_estimate FROM takes t JOIN jobs j ON j.id = t.job_id WHERE j.batch_id = \(batchID)
                    ) estimates) AS average
            """)[0]
        return PendingForecast(pending: try row["pending"], averageEstimate: try row["average"])
    }

    public func batchSettings(batch: String?) async throws -> [(name: String, settings: BatchSettings?)] {
        var which: SQL = ""
        if let batch { which = "WHERE id = \(try await batchID(named: batch))" }
        return try await scan("SELECT name, settings FROM batches \(which)").map { row in
            let settings: String? = try row["settings"]
            return (try row["name"], settings.flatMap(BatchSettings.init(json:)))
        }
    }

    /// A batch's name matched against `batch`, over `batches b`, or every batch.
    private func batchNamed(_ batch: String?) -> SQL {
        batch.map { "b.name = \($0)" } ?? "TRUE"
    }

    /// Jobs failed for good, counted by batch, state and reason.
    public func failureReasons(batch: String?) async throws -> [(batch: String, failure: BatchStatus.Failure)] {
        try await scan(
            """
            SELECT b.name, j.state, \(LedgerSQL.reason()) AS reason, COUNT(*) AS jobs
            FROM jobs j JOIN batches b ON b.id = j.batch_id
            WHERE \(batchNamed(batch)) AND j.state IN (\(LedgerSQL.failedForGood))
            GROUP BY 1, 2, 3
            """
        ).map { row in
            let reason: String? = try row["reason"]
            return (
                try row["name"],
                BatchStatus.Failure(state: try row["state"], reason: reason ?? "", jobs: try row["jobs"])
            )
        }
    }

    /// Sounds (completed takes, earlier ones included) by batch and verdict.
    public func verdictCounts(batch: String?) async throws -> [String: VerdictCounts] {
        var counts: [String: VerdictCounts] = [:]
        for row in try await scan(
            """
            SELECT b.name, v.verdict, COUNT(*) AS sounds FROM (
                SELECT j.batch_id, j.verdict FROM jobs j WHERE j.state = \(JobState.completed)
                UNION ALL
                SELECT j.batch_id, t.verdict FROM takes t JOIN jobs j ON j.id = t.job_id WHERE t.state = \(JobState.completed)
            ) v JOIN batches b ON b.id = v.batch_id WHERE \(batchNamed(batch)) GROUP BY 1, 2
            """)
        {
            counts[try row["name"], default: VerdictCounts()].count(try row["verdict"], try row["sounds"])
        }
        return counts
    }

    /// Every estimate (at submission) and charge (at completion) summed by the second, over
    /// the jobs and the earlier takes the report covers, so that the chart ends where the totals do.
    public func creditsBySecond(_ query: ReportQuery) async throws -> [CreditPoint] {
        let jobs = try await reportFilter(query)
        let takes = try await reportFilter(query, submittedAt: "t.submitted_at")
        let none: SQL = "CAST(NULL AS DOUBLE PRECISION)"
        return try await scan(
            """
            SELECT second, COALESCE(SUM(e), 0) AS estimated, COALESCE(SUM(c), 0) AS charged FROM (
                SELECT substr(j.submitted_at, 1, 19) AS second, j.credit_estimate AS e, \(none) AS c
                FROM jobs j WHERE \(jobs) AND j.submitted_at IS NOT NULL
                UNION ALL
                SELECT substr(COALESCE(j.completed_at, j.submitted_at), 1, 19), \(none), j.conversion_cost
                FROM jobs j WHERE \(jobs) AND j.conversion_cost IS NOT NULL
                UNION ALL
                SELECT substr(t.submitted_at, 1, 19), t.credit_estimate, \(none)
                FROM takes t JOIN jobs j ON j.id = t.job_id WHERE \(takes) AND t.submitted_at IS NOT NULL
                UNION ALL
                SELECT substr(COALESCE(t.completed_at, t.submitted_at), 1, 19), \(none), t.conversion_cost
                FROM takes t JOIN jobs j ON j.id = t.job_id WHERE \(takes) AND t.conversion_cost IS NOT NULL
            ) events GROUP BY second
            """
        ).map { CreditPoint(time: try $0["second"], estimated: try $0["estimated"], charged: try $0["charged"]) }
            // Times as text sort in time order byte by byte, whatever a server's collation says.
            .sorted { $0.time.utf8.lexicographicallyPrecedes($1.time.utf8) }
    }

    public func failedJobs(_ query: ReportQuery, limit: Int) async throws -> [FailedJob] {
        try await scan(
            """
            SELECT j.row_key, j.keyed_by_content, j.source_line, j.prompt, j.state, \(LedgerSQL.reason()) AS reason
            FROM jobs j WHERE \(try await reportFilter(query)) AND j.state IN (\(LedgerSQL.failedForGood))
            ORDER BY j.batch_id, j.id LIMIT \(limit)
            """
        ).map { row in
            let keyedByContent: Bool = try row["keyed_by_content"]
            let line: Int = try row["source_line"]
            let reason: String? = try row["reason"]
            return FailedJob(
                row: keyedByContent ? "line \(line)" : try row["row_key"], prompt: try row["prompt"],
                state: try row["state"], reason: reason ?? "")
        }
    }

    public func metadataKeys(_ query: ReportQuery) async throws -> [String] {
        try await scan(
            """
            SELECT m.key FROM jobs j, \(dialect.jsonMembers("j.metadata"))
            WHERE \(try await reportFilter(query)) AND j.metadata IS NOT NULL
            GROUP BY m.key ORDER BY MIN(j.id), MIN(m.id)
            """
        ).map { try $0["key"] }
    }

    /// A line of `report --jobs` (`ReportJob`) for a job's current take (`j`), or an earlier
    /// one (`t`); the row's own fields are the job's, the prompt the one that made the take,
    /// then the values of the row's own columns `metadataKeys`, as `column1`, `column2`...
    private func reportLine(earlierTake: Bool, metadataKeys: [String]) -> SQL {
        let take = earlierTake ? "t" : "j"
        let prompt = earlierTake ? "COALESCE(t.prompt, j.prompt)" : "COALESCE(j.take_prompt, j.prompt)"
        let own = metadataKeys.enumerated().map {
            ", \(dialect.jsonText("j.metadata", $1)) AS column\(raw: String($0 + 1))" as SQL
        }
        return """
            j.batch_id, j.id, j.keyed_by_content, b.name AS batch, j.row_key, \(raw: take).take, j.source_line,
            \(raw: prompt) AS prompt, j.audio_length, \(raw: take).state, \(raw: take).task_id, \(raw: take).conversion_id,
            \(raw: take).eta, \(raw: take).credit_estimate, \(raw: take).conversion_cost, \(raw: take).request_in_doubt,
            \(raw: take).verdict, \(raw: take).remote_status, \(raw: take).audio_url,
            \(raw: take).download_path AS downloaded_file, \(raw: take).submitted_at, \(raw: take).completed_at,
            \(raw: earlierTake ? "NULL" : "j.attempt_count") AS attempts, \(raw: take).last_error,
            \(LedgerSQL.reason(of: take)) AS reason, c.findings, c.loudness_lufs, c.true_peak_dbtp\(SQL.joined(own, separator: ""))
            """
    }

    public func forEachReportJob(
        _ query: ReportQuery, metadataKeys: [String], _ body: (ReportJob) throws -> Void
    ) async throws {
        var layout: ReportJob.Layout?
        try await forEachRow(
            """
            SELECT \(reportLine(earlierTake: false, metadataKeys: metadataKeys))
            FROM jobs j JOIN batches b ON b.id = j.batch_id LEFT JOIN checks c ON c.job_id = j.id AND c.take = j.take
            WHERE \(try await reportFilter(query)) ORDER BY j.batch_id, j.id
            """
        ) { row in
            let found = try layout ?? ReportJob.Layout(row.columns, ownColumns: metadataKeys.count)
            layout = found
            try body(try ReportJob(row: row, layout: found))
        }
    }

    public func earlierTakes(_ query: ReportQuery, metadataKeys: [String]) async throws -> [ReportJob] {
        try await scan(
            """
            SELECT \(reportLine(earlierTake: true, metadataKeys: metadataKeys))
            FROM takes t JOIN jobs j ON j.id = t.job_id JOIN batches b ON b.id = j.batch_id
                LEFT JOIN checks c ON c.job_id = t.job_id AND c.take = t.take
            WHERE \(try await reportFilter(query, submittedAt: "t.submitted_at")) ORDER BY j.batch_id, j.id, t.take
            """
        ).map { try ReportJob(row: $0, layout: ReportJob.Layout($0.columns, ownColumns: metadataKeys.count)) }
    }

    /// Totals per group and overall. The database sums the jobs alike (same group, state and
    /// doubt) in one pass, and `SpendTotals` applies its rules to those sums: on a server, a
    /// million jobs never cross the wire. (SQLite sorts every row for a GROUP BY: its ledger
    /// sums in one scan of its own, `SQLiteLedger.spendReport`.)
    public func spendReport(_ query: ReportQuery) async throws -> SpendReport {
        let jobs = try await reportFilter(query)
        let takes = try await reportFilter(query, submittedAt: "t.submitted_at")
        let names = Dictionary(
            uniqueKeysWithValues: try await rows("SELECT id, name FROM batches").map {
                (try $0["id"] as Int64, try $0["name"] as String)
            })
        func key(_ submitted: String) -> SQL {
            switch query.grouping {
            case .batch: "CAST(j.batch_id AS TEXT)"
            case .day: "COALESCE(substr(\(raw: submitted), 1, 10), 'not submitted')"
            case .state: submitted == "j.submitted_at" ? "j.state" : "t.state"
            }
        }
        func group(_ row: LedgerRow) throws -> String {
            let key: String = try row["key"]
            return query.grouping == .batch ? Int64(key).flatMap { names[$0] } ?? "?" : key
        }
        var groups: [String: SpendTotals] = [:]
        for row in try await scan(
            """
            SELECT \(key("j.submitted_at")) AS key, j.state, j.request_in_doubt, COUNT(*) AS jobs,
                   COALESCE(SUM(j.credit_estimate), 0) AS estimates, COUNT(j.credit_estimate) AS estimated,
                   COUNT(j.conversion_cost) AS charged, COALESCE(SUM(j.conversion_cost), 0) AS costs,
                   COALESCE(SUM(CASE WHEN j.conversion_cost IS NOT NULL THEN j.credit_estimate END), 0)
                       AS estimated_for_charged,
                   CAST(COALESCE(SUM(CASE WHEN j.conversion_cost IS NOT NULL THEN j.audio_length END), 0)
                       AS DOUBLE PRECISION) AS seconds,
                   COALESCE(SUM(CASE WHEN j.conversion_cost IS NOT NULL AND j.audio_length IS NOT NULL
                                     THEN j.conversion_cost END), 0) AS with_length,
                   MIN(j.submitted_at) AS first, MAX(j.submitted_at) AS last, SUM(j.settled_by_callback) AS settled
            FROM jobs j WHERE \(jobs) GROUP BY 1, 2, 3
            """)
        {
            let name = try group(row)
            let state: JobState
            do {
                state = try row["state"]
            } catch LedgerError.unknownState {
                // Nothing is left out of the totals without a word: the job is named, and the command stops.
                try await requireKnownStates(batchID: nil)
                throw LedgerError.failed(reason: "a job's state is unknown")
            }
            groups[name, default: SpendTotals.empty(name)].count(
                JobsAlike(
                    state: state, inDoubt: try row["request_in_doubt"], jobs: try row["jobs"],
                    estimates: try row["estimates"], estimated: try row["estimated"], chargedJobs: try row["charged"],
                    costs: try row["costs"], estimatedForCharged: try row["estimated_for_charged"],
                    secondsForCharged: try row["seconds"], chargedWithLength: try row["with_length"],
                    settledByCallback: try row["settled"]),
                firstSubmitted: try row["first"], lastSubmitted: try row["last"])
        }
        // Earlier takes of retried jobs: what they were estimated at and charged still counts.
        for row in try await scan(
            """
            SELECT \(key("t.submitted_at")) AS key, t.request_in_doubt, COUNT(*) AS takes,
                   COALESCE(SUM(t.credit_estimate), 0) AS estimates, COUNT(t.credit_estimate) AS estimated,
                   COUNT(t.conversion_cost) AS charged, COALESCE(SUM(t.conversion_cost), 0) AS costs,
                   COALESCE(SUM(CASE WHEN t.conversion_cost IS NOT NULL THEN t.credit_estimate END), 0)
                       AS estimated_for_charged,
                   SUM(t.paid_twice) AS paid_twice
            FROM takes t JOIN jobs j ON j.id = t.job_id WHERE \(takes) GROUP BY 1, 2
            """)
        {
            let name = try group(row)
            groups[name, default: SpendTotals.empty(name)].countEarlierTakes(
                JobsAlike(
                    state: .completed, inDoubt: try row["request_in_doubt"], jobs: try row["takes"],
                    estimates: try row["estimates"], estimated: try row["estimated"], chargedJobs: try row["charged"],
                    costs: try row["costs"], estimatedForCharged: try row["estimated_for_charged"],
                    secondsForCharged: 0, chargedWithLength: 0, paidTwice: try row["paid_twice"]))
        }
        return SpendReport(grouping: query.grouping, groups: groups.values)
    }
}
