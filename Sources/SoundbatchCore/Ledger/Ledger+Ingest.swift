import Foundation

// `IngestLedger` and `BatchDirectory`, written once over `LedgerBackend`: the feed's own
// writer is each backend's (`record`), the rest is here.
extension LedgerBackend {
    public func batchID(named name: String) async throws -> Int64 {
        if let found = try await row("SELECT id FROM batches WHERE name = \(name)") { return try found["id"] }
        let known: [String] = try await rows("SELECT name FROM batches ORDER BY name").map { try $0["name"] }
        throw LedgerError.noSuchBatch(name, known: known)
    }

    public func requireKnownStates(batchID: Int64?) async throws {
        let known = LedgerSQL.states(JobState.allCases)
        let batch: SQL = batchID.map { "j.batch_id = \($0)" } ?? "TRUE"
        // A job's own take, then earlier takes.
        for (source, state) in [("jobs j", "j.state"), ("takes t JOIN jobs j ON j.id = t.job_id", "t.state")] {
            if let found = try await row(
                """
                SELECT \(raw: state) AS state, \(LedgerSQL.rowNameColumns()) FROM \(raw: source)
                WHERE \(batch) AND \(raw: state) NOT IN (\(known)) LIMIT 1
                """)
            {
                let text: String = try found["state"]
                throw LedgerError.unknownState(row: try found.rowName, state: text)
            }
        }
    }

    /// Rows of the batch's latest feed whose prompt a pending job from an earlier feed has:
    /// the batch grouped by prompt, once.
    public func repeatedPrompts(batchID: Int64) async throws -> Int {
        try await scan(
            """
            SELECT CAST(COALESCE(SUM(added), 0) AS BIGINT) AS repeated FROM (
                SELECT SUM(CASE WHEN j.ingest_id = feed.latest THEN 1 ELSE 0 END) AS added,
                       SUM(CASE WHEN j.ingest_id < feed.latest AND j.state = \(JobState.pending) THEN 1 ELSE 0 END)
                           AS waiting
                FROM jobs j, (SELECT MAX(id) AS latest FROM ingests WHERE batch_id = \(batchID)) feed
                WHERE j.batch_id = \(batchID) GROUP BY j.prompt
            ) prompts WHERE waiting > 0
            """
        )[0]["repeated"]
    }

    public func dropCandidates(batchID: Int64, states: Set<JobState>, lastFeed: Bool) async throws -> [DropCandidate] {
        let latest: SQL =
            lastFeed ? "AND j.ingest_id = (SELECT MAX(id) FROM ingests WHERE batch_id = \(batchID))" : ""
        return try await scan(
            """
            SELECT j.id, j.state, CASE WHEN \(LedgerSQL.neverSent) THEN 1 ELSE 0 END AS never_sent,
                   \(LedgerSQL.rowNameColumns())
            FROM jobs j WHERE j.batch_id = \(batchID) AND j.state IN (\(list: states.map(\.rawValue).sorted())) \(latest)
            ORDER BY j.id
            """
        ).map { row in
            DropCandidate(
                id: try row["id"], row: try row.rowName, rowKey: try row["row_key"], line: try row["source_line"],
                state: try row["state"], neverSent: try row["never_sent"])
        }
    }

    public func drop(jobIDs: [Int64]) async throws -> Int {
        try await transaction { db in
            var dropped = 0
            // A statement's values are limited: a few hundred at a time.
            for start in stride(from: 0, to: jobIDs.count, by: 500) {
                let chunk = Array(jobIDs[start..<min(start + 500, jobIDs.count)])
                // Locked while they go: no runner can mark one of them meanwhile.
                let ids: [Int64] = try await db.rows(
                    """
                    SELECT j.id FROM jobs j WHERE j.id IN (\(list: chunk)) AND \(LedgerSQL.neverSent)\
                    \(self.dialect.lockingRows)
                    """
                ).map { try $0["id"] }
                guard !ids.isEmpty else { continue }
                try await db.run("DELETE FROM attempts WHERE job_id IN (\(list: ids))")
                try await db.run("DELETE FROM jobs WHERE id IN (\(list: ids))")
                dropped += ids.count
            }
            return dropped
        }
    }
}
