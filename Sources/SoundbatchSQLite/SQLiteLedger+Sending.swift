import Foundation
import GRDB
import SoundbatchCore

extension SQLiteLedger {
    public func holdInterruptedSubmissions(now: Date = Date()) async throws -> Int {
        try await write { db in
            let stamp = Timestamp.string(now)
            try db.execute(
                sql: """
                    UPDATE attempts SET outcome = ? WHERE kind = ? AND finished_at IS NULL AND outcome IS NULL
                        AND job_id IN (SELECT id FROM jobs WHERE state = ?)
                    """, arguments: [AttemptOutcome.interrupted, AttemptKind.submit, JobState.submitting])
            try db.execute(
                sql: """
                    UPDATE jobs SET state = ?, request_in_doubt = 1, updated_at = ?, last_error = ?
                    WHERE state = ?
                    """, arguments: [JobState.ambiguous, stamp, LedgerNote.interrupted, JobState.submitting])
            return db.changesCount
        }
    }

    public func requeueAmbiguous(batchID: Int64, awaitingSince: Date? = nil, now: Date = Date()) async throws -> Requeued {
        try await write { db in
            var arguments: StatementArguments = [JobState.pending, Timestamp.string(now), batchID, JobState.ambiguous]
            var waiting = ""
            if let awaitingSince {
                arguments += [Timestamp.string(awaitingSince)]
                waiting = "AND NOT " + LedgerSQL.awaitingCallback(job: "jobs.id", since: "?5")
            }
            try db.execute(
                sql: "UPDATE jobs SET state = ?1, updated_at = ?2 WHERE batch_id = ?3 AND state = ?4 \(waiting)",
                arguments: arguments)
            let resent = db.changesCount
            let counts = try Row.fetchOne(db, sql: LedgerSQL.doubtCounts(batch: "?"), arguments: [batchID])!
            return Requeued(resent: resent, waiting: counts[1], settledByCallback: counts[0])
        }
    }

    public func longestGeneration(batchID: Int64) async throws -> Double? {
        try await read { db in
            try Double.fetchOne(
                db,
                sql: """
                    SELECT MAX((julianday(completed_at) - julianday(submitted_at)) * 86400) FROM jobs
                    WHERE batch_id = ? AND completed_at IS NOT NULL AND submitted_at IS NOT NULL
                    """, arguments: [batchID])
        }
    }

    public func pendingJobs(batchID: Int64, afterID: Int64, limit: Int) async throws -> [PendingJob] {
        try await read { db in
            try PendingJob.fetchAll(
                db,
                sql: """
                    SELECT id, audio_length, webhook_url, \(LedgerSQL.takePrompt()), \(LedgerSQL.rowNameColumns()) FROM jobs
                    WHERE batch_id = ? AND id > ? AND state = ? ORDER BY id LIMIT ?
                    """, arguments: [batchID, afterID, JobState.pending, limit])
        }
    }

    public func countPending(batchID: Int64) async throws -> Int {
        try await read { db in
            try Int.fetchOne(
                db, sql: "SELECT COUNT(*) FROM jobs WHERE batch_id = ? AND state = ?",
                arguments: [batchID, JobState.pending]) ?? 0
        }
    }

    public func creditState(batchID: Int64) async throws -> CreditState {
        try await read { db in
            let row = try Row.fetchOne(
                db,
                sql: """
                    SELECT TOTAL(credit_estimate) + (
                               SELECT TOTAL(t.credit_estimate) FROM takes t JOIN jobs k ON k.id = t.job_id
                               WHERE k.batch_id = ?3
                           ) AS estimated,
                           MAX(credit_estimate) AS largest,
                           COUNT(CASE WHEN state IN (?1, ?2) THEN 1 END) AS ambiguous
                    FROM jobs WHERE batch_id = ?3
                    """, arguments: [JobState.ambiguous, JobState.submitting, batchID])!
            return CreditState(estimated: row["estimated"], largest: row["largest"], ambiguous: row["ambiguous"])
        }
    }

    public func markSubmitting(
        jobID: Int64, callbackToken: String? = nil, now: Date = Date()
    ) async throws -> Int64 {
        try checkStillThere()
        let stamp = Timestamp.string(now)
        return try await write { db in
            try db.execute(
                sql: """
                    UPDATE jobs SET state = ?, attempt_count = attempt_count + 1, updated_at = ?
                    WHERE id = ? AND state = ?
                    """, arguments: [JobState.submitting, stamp, jobID, JobState.pending])
            guard db.changesCount == 1 else { throw LedgerError.notPending(jobID: jobID) }
            try db.execute(
                sql: "INSERT INTO attempts (job_id, kind, started_at, callback_token) VALUES (?, ?, ?, ?)",
                arguments: [jobID, AttemptKind.submit, stamp, callbackToken])
            return db.lastInsertedRowID
        }
    }

    public func recordSubmission(
        jobID: Int64, attemptID: Int64, outcome: SubmitOutcome, state: JobState,
        latency: Duration, now: Date = Date()
    ) async throws {
        let stamp = Timestamp.string(now)
        let latencyMS = Int(latency.seconds * 1000)
        try await write { db in
            switch outcome {
            case let .accepted(answer):
                try db.execute(
                    sql: """
                        UPDATE jobs SET state = ?, task_id = ?, conversion_id = ?, eta = ?, credit_estimate = ?,
                            message = ?, submitted_at = ?, updated_at = ?, last_error = NULL, last_http_status = 200
                        WHERE id = ?
                        """,
                    arguments: [
                        JobState.submitted, answer.taskID, answer.conversionID, answer.eta,
                        answer.creditEstimate, answer.message, stamp, stamp, jobID
                    ])
                try db.execute(
                    sql: """
                        UPDATE attempts SET finished_at = ?, http_status = 200, latency_ms = ?, outcome = ? WHERE id = ?
                        """, arguments: [stamp, latencyMS, outcome.attemptOutcome, attemptID])
            default:
                let (status, error) = outcome.statusAndError
                let unanswered = outcome.attemptOutcome == .noAnswer
                let inDoubt =
                    try Bool.fetchOne(
                        db, sql: "SELECT request_in_doubt FROM jobs WHERE id = ?",
                        arguments: [jobID]) ?? false
                try db.execute(
                    sql: """
                        UPDATE jobs SET state = ?, last_error = ?, last_http_status = ?, updated_at = ?,
                            request_in_doubt = request_in_doubt OR ?
                        WHERE id = ?
                        """,
                    arguments: [
                        state, outcome.jobError(becoming: state, inDoubtBefore: inDoubt), status, stamp, unanswered,
                        jobID
                    ])
                try db.execute(
                    sql: """
                        UPDATE attempts SET finished_at = ?, http_status = ?, error = ?, latency_ms = ?, outcome = ?
                        WHERE id = ?
                        """, arguments: [stamp, status, error, latencyMS, outcome.attemptOutcome, attemptID])
            }
        }
    }
}

extension PendingJob: FetchableRecord {
    public init(row: Row) {
        self.init(
            id: row["id"], row: SQLiteLedger.rowName(row),
            request: SubmitRequest(
                prompt: row["take_prompt"], audioLength: row["audio_length"],
                webhookURL: row["webhook_url"]))
    }
}

extension JobState: DatabaseValueConvertible {}
extension AttemptKind: DatabaseValueConvertible {}
extension AttemptOutcome: DatabaseValueConvertible {}
