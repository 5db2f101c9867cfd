import Foundation
import GRDB
import SoundbatchCore

extension SQLiteLedger {
    /// Jobs left `submitting` by a process that died mid-request become `ambiguous`: the
    /// service may have created, and charged for, their tasks. Run with the ledger locked.
    public func holdInterruptedSubmissions(now: Date = Date()) async throws -> Int {
        try await write { db in
            try db.execute(sql: """
                UPDATE jobs SET state = 'ambiguous', updated_at = ?,
                    last_error = 'soundbatch stopped while this request was in flight; the service may have created the task'
                WHERE state = 'submitting'
                """, arguments: [Timestamp.string(now)])
            return db.changesCount
        }
    }

    /// Puts the batch's ambiguous jobs back in line, at the user's explicit request.
    public func requeueAmbiguous(batchID: Int64, now: Date = Date()) async throws -> Int {
        try await write { db in
            try db.execute(sql: """
                UPDATE jobs SET state = 'pending', updated_at = ? WHERE batch_id = ? AND state = 'ambiguous'
                """, arguments: [Timestamp.string(now), batchID])
            return db.changesCount
        }
    }

    /// The next pending jobs after `afterID`, in id order.
    public func pendingJobs(batchID: Int64, afterID: Int64, limit: Int) async throws -> [PendingJob] {
        try await read { db in
            try PendingJob.fetchAll(db, sql: """
                SELECT id, prompt, audio_length, webhook_url FROM jobs
                WHERE batch_id = ? AND id > ? AND state = 'pending' ORDER BY id LIMIT ?
                """, arguments: [batchID, afterID, limit])
        }
    }

    public func countPending(batchID: Int64) async throws -> Int {
        try await read { db in
            try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM jobs WHERE batch_id = ? AND state = 'pending'", arguments: [batchID]) ?? 0
        }
    }

    public func creditState(batchID: Int64) async throws -> CreditState {
        try await read { db in
            let row = try Row.fetchOne(db, sql: """
                SELECT TOTAL(credit_estimate) AS estimated, MAX(credit_estimate) AS largest,
                       COUNT(CASE WHEN state IN ('ambiguous', 'submitting') THEN 1 END) AS ambiguous
                FROM jobs WHERE batch_id = ?
                """, arguments: [batchID])!
            return CreditState(estimated: row["estimated"], largest: row["largest"], ambiguous: row["ambiguous"])
        }
    }

    /// Durably marks the job as being sent and opens its attempt, in one transaction that
    /// is on disk before this returns. Returns the attempt's id.
    public func markSubmitting(jobID: Int64, webhookURL: String?, now: Date = Date()) async throws -> Int64 {
        try checkStillThere()
        let stamp = Timestamp.string(now)
        return try await write { db in
            try db.execute(sql: """
                UPDATE jobs SET state = 'submitting', attempt_count = attempt_count + 1, updated_at = ?,
                    webhook_url = COALESCE(webhook_url, ?)
                WHERE id = ? AND state = 'pending'
                """, arguments: [stamp, webhookURL, jobID])
            guard db.changesCount == 1 else { throw LedgerError.notPending(jobID: jobID) }
            try db.execute(sql: "INSERT INTO attempts (job_id, kind, started_at) VALUES (?, 'submit', ?)",
                           arguments: [jobID, stamp])
            return db.lastInsertedRowID
        }
    }

    /// Records the answer to one attempt and moves the job to `state`, in one transaction.
    public func recordSubmission(jobID: Int64, attemptID: Int64, outcome: SubmitOutcome, state: JobState,
                                 latency: Duration, now: Date = Date()) async throws {
        let stamp = Timestamp.string(now)
        let latencyMS = Int(latency.seconds * 1000)
        try await write { db in
            switch outcome {
            case let .accepted(answer):
                try db.execute(sql: """
                    UPDATE jobs SET state = 'submitted', task_id = ?, conversion_id = ?, eta = ?, credit_estimate = ?,
                        message = ?, submitted_at = ?, updated_at = ?, last_error = NULL, last_http_status = 200
                    WHERE id = ?
                    """, arguments: [answer.taskID, answer.conversionID, answer.eta, answer.creditEstimate,
                                     answer.message, stamp, stamp, jobID])
                try db.execute(sql: "UPDATE attempts SET finished_at = ?, http_status = 200, latency_ms = ? WHERE id = ?",
                               arguments: [stamp, latencyMS, attemptID])
            default:
                var (status, error) = outcome.statusAndError
                // An earlier request was ambiguous when it never finished, got no answer, or got
                // a 2xx without a task (a job refused with a 2xx is never sent again).
                if state == .failed, try Bool.fetchOne(db, sql: """
                    SELECT 1 FROM attempts WHERE job_id = ? AND id <> ? AND kind = 'submit'
                        AND (finished_at IS NULL OR http_status BETWEEN 200 AND 299
                             OR (http_status IS NULL AND error LIKE ? || '%'))
                    """, arguments: [jobID, attemptID, MusicGPTClient.noAnswer]) == true {
                    // The failure is this request's; an earlier one may still have made a task.
                    error = (error ?? "refused") + LedgerNote.unansweredBefore
                }
                try db.execute(sql: """
                    UPDATE jobs SET state = ?, last_error = ?, last_http_status = ?, updated_at = ? WHERE id = ?
                    """, arguments: [state.rawValue, error, status, stamp, jobID])
                try db.execute(sql: """
                    UPDATE attempts SET finished_at = ?, http_status = ?, error = ?, latency_ms = ? WHERE id = ?
                    """, arguments: [stamp, status, error, latencyMS, attemptID])
            }
        }
    }
}

extension SubmitOutcome {
    /// The HTTP status and error text of an outcome that is not a success.
    var statusAndError: (Int?, String?) {
        switch self {
        case .accepted: (200, nil)
        case let .rejected(status, error): (status, error)
        case let .retryable(status, error, _): (status, error)
        case let .keyRejected(status, error): (status, "the API key was refused (HTTP \(status)): \(error)")
        case let .outOfCredits(error): (402, "not enough credits (HTTP 402): \(error)")
        case let .ambiguous(status, error): (status, error)
        }
    }
}

extension PendingJob: FetchableRecord {
    public init(row: Row) {
        self.init(id: row["id"], request: SubmitRequest(prompt: row["prompt"], audioLength: row["audio_length"],
                                                        webhookURL: row["webhook_url"]))
    }
}
