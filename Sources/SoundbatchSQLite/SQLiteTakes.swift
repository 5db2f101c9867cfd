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
                    SELECT id, state, last_http_status, last_error, credit_estimate, download_path,
                           \(LedgerSQL.rowNameColumns())
                    FROM jobs WHERE batch_id = ? AND state IN (\(databaseQuestionMarks(count: wanted.count)))
                    ORDER BY id
                    """, arguments: StatementArguments([batchID] + wanted.map(\.rawValue))
            ).map { row in
                RetryCandidate(
                    id: row["id"], row: Self.rowName(row), rowKey: row["row_key"], line: row["source_line"],
                    state: row["state"], lastHTTPStatus: row["last_http_status"], lastError: row["last_error"],
                    creditEstimate: row["credit_estimate"], downloadPath: row["download_path"])
            }
        }
    }

    public func startNewTakes(jobIDs: [Int64], renamedFiles: [Int64: String], now: Date = Date()) async throws -> Int {
        let stamp = Timestamp.string(now)
        return try await write { db in
            var moved = 0
            for id in jobIDs {
                try db.execute(
                    sql: """
                        INSERT INTO takes (
                            job_id, state, task_id, conversion_id, eta, credit_estimate, conversion_cost,
                            remote_status, status_msg, audio_url, download_path, download_size, download_sha256,
                            last_error, last_http_status, request_in_doubt, submitted_at, completed_at, retired_at)
                        SELECT id, state, task_id, conversion_id, eta, credit_estimate, conversion_cost,
                            remote_status, status_msg, audio_url, COALESCE(?, download_path), download_size,
                            download_sha256, last_error, last_http_status, request_in_doubt, submitted_at,
                            completed_at, ?
                        FROM jobs WHERE id = ? AND state IN (?, ?, ?, ?)
                        """,
                    arguments: [
                        renamedFiles[id], stamp, id, JobState.failed, JobState.generationFailed,
                        JobState.remoteMissing, JobState.completed
                    ])
                guard db.changesCount == 1 else { continue }
                try db.execute(
                    sql: """
                        UPDATE jobs SET state = ?, task_id = NULL, conversion_id = NULL, eta = NULL,
                            credit_estimate = NULL, conversion_cost = NULL, message = NULL, remote_status = NULL,
                            status_msg = NULL, audio_url = NULL, download_path = NULL, download_size = NULL,
                            download_sha256 = NULL, last_error = NULL, last_http_status = NULL,
                            request_in_doubt = 0, submitted_at = NULL, completed_at = NULL, updated_at = ?
                        WHERE id = ?
                        """, arguments: [JobState.pending, stamp, id])
                moved += 1
            }
            return moved
        }
    }
}
