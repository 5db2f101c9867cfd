import Foundation
import PostgresNIO
import SoundbatchCore

extension PostgresLedger {
    /// Totals per group and overall. PostgreSQL sums the jobs alike (same group, state and
    /// doubt) in one pass, and `SpendTotals` applies its rules to those sums: a million jobs
    /// never cross the wire.
    public func spendReport(_ query: ReportQuery) async throws -> SpendReport {
        let jobs = try await reportFilter(query)
        let takes = try await reportFilter(query, submittedAt: "t.submitted_at")
        let names = Dictionary(
            uniqueKeysWithValues: try await rows("SELECT id, name FROM batches").map {
                (try $0["id"] as Int64, try $0["name"] as String)
            })
        func key(_ submitted: String) -> SQL {
            switch query.grouping {
            case .batch: "j.batch_id::text"
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
                   COALESCE(SUM(CASE WHEN j.conversion_cost IS NOT NULL THEN j.audio_length END), 0)::float8 AS seconds,
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
