/// Requests settled by their callbacks, written once for both backends. Every argument is a
/// parameter of the backend's own kind.
extension LedgerSQL {
    /// The job, and its batch, whose request carried callback token `token`.
    public static func callbackJob(token: String) -> String {
        "SELECT a.job_id, j.batch_id FROM attempts a JOIN jobs j ON j.id = a.job_id WHERE a.callback_token = \(token)"
    }

    /// 1 when the ledger holds task `task` already, as a job's or an earlier take's.
    public static func taskKnown(_ task: String) -> String {
        """
        SELECT CASE WHEN EXISTS (SELECT 1 FROM jobs WHERE task_id = \(task))
            OR EXISTS (SELECT 1 FROM takes WHERE task_id = \(task)) THEN 1 ELSE 0 END
        """
    }

    /// Settles job `job`, still in doubt, with the task that its request carrying `token`
    /// made: submitted with it, sent when that request left, no longer in doubt. A job in
    /// doubt has no task, and is held as ambiguous, pending again (to be resent), or failed
    /// after the request got no answer. Changes no other job.
    public static func settleByCallback(job: String, task: String, token: String, now: String) -> String {
        """
        UPDATE jobs SET state = '\(JobState.submitted.rawValue)', task_id = \(task), last_error = NULL,
            submitted_at = (SELECT started_at FROM attempts WHERE callback_token = \(token)),
            updated_at = \(now), request_in_doubt = 0, settled_by_callback = 1
        WHERE id = \(job) AND task_id IS NULL
            AND state IN ('\(JobState.ambiguous.rawValue)', '\(JobState.pending.rawValue)', '\(JobState.failed.rawValue)')
        """
    }

    /// Settles job `job`, in doubt (a request of it got no answer, and it has no task), with
    /// task `task` found in the account by hand: submitted with it, as its last request left.
    public static func adoptTask(job: String, task: String, now: String) -> String {
        """
        UPDATE jobs SET state = '\(JobState.submitted.rawValue)', task_id = \(task), last_error = NULL,
            submitted_at = COALESCE((SELECT MAX(a.started_at) FROM attempts a WHERE a.job_id = jobs.id AND a.kind = 'submit'), \(now)),
            updated_at = \(now), request_in_doubt = 0
        WHERE id = \(job) AND task_id IS NULL
            AND (state = '\(JobState.ambiguous.rawValue)' OR (request_in_doubt = 1
                 AND state IN ('\(JobState.pending.rawValue)', '\(JobState.failed.rawValue)')))
        """
    }

    /// Keeps task `task` as an earlier take of job `job`, whose request carrying `token` made
    /// it while the job went on (sent again, and given another task): the two were paid
    /// for. It is numbered after its row's latest take, with what the status look said.
    public static func keepFoundTake(
        job: String, task: String, token: String, now: String, state: String, remoteStatus: String,
        statusMessage: String, audioURL: String, cost: String
    ) -> String {
        """
        INSERT INTO takes (job_id, take, state, task_id, remote_status, status_msg, audio_url, conversion_cost,
                           request_in_doubt, paid_twice, submitted_at, completed_at, retired_at, prompt)
        SELECT j.id, 1 + \(rowLatestTake("j")), \(state), \(task), \(remoteStatus), \(statusMessage), \(audioURL),
            \(cost), 0, 1, (SELECT started_at FROM attempts WHERE callback_token = \(token)),
            CASE WHEN \(state) = '\(JobState.completed.rawValue)' THEN \(now) END, \(now), j.prompt
        FROM jobs j WHERE j.id = \(job)
        """
    }
}

extension LedgerSQL {
    /// Job `job`'s request in doubt is accounted for: its task was found (`keepFoundTake`),
    /// and what it cost is known, so nothing more may have been charged for it.
    public static func doubtResolved(job: String) -> String {
        "UPDATE jobs SET request_in_doubt = 0 WHERE id = \(job)"
    }

    /// A job (`job` names its id) with a request that carried a callback token and left at
    /// `since` or later (its callback may still come and settle it), or whose callback came
    /// and is not yet confirmed.
    public static func awaitingCallback(job: String, since: String) -> String {
        """
        EXISTS (SELECT 1 FROM attempts a WHERE a.job_id = \(job) AND a.kind = '\(AttemptKind.submit.rawValue)'
                AND a.callback_token IS NOT NULL AND (a.started_at >= \(since) OR a.callback_task_id IS NOT NULL))
        """
    }

    /// Keeps the task `task` a request's callback named (the request carried `token`) until a
    /// status look confirms it; the first one named stays.
    public static func noteCallback(token: String, task: String) -> String {
        "UPDATE attempts SET callback_task_id = \(task) WHERE callback_token = \(token) AND callback_task_id IS NULL"
    }

    /// The batch's jobs still in doubt whose requests' callbacks named a task not yet
    /// confirmed: job, token, task.
    public static func unconfirmedCallbacks(batch: String) -> String {
        """
        SELECT j.id, a.callback_token, a.callback_task_id FROM attempts a JOIN jobs j ON j.id = a.job_id
        WHERE j.batch_id = \(batch) AND a.callback_task_id IS NOT NULL AND j.task_id IS NULL
            AND j.state IN ('\(JobState.ambiguous.rawValue)', '\(JobState.pending.rawValue)', '\(JobState.failed.rawValue)')
        ORDER BY j.id
        """
    }

    /// Forgets a callback's task the service does not know (its request's job may be sent again).
    public static func forgetCallback(token: String) -> String {
        "UPDATE attempts SET callback_task_id = NULL WHERE callback_token = \(token)"
    }

    /// The batch's jobs settled by their callbacks, and those still ambiguous.
    public static func doubtCounts(batch: String) -> String {
        """
        SELECT COUNT(CASE WHEN settled_by_callback = 1 THEN 1 END),
               COUNT(CASE WHEN state = '\(JobState.ambiguous.rawValue)' THEN 1 END)
        FROM jobs WHERE batch_id = \(batch)
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

/// What `resume --resend-ambiguous` did with the batch's jobs in doubt.
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
    /// the next run to confirm, once the job is held as ambiguous.
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
