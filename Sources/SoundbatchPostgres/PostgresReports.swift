import Foundation
import PostgresNIO
import SoundbatchCore

/// The WHERE clause of a report's query over `jobs j`, with its values bound.
struct ReportFilter {
    var sql: String
    var binds: PostgresBindings

    /// The query `sql`, in which `\(filter)` stands for the clause.
    func query(_ sql: (String) -> String) -> PostgresQuery {
        PostgresQuery(unsafeSQL: sql(self.sql), binds: binds)
    }
}

extension PostgresLedger {
    /// Runs a report's query: a try is never given up for being slow, a million jobs may take a while.
    func report(_ query: PostgresQuery) async throws -> [PostgresRow] {
        try await rows(query, patience: nil)
    }

    /// Resolves the batch's name first, so the scan needs no join. `submittedAt`: the
    /// column the time bounds apply to.
    func filter(_ query: ReportQuery, submittedAt: String = "j.submitted_at") async throws -> ReportFilter {
        var parts = ["TRUE"]
        var binds = PostgresBindings()
        if let batch = query.batch { parts.append("j.batch_id = \(try await batchID(named: batch))") }
        if let since = query.since {
            binds.append(since)
            parts.append("\(submittedAt) >= $\(binds.count)")
        }
        if let until = query.until {
            binds.append(until)
            parts.append("\(submittedAt) < $\(binds.count)")
        }
        return ReportFilter(sql: parts.joined(separator: " AND "), binds: binds)
    }

    /// Totals per group and overall. PostgreSQL sums the jobs alike (same group, state and
    /// doubt) in one pass, and `SpendTotals` applies its rules to those sums: a million jobs
    /// never cross the wire.
    public func spendReport(_ query: ReportQuery) async throws -> SpendReport {
        let filter = try await filter(query)
        let names = Dictionary(
            uniqueKeysWithValues: try await report("SELECT id, name FROM batches").map {
                try $0.decode((Int64, String).self)
            }
        )
        func key(_ column: String) -> String {
            switch query.grouping {
            case .batch: "j.batch_id::text"
            case .day: "COALESCE(substr(\(column), 1, 10), 'not submitted')"
            case .state: column == "j.submitted_at" ? "j.state" : "t.state"
            }
        }
        func group(_ key: String) -> String {
            query.grouping == .batch ? Int64(key).flatMap { names[$0] } ?? "?" : key
        }
        var groups: [String: SpendTotals] = [:]
        let alike = try await report(
            filter.query {
                """
                SELECT \(key("j.submitted_at")), j.state, j.request_in_doubt, COUNT(*),
                       COALESCE(SUM(j.credit_estimate), 0), COUNT(j.conversion_cost), COALESCE(SUM(j.conversion_cost), 0),
                       COALESCE(SUM(CASE WHEN j.conversion_cost IS NOT NULL THEN j.credit_estimate END), 0),
                       COALESCE(SUM(CASE WHEN j.conversion_cost IS NOT NULL THEN j.audio_length END), 0)::float8,
                       COALESCE(SUM(CASE WHEN j.conversion_cost IS NOT NULL AND j.audio_length IS NOT NULL
                                         THEN j.conversion_cost END), 0),
                       MIN(j.submitted_at), MAX(j.submitted_at)
                FROM jobs j WHERE \($0) GROUP BY 1, 2, 3
                """
            })
        for row in alike {
            let (
                key, state, inDoubt, jobs, estimates, charged, costs, estimatedForCharged, seconds, withLength, first,
                last
            ) =
                try row.decode(
                    (String, String, Int, Int, Double, Int, Double, Double, Double, Double, String?, String?).self)
            guard let state = JobState(rawValue: state) else { continue }
            let name = group(key)
            groups[name, default: SpendTotals.empty(name)].count(
                JobsAlike(
                    state: state, inDoubt: inDoubt != 0, jobs: jobs, estimates: estimates, chargedJobs: charged,
                    costs: costs, estimatedForCharged: estimatedForCharged, secondsForCharged: seconds,
                    chargedWithLength: withLength),
                firstSubmitted: first, lastSubmitted: last)
        }
        // Earlier takes of retried jobs: what they were estimated at and charged still counts.
        let takesFilter = try await self.filter(query, submittedAt: "t.submitted_at")
        let takes = try await report(
            takesFilter.query {
                """
                SELECT \(key("t.submitted_at")), COUNT(*), COALESCE(SUM(t.credit_estimate), 0),
                       COALESCE(SUM(t.conversion_cost), 0),
                       COALESCE(SUM(CASE WHEN t.conversion_cost IS NOT NULL THEN t.credit_estimate END), 0)
                FROM takes t JOIN jobs j ON j.id = t.job_id WHERE \($0) GROUP BY 1
                """
            })
        for row in takes {
            let (key, count, estimates, costs, estimatedForCharged) = try row.decode(
                (String, Int, Double, Double, Double).self)
            let name = group(key)
            groups[name, default: SpendTotals.empty(name)].countEarlierTakes(
                count, estimates: estimates, costs: costs, estimatedForCharged: estimatedForCharged)
        }
        return SpendReport(grouping: query.grouping, groups: groups.values)
    }

    public func creditTimeline(_ query: ReportQuery, points: Int = 300) async throws -> [CreditPoint] {
        let filter = try await filter(query)
        let seconds = try await report(
            filter.query {
                """
                SELECT t, COALESCE(SUM(e), 0), COALESCE(SUM(c), 0) FROM (
                    SELECT substr(j.submitted_at, 1, 19) AS t, j.credit_estimate AS e, NULL::float8 AS c
                    FROM jobs j WHERE \($0) AND j.submitted_at IS NOT NULL
                    UNION ALL
                    SELECT substr(j.completed_at, 1, 19), NULL, j.conversion_cost
                    FROM jobs j WHERE \($0) AND j.completed_at IS NOT NULL
                ) x GROUP BY t ORDER BY t COLLATE "C"
                """
            })
        var estimated = 0.0
        var charged = 0.0
        let cumulative = try seconds.map { row in
            let (time, e, c) = try row.decode((String, Double, Double).self)
            estimated += e
            charged += c
            return CreditPoint(time: time, estimated: estimated, charged: charged)
        }
        guard cumulative.count > points else { return cumulative }
        let step = Double(cumulative.count - 1) / Double(points - 1)
        return (0..<points).map { cumulative[Int((Double($0) * step).rounded())] }
    }

    public func failedJobs(_ query: ReportQuery, limit: Int) async throws -> [FailedJob] {
        let filter = try await filter(query)
        return try await report(
            filter.query {
                """
                SELECT j.row_key, j.source_line, j.prompt, j.state, \(LedgerSQL.reason) AS reason FROM jobs j
                WHERE \($0) AND j.state IN (\(LedgerSQL.failedForGood)) ORDER BY j.batch_id, j.id LIMIT \(limit)
                """
            }
        ).map { row in
            let (key, line, prompt, state, reason) = try row.decode((String, Int, String, String, String?).self)
            return FailedJob(
                row: key.hasPrefix("~") ? "line \(line)" : key, prompt: prompt,
                state: JobState(rawValue: state) ?? .failed, reason: reason ?? "")
        }
    }

    public func metadataKeys(_ query: ReportQuery) async throws -> [String] {
        let filter = try await filter(query)
        return try await report(
            filter.query {
                """
                SELECT m.key FROM jobs j, json_each(j.metadata::json) WITH ORDINALITY AS m(key, value, n)
                WHERE \($0) AND j.metadata IS NOT NULL
                GROUP BY m.key ORDER BY MIN(j.id), MIN(m.n)
                """
            }
        ).map { try $0.decode(String.self) }
    }

    public func forEachReportJob(
        _ query: ReportQuery, metadataKeys: [String], _ body: (ReportJob) throws -> Void
    ) async throws {
        var filter = try await filter(query)
        var extracts = ""
        for (index, key) in metadataKeys.enumerated() {
            filter.binds.append(key)
            extracts += ", j.metadata::json ->> $\(filter.binds.count) AS m\(index)"
        }
        // Streamed: the jobs are handed on as they arrive, never held all at once.
        let jobs = try await stream(
            filter.query {
                """
                SELECT b.name AS batch, j.row_key, j.source_line, j.prompt, j.audio_length, j.state, j.task_id,
                       j.conversion_id, j.eta, j.credit_estimate, j.conversion_cost, j.remote_status, j.audio_url,
                       j.download_path, j.submitted_at, j.completed_at, j.attempt_count, j.last_error,
                       \(LedgerSQL.reason) AS reason\(extracts)
                FROM jobs j JOIN batches b ON b.id = j.batch_id
                WHERE \($0) ORDER BY j.batch_id, j.id
                """
            })
        for try await row in jobs {
            try body(ReportJob(values: row.map { ReportValue(LedgerValue($0)) }))
        }
    }

    public func pendingForecast(batchID: Int64) async throws -> PendingForecast {
        // The partial indexes of pending jobs and of tasks find both without reading the rest.
        let row = try await rows(
            """
            SELECT (SELECT COUNT(*) FROM jobs WHERE batch_id = \(batchID) AND state = 'pending'),
                   (SELECT AVG(credit_estimate)::float8 FROM jobs WHERE task_id IS NOT NULL AND batch_id = \(batchID))
            """)[0]
        let (pending, average) = try row.decode((Int, Double?).self)
        return PendingForecast(pending: pending, averageEstimate: average)
    }

    public func status(batch: String? = nil) async throws -> [BatchStatus] {
        if let batch { _ = try await batchID(named: batch) }
        let rows = try await report(
            """
            SELECT b.name, b.settings, j.state, COUNT(j.id), COALESCE(SUM(j.credit_estimate), 0),
                   COUNT(j.credit_estimate), COALESCE(SUM(j.conversion_cost), 0)
            FROM batches b LEFT JOIN jobs j ON j.batch_id = b.id
            WHERE \(batch)::text IS NULL OR b.name = \(batch)
            GROUP BY b.id, b.name, b.settings, j.state
            ORDER BY b.name COLLATE "C"
            """)
        var result: [BatchStatus] = []
        for row in rows {
            let (name, settings, state, jobs, estimated, estimates, charged) = try row.decode(
                (String, String?, String?, Int, Double, Int, Double).self)
            if result.last?.name != name {
                var batch = BatchStatus(name: name)
                batch.settings = settings.flatMap(BatchSettings.init(json:))
                result.append(batch)
            }
            guard let state else { continue }  // a batch with no jobs
            result[result.count - 1].jobs += jobs
            result[result.count - 1].states[state, default: 0] += jobs
            result[result.count - 1].creditEstimateTotal += estimated
            result[result.count - 1].conversionCostTotal += charged
            result[result.count - 1].estimatedJobs += estimates
        }
        // What earlier takes of retried jobs were estimated at and charged counts too.
        let takes = try await self.report(
            """
            SELECT b.name, COALESCE(SUM(t.credit_estimate), 0), COALESCE(SUM(t.conversion_cost), 0)
            FROM takes t JOIN jobs j ON j.id = t.job_id JOIN batches b ON b.id = j.batch_id
            WHERE \(batch)::text IS NULL OR b.name = \(batch)
            GROUP BY b.id, b.name
            """)
        for take in takes {
            let (name, estimated, charged) = try take.decode((String, Double, Double).self)
            guard let index = result.firstIndex(where: { $0.name == name }) else { continue }
            result[index].creditEstimateTotal += estimated
            result[index].conversionCostTotal += charged
        }
        let failures = try await self.report(
            """
            SELECT name, state, reason, jobs FROM (
                SELECT b.name, j.state, \(unescaped: LedgerSQL.reason) AS reason, COUNT(*) AS jobs
                FROM jobs j JOIN batches b ON b.id = j.batch_id
                WHERE (\(batch)::text IS NULL OR b.name = \(batch)) AND j.state IN (\(unescaped: LedgerSQL.failedForGood))
                GROUP BY b.id, b.name, j.state, 3
            ) f
            ORDER BY name COLLATE "C", jobs DESC, reason COLLATE "C"
            """)
        for failure in failures {
            let (name, state, reason, jobs) = try failure.decode((String, String, String?, Int).self)
            guard let index = result.firstIndex(where: { $0.name == name }) else { continue }
            result[index].failures.append(BatchStatus.Failure(state: state, reason: reason ?? "", jobs: jobs))
        }
        return result
    }
}
