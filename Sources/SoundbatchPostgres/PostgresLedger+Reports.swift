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
                       COALESCE(SUM(j.credit_estimate), 0), COUNT(j.credit_estimate),
                       COUNT(j.conversion_cost), COALESCE(SUM(j.conversion_cost), 0),
                       COALESCE(SUM(CASE WHEN j.conversion_cost IS NOT NULL THEN j.credit_estimate END), 0),
                       COALESCE(SUM(CASE WHEN j.conversion_cost IS NOT NULL THEN j.audio_length END), 0)::float8,
                       COALESCE(SUM(CASE WHEN j.conversion_cost IS NOT NULL AND j.audio_length IS NOT NULL
                                         THEN j.conversion_cost END), 0),
                       MIN(j.submitted_at), MAX(j.submitted_at), SUM(j.settled_by_callback)::int
                FROM jobs j WHERE \($0) GROUP BY 1, 2, 3
                """
            })
        for row in alike {
            let (
                key, state, inDoubt, jobs, estimates, estimated, charged, costs, estimatedForCharged, seconds,
                withLength, first, last, settled
            ) = try row.decode(
                (String, String, Int, Int, Double, Int, Int, Double, Double, Double, Double, String?, String?, Int).self)
            guard let state = JobState(rawValue: state) else { continue }
            let name = group(key)
            groups[name, default: SpendTotals.empty(name)].count(
                JobsAlike(
                    state: state, inDoubt: inDoubt != 0, jobs: jobs, estimates: estimates, estimated: estimated,
                    chargedJobs: charged, costs: costs, estimatedForCharged: estimatedForCharged,
                    secondsForCharged: seconds, chargedWithLength: withLength, settledByCallback: settled),
                firstSubmitted: first, lastSubmitted: last)
        }
        // Earlier takes of retried jobs: what they were estimated at and charged still counts.
        let takesFilter = try await self.filter(query, submittedAt: "t.submitted_at")
        let takes = try await report(
            takesFilter.query {
                """
                SELECT \(key("t.submitted_at")), t.request_in_doubt, COUNT(*), COALESCE(SUM(t.credit_estimate), 0),
                       COUNT(t.credit_estimate), COUNT(t.conversion_cost), COALESCE(SUM(t.conversion_cost), 0),
                       COALESCE(SUM(CASE WHEN t.conversion_cost IS NOT NULL THEN t.credit_estimate END), 0),
                       SUM(t.paid_twice)::int
                FROM takes t JOIN jobs j ON j.id = t.job_id WHERE \($0) GROUP BY 1, 2
                """
            })
        for row in takes {
            let (key, inDoubt, count, estimates, estimated, charged, costs, estimatedForCharged, paidTwice) =
                try row.decode((String, Int, Int, Double, Int, Int, Double, Double, Int).self)
            let name = group(key)
            groups[name, default: SpendTotals.empty(name)].countEarlierTakes(
                JobsAlike(
                    state: .completed, inDoubt: inDoubt != 0, jobs: count, estimates: estimates, estimated: estimated,
                    chargedJobs: charged, costs: costs, estimatedForCharged: estimatedForCharged, secondsForCharged: 0,
                    chargedWithLength: 0, paidTwice: paidTwice))
        }
        return SpendReport(grouping: query.grouping, groups: groups.values)
    }

    public func creditsBySecond(_ query: ReportQuery) async throws -> [CreditPoint] {
        let filter = try await filter(query)
        // The same bounds for the takes, on their own submission time, numbered on from the jobs'.
        let takesFilter = filter.sql.replacingOccurrences(of: "j.submitted_at", with: "t.submitted_at")
        return try await report(
            filter.query {
                """
                SELECT t, COALESCE(SUM(e), 0), COALESCE(SUM(c), 0) FROM (
                    \(LedgerSQL.creditEvents(filter: $0, takesFilter: takesFilter))
                ) x GROUP BY t ORDER BY t COLLATE "C"
                """
            }
        ).map { row in
            let (time, estimated, charged) = try row.decode((String, Double, Double).self)
            return CreditPoint(time: time, estimated: estimated, charged: charged)
        }
    }

    public func failedJobs(_ query: ReportQuery, limit: Int) async throws -> [FailedJob] {
        let filter = try await filter(query)
        return try await report(
            filter.query { LedgerSQL.failedJobs(filter: $0, limit: limit) }
        ).map { row in FailedJob(ledgerRow: row.map { LedgerValue($0) }) }
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
        let extracts = metadataExtracts(metadataKeys, into: &filter)
        // Streamed: the jobs are handed on as they arrive, never held all at once.
        let jobs = try await stream(
            filter.query {
                """
                SELECT \(LedgerSQL.reportLine(earlierTake: false))\(extracts)
                FROM jobs j JOIN batches b ON b.id = j.batch_id
                WHERE \($0) ORDER BY j.batch_id, j.id
                """
            })
        for try await row in jobs { try body(ReportJob(ledgerRow: row.map { LedgerValue($0) })) }
    }

    public func earlierTakes(_ query: ReportQuery, metadataKeys: [String]) async throws -> [ReportJob] {
        var filter = try await filter(query, submittedAt: "t.submitted_at")
        let extracts = metadataExtracts(metadataKeys, into: &filter)
        return try await report(
            filter.query {
                """
                SELECT \(LedgerSQL.reportLine(earlierTake: true))\(extracts) FROM \(LedgerSQL.earlierTakes)
                WHERE \($0) ORDER BY j.batch_id, j.id, t.take
                """
            }
        ).map { ReportJob(ledgerRow: $0.map { LedgerValue($0) }) }
    }

    /// The metadata values of `j`, in the order of `keys`, as columns of a SELECT, bound in `filter`.
    private func metadataExtracts(_ keys: [String], into filter: inout ReportFilter) -> String {
        keys.map { key in
            filter.binds.append(key)
            return ", j.metadata::json ->> $\(filter.binds.count)"
        }.joined()
    }

    public func pendingForecast(batchID: Int64) async throws -> PendingForecast {
        // The partial indexes of pending jobs and of tasks find both without reading the rest.
        let row = try await rows(
            """
            SELECT (SELECT COUNT(*) FROM jobs WHERE batch_id = \(batchID) AND state = 'pending'),
                   (\(unescaped: LedgerSQL.averageEstimate(String(batchID))))
            """)[0]
        let (pending, average) = try row.decode((Int, Double?).self)
        return PendingForecast(pending: pending, averageEstimate: average)
    }

    public func batchSettings(batch: String?) async throws -> [(name: String, settings: BatchSettings?)] {
        if let batch { _ = try await batchID(named: batch) }
        return try await report("SELECT name, settings FROM batches WHERE \(batch)::text IS NULL OR name = \(batch)")
            .map { row in
                let (name, settings) = try row.decode((String, String?).self)
                return (name, settings.flatMap(BatchSettings.init(json:)))
            }
    }

    public func failureReasons(batch: String?) async throws -> [(batch: String, failure: BatchStatus.Failure)] {
        try await report(
            PostgresQuery(
                unsafeSQL: LedgerSQL.failureReasons(batchFilter: "($1::text IS NULL OR b.name = $1)"),
                binds: { var binds = PostgresBindings(); binds.append(batch); return binds }())
        ).map { row in
            let (name, state, reason, jobs) = try row.decode((String, String, String?, Int).self)
            return (name, BatchStatus.Failure(state: state, reason: reason ?? "", jobs: jobs))
        }
    }
}
