import Foundation
import GRDB
import SoundbatchCore

extension SQLiteLedger {
    /// Totals per group and overall, summed here in one scan of the jobs' bytes (FastStatement):
    /// the shared GROUP BY (`LedgerBackend.spendReport`) makes SQLite sort every row first,
    /// 2.4 s for a million jobs against 0.6 s for this scan (`scripts/bench-report.sh`).
    public func spendReport(_ query: ReportQuery) async throws -> SpendReport {
        let jobs = try await reportFilter(query)
        let takes = try await reportFilter(query, submittedAt: "t.submitted_at")
        let names = Dictionary(
            uniqueKeysWithValues: try await rows("SELECT id, name FROM batches").map {
                (try $0["id"] as Int64, try $0["name"] as String)
            })
        var unknownState = false
        let groups = try await exclusively {
            try translatingErrorsNow {
                try database.writeWithoutTransaction { db in
                    var groups: [String: SpendTotals] = [:]
                    unknownState = try Self.countJobs(db, jobs, query.grouping, names, into: &groups)
                    try Self.countEarlierTakes(db, takes, query.grouping, names, into: &groups)
                    return groups
                }
            }
        }
        // Nothing is left out of the totals without a word: the job is named, and the command stops.
        if unknownState { try await requireKnownStates(batchID: nil) }
        return SpendReport(grouping: query.grouping, groups: groups.values)
    }

    /// Counts each job `filter` covers into its group, reading its bytes where they lie;
    /// returns whether a job's state is one this soundbatch does not know.
    private static func countJobs(
        _ db: Database, _ filter: SQL, _ grouping: ReportQuery.Grouping, _ names: [Int64: String],
        into groups: inout [String: SpendTotals]
    ) throws -> Bool {
        let scan = try FastStatement(
            db,
            sql: """
                SELECT j.batch_id, j.state, j.credit_estimate, j.conversion_cost, j.audio_length, j.submitted_at,
                       j.request_in_doubt, j.settled_by_callback
                FROM jobs j WHERE \(filter)
                """)
        let states = JobState.allCases.map { Array($0.rawValue.utf8) }
        var batchKeys: [Int64: String] = [:]
        var unknownState = false
        try scan.forEachRow([]) { row in
            let stateBytes = row.bytes(1)
            guard let stateIndex = states.firstIndex(where: { $0.elementsEqual(stateBytes) }) else {
                unknownState = true
                return
            }
            let state = JobState.allCases[stateIndex]
            let submitted = row.bytes(5)
            let key: String
            switch grouping {
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
        return unknownState
    }

    /// Earlier takes of retried jobs: what they were estimated at and charged still counts.
    private static func countEarlierTakes(
        _ db: Database, _ filter: SQL, _ grouping: ReportQuery.Grouping, _ names: [Int64: String],
        into groups: inout [String: SpendTotals]
    ) throws {
        for take in try db.rows(
            """
            SELECT j.batch_id, t.state, t.credit_estimate, t.conversion_cost, t.submitted_at, t.request_in_doubt,
                   t.paid_twice
            FROM takes t JOIN jobs j ON j.id = t.job_id WHERE \(filter)
            """)
        {
            let submitted: String? = try take["submitted_at"]
            let key: String =
                switch grouping {
                case .batch: names[try take["batch_id"]] ?? "?"
                case .day: submitted.map { String($0.prefix(10)) } ?? "not submitted"
                case .state: try take["state"]
                }
            groups[key, default: SpendTotals.empty(key)].countEarlierTake(
                estimate: try take["credit_estimate"], cost: try take["conversion_cost"],
                inDoubt: try take["request_in_doubt"], paidTwice: try take["paid_twice"])
        }
    }
}
