import Foundation

// Requests settled by their callbacks (`StatusLedger`), written once over `LedgerBackend`.
extension LedgerBackend {
    /// The job whose request carried this callback token, and its batch, if any.
    public func job(callbackToken: String) async throws -> (id: Int64, batchID: Int64)? {
        try await row(
            """
            SELECT a.job_id, j.batch_id FROM attempts a JOIN jobs j ON j.id = a.job_id
            WHERE a.callback_token = \(callbackToken)
            """
        ).map { (try $0["job_id"], try $0["batch_id"]) }
    }

    public func latestRequestAwaitingCallback(batchID: Int64) async throws -> Date? {
        let latest: String? = try await value(
            """
            SELECT MAX(a.started_at) FROM attempts a JOIN jobs j ON j.id = a.job_id
            WHERE j.batch_id = \(batchID) AND j.state = \(JobState.inDoubt) AND a.kind = \(AttemptKind.submit)
                  AND a.callback_token IS NOT NULL
            """)
        return Timestamp.date(latest)
    }

    public func settle(
        jobID: Int64, callbackToken: String, taskID: String, status: RemoteStatus, now: Date = Date()
    ) async throws -> CallbackSettlement {
        let stamp = Timestamp.string(now)
        return try await transaction { db in
            let state: String? = try await db.row(
                "SELECT state FROM jobs WHERE id = \(jobID)\(self.dialect.lockingRows)"
            ).map { try $0["state"] }
            guard try await !Self.taskKnown(taskID, in: db) else { return .alreadyKnown }
            // A job in doubt has no task, and is held in doubt, pending again (to be
            // resent), or failed after the request got no answer: it is submitted with the
            // task, sent when that request left, no longer in doubt.
            let settled = try await db.rows(
                """
                UPDATE jobs SET state = \(JobState.submitted), task_id = \(taskID), last_error = NULL,
                    submitted_at = (SELECT started_at FROM attempts WHERE callback_token = \(callbackToken)),
                    updated_at = \(stamp), request_in_doubt = 0, settled_by_callback = 1
                WHERE id = \(jobID) AND task_id IS NULL AND state IN (\(LedgerSQL.states([.inDoubt, .pending, .failed])))
                RETURNING id
                """)
            if !settled.isEmpty { return .settled }
            if state == JobState.submitting.rawValue {
                try await Self.noteCallback(token: callbackToken, taskID: taskID, in: db)
                return .noted
            }
            // The job went on (sent again, given another task): both were paid for. The task
            // is kept as an earlier take, numbered after its row's latest, as the look found it.
            let found = TaskStanding.found(status)
            try await db.run(
                """
                INSERT INTO takes (job_id, take, state, task_id, remote_status, status_msg, audio_url, conversion_cost,
                                   request_in_doubt, paid_twice, submitted_at, completed_at, retired_at, prompt)
                SELECT j.id, 1 + \(LedgerSQL.rowLatestTake("j")), \(found.state), \(taskID), \(found.remoteStatus),
                    \(found.statusMessage), \(found.audioURL), \(found.conversionCost), 0, 1,
                    (SELECT started_at FROM attempts WHERE callback_token = \(callbackToken)),
                    \(found.state == .completed ? stamp : nil), \(stamp), j.prompt
                FROM jobs j WHERE j.id = \(jobID)
                """)
            // What the request in doubt cost is known now: nothing more may have been charged for it.
            try await db.run("UPDATE jobs SET request_in_doubt = 0 WHERE id = \(jobID)")
            return .keptAsEarlierTake
        }
    }

    /// Whether the ledger holds the task already, as a job's or an earlier take's.
    private static func taskKnown(_ taskID: String, in db: any SQLRunner) async throws -> Bool {
        try await db.value(
            """
            SELECT CASE WHEN EXISTS (SELECT 1 FROM jobs WHERE task_id = \(taskID))
                OR EXISTS (SELECT 1 FROM takes WHERE task_id = \(taskID)) THEN 1 ELSE 0 END
            """)
    }

    public func noteCallback(token: String, taskID: String) async throws {
        try await Self.noteCallback(token: token, taskID: taskID, in: self)
    }

    /// Keeps the task a request's callback named until a status look confirms it; the first one named stays.
    private static func noteCallback(token: String, taskID: String, in db: any SQLRunner) async throws {
        try await db.run(
            """
            UPDATE attempts SET callback_task_id = \(taskID) WHERE callback_token = \(token) AND callback_task_id IS NULL
            """)
    }

    public func unconfirmedCallbacks(batchID: Int64) async throws -> [UnconfirmedCallback] {
        try await rows(
            """
            SELECT j.id, a.callback_token, a.callback_task_id FROM attempts a JOIN jobs j ON j.id = a.job_id
            WHERE j.batch_id = \(batchID) AND a.callback_task_id IS NOT NULL AND j.task_id IS NULL
                AND j.state IN (\(LedgerSQL.states([.inDoubt, .pending, .failed])))
            ORDER BY j.id
            """
        ).map {
            UnconfirmedCallback(
                jobID: try $0["id"], token: try $0["callback_token"], taskID: try $0["callback_task_id"])
        }
    }

    public func forgetCallback(token: String) async throws {
        try await run("UPDATE attempts SET callback_task_id = NULL WHERE callback_token = \(token)")
    }

    /// Settles a job in doubt (a request of it got no answer, and it has no task) with a task
    /// found in the account by hand: submitted with it, as its last request left.
    public func adopt(jobID: Int64, taskID: String, now: Date = Date()) async throws -> Adoption {
        let stamp = Timestamp.string(now)
        return try await transaction { db in
            try await db.run("SELECT id FROM jobs WHERE id = \(jobID)\(self.dialect.lockingRows)")
            guard try await !Self.taskKnown(taskID, in: db) else { return .taskKnown }
            let adopted = try await db.rows(
                """
                UPDATE jobs SET state = \(JobState.submitted), task_id = \(taskID), last_error = NULL,
                    submitted_at = COALESCE((SELECT MAX(a.started_at) FROM attempts a
                                             WHERE a.job_id = jobs.id AND a.kind = \(AttemptKind.submit)), \(stamp)),
                    updated_at = \(stamp), request_in_doubt = 0
                WHERE id = \(jobID) AND task_id IS NULL
                    AND (state = \(JobState.inDoubt) OR (request_in_doubt = 1
                         AND state IN (\(LedgerSQL.states([.pending, .failed])))))
                RETURNING id
                """)
            return adopted.isEmpty ? .notInDoubt : .adopted
        }
    }
}

extension LedgerSQL {
    /// A job (`job` names its id) with a request that carried a callback token and left at
    /// `since` or later (its callback may still come and settle it), or whose callback came
    /// and is not yet confirmed.
    public static func awaitingCallback(job: String, since: Date) -> SQL {
        """
        EXISTS (SELECT 1 FROM attempts a WHERE a.job_id = \(raw: job) AND a.kind = \(AttemptKind.submit)
                AND a.callback_token IS NOT NULL AND (a.started_at >= \(Timestamp.string(since))
                                                      OR a.callback_task_id IS NOT NULL))
        """
    }
}

/// What `adopt` did.
public enum Adoption: Sendable, Equatable {
    case adopted
    /// The ledger holds the task already.
    case taskKnown
    /// The job has a task, or no request of it went unanswered.
    case notInDoubt
}

/// A callback that named its request's task, which the service could not confirm then.
public struct UnconfirmedCallback: Sendable, Equatable {
    public var jobID: Int64
    public var token: String
    public var taskID: String

    public init(jobID: Int64, token: String, taskID: String) {
        self.jobID = jobID
        self.token = token
        self.taskID = taskID
    }
}

/// What `resume --resend-in-doubt` did with the batch's jobs in doubt.
public struct Requeued: Sendable, Equatable {
    /// Put back in line, to be sent again.
    public var resent: Int
    /// Held: a request of theirs left within the doubt window, and its callback may still come.
    public var waiting: Int
    /// Settled by their requests' callbacks since they were held (never to be sent again).
    public var settledByCallback: Int

    public init(resent: Int, waiting: Int, settledByCallback: Int) {
        self.resent = resent
        self.waiting = waiting
        self.settledByCallback = settledByCallback
    }
}

/// What a callback naming its request did to the request's job.
public enum CallbackSettlement: Sendable, Equatable {
    /// The job was in doubt, and now has the task.
    case settled
    /// The job had gone on to another task: this one is kept as an earlier take (paid twice).
    case keptAsEarlierTake
    /// The ledger had the task already.
    case alreadyKnown
    /// The job was still being sent (or its sender died mid-request): the task is kept for
    /// the next run to confirm, once the job is held in doubt.
    case noted
}

/// A request's own token in its callback URL: 128 random bits, in hex. It tells nothing
/// (not the key, not the job), and cannot be guessed.
public enum CallbackToken {
    public static let parameter = "soundbatch_attempt"

    public static func make() -> String {
        var random = SystemRandomNumberGenerator()
        return (0..<2).map { _ in String(random.next() as UInt64, radix: 16) }
            .map { String(repeating: "0", count: 16 - $0.count) + $0 }.joined()
    }

    /// `url` with the token as one more query parameter.
    public static func url(_ url: String, token: String) -> String {
        url + (url.contains("?") ? "&" : "?") + "\(parameter)=\(token)"
    }

    /// The token a callback's query names, if it has a well-formed one.
    public static func token(inQuery query: String?) -> String? {
        guard let query else { return nil }
        for pair in query.split(separator: "&") {
            let parts = pair.split(separator: "=", maxSplits: 1).map(String.init)
            guard parts.count == 2, parts[0] == parameter else { continue }
            let token = parts[1]
            return token.count == 32 && token.allSatisfy(\.isHexDigit) ? token : nil
        }
        return nil
    }
}
