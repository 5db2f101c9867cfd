import Foundation
import PostgresNIO
import SoundbatchCore

extension PostgresLedger {
    /// Whether no live runner holds the job `j`: none does, or the one that did has a lease
    /// that ran out (it died, or lost the server for longer than its lease).
    static let heldByNoLiveRunner = """
        NOT EXISTS (SELECT 1 FROM runners r WHERE r.id = j.runner_id AND r.lease_until > clock_timestamp())
        """

    /// Whether the job `j` is free for this runner to take: held by it, or by no live runner.
    func isFree(_ me: Int64?) -> String {
        "(j.runner_id = \(me ?? -1) OR \(Self.heldByNoLiveRunner))"
    }

    /// Whether the job `j` was left behind: held by no live runner, nor by this one.
    func isLeftBehind(_ me: Int64?) -> String {
        "(j.runner_id IS DISTINCT FROM \(me ?? -1) AND \(Self.heldByNoLiveRunner))"
    }

    /// Runs `body` as one of the batch's runners: registered with a lease, renewed every
    /// third of it while `body` runs; released when it returns, its claims with it.
    public func withSending<T: Sendable>(batch: String, _ body: (Int64) async throws -> T) async throws -> T {
        let batchID = try await batchID(named: batch)
        let stamp = Timestamp.string(Date())
        let host = ProcessInfo.processInfo.hostName
        let pid = Int(getpid())
        let id = try await rows(
            """
            INSERT INTO runners (batch_id, host, pid, started_at, lease_until)
            VALUES (\(batchID), \(host), \(pid), \(stamp), clock_timestamp() + make_interval(secs => \(lease.seconds)))
            RETURNING id
            """)[0].decode(Int64.self)
        runner.withLock { $0 = id }
        defer { runner.withLock { $0 = nil } }
        let result: T
        do {
            result = try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask { try await self.keepLease(id) }
                defer { group.cancelAll() }
                return try await body(batchID)
            }
        } catch {
            try? await release(id)
            throw error
        }
        try await release(id)
        return result
    }

    /// Renews the lease every third of it, and holds the jobs of runners that died as
    /// ambiguous once their leases run out. Ends when cancelled.
    private func keepLease(_ id: Int64) async throws {
        while true {
            try await Task.sleep(for: lease / 3)
            do {
                try await client.query(
                    """
                    UPDATE runners SET lease_until = clock_timestamp() + make_interval(secs => \(lease.seconds))
                    WHERE id = \(id)
                    """, logger: logger)
                // Runners long gone: their claims are free already (see `isFree`).
                try await client.query(
                    "DELETE FROM runners WHERE lease_until < clock_timestamp() - interval '1 hour'", logger: logger)
                let held = try await holdInterruptedSubmissions(now: Date())
                if held > 0 {
                    logger.warning(
                        "\(held) jobs of a runner that stopped answering were being sent; they are now ambiguous")
                }
            } catch is CancellationError {
                return
            } catch {
                // The server is away: the calls that matter wait for it; this one tries next time.
                logger.debug("could not renew this runner's lease: \(error)")
            }
        }
    }

    /// Lets go of the runner's claims: jobs it still has in flight (their answers never
    /// recorded) become ambiguous, the rest are free for others.
    private func release(_ id: Int64) async throws {
        let stamp = Timestamp.string(Date())
        try await transaction { connection in
            _ = try await Self.holdInFlight(connection, logger: self.logger, stamp: stamp, of: "j.runner_id = \(id)")
            try await connection.query("UPDATE jobs SET runner_id = NULL WHERE runner_id = \(id)", logger: self.logger)
            try await connection.query("DELETE FROM runners WHERE id = \(id)", logger: self.logger)
        }
    }

    public func holdInterruptedSubmissions(now: Date = Date()) async throws -> Int {
        let stamp = Timestamp.string(now)
        return try await transaction { connection in
            try await Self.holdInFlight(
                connection, logger: self.logger, stamp: stamp,
                of: self.isLeftBehind(self.me))
        }
    }

    /// Makes the `submitting` jobs that match `which` (SQL over `jobs j`) ambiguous, and
    /// their open attempts interrupted.
    private static func holdInFlight(
        _ connection: PostgresConnection, logger: Logger, stamp: String, of which: String
    ) async throws -> Int {
        try await connection.query(
            """
            WITH held AS (
                UPDATE jobs j SET state = \(JobState.ambiguous.rawValue), request_in_doubt = 1,
                    updated_at = \(stamp), runner_id = NULL, last_error = \(LedgerNote.interrupted)
                WHERE j.state = \(JobState.submitting.rawValue) AND \(unescaped: which)
                RETURNING j.id),
            interrupted AS (
                UPDATE attempts SET outcome = \(AttemptOutcome.interrupted.rawValue)
                WHERE kind = \(AttemptKind.submit.rawValue) AND finished_at IS NULL AND outcome IS NULL
                    AND job_id IN (SELECT id FROM held)
                RETURNING 1)
            SELECT COUNT(*) FROM held
            """, logger: logger
        ).collect()[0].decode(Int.self)
    }

    public func requeueAmbiguous(batchID: Int64, awaitingSince: Date? = nil, now: Date = Date()) async throws -> Requeued {
        try await transaction { connection in
            var binds = PostgresBindings()
            binds.append(Timestamp.string(now))
            var waiting = ""
            if let awaitingSince {
                binds.append(Timestamp.string(awaitingSince))
                waiting = "AND NOT " + LedgerSQL.awaitingCallback(job: "jobs.id", since: "$2")
            }
            let resent = try await connection.query(
                PostgresQuery(
                    unsafeSQL: """
                        UPDATE jobs SET state = '\(JobState.pending.rawValue)', updated_at = $1, runner_id = NULL
                        WHERE batch_id = \(batchID) AND state = '\(JobState.ambiguous.rawValue)' \(waiting)
                        RETURNING 1
                        """, binds: binds), logger: self.logger
            ).collect().count
            let counts = try await connection.query(
                PostgresQuery(unsafeSQL: LedgerSQL.doubtCounts(batch: String(batchID))), logger: self.logger
            ).collect()[0].decode((Int, Int).self)
            return Requeued(resent: resent, waiting: counts.1, settledByCallback: counts.0)
        }
    }

    public func longestGeneration(batchID: Int64) async throws -> Double? {
        try await rows(
            """
            SELECT MAX(EXTRACT(EPOCH FROM (completed_at::timestamptz - submitted_at::timestamptz)))::float8 FROM jobs
            WHERE batch_id = \(batchID) AND completed_at IS NOT NULL AND submitted_at IS NOT NULL
            """)[0].decode(Double?.self)
    }

    /// Claims up to a few of the batch's pending jobs for this runner, skipping those other
    /// runners hold or are claiming this moment: no job goes to two runners. Claims stay
    /// small, so that runners share the end of a batch.
    public func pendingJobs(batchID: Int64, afterID: Int64, limit: Int) async throws -> [PendingJob] {
        let me = self.me
        let rows = try await rows(
            """
            WITH claimed AS (
                SELECT j.id FROM jobs j
                WHERE j.batch_id = \(batchID) AND j.state = \(JobState.pending.rawValue) AND j.id > \(afterID)
                    AND \(unescaped: isFree(me))
                ORDER BY j.id LIMIT \(min(limit, Self.claimSize))
                FOR UPDATE SKIP LOCKED)
            UPDATE jobs SET runner_id = \(me) FROM claimed WHERE jobs.id = claimed.id
            RETURNING jobs.id, jobs.audio_length, jobs.webhook_url, \(unescaped: LedgerSQL.takePrompt("jobs")),
                \(unescaped: LedgerSQL.rowNameColumns())
            """)
        return try rows.map { row in
            let row = row.makeRandomAccess()
            return PendingJob(
                id: try row.get("id"), row: try Self.rowName(row),
                request: SubmitRequest(
                    prompt: try row.get("take_prompt"), audioLength: try row.get("audio_length"),
                    webhookURL: try row.get("webhook_url")))
        }.sorted { $0.id < $1.id }
    }

    /// Jobs a runner claims at a time. Few: at a batch's end, the jobs one runner holds wait
    /// for it while the others are done; and a claim is one statement, cheap beside the
    /// requests it feeds (`scripts/bench-team.sh`: 1.3 to 1.8 ms of server CPU a job).
    static let claimSize = 4

    static func rowName(_ row: PostgresRandomAccessRow) throws -> String {
        RowName.of(
            rowKey: try row.get("row_key"), keyedByContent: try row.get("keyed_by_content", as: Int.self) != 0,
            sourceFile: try row.get("source_file"), line: try row.get("source_line"), prompt: try row.get("prompt"),
            variation: try row.get("variation"))
    }

    public func countPending(batchID: Int64) async throws -> Int {
        try await rows(
            "SELECT COUNT(*) FROM jobs WHERE batch_id = \(batchID) AND state = \(JobState.pending.rawValue)"
        )[0].decode(Int.self)
    }

    public func creditState(batchID: Int64) async throws -> CreditState {
        let row = try await rows(
            """
            SELECT COALESCE(SUM(credit_estimate), 0) + (
                       SELECT COALESCE(SUM(t.credit_estimate), 0) FROM takes t JOIN jobs k ON k.id = t.job_id
                       WHERE k.batch_id = \(batchID)
                   ),
                   MAX(credit_estimate),
                   COUNT(CASE WHEN state IN ('\(unescaped: JobState.ambiguous.rawValue)',
                                             '\(unescaped: JobState.submitting.rawValue)') THEN 1 END)
            FROM jobs WHERE batch_id = \(batchID)
            """)[0]
        let (estimated, largest, ambiguous) = try row.decode((Double, Double?, Int).self)
        return CreditState(estimated: estimated, largest: largest, ambiguous: ambiguous)
    }

    /// Marks only a pending job free for this runner. Made twice (a first try given up that
    /// had committed after all), the second finds the job submitting and refuses: the job,
    /// never sent, is held as ambiguous when this runner stops.
    public func markSubmitting(
        jobID: Int64, callbackToken: String? = nil, now: Date = Date()
    ) async throws -> Int64 {
        let stamp = Timestamp.string(now)
        let me = self.me
        return try await transaction { connection in
            let marked = try await connection.query(
                """
                UPDATE jobs j SET state = \(JobState.submitting.rawValue), attempt_count = attempt_count + 1,
                    updated_at = \(stamp), runner_id = \(me)
                WHERE j.id = \(jobID) AND j.state = \(JobState.pending.rawValue) AND \(unescaped: self.isFree(me))
                RETURNING j.id
                """, logger: self.logger
            ).collect()
            guard !marked.isEmpty else { throw LedgerError.notPending(jobID: jobID) }
            return try await connection.query(
                """
                INSERT INTO attempts (job_id, kind, started_at, callback_token)
                VALUES (\(jobID), \(AttemptKind.submit.rawValue), \(stamp), \(callbackToken))
                RETURNING id
                """, logger: self.logger
            ).collect()[0].decode(Int64.self)
        }
    }

    public func recordSubmission(
        jobID: Int64, attemptID: Int64, outcome: SubmitOutcome, state: JobState,
        latency: Duration, now: Date = Date()
    ) async throws {
        let stamp = Timestamp.string(now)
        let latencyMS = Int(latency.seconds * 1000)
        let (status, error) = outcome.statusAndError
        try await transaction { connection in
            let logger = self.logger
            let current = try await connection.query(
                "SELECT state, request_in_doubt FROM jobs WHERE id = \(jobID) FOR UPDATE", logger: logger
            ).collect().first?.decode((String, Int).self)
            // The job is this request's: being sent, or held as ambiguous by a runner that
            // took this one for dead. Else it has moved on (sent again at the user's
            // request), and an accepted answer is kept as an earlier take: a task ID is never lost.
            let ours = [JobState.submitting.rawValue, JobState.ambiguous.rawValue].contains(current?.0 ?? "")
            switch outcome {
            case let .accepted(answer) where ours:
                try await connection.query(
                    """
                    UPDATE jobs SET state = \(JobState.submitted.rawValue), task_id = \(answer.taskID),
                        conversion_id = \(answer.conversionID), eta = \(answer.eta),
                        credit_estimate = \(answer.creditEstimate), message = \(answer.message),
                        submitted_at = \(stamp), updated_at = \(stamp), last_error = NULL, last_http_status = 200
                    WHERE id = \(jobID)
                    """, logger: logger)
            case let .accepted(answer):
                // Its job was sent again meanwhile: two tasks, both paid for. Numbered after the row's latest take.
                try await connection.query(
                    """
                    INSERT INTO takes (job_id, take, state, task_id, conversion_id, eta, credit_estimate,
                                       request_in_doubt, paid_twice, last_http_status, submitted_at, retired_at, prompt)
                    SELECT j.id, 1 + \(unescaped: LedgerSQL.rowLatestTake("j")), \(JobState.submitted.rawValue),
                        \(answer.taskID), \(answer.conversionID), \(answer.eta), \(answer.creditEstimate), 0, 1, 200,
                        \(stamp), \(stamp), COALESCE(j.take_prompt, j.prompt)
                    FROM jobs j WHERE j.id = \(jobID)
                    """, logger: logger)
            default:
                guard ours else { break }
                let unanswered = outcome.attemptOutcome == .noAnswer
                let jobError = outcome.jobError(becoming: state, inDoubtBefore: current?.1 == 1)
                try await connection.query(
                    """
                    UPDATE jobs SET state = \(state.rawValue), last_error = \(jobError), last_http_status = \(status),
                        updated_at = \(stamp), request_in_doubt = GREATEST(request_in_doubt, \(unanswered ? 1 : 0))
                    WHERE id = \(jobID)
                    """, logger: logger)
            }
            try await connection.query(
                """
                UPDATE attempts SET finished_at = \(stamp), http_status = \(status), error = \(error),
                    latency_ms = \(latencyMS), outcome = \(outcome.attemptOutcome.rawValue)
                WHERE id = \(attemptID)
                """, logger: logger)
        }
    }
}
