import Foundation
import PostgresNIO
import SoundbatchCore

extension PostgresLedger {
    public func settings(ofBatch batchID: Int64) async throws -> BatchSettings? {
        try await rows("SELECT settings FROM batches WHERE id = \(batchID)").first?
            .decode(String?.self).flatMap(BatchSettings.init(json:))
    }

    public func recordSettings(_ settings: BatchSettings, ofBatch batchID: Int64) async throws {
        try await rows("UPDATE batches SET settings = \(try settings.json()) WHERE id = \(batchID)")
    }

    public func hasTasks(batchID: Int64) async throws -> Bool {
        try await !rows(
            """
            SELECT 1 FROM jobs WHERE batch_id = \(batchID)
                AND (task_id IS NOT NULL OR request_in_doubt = 1 OR state = \(JobState.submitting.rawValue))
            LIMIT 1
            """
        ).isEmpty
    }

    public func retryCandidates(batchID: Int64, states: Set<JobState>) async throws -> [RetryCandidate] {
        let wanted = states.intersection(JobState.finished).map(\.rawValue)
        guard !wanted.isEmpty else { return [] }
        return try await rows(
            """
            SELECT j.id, j.state, j.last_http_status, j.last_error, j.credit_estimate, j.download_path,
                   \(unescaped: LedgerSQL.rowNameColumns("j"))
            FROM jobs j WHERE j.batch_id = \(batchID) AND j.state = ANY(\(wanted)) ORDER BY j.id
            """
        ).map { row in
            let row = row.makeRandomAccess()
            return RetryCandidate(
                id: try row.get("id"), row: try Self.rowName(row), rowKey: try row.get("row_key"),
                line: try row.get("source_line"),
                state: JobState(rawValue: try row.get("state")) ?? .failed,
                lastHTTPStatus: try row.get("last_http_status"), lastError: try row.get("last_error"),
                creditEstimate: try row.get("credit_estimate"), downloadPath: try row.get("download_path"))
        }
    }

    public func startNewTakes(jobIDs: [Int64], renamedFiles: [Int64: String], now: Date = Date()) async throws -> Int {
        let stamp = Timestamp.string(now)
        let finished = JobState.finished.map(\.rawValue)
        return try await transaction { connection in
            var moved = 0
            for id in jobIDs {
                let kept = try await connection.query(
                    """
                    INSERT INTO takes (
                        job_id, state, task_id, conversion_id, eta, credit_estimate, conversion_cost,
                        remote_status, status_msg, audio_url, download_path, download_size, download_sha256,
                        last_error, last_http_status, request_in_doubt, submitted_at, completed_at, retired_at)
                    SELECT id, state, task_id, conversion_id, eta, credit_estimate, conversion_cost,
                        remote_status, status_msg, audio_url, COALESCE(\(renamedFiles[id]), download_path),
                        download_size, download_sha256, last_error, last_http_status, request_in_doubt,
                        submitted_at, completed_at, \(stamp)
                    FROM jobs WHERE id = \(id) AND state = ANY(\(finished))
                    RETURNING id
                    """, logger: self.logger
                ).collect()
                guard !kept.isEmpty else { continue }
                try await connection.query(
                    """
                    UPDATE jobs SET state = \(JobState.pending.rawValue), task_id = NULL, conversion_id = NULL,
                        eta = NULL, credit_estimate = NULL, conversion_cost = NULL, message = NULL,
                        remote_status = NULL, status_msg = NULL, audio_url = NULL, download_path = NULL,
                        download_size = NULL, download_sha256 = NULL, last_error = NULL, last_http_status = NULL,
                        request_in_doubt = 0, submitted_at = NULL, completed_at = NULL, updated_at = \(stamp)
                    WHERE id = \(id)
                    """, logger: self.logger)
                moved += 1
            }
            return moved
        }
    }
}
