import Foundation
import PostgresNIO
import SoundbatchCore

extension PostgresLedger {
    public func retryCandidates(batchID: Int64, states: Set<JobState>) async throws -> [RetryCandidate] {
        let wanted = states.intersection(JobState.finished).map(\.rawValue)
        guard !wanted.isEmpty else { return [] }
        return try await rows(
            """
            SELECT j.id, j.take, j.state, j.last_http_status, j.last_error, j.credit_estimate, j.download_path, j.verdict,
                   \(unescaped: LedgerSQL.rowNameColumns("j"))
            FROM jobs j WHERE j.batch_id = \(batchID) AND j.state = ANY(\(wanted)) ORDER BY j.id
            """
        ).map { row in
            let row = row.makeRandomAccess()
            return RetryCandidate(
                id: try row.get("id"), row: try Self.rowName(row), rowKey: try row.get("row_key"),
                line: try row.get("source_line"),
                state: try JobState(ledger: try row.get("state")),
                lastHTTPStatus: try row.get("last_http_status"), lastError: try row.get("last_error"),
                creditEstimate: try row.get("credit_estimate"), downloadPath: try row.get("download_path"),
                verdict: try row.get("verdict", as: String?.self).flatMap(Verdict.init(rawValue:)),
                take: try row.get("take"))
        }
    }

    public func startNewTakes(
        jobIDs: [Int64], renamedFiles: [Int64: String], prompts: [Int64: String] = [:], now: Date = Date()
    ) async throws -> Int {
        let stamp = Timestamp.string(now)
        return try await transaction { connection in
            var moved = 0
            for id in jobIDs {
                var binds = PostgresBindings()
                binds.append(id)
                binds.append(renamedFiles[id])
                binds.append(stamp)
                let kept = try await connection.query(
                    PostgresQuery(
                        unsafeSQL: LedgerSQL.keepTake(job: "$1", renamedFile: "$2::text", retiredAt: "$3") + " RETURNING id",
                        binds: binds),
                    logger: self.logger
                ).collect()
                guard !kept.isEmpty else { continue }
                // A retried job is nobody's: whichever runner sends the batch next takes it.
                try await connection.query(
                    PostgresQuery(
                        unsafeSQL: LedgerSQL.startTake(job: "$1", prompt: "$2::text", now: "$3", runners: true),
                        binds: {
                            var binds = PostgresBindings()
                            binds.append(id)
                            binds.append(prompts[id])
                            binds.append(stamp)
                            return binds
                        }()),
                    logger: self.logger)
                moved += 1
            }
            return moved
        }
    }
}
