import Foundation

// `RetryLedger` and `BatchMemory`, written once over `LedgerBackend`.
extension LedgerBackend {
    public func retryCandidates(batchID: Int64, states: Set<JobState>) async throws -> [RetryCandidate] {
        let wanted = states.intersection(JobState.finished)
        guard !wanted.isEmpty else { return [] }
        return try await rows(
            """
            SELECT j.id, j.take, j.state, j.last_http_status, j.last_error, j.credit_estimate, j.download_path, j.verdict,
                   c.findings, (SELECT COUNT(*) FROM takes t JOIN checks f ON f.job_id = t.job_id AND f.take = t.take
                                WHERE t.job_id = j.id AND f.findings <> '') AS flagged_takes,
                   \(LedgerSQL.rowNameColumns())
            FROM jobs j LEFT JOIN checks c ON c.job_id = j.id AND c.take = j.take
            WHERE j.batch_id = \(batchID) AND j.state IN (\(LedgerSQL.states(wanted))) ORDER BY j.id
            """
        ).map { row in
            RetryCandidate(
                id: try row["id"], row: try row.rowName, rowKey: try row["row_key"], line: try row["source_line"],
                state: try row["state"], lastHTTPStatus: try row["last_http_status"], lastError: try row["last_error"],
                creditEstimate: try row["credit_estimate"], downloadPath: try row["download_path"],
                verdict: try row["verdict"], take: try row["take"],
                findings: Finding.set(fromText: try row["findings"]),
                flaggedEarlierTakes: try row["flagged_takes"])
        }
    }

    public func startNewTakes(
        jobIDs: [Int64], prompts: [Int64: String] = [:], now: Date = Date()
    ) async throws -> Int {
        let stamp = Timestamp.string(now)
        return try await transaction { db in
            var moved = 0
            for id in jobIDs {
                let kept = try await db.rows(Self.keepTake(job: id, retiredAt: stamp))
                guard !kept.isEmpty else { continue }
                try await db.run(Self.startTake(job: id, prompt: prompts[id], now: stamp))
                moved += 1
            }
            return moved
        }
    }

    /// What a take of a job is given, kept in `takes` when a new take starts.
    private static var takeColumns: [String] {
        [
            "take", "state", "task_id", "conversion_id", "eta", "credit_estimate", "conversion_cost", "remote_status",
            "status_msg", "audio_url", "download_path", "download_size", "download_sha256", "download_machine",
            "last_error",
            "last_http_status", "request_in_doubt", "submitted_at", "completed_at", "verdict", "peaks", "audio_seconds"
        ]
    }

    /// Keeps the job's take in `takes`, with the prompt that made it, if the job is finished.
    private static func keepTake(job: Int64, retiredAt: String) -> SQL {
        let columns = takeColumns.joined(separator: ", ")
        return """
            INSERT INTO takes (job_id, \(raw: columns), prompt, retired_at)
            SELECT id, \(raw: columns), COALESCE(take_prompt, prompt), \(retiredAt)
            FROM jobs WHERE id = \(job) AND state IN (\(LedgerSQL.states(JobState.finished)))
            RETURNING id
            """
    }

    /// Makes the job pending again for its next take (numbered after its row's latest, which
    /// may be another variation's), sent with `prompt` when there is one, else the row's;
    /// what its take was given cleared (after `keepTake`), held by no runner: whichever
    /// sends the batch next takes it.
    private static func startTake(job: Int64, prompt: String?, now: String) -> SQL {
        let cleared = takeColumns.filter { !["take", "state"].contains($0) }
            .map { $0 == "request_in_doubt" ? "\($0) = 0" : "\($0) = NULL" }
        return """
            UPDATE jobs SET state = \(JobState.pending), take_prompt = \(prompt), take = 1 + \(LedgerSQL.rowLatestTake("jobs")),
                \(raw: cleared.joined(separator: ", ")), message = NULL, download_key = NULL, updated_at = \(now),
                runner_id = NULL
            WHERE id = \(job)
            """
    }

    public func settings(ofBatch batchID: Int64) async throws -> BatchSettings? {
        let json: String? = try await row("SELECT settings FROM batches WHERE id = \(batchID)").flatMap {
            try $0["settings"]
        }
        return json.flatMap(BatchSettings.init(json:))
    }

    public func recordSettings(_ settings: BatchSettings, ofBatch batchID: Int64) async throws {
        try await run("UPDATE batches SET settings = \(try settings.json()) WHERE id = \(batchID)")
    }

    /// Whether the service may hold tasks of the batch: a job has a task ID, or sent a
    /// request that got no answer, or is being sent.
    public func hasTasks(batchID: Int64) async throws -> Bool {
        try await row(
            """
            SELECT 1 AS found FROM jobs
            WHERE batch_id = \(batchID) AND (task_id IS NOT NULL OR request_in_doubt = 1 OR state = \(JobState.submitting))
            LIMIT 1
            """) != nil
    }
}
