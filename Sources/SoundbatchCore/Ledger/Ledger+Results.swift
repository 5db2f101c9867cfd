import Foundation

// `StatusLedger` (but for callbacks, in `Ledger+Callbacks.swift`) and `DownloadLedger`,
// written once over `LedgerBackend`; `withFollowing` is each backend's.
extension LedgerBackend {
    /// The batch's jobs still running at the service: on a server, those no live runner
    /// follows, taken on by this one (`claim`).
    public func submittedJobs(batchID: Int64) async throws -> [TrackedJob] {
        try await claim(
            JobClaim(
                columns: "j.id, j.task_id, j.submitted_at, j.eta, j.audio_length, \(LedgerSQL.rowNameColumns())",
                filter: "j.batch_id = \(batchID) AND j.state = \(JobState.submitted) AND j.task_id IS NOT NULL",
                holder: .nobodyLive)
        ).map { row in
            TrackedJob(
                id: try row["id"], row: try row.rowName, taskID: try row["task_id"],
                submittedAt: Timestamp.date(try row["submitted_at"]) ?? Date(), eta: try row["eta"],
                audioLength: try row["audio_length"])
        }
    }

    private static var audioJobColumns: SQL {
        """
        j.id, j.take, j.audio_length, j.audio_url, \(LedgerSQL.pathHere("j", jobID: "j.id")) AS download_path,
        j.download_path AS saved_as, j.download_size, j.download_sha256,
        \(LedgerSQL.rowNameColumns())
        """
    }

    /// The batch's completed jobs with audio: on a server, those no live runner holds,
    /// taken on by this one (`claim`).
    public func audioJobs(batchID: Int64) async throws -> [AudioJob] {
        try await claim(
            JobClaim(
                columns: Self.audioJobColumns,
                filter: "j.batch_id = \(batchID) AND j.state = \(JobState.completed) AND j.audio_url IS NOT NULL",
                holder: .nobodyLive)
        ).map(Self.audioJob)
    }

    public func audioJob(id: Int64) async throws -> AudioJob? {
        try await row(
            """
            SELECT \(Self.audioJobColumns) FROM jobs j
            WHERE j.id = \(id) AND j.state = \(JobState.completed) AND j.audio_url IS NOT NULL
            """
        ).map(Self.audioJob)
    }

    private static func audioJob(_ row: LedgerRow) throws -> AudioJob {
        AudioJob(
            id: try row["id"], row: try row.rowName, rowKey: try row["row_key"], prompt: try row["prompt"],
            keyedByContent: try row["keyed_by_content"], variation: try row["variation"], take: try row["take"],
            audioLength: try row["audio_length"], audioURL: try row["audio_url"],
            downloadedPath: try row["download_path"],
            downloadedSize: try row["download_size"], downloadedSHA256: try row["download_sha256"],
            savedAs: try row["saved_as"])
    }

    public func state(jobID: Int64) async throws -> JobState? {
        try await row("SELECT j.state, \(LedgerSQL.rowNameColumns()) FROM jobs j WHERE j.id = \(jobID)")
            .map { try $0["state"] }
    }

    public func job(taskID: String) async throws -> (id: Int64, batchID: Int64)? {
        try await row("SELECT id, batch_id FROM jobs WHERE task_id = \(taskID)").map {
            (try $0["id"], try $0["batch_id"])
        }
    }

    public func identity() async throws -> String {
        try await row("SELECT id FROM ledger_identity").map { try $0["id"] } ?? ""
    }

    @discardableResult
    public func recordStatus(
        jobID: Int64, _ remote: RemoteStatus, now: Date = Date()
    ) async throws
        -> (JobState, changed: Bool)
    {
        try await transaction { db in try await self.record(remote, ofJob: jobID, now: now, in: db) }
    }

    /// What `recordStatus` does, in a transaction under way: only a submitted job moves,
    /// and the same news twice changes nothing (`TaskStanding.updated(by:)`).
    private func record(
        _ remote: RemoteStatus, ofJob jobID: Int64, now: Date, in db: any SQLRunner
    ) async throws
        -> (JobState, changed: Bool)
    {
        let stamp = Timestamp.string(now)
        guard
            let row = try await db.row(
                """
                SELECT j.state, j.remote_status, j.status_msg, j.audio_url, j.conversion_cost, \(LedgerSQL.rowNameColumns())
                FROM jobs j WHERE j.id = \(jobID)\(dialect.lockingRows)
                """)
        else { throw LedgerError.noSuchJob(jobID: jobID) }
        let standing = TaskStanding(
            state: try row["state"], remoteStatus: try row["remote_status"], statusMessage: try row["status_msg"],
            audioURL: try row["audio_url"], conversionCost: try row["conversion_cost"])
        guard let next = standing.updated(by: remote) else { return (standing.state, false) }
        try await db.run(
            """
            UPDATE jobs SET state = \(next.state), remote_status = \(next.remoteStatus), status_msg = \(next.statusMessage),
                audio_url = \(next.audioURL), conversion_cost = \(next.conversionCost),
                completed_at = CASE WHEN \(next.state != .submitted) = 1 AND completed_at IS NULL THEN \(stamp)
                                    ELSE completed_at END,
                updated_at = \(stamp)
            WHERE id = \(jobID)
            """)
        return (next.state, true)
    }

    @discardableResult
    public func recordMissing(jobID: Int64, reason: String, now: Date = Date()) async throws -> Bool {
        try await rows(
            """
            UPDATE jobs SET state = \(JobState.remoteMissing), last_error = \(reason), updated_at = \(Timestamp.string(now))
            WHERE id = \(jobID) AND state = \(JobState.submitted) RETURNING id
            """
        ).count == 1
    }

    @discardableResult
    public func recordLook(
        jobID: Int64, _ outcome: StatusOutcome, startedAt: Date, latency: Duration, now: Date = Date()
    ) async throws -> JobState? {
        let finished = Timestamp.string(startedAt.addingTimeInterval(latency.seconds))
        return try await transaction { db in
            try await db.run(
                """
                INSERT INTO attempts (job_id, kind, outcome, started_at, finished_at, http_status, error, latency_ms)
                VALUES (\(jobID), \(AttemptKind.look), \(outcome.attemptOutcome), \(Timestamp.string(startedAt)),
                        \(finished), \(outcome.httpStatus), \(outcome.error), \(Int(latency.seconds * 1000)))
                """)
            guard case let .found(remote) = outcome else { return nil }
            return try await self.record(remote, ofJob: jobID, now: now, in: db).0
        }
    }
}
