import Foundation
import GRDB
import SoundbatchCore

extension SQLiteLedger {
    public func retryCandidates(batchID: Int64, states: Set<JobState>) async throws -> [RetryCandidate] {
        let wanted = Array(states.intersection(JobState.finished))
        guard !wanted.isEmpty else { return [] }
        return try await read { db in
            try Row.fetchAll(
                db,
                sql: """
                    SELECT id, take, state, last_http_status, last_error, credit_estimate, download_path, verdict,
                           \(LedgerSQL.rowNameColumns())
                    FROM jobs WHERE batch_id = ? AND state IN (\(databaseQuestionMarks(count: wanted.count)))
                    ORDER BY id
                    """, arguments: StatementArguments([batchID] + wanted.map(\.rawValue))
            ).map { row in
                RetryCandidate(
                    id: row["id"], row: Self.rowName(row), rowKey: row["row_key"], line: row["source_line"],
                    state: row["state"], lastHTTPStatus: row["last_http_status"], lastError: row["last_error"],
                    creditEstimate: row["credit_estimate"], downloadPath: row["download_path"],
                    verdict: (row["verdict"] as String?).flatMap(Verdict.init(rawValue:)), take: row["take"])
            }
        }
    }

    public func startNewTakes(
        jobIDs: [Int64], renamedFiles: [Int64: String], prompts: [Int64: String] = [:], now: Date = Date()
    ) async throws -> Int {
        let stamp = Timestamp.string(now)
        return try await write { db in
            var moved = 0
            for id in jobIDs {
                try db.execute(
                    sql: LedgerSQL.keepTake(job: "?1", renamedFile: "?2", retiredAt: "?3"),
                    arguments: [id, renamedFiles[id], stamp])
                guard db.changesCount == 1 else { continue }
                try db.execute(
                    sql: LedgerSQL.startTake(job: "?1", prompt: "?2", now: "?3", runners: false),
                    arguments: [id, prompts[id], stamp])
                moved += 1
            }
            return moved
        }
    }
}
