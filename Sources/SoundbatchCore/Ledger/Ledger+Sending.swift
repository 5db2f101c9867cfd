import Foundation

// `SubmissionLedger` and `SendingLedger`, written once over `LedgerBackend`; `withSending`
// (a lock on SQLite, a lease on PostgreSQL) is each backend's.
extension LedgerBackend {
    public func holdInterruptedSubmissions(now: Date = Date()) async throws -> Int {
        try await holdInFlight(held("j", by: .nobodyLive), now: now)
    }

    /// Makes the `submitting` jobs that match `which` (over `jobs j`) in doubt, held by no
    /// runner, and their open attempts interrupted, in one transaction; returns how many.
    public func holdInFlight(_ which: SQL, now: Date) async throws -> Int {
        let stamp = Timestamp.string(now)
        return try await transaction { db in
            let ids: [Int64] = try await db.rows(
                "SELECT j.id FROM jobs j WHERE j.state = \(JobState.submitting) AND \(which)\(self.dialect.lockingRows)"
            ).map { try $0["id"] }
            guard !ids.isEmpty else { return 0 }
            try await db.run(
                """
                UPDATE attempts SET outcome = \(AttemptOutcome.interrupted)
                WHERE kind = \(AttemptKind.submit) AND finished_at IS NULL AND outcome IS NULL AND job_id IN (\(list: ids))
                """)
            try await db.run(
                """
                UPDATE jobs SET state = \(JobState.inDoubt), request_in_doubt = 1, updated_at = \(stamp),
                    runner_id = NULL, last_error = \(LedgerNote.interrupted)
                WHERE id IN (\(list: ids))
                """)
            return ids.count
        }
    }

    public func requeueInDoubt(batchID: Int64, awaitingSince: Date? = nil, now: Date = Date()) async throws -> Requeued
    {
        let waiting: SQL =
            awaitingSince.map { "AND NOT \(LedgerSQL.awaitingCallback(job: "jobs.id", since: $0))" } ?? ""
        return try await transaction { db in
            let resent = try await db.rows(
                """
                UPDATE jobs SET state = \(JobState.pending), updated_at = \(Timestamp.string(now)), runner_id = NULL
                WHERE batch_id = \(batchID) AND state = \(JobState.inDoubt) \(waiting)
                RETURNING id
                """
            ).count
            let counts = try await db.rows(
                """
                SELECT COUNT(CASE WHEN settled_by_callback = 1 THEN 1 END) AS settled,
                       COUNT(CASE WHEN state = \(JobState.inDoubt) THEN 1 END) AS waiting
                FROM jobs WHERE batch_id = \(batchID)
                """)[0]
            return Requeued(resent: resent, waiting: try counts["waiting"], settledByCallback: try counts["settled"])
        }
    }

    public func longestGeneration(batchID: Int64) async throws -> Double? {
        try await value(
            """
            SELECT MAX(\(dialect.secondsBetween("submitted_at", "completed_at"))) FROM jobs
            WHERE batch_id = \(batchID) AND completed_at IS NOT NULL AND submitted_at IS NOT NULL
            """)
    }

    /// Claims up to `limit` of the batch's pending jobs for this runner (`claim`): no job
    /// goes to two runners.
    public func pendingJobs(batchID: Int64, afterID: Int64, limit: Int) async throws -> [PendingJob] {
        try await claim(
            JobClaim(
                columns:
                    "j.id, j.audio_length, j.webhook_url, \(LedgerSQL.takePrompt()), \(LedgerSQL.rowNameColumns())",
                filter: "j.batch_id = \(batchID) AND j.state = \(JobState.pending) AND j.id > \(afterID)",
                holder: .meOrNobody, limit: limit)
        ).map { row in
            PendingJob(
                id: try row["id"], row: try row.rowName,
                request: SubmitRequest(
                    prompt: try row["take_prompt"], audioLength: try row["audio_length"],
                    webhookURL: try row["webhook_url"]))
        }
    }

    public func countPending(batchID: Int64) async throws -> Int {
        try await value("SELECT COUNT(*) FROM jobs WHERE batch_id = \(batchID) AND state = \(JobState.pending)")
    }

    public func creditState(batchID: Int64) async throws -> CreditState {
        let row = try await rows(
            """
            SELECT COALESCE(SUM(credit_estimate), 0) + (
                       SELECT COALESCE(SUM(t.credit_estimate), 0) FROM takes t JOIN jobs k ON k.id = t.job_id
                       WHERE k.batch_id = \(batchID)
                   ) AS estimated,
                   MAX(credit_estimate) AS largest,
                   COUNT(CASE WHEN state IN (\(LedgerSQL.states([.inDoubt, .submitting]))) THEN 1 END) AS in_doubt
            FROM jobs WHERE batch_id = \(batchID)
            """)[0]
        return CreditState(estimated: try row["estimated"], largest: try row["largest"], inDoubt: try row["in_doubt"])
    }

    /// Marks only a pending job free for this runner. Made twice (a first try given up that
    /// had committed after all), the second finds the job submitting and refuses: the job,
    /// never sent, is held in doubt when this runner stops.
    public func markSubmitting(jobID: Int64, callbackToken: String? = nil, now: Date = Date()) async throws -> Int64 {
        try checkStillThere()
        let stamp = Timestamp.string(now)
        let me = runnerID
        return try await transaction { db in
            let marked = try await db.rows(
                """
                UPDATE jobs AS j SET state = \(JobState.submitting), attempt_count = attempt_count + 1,
                    updated_at = \(stamp), runner_id = \(me)
                WHERE j.id = \(jobID) AND j.state = \(JobState.pending) AND \(self.held("j", by: .meOrNobody))
                RETURNING id
                """)
            guard !marked.isEmpty else { throw LedgerError.notPending(jobID: jobID) }
            return try await db.value(
                """
                INSERT INTO attempts (job_id, kind, started_at, callback_token)
                VALUES (\(jobID), \(AttemptKind.submit), \(stamp), \(callbackToken)) RETURNING id
                """)
        }
    }

    public func recordSubmission(
        jobID: Int64, attemptID: Int64, outcome: SubmitOutcome, state: JobState, latency: Duration, now: Date = Date()
    ) async throws {
        let stamp = Timestamp.string(now)
        let (status, error) = outcome.statusAndError
        try await transaction { db in
            let current = try await db.row(
                "SELECT state, request_in_doubt FROM jobs WHERE id = \(jobID)\(self.dialect.lockingRows)")
            // The job is this request's: being sent, or held in doubt (by a runner that
            // took this one for dead). Else it has moved on (sent again at the user's
            // request), and an accepted answer is kept as an earlier take: a task ID is never lost.
            let currentState: String? = try current?["state"]
            let ours = [JobState.submitting.rawValue, JobState.inDoubt.rawValue].contains(currentState)
            switch outcome {
            case let .accepted(answer) where ours:
                try await db.run(
                    """
                    UPDATE jobs SET state = \(JobState.submitted), task_id = \(answer.taskID),
                        conversion_id = \(answer.conversionID), eta = \(answer.eta),
                        credit_estimate = \(answer.creditEstimate), message = \(answer.message),
                        submitted_at = \(stamp), updated_at = \(stamp), last_error = NULL, last_http_status = 200
                    WHERE id = \(jobID)
                    """)
            case let .accepted(answer):
                // Its job was sent again meanwhile: two tasks, both paid for, numbered after the row's latest take.
                try await db.run(
                    """
                    INSERT INTO takes (job_id, take, state, task_id, conversion_id, eta, credit_estimate,
                                       request_in_doubt, paid_twice, last_http_status, submitted_at, retired_at, prompt)
                    SELECT j.id, 1 + \(LedgerSQL.rowLatestTake("j")), \(JobState.submitted), \(answer.taskID),
                        \(answer.conversionID), \(answer.eta), \(answer.creditEstimate), 0, 1, 200, \(stamp), \(stamp),
                        COALESCE(j.take_prompt, j.prompt)
                    FROM jobs j WHERE j.id = \(jobID)
                    """)
            default:
                guard ours else { break }
                let inDoubtBefore: Bool = try current?["request_in_doubt"] ?? false
                try await db.run(
                    """
                    UPDATE jobs SET state = \(state), last_http_status = \(status), updated_at = \(stamp),
                        last_error = \(outcome.jobError(becoming: state, inDoubtBefore: inDoubtBefore)),
                        request_in_doubt = CASE WHEN \(outcome.attemptOutcome == .noAnswer) = 1 THEN 1
                                                ELSE request_in_doubt END
                    WHERE id = \(jobID)
                    """)
            }
            try await db.run(
                """
                UPDATE attempts SET finished_at = \(stamp), http_status = \(status), error = \(error),
                    latency_ms = \(Int(latency.seconds * 1000)), outcome = \(outcome.attemptOutcome)
                WHERE id = \(attemptID)
                """)
        }
    }
}
